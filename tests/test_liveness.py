"""Liveness and real stops (issue 14, points 4 and 5), over real sockets.

The ComfyUI test server runs in a thread for the faults it can play (a dead prompt runner, a node
that ignores interrupts) and as a supervised subprocess (testkit.comfy_process, restarted as start.sh
restarts ComfyUI) for what needs a real process: SIGSTOP, and restarts in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from comfy_testserver import ComfyTestServer
from handler.comfy.capabilities import PROBE_JOB_ID
from handler.config import Settings
from handler.worker import Worker
from testkit.comfy_process import ComfyProcess

from . import workflows as wf
from .conftest import make_settings


def job(job_id: str, workflow: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": job_id, "input": {"workflow": workflow, **extra}}


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


async def timed(worker: Worker, payload: dict[str, Any]) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    result = await worker.handle(payload)
    return result, time.monotonic() - started


async def until(condition: Callable[[], bool], *, timeout_s: float) -> None:
    """Poll `condition` every 50 ms; fail the test if it is still false after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"still not true after {timeout_s} s"
        await asyncio.sleep(0.05)


@pytest.fixture
async def worker(comfy: ComfyTestServer) -> AsyncIterator[Worker]:
    worker = Worker(
        make_settings(comfy, COMFY_RUNNER_STALL_S="1", COMFY_INTERRUPT_SETTLE_S="10"), keep_connection=True
    )
    yield worker
    await worker.aclose()


# -- the test server in a thread ----------------------------------------------------------------------


async def test_a_dead_prompt_runner_fails_the_job_in_seconds_not_at_its_deadline(
    worker: Worker, comfy: ComfyTestServer
) -> None:
    comfy.behaviour.prompt_worker_dies = True
    first = await worker.handle(job("a", wf.save_image("dropped"), timeout=60))
    assert first["error"].startswith("INTERRUPTED"), first  # the prompt the runner died on vanished
    result, elapsed = await timed(worker, job("b", wf.save_image("never"), timeout=60))
    assert result["error"].startswith("COMFY_STALLED: ComfyUI stopped executing prompts"), result
    assert elapsed < 5  # COMFY_RUNNER_STALL_S=1 plus a probe or two, not the 60 s deadline
    # No COMFY_PID_FILE: ComfyUI cannot be restarted in place, so RunPod must replace the worker.
    assert result["refresh_worker"] is True and result["details"]["restarting"] is False
    later = await worker.handle(job("c", wf.save_image("later")))
    assert later["error"].startswith("COMFY_STUCK"), later
    assert later["refresh_worker"] is True


async def test_a_dead_prompt_runner_is_found_without_reading_the_queue_where_the_jobs_api_exists(
    worker: Worker, comfy: ComfyTestServer, comfy_profile: str
) -> None:
    comfy.behaviour.prompt_worker_dies = True
    await worker.handle(job("a", wf.save_image("dropped"), timeout=60))
    before = len(comfy.requests)
    result = await worker.handle(job("b", wf.save_image("never"), timeout=60))
    assert result["error"].startswith("COMFY_STALLED"), result
    queue_reads = [r for r in comfy.requests[before:] if r.method == "GET" and r.path == "/queue"]
    job_reads = [r for r in comfy.requests[before:] if r.method == "GET" and r.path.startswith("/jobs")]
    if comfy_profile == "current":  # "anything running?" and "is ours pending?" from the jobs API
        assert queue_reads == [] and job_reads
    else:
        assert queue_reads and job_reads == []


async def test_a_silent_long_node_is_not_declared_dead(worker: Worker, comfy: ComfyTestServer) -> None:
    # Running and sending nothing for several liveness periods (COMFY_WS_IDLE_S=0.3, stall 1 s).
    comfy.behaviour.node_delay_s = 2.5
    result = await worker.handle(job("long", wf.save_image("patient")))
    assert "error" not in result, result


