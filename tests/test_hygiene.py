"""What a job leaves in ComfyUI once it ended, whatever the outcome, end to end with the test server:
no prompt in the queue or the history, no API-node log holding the key, no server path in an error,
and ComfyUI's memory freed after an out-of-memory error (issue 14)."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from comfy_testserver import ComfyTestServer
from handler.server_paths import SERVER_PLACEHOLDER
from handler.worker import Worker
from testkit.faults import fault_workflow

from .conftest import make_settings

KEY = "comfy-org-key-5f0c2a9e41"


def queue_text(comfy: ComfyTestServer) -> str:
    with urllib.request.urlopen(f"{comfy.url}/queue", timeout=5) as response:
        return response.read().decode()


def assert_gone(comfy: ComfyTestServer, result: dict[str, Any]) -> None:
    """The job's prompt is in neither ComfyUI's queue nor its history, and /queue shows no key."""
    prompt_id = (result.get("details") or {}).get("prompt_id") or result.get("prompt_id")
    assert prompt_id, result
    running, pending = comfy.queue_state()
    assert prompt_id not in running and prompt_id not in pending
    assert prompt_id not in comfy.history()
    assert KEY not in queue_text(comfy)


def job(workflow: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "h", "input": {"workflow": workflow, "comfy_org_api_key": KEY, **extra}}


async def test_success_leaves_no_prompt_behind(comfy: ComfyTestServer) -> None:
    result = await Worker(make_settings(comfy)).handle(job(fault_workflow(seconds=0)))
    assert "error" not in result, result
    assert_gone(comfy, result)


async def test_failed_prompt_is_deleted_from_history(comfy: ComfyTestServer) -> None:
    result = await Worker(make_settings(comfy)).handle(job(fault_workflow("FaultOutOfMemory")))
    assert result["error"].startswith("OUT_OF_MEMORY"), result
    assert_gone(comfy, result)


async def test_interrupted_prompt_is_deleted_from_history(comfy: ComfyTestServer) -> None:
    worker = Worker(make_settings(comfy))
    task = asyncio.create_task(worker.handle(job(fault_workflow(seconds=5))))
    while not comfy.queue_state()[0]:
        await asyncio.sleep(0.02)
    await asyncio.to_thread(
        urllib.request.urlopen, urllib.request.Request(f"{comfy.url}/interrupt", data=b"", method="POST")
    )
    result = await task
    assert result["error"].startswith("INTERRUPTED"), result
    assert_gone(comfy, result)


async def test_timed_out_prompt_is_stopped_and_deleted(comfy: ComfyTestServer) -> None:
    result = await Worker(make_settings(comfy)).handle(job(fault_workflow(seconds=10), timeout=1))
    assert result["error"].startswith("TIMEOUT"), result
    assert_gone(comfy, result)


async def test_pending_prompt_of_a_timed_out_job_leaves_the_queue(comfy: ComfyTestServer) -> None:
    # Another client's long prompt holds ComfyUI: ours waits, pending, with its key, until the deadline.
    blocker = {"prompt": fault_workflow(seconds=3, prefix="other")}
    request = urllib.request.Request(
        f"{comfy.url}/prompt", data=json.dumps(blocker).encode(), headers={"Content-Type": "application/json"}
    )
    await asyncio.to_thread(urllib.request.urlopen, request)
    # The queue wait has its own bound (COMFY_QUEUE_WAIT_TIMEOUT_S); the job's timeout counts from
    # execution start (docs/throughput.md).
    settings = make_settings(comfy, COMFY_QUEUE_WAIT_TIMEOUT_S="1")
    result = await Worker(settings).handle(job(fault_workflow(seconds=0), timeout=1))
    assert result["error"].startswith("TIMEOUT: the job's prompt waited 1 s in ComfyUI's queue"), result
    assert result["details"]["prompt_state"] == "removed"
    assert_gone(comfy, result)


@pytest.mark.parametrize("cleanup", ["true", "false"])
async def test_api_node_logs_written_during_the_job_are_removed(comfy: ComfyTestServer, cleanup: str) -> None:
    logs = comfy.root / "temp" / "api_logs"
    logs.mkdir(parents=True)
    older = logs / "20250101_000000_000000_earlier_0123456789.log"
    older.write_text("a log from before this job")
    result = await Worker(make_settings(comfy, COMFY_CLEANUP=cleanup)).handle(
        job(fault_workflow("FaultApiLog"))
    )
    assert "error" not in result, result
    assert older.read_text() == "a log from before this job"  # not this job's: left alone
    assert sorted(p.name for p in logs.iterdir()) == [older.name]
    assert not [p for p in comfy.root.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]


async def test_api_node_log_of_a_failed_job_is_removed(comfy: ComfyTestServer) -> None:
    workflow = fault_workflow("FaultApiLog")
    workflow["4"] = {"class_type": "FaultOutOfMemory", "inputs": {"image": ["2", 0]}}
    workflow["5"] = {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "x"}}
    del workflow["3"]
    result = await Worker(make_settings(comfy)).handle(job(workflow))
    assert result["error"].startswith("OUT_OF_MEMORY"), result
    logs = comfy.root / "temp" / "api_logs"
    assert logs.is_dir() and not list(logs.iterdir())


async def test_out_of_memory_frees_comfy_memory_and_the_next_job_runs(comfy: ComfyTestServer) -> None:
    worker = Worker(make_settings(comfy))
    result = await worker.handle(job(fault_workflow("FaultOutOfMemory")))
    assert result["error"].startswith("OUT_OF_MEMORY: node 2 (FaultOutOfMemory) ran out of memory"), result
    assert "CUDA out of memory" in result["error"]
    assert "lower the resolution, batch size" in result["error"]
    assert result["details"]["exception_type"] == "torch.OutOfMemoryError"
    assert "refresh_worker" not in result
    frees = [r for r in comfy.requests if r.method == "POST" and r.path == "/free"]
    assert [r.json for r in frees] == [{"unload_models": True, "free_memory": True}]
    after = await worker.handle(job(fault_workflow(seconds=0)))
    assert "error" not in after, after


async def test_other_execution_errors_do_not_free_memory(comfy: ComfyTestServer, tmp_path: Path) -> None:
    (comfy.root / "input" / "broken.png").write_bytes(b"not an image")
    workflow = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "broken.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "b"}},
    }
    result = await Worker(make_settings(comfy)).handle(job(workflow))
    assert result["error"].startswith("EXECUTION_FAILED"), result
    assert not [r for r in comfy.requests if r.path == "/free"]


async def test_error_results_carry_no_server_paths_outside_comfyui(comfy: ComfyTestServer) -> None:
    repo = str(Path(__file__).resolve().parents[1])
    result = await Worker(make_settings(comfy)).handle(job(fault_workflow("FaultOutOfMemory")))
    text = json.dumps(result)
    # The test server's traceback names its own source files, outside ComfyUI's folder.
    assert repo not in text
    frames = result["details"]["traceback"]
    assert frames and all(SERVER_PLACEHOLDER in frame or "<python>" in frame for frame in frames), frames
    absolute = re.findall(r'(?<![\w.:/<>-])/[^\s"\']+/[^\s"\']+', text)
    assert all(path.startswith(str(comfy.root)) for path in absolute), absolute
