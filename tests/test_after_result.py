"""Housekeeping after the result (handler/after_result.py): a worker that lives on returns a job's
result first and removes its files and history entry just after; nothing is left behind."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from comfy_testserver import ComfyTestServer
from handler.after_result import AfterResult
from handler.cleanup import JobCleanup
from handler.comfy.folders import ComfyFolders
from handler.worker import Worker

from . import workflows as wf
from .conftest import make_settings


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


async def test_a_worker_that_lives_on_returns_the_result_then_tidies_up(comfy: ComfyTestServer) -> None:
    worker = Worker(make_settings(comfy), keep_connection=True)
    try:
        result = await worker.handle({"id": "a", "input": {"workflow": wf.save_image("tidy")}})
        assert "error" not in result, result
        # The result did not wait for the housekeeping: the prompt's entry and file are still there.
        assert result["prompt_id"] in comfy.history()
        assert files_under(comfy.root / "output") == [result["images"][0]["filename"]]
        await worker.settle()
        assert comfy.history() == {} and files_under(comfy.root / "output") == []
    finally:
        await worker.aclose()


async def test_a_worker_about_to_be_replaced_tidies_up_before_its_result(comfy: ComfyTestServer) -> None:
    # refresh_worker: RunPod stops the worker once the result is out, so nothing may wait until after.
    worker = Worker(make_settings(comfy, REFRESH_WORKER="true"), keep_connection=True)
    try:
        result = await worker.handle({"id": "a", "input": {"workflow": wf.save_image("last")}})
        assert "error" not in result and result["refresh_worker"] is True, result
        assert comfy.history() == {} and files_under(comfy.root / "output") == []
    finally:
        await worker.aclose()


async def test_closing_the_worker_finishes_every_pending_housekeeping(comfy: ComfyTestServer) -> None:
    worker = Worker(make_settings(comfy), keep_connection=True)
    results = await asyncio.gather(
        *(worker.handle({"id": str(n), "input": {"workflow": wf.save_image(f"n{n}")}}) for n in range(3))
    )
    assert all("error" not in r for r in results), results
    await worker.aclose()
    assert comfy.history() == {} and files_under(comfy.root / "output") == []


def test_a_worker_stopping_while_comfyui_ignores_the_history_delete_still_removes_the_files(
    tmp_path: Path,
) -> None:
    (tmp_path / "output").mkdir()
    output = tmp_path / "output" / "result_00001_.png"
    output.write_bytes(b"\x89PNG")
    after = AfterResult()

    async def job_returns() -> None:
        cleanup = JobCleanup(ComfyFolders(tmp_path), enabled=True)
        cleanup.add_outputs([("output", output.name)])
        after.schedule(cleanup, forget=asyncio.Event().wait)  # ComfyUI never answers
        await asyncio.sleep(0.05)

    asyncio.run(job_returns())  # the loop ends (SIGTERM) with the history delete still waiting
    assert not output.exists()


def test_the_earlier_jobs_cleanup_leaves_a_file_the_next_prompt_wrote_again(tmp_path: Path) -> None:
    (tmp_path / "output").mkdir()
    end_ns = time.time_ns() - 10_000_000_000  # the earlier prompt ended 10 s ago
    own = tmp_path / "output" / "result_00001_.png"
    fixed = tmp_path / "output" / "fixed.png"  # a node without a counter: the next prompt rewrote it
    for path, written_ns in ((own, end_ns - 1_000_000_000), (fixed, end_ns + 1_000_000_000)):
        path.write_bytes(b"\x89PNG")
        os.utime(path, ns=(written_ns, written_ns))
    cleanup = JobCleanup(ComfyFolders(tmp_path), enabled=True)
    cleanup.add_outputs([("output", own.name), ("output", fixed.name)], written_by_ns=end_ns)
    cleanup.run()
    assert not own.exists()
    assert fixed.exists()  # the next job's output, still to be read and then removed by that job