async def test_a_node_ignoring_the_interrupt_gets_its_result_at_the_deadline_and_holds_the_next_job(
    comfy: ComfyTestServer, comfy_profile: str
) -> None:
    running_at: list[float] = []  # when the worker first reported the prompt running

    def sender(_job: dict[str, Any]) -> Any:
        return lambda update: running_at.append(time.time()) if update.get("stage") == "running" else None

    settings = make_settings(comfy, COMFY_INTERRUPT_SETTLE_S="20")
    worker = Worker(settings, progress_sender=sender, keep_connection=True)
    try:
        comfy.behaviour.node_delay_s = 3.0
        comfy.behaviour.uninterruptible = True
        result = await worker.handle(job("stuck", wf.save_image("orphan"), timeout=1))
        # The deadline counts from execution start and is kept to within a second.
        assert 1.0 <= time.time() - running_at[0] < 2.0, time.time() - running_at[0]
        assert result["error"].startswith("TIMEOUT: the job did not finish within 1 s"), result
        assert result["details"]["prompt_state"] == "still_running"
        assert "has NOT let go of it" in result["error"]
        assert worker.capacity() == 1  # depth 2, one slot held by the orphan
        comfy.behaviour.uninterruptible = False
        comfy.behaviour.node_delay_s = 0.0
        # The next job waits for ComfyUI to let go of the orphan instead of queueing behind it.
        following, waited = await timed(worker, job("next", wf.save_image("next")))
        assert "error" not in following, following
        assert following["timings"]["ready_ms"] > 500 and waited > 0.5
        assert comfy.executions[0].outcome == "interrupted" and comfy.executions[1].outcome == "success"
        assert comfy.executions[1].started_at >= comfy.executions[0].finished_at
        assert worker.capacity() == 2
        interrupts = [r for r in comfy.requests if r.path == "/interrupt"]
        cancels = [r for r in comfy.requests if r.method == "POST" and r.path.endswith("/cancel")]
        queued = next(i for i, r in enumerate(comfy.requests) if (r.method, r.path) == ("POST", "/prompt"))
        queue_reads = [r for r in comfy.requests[queued:] if (r.method, r.path) == ("GET", "/queue")]
        if comfy_profile == "current":  # the stop and the orphan's follower cancel through the jobs API
            stops = [r for r in cancels if r.path != f"/jobs/{PROBE_JOB_ID}/cancel"]
            assert interrupts == [] and queue_reads == [], (interrupts, queue_reads)
        else:
            stops = interrupts
            assert cancels == []
        assert 2 <= len(stops) <= 12  # back-off, not one every 50 ms (issue 14: 188 in 10 s)
        await worker.settle()  # the next job's own housekeeping runs just after its result
        assert files_under(comfy.root / "output") == []  # nothing of the orphan's is left
    finally:
        await worker.aclose()


async def test_without_supervision_a_stuck_prompt_makes_the_worker_refuse_jobs_until_it_ends(
    comfy: ComfyTestServer,
) -> None:
    worker = Worker(make_settings(comfy, COMFY_INTERRUPT_SETTLE_S="1"), keep_connection=True)
    try:
        comfy.behaviour.node_delay_s = 4.0
        comfy.behaviour.uninterruptible = True
        stuck = await worker.handle(job("stuck", wf.save_image("orphan"), timeout=1))
        assert stuck["details"]["prompt_state"] == "still_running", stuck
        await asyncio.sleep(1.5)  # past COMFY_INTERRUPT_SETTLE_S: no restart possible here
        refused, elapsed = await timed(worker, job("refused", wf.save_image("no")))
        assert refused["error"].startswith("COMFY_STUCK: ComfyUI on this worker is unusable"), refused
        assert refused["refresh_worker"] is True and elapsed < 1  # at once, nothing queued
        comfy.behaviour.node_delay_s = 0.0
        while comfy.queue_state()[0]:  # the orphan ends on its own
            await asyncio.sleep(0.1)
        # The worker notices at its next look (back-off up to 5 s) and takes its slot back.
        await until(lambda: worker.capacity() == 2, timeout_s=10)
        back = await worker.handle(job("back", wf.save_image("back")))
        assert "error" not in back, back
        assert [e.outcome for e in comfy.executions] == ["interrupted", "success"]
    finally:
        await worker.aclose()


