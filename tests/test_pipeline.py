"""Overlapping jobs on one worker (pipelined intake, issue 13) and its one ComfyUI connection.

The SDK runs up to COMFY_PIPELINE_DEPTH handlers at once; here two or three `Worker.handle` calls
overlap the same way, against the ComfyUI test server over real sockets.
"""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from comfy_testserver import ComfyTestServer
from handler.worker import Worker

from . import workflows as wf
from .conftest import b64, make_settings


class ProgressByJob:
    """What the worker would send to runpod.serverless.progress_update, kept per job id."""

    def __init__(self) -> None:
        self.updates: dict[str, list[dict[str, Any]]] = {}

    def __call__(self, job: dict[str, Any]) -> Any:
        return self.updates.setdefault(str(job["id"]), []).append


@pytest.fixture
def progress() -> ProgressByJob:
    return ProgressByJob()


@pytest.fixture
async def worker(comfy: ComfyTestServer, progress: ProgressByJob) -> AsyncIterator[Worker]:
    worker = Worker(
        make_settings(comfy),
        progress_sender=progress,
        keep_connection=True,
    )
    yield worker
    await worker.aclose()


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


async def running(comfy: ComfyTestServer) -> None:
    while not comfy.queue_state()[0]:
        await asyncio.sleep(0.02)


async def start_running(
    worker: Worker, comfy: ComfyTestServer, held: dict[str, Any]
) -> asyncio.Task[dict[str, Any]]:
    """The job `held` handed to the worker at 0.1 s a sampler step, returned once ComfyUI runs it."""
    comfy.behaviour.step_delay_s = 0.1
    task = asyncio.create_task(worker.handle(held))
    await running(comfy)
    return task


async def pending(comfy: ComfyTestServer, count: int) -> None:
    while len(comfy.queue_state()[1]) < count:
        await asyncio.sleep(0.02)