async def test_a_stop_that_lands_says_so(worker: Worker, comfy: ComfyTestServer) -> None:
    comfy.behaviour.step_delay_s = 0.2
    result = await worker.handle(job("t", wf.sampler(steps=50), timeout=1))
    assert result["details"]["prompt_state"] == "stopped", result
    assert "ComfyUI has let go of it" in result["error"]
    assert worker.capacity() == 2


# -- the test server as a supervised process (real SIGSTOP, restarts in place) -----------------------


def supervised_settings(comfy: ComfyProcess, **env: str) -> Settings:
    base = {
        "COMFY_HOST": comfy.address,
        "COMFYUI_PATH": str(comfy.root),
        "COMFY_PID_FILE": str(comfy.pid_file),
        "COMFY_SUPERVISED": "true",  # ComfyProcess(supervised=True) restarts it, as start.sh does
        "COMFY_READY_TIMEOUT_S": "30",
        "COMFY_WS_IDLE_S": "0.5",
        "COMFY_LIVENESS_PROBE_S": "1",
        "COMFY_UNRESPONSIVE_S": "3",
        "WEBSOCKET_RECONNECT_ATTEMPTS": "3",
        "WEBSOCKET_RECONNECT_DELAY_S": "0.2",
    }
    return Settings.from_env({**base, **env})


@contextlib.contextmanager
def supervised_test_server(
    tmp_path: Path, *flags: str, flags_after_restart: list[str] | None = None
) -> Iterator[ComfyProcess]:
    """The test server as a process restarted whenever it exits (answering within 30 s), stopped after."""
    comfy = ComfyProcess.test_server(
        tmp_path, *flags, supervised=True, flags_after_restart=flags_after_restart
    )
    comfy.start(30.0)
    try:
        yield comfy
    finally:
        comfy.stop()


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[ComfyProcess]:
    with supervised_test_server(tmp_path, "--node-delay-s", "1") as comfy:
        yield comfy


@pytest.fixture
def supervised_profile(tmp_path: Path, comfy_profile: str) -> Iterator[ComfyProcess]:
    """`supervised` once per protocol profile: liveness probes /queue or the jobs API."""
    with supervised_test_server(tmp_path, "--node-delay-s", "1", "--profile", comfy_profile) as comfy:
        yield comfy


async def test_a_frozen_comfyui_fails_the_job_in_seconds_and_is_restarted_in_place(
    supervised: ComfyProcess,
) -> None:
    worker = Worker(supervised_settings(supervised), keep_connection=True)
    try:
        running = asyncio.create_task(worker.handle(job("a", wf.save_image("frozen"), timeout=120)))
        await asyncio.sleep(0.5)
        frozen_pid = supervised.pid
        supervised.freeze()
        started = time.monotonic()
        result = await asyncio.wait_for(running, 30)
        elapsed = time.monotonic() - started
        assert result["error"].startswith("COMFY_FROZEN: ComfyUI's process"), result
        assert result["details"]["stopped_pid"] == frozen_pid
        assert "restarts ComfyUI in place" in result["error"] and "refresh_worker" not in result
        assert elapsed < 5, elapsed  # the process state tells at the first silence (COMFY_WS_IDLE_S)
        after = await worker.handle(job("b", wf.save_image("after")))
        assert "error" not in after, after
        assert supervised.starts == 2 and supervised.pid != frozen_pid
    finally:
        await worker.aclose()


async def test_a_frozen_comfyui_without_a_pid_file_is_found_by_its_silence(
    supervised_profile: ComfyProcess,
) -> None:
    supervised = supervised_profile
    settings = supervised_settings(supervised, COMFY_PID_FILE="")
    worker = Worker(settings, keep_connection=True)
    try:
        running = asyncio.create_task(worker.handle(job("a", wf.save_image("frozen"), timeout=120)))
        await asyncio.sleep(0.5)
        supervised.freeze()
        started = time.monotonic()
        result = await asyncio.wait_for(running, 30)
        elapsed = time.monotonic() - started
        assert result["error"].startswith("COMFY_FROZEN: ComfyUI at"), result
        assert "no HTTP answer, no WebSocket event" in result["error"]
        assert result["refresh_worker"] is True  # no PID file: it cannot be restarted in place
        # COMFY_UNRESPONSIVE_S=3 from its last sign of life (just before the freeze), probes of 1 s
        assert 1.5 <= elapsed < 8, elapsed
    finally:
        supervised.thaw()
        await worker.aclose()


async def test_a_deadline_on_a_frozen_comfyui_is_kept_and_says_the_prompt_may_still_run(
    supervised: ComfyProcess,
) -> None:
    settings = supervised_settings(supervised, COMFY_UNRESPONSIVE_S="60", COMFY_PID_FILE="")
    worker = Worker(settings, keep_connection=True)
    try:
        running = asyncio.create_task(worker.handle(job("a", wf.save_image("frozen"), timeout=2)))
        await asyncio.sleep(0.3)
        supervised.freeze()
        started = time.monotonic()
        result = await asyncio.wait_for(running, 30)
        elapsed = time.monotonic() - started
        assert result["error"].startswith("TIMEOUT: the job did not finish within 2 s"), result
        assert result["details"]["prompt_state"] == "still_running"
        assert elapsed < 2.8, elapsed  # 2 s from execution start, which was before the freeze
    finally:
        supervised.thaw()
        await worker.aclose()


@pytest.fixture
async def never_lets_go(tmp_path: Path) -> AsyncIterator[tuple[ComfyProcess, Worker]]:
    """A supervised test server whose first process runs every node for 60 s ignoring interrupts
    (its restart is healthy), and a worker that restarts it 2 s after a stop that did not land."""
    first = ["--node-delay-s", "60", "--uninterruptible"]
    with supervised_test_server(tmp_path, *first, flags_after_restart=[]) as comfy:
        worker = Worker(supervised_settings(comfy, COMFY_INTERRUPT_SETTLE_S="2"), keep_connection=True)
        try:
            yield comfy, worker
        finally:
            await worker.aclose()


async def test_an_orphan_that_never_lets_go_gets_comfyui_restarted(
    never_lets_go: tuple[ComfyProcess, Worker],
) -> None:
    comfy, worker = never_lets_go
    stuck, elapsed = await timed(worker, job("a", wf.save_image("orphan"), timeout=1))
    assert stuck["details"]["prompt_state"] == "still_running", stuck
    assert elapsed < 3.0  # 1 s from execution start, plus the job's start in another process
    old_pid = comfy.pid
    after, waited = await timed(worker, job("b", wf.save_image("fresh")))
    assert "error" not in after, after
    assert comfy.starts == 2 and comfy.pid != old_pid
    assert waited >= 1.0  # it waited for the settle time and the restart, then ran
    await worker.settle()
    assert files_under(comfy.root / "output") == []


async def test_a_job_queued_behind_a_stuck_prompt_is_queued_again_after_the_restart(
    never_lets_go: tuple[ComfyProcess, Worker],
) -> None:
    comfy, worker = never_lets_go
    stuck = asyncio.create_task(worker.handle(job("a", wf.save_image("orphan"), timeout=1.5)))
    await asyncio.sleep(0.3)
    behind = asyncio.create_task(worker.handle(job("b", wf.save_image("behind"))))
    stuck_result = await stuck
    assert stuck_result["details"]["prompt_state"] == "still_running", stuck_result
    behind_result = await asyncio.wait_for(behind, 120)
    assert "error" not in behind_result, behind_result
    assert comfy.starts == 2