def job(job_id: str, workflow: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": job_id, "input": {"workflow": workflow, **extra}}


async def test_jobs_share_one_websocket_and_check_readiness_once(
    worker: Worker, comfy: ComfyTestServer
) -> None:
    results = [await worker.handle(job(f"j{i}", wf.save_image(f"one{i}"))) for i in range(3)]
    assert all("error" not in r for r in results), results
    sockets = [r for r in comfy.requests if r.path == "/ws"]
    readiness = [r for r in comfy.requests if r.path == "/system_stats"]
    assert len(sockets) == 1 and len(readiness) == 1
    assert results[1]["timings"]["ready_ms"] == 0 and results[2]["timings"]["ready_ms"] == 0


async def test_jobs_arriving_together_on_a_cold_worker_open_one_websocket(
    worker: Worker, comfy: ComfyTestServer
) -> None:
    results = await asyncio.gather(
        *(worker.handle(job(f"c{i}", wf.save_image(f"cold{i}"))) for i in range(3))
    )
    assert all("error" not in r for r in results), results
    assert len([r for r in comfy.requests if r.path == "/ws"]) == 1


async def test_two_overlapping_jobs_run_in_order_with_their_own_outputs_and_progress(
    worker: Worker, comfy: ComfyTestServer, progress: ProgressByJob
) -> None:
    first = await start_running(worker, comfy, job("a", wf.sampler(steps=8, prefix="first")))
    second = await worker.handle(job("b", wf.sampler(steps=3, prefix="second")))
    first_result = await first
    assert "error" not in first_result and "error" not in second, (first_result, second)
    assert [i["filename"].split("_")[0] for i in first_result["images"]] == ["first"]
    assert [i["filename"].split("_")[0] for i in second["images"]] == ["second"]
    a, b = comfy.executions[-2], comfy.executions[-1]
    assert a.prompt_id == first_result["prompt_id"] and b.prompt_id == second["prompt_id"]
    assert b.started_at >= a.finished_at  # ComfyUI still runs one prompt at a time
    assert second["timings"]["queue_wait_ms"] > 300  # it waited behind the first, and says so
    assert first_result["timings"]["queue_wait_ms"] < 300
    a_steps = [u["step"] for u in progress.updates["a"] if "step" in u]
    b_steps = [u["step"] for u in progress.updates["b"] if "step" in u]
    assert a_steps == list(range(1, 9)) and b_steps == [1, 2, 3]
    await worker.settle()  # housekeeping runs after each result (handler/after_result.py)
    assert files_under(comfy.root / "output") == [] and files_under(comfy.root / "input") == []
    assert comfy.history() == {}


async def test_a_failing_job_held_behind_a_running_one_fails_alone(
    worker: Worker, comfy: ComfyTestServer
) -> None:
    first = await start_running(worker, comfy, job("a", wf.sampler(steps=6, prefix="fine")))
    broken = {
        "workflow": wf.invert_upload("broken.png"),
        "images": [{"name": "broken.png", "image": b64(b"\x89PNG\r\n\x1a\n not really a png")}],
    }
    second = await worker.handle({"id": "b", "input": broken})
    first_result = await first
    assert second["error"].startswith("EXECUTION_FAILED: node 1 (LoadImage) raised"), second
    assert second["details"]["prompt_id"] != first_result["prompt_id"]
    assert "error" not in first_result and "errors" not in first_result, first_result
    assert [i["filename"].split("_")[0] for i in first_result["images"]] == ["fine"]
    await worker.settle()
    assert files_under(comfy.root / "output") == [] and files_under(comfy.root / "input") == []
    assert comfy.history() == {}


async def test_a_job_waiting_behind_others_of_its_worker_says_so_then_runs(
    worker: Worker, comfy: ComfyTestServer, progress: ProgressByJob
) -> None:
    first = await start_running(worker, comfy, job("a", wf.sampler(steps=20, prefix="first")))
    second = asyncio.create_task(worker.handle(job("b", wf.sampler(steps=15, prefix="second"))))
    await pending(comfy, 1)
    third = await worker.handle(job("c", wf.sampler(steps=2, prefix="third")))
    results = [await first, await second, third]
    assert all("error" not in r for r in results), results

    def stages(job_id: str) -> list[tuple[str, str | None]]:
        # One entry per change: what a client polling /status sees move.
        seen: list[tuple[str, str | None]] = []
        for update in progress.updates[job_id]:
            entry = (update["stage"], update.get("activity") if update["stage"] == "waiting" else None)
            if not seen or seen[-1] != entry:
                seen.append(entry)
        return seen

    behind_one = ("waiting", "queued behind another job in this worker")
    behind_two = ("waiting", "queued behind 2 other jobs in this worker")
    assert all(stage != "waiting" for stage, _ in stages("a"))  # nothing of its worker ahead of it
    # b waits behind a, c behind a and b, then behind b alone; each then runs, then collects.
    assert stages("b")[stages("b").index(behind_one) + 1 :][:1] == [("running", None)]
    assert [s for s in stages("b") if s[0] == "waiting"] == [behind_one]
    c_waits = [s for s in stages("c") if s[0] == "waiting"]
    assert c_waits == [behind_two, behind_one], stages("c")
    after_wait = stages("c")[stages("c").index(behind_one) + 1 :]
    assert after_wait[0][0] in ("queued", "running") and ("running", None) in after_wait
    assert stages("c")[-1] == ("collecting", None)
    waiting = [u for u in progress.updates["c"] if u["stage"] == "waiting"]
    assert len(waiting) == 2  # one update per change of the jobs ahead, not one per second
    assert all(u["percent"] == 0.0 and "node" not in u for u in waiting)


async def test_cancel_of_the_waiting_job_removes_only_its_prompt(
    worker: Worker, comfy: ComfyTestServer
) -> None:
    first = await start_running(worker, comfy, job("a", wf.sampler(steps=10, prefix="kept")))
    waiting = asyncio.create_task(worker.handle(job("b", wf.save_image("dropped"))))
    await pending(comfy, 1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    running_ids, pending_ids = comfy.queue_state()
    assert len(running_ids) == 1 and pending_ids == []
    result = await first
    assert "error" not in result, result
    assert [e.outcome for e in comfy.executions] == ["success"]


async def test_cancel_of_the_running_job_lets_the_waiting_one_run(
    worker: Worker, comfy: ComfyTestServer
) -> None:
    first = await start_running(worker, comfy, job("a", wf.sampler(steps=50)))
    waiting = asyncio.create_task(worker.handle(job("b", wf.save_image("next"))))
    await pending(comfy, 1)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    result = await waiting
    assert "error" not in result, result
    assert [e.outcome for e in comfy.executions] == ["interrupted", "success"]


async def test_timeout_counts_from_execution_start_not_from_the_wait(
    worker: Worker, comfy: ComfyTestServer
) -> None:
    first = await start_running(worker, comfy, job("a", wf.sampler(steps=50), timeout=1.5))
    # The second job's own run is short; it waits behind the first for longer than its timeout.
    second = await worker.handle(job("b", wf.save_image("patient"), timeout=1))
    first_result = await first
    assert first_result["error"].startswith("TIMEOUT: the job did not finish within 1.5 s")
    assert "error" not in second, second
    assert second["timings"]["queue_wait_ms"] > 1000


async def test_a_wait_past_the_queue_bound_fails_only_the_waiting_job(comfy: ComfyTestServer) -> None:
    worker = Worker(make_settings(comfy, COMFY_QUEUE_WAIT_TIMEOUT_S="0.5"), keep_connection=True)
    try:
        first = await start_running(worker, comfy, job("a", wf.sampler(steps=15)))
        second = await worker.handle(job("b", wf.save_image("late")))
        assert second["error"].startswith("TIMEOUT: the job's prompt waited 0.5 s in ComfyUI's queue")
        assert second["details"]["stage"] == "waiting in ComfyUI's queue"
        assert comfy.queue_state()[1] == []  # its prompt left the queue; the running one stays
        assert "error" not in await first
        assert [e.outcome for e in comfy.executions] == ["success"]
    finally:
        await worker.aclose()


async def test_a_crash_fails_every_job_the_worker_holds(worker: Worker, comfy: ComfyTestServer) -> None:
    comfy.behaviour.step_delay_s = 0.2
    first = asyncio.create_task(worker.handle(job("a", wf.sampler(steps=20))))
    await running(comfy)
    second = asyncio.create_task(worker.handle(job("b", wf.save_image("never"))))
    await pending(comfy, 1)
    comfy.kill()
    results = await asyncio.wait_for(asyncio.gather(first, second), 30)
    for result in results:
        assert result["error"].startswith("COMFY_CRASHED"), result
        assert result["refresh_worker"] is True


async def test_the_same_job_retried_while_its_first_attempt_runs_gets_its_own_outputs(
    worker: Worker, comfy: ComfyTestServer
) -> None:
    comfy.behaviour.node_delay_s = 0.05
    results = await asyncio.gather(*(worker.handle(job("same", wf.save_image("again"))) for _ in range(2)))
    assert all("error" not in r for r in results), results
    assert results[0]["prompt_id"] != results[1]["prompt_id"]
    assert all(len(r["images"]) == 1 for r in results)
    await worker.settle()
    assert files_under(comfy.root / "output") == []


def fixed_name_save(color: int) -> dict[str, Any]:
    """A custom node that saves under one fixed file name, overwriting (no counter)."""
    return {
        "1": wf.empty_image(color=color),
        "2": {"class_type": "FaultFixedNameSave", "inputs": {"images": ["1", 0], "filename": "fixed.png"}},
    }


async def test_a_fixed_name_output_the_next_prompt_overwrote_is_never_returned_as_the_earlier_jobs(
    comfy: ComfyTestServer,
) -> None:
    def next_prompt_done() -> bool:
        return [e.outcome for e in comfy.executions] == ["success", "success"]

    def sender(held: dict[str, Any]) -> Any:
        def send(update: dict[str, Any]) -> None:
            # Job a starts collecting only once job b's prompt, queued behind it, has run and
            # rewritten the file (this blocks the worker's loop; ComfyUI runs in its own thread).
            if held["id"] == "a" and update["stage"] == "collecting":
                deadline = time.monotonic() + 10
                while not next_prompt_done() and time.monotonic() < deadline:
                    time.sleep(0.01)

        return send

    worker = Worker(make_settings(comfy), progress_sender=sender, keep_connection=True)
    try:
        # 0.3 s a node: job a collects before job b's prompt writes (after a's end, not within the
        # millisecond ComfyUI's timestamps leave open).
        comfy.behaviour.node_delay_s = 0.3
        first = asyncio.create_task(worker.handle(job("a", fixed_name_save(0xFF0000))))
        await running(comfy)
        second = asyncio.create_task(worker.handle(job("b", fixed_name_save(0x0000FF))))
        await pending(comfy, 1)
        overwritten, own = await asyncio.wait_for(asyncio.gather(first, second), 30)
        assert next_prompt_done()
        assert overwritten["error"].startswith("OUTPUT_FAILED"), overwritten
        assert "wrote ComfyUI's output/fixed.png again before this job had read it" in overwritten["error"]
        assert "COMFY_PIPELINE_DEPTH=1" in overwritten["error"]
        # The earlier job's cleanup left the file to the job whose prompt wrote it last.
        assert "error" not in own, own
        [image] = own["images"]
        pixel = Image.open(io.BytesIO(base64.b64decode(image["data"]))).convert("RGB").getpixel((0, 0))
        assert pixel == (0, 0, 255)
        await worker.settle()
        assert files_under(comfy.root / "output") == []
    finally:
        await worker.aclose()


async def test_the_connection_comes_back_after_comfyui_restarts(tmp_path: Path) -> None:
    server = ComfyTestServer(root=tmp_path / "c").start()
    worker = Worker(make_settings(server, WEBSOCKET_RECONNECT_DELAY_S="0.1"), keep_connection=True)
    try:
        assert "error" not in await worker.handle(job("1", wf.save_image("before")))
        port = server.port
        server.stop()
        down = await worker.handle(job("2", wf.save_image("down")))
        assert down["error"].startswith(("COMFY_UNAVAILABLE", "COMFY_CRASHED")), down
        server = ComfyTestServer(root=tmp_path / "c", port=port).start()
        back = await worker.handle(job("3", wf.save_image("after")))
        assert "error" not in back, back
        assert back["timings"]["ready_ms"] > 0  # readiness was checked again after the failure
    finally:
        await worker.aclose()
        server.stop()


async def test_overlapping_splat_jobs_each_get_only_the_files_their_prompt_wrote(
    worker: Worker, comfy: ComfyTestServer
) -> None:
    # SharpPredict reports nothing: its .ply is found on disk by the prompt's execution window.
    comfy.behaviour.node_delay_s = 0.1
    (comfy.root / "output" / "splat_users_own.ply").write_bytes(b"ply\nnot this job's\n")
    results = await asyncio.gather(
        worker.handle(job("a", wf.splat("splat", color=0x112233))),
        worker.handle(job("b", wf.splat("splat", color=0x445566))),
    )
    assert all("error" not in r for r in results), results
    names = [[f["filename"] for f in r["files"] if f["filename"].endswith(".ply")] for r in results]
    assert all(len(n) == 1 for n in names) and names[0] != names[1]
    await worker.settle()
    assert files_under(comfy.root / "output") == ["splat_users_own.ply"]  # theirs stays, ours are gone
