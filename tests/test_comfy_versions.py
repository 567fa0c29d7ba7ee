"""The worker against both ComfyUI protocol profiles (comfy_testserver/PROFILES.md), over real sockets.

Against `current` (today's ComfyUI) the worker uses the newer mechanisms: job status and cancel
through /api/jobs, the loading activity of progress_state, output metadata, the sensitive slot for
the Comfy.org key. Against `0.3.64` it does what it always did. Every test runs once per profile
(the `comfy` fixture) and says what each one must show.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from typing import Any

import pytest

from comfy_testserver import ComfyTestServer
from comfy_testserver.records import RecordedRequest
from handler.comfy.capabilities import PROBE_JOB_ID
from handler.worker import Worker

from . import workflows as wf
from .conftest import Progress, make_settings


def http(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    return json.loads(text) if text else None


def calls(comfy: ComfyTestServer, method: str, prefix: str) -> list[str]:
    """Paths (without /api) the server received with this method and prefix."""
    return [r.path for r in comfy.requests if r.method == method and r.path.startswith(prefix)]


def after_queueing(comfy: ComfyTestServer) -> list[RecordedRequest]:
    """The requests the server received after the last POST /prompt (before it, the worker's
    start-up check for a dead worker's leftovers reads /queue once per connection)."""
    queued = max(i for i, r in enumerate(comfy.requests) if r.method == "POST" and r.path == "/prompt")
    return comfy.requests[queued + 1 :]


async def wait_until(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


# -- detection ------------------------------------------------------------------------------------


async def test_capabilities_are_detected_once_per_connection(
    comfy: ComfyTestServer, comfy_profile: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="handler.comfy.connection")
    worker = Worker(make_settings(comfy), keep_connection=True)
    try:
        for index in range(2):
            result = await worker.handle(
                {"id": f"d{index}", "input": {"workflow": wf.save_image(f"d{index}")}}
            )
            assert "error" not in result, result
    finally:
        await worker.aclose()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ComfyUI ")]
    assert calls(comfy, "GET", f"/jobs/{PROBE_JOB_ID}") == [f"/jobs/{PROBE_JOB_ID}"]  # once, not per job
    if comfy_profile == "current":
        assert lines == ["ComfyUI 0.38.1: jobs API, jobs cancel, sensitive key slot"]
        assert calls(comfy, "POST", "/jobs/") == [f"/jobs/{PROBE_JOB_ID}/cancel"]
    else:
        assert lines == ["ComfyUI 0.3.64: the 0.3.64 protocol"]
        assert calls(comfy, "POST", "/jobs/") == []  # no POST to a route 0.3.64 does not have


# -- job status -----------------------------------------------------------------------------------


async def test_a_silent_socket_is_followed_through_the_jobs_api_or_history_and_queue(
    worker: Worker, comfy: ComfyTestServer, comfy_profile: str
) -> None:
    comfy.behaviour.ws_silent = True  # nothing but the first status frame: the worker must ask
    comfy.behaviour.node_delay_s = 0.4
    result = await worker.handle({"id": "s", "input": {"workflow": wf.save_image("silent")}})
    assert "error" not in result, result
    prompt_id = result["prompt_id"]
    if comfy_profile == "current":
        assert calls(comfy, "GET", f"/jobs/{prompt_id}")  # "still running" from one call
        # (/history gives the outputs at the end; GET /queue is liveness's probe on silence)
    else:
        assert calls(comfy, "GET", f"/jobs/{prompt_id}") == []
        assert calls(comfy, "GET", "/queue")  # /history says {} while running: /queue tells


async def test_a_pending_prompt_deleted_from_outside_ends_the_job_as_interrupted(
    worker: Worker, comfy: ComfyTestServer, comfy_profile: str
) -> None:
    comfy.behaviour.node_delay_s = 1.0
    blocker = http(f"{comfy.url}/prompt", {"prompt": wf.save_image("blocker")})["prompt_id"]
    await wait_until(lambda: comfy.queue_state()[0] == [blocker])
    task = asyncio.create_task(worker.handle({"id": "gone", "input": {"workflow": wf.save_image("gone")}}))
    await wait_until(lambda: len(comfy.queue_state()[1]) == 1)
    [ours] = comfy.queue_state()[1]
    assert ours != blocker
    http(f"{comfy.url}/queue", {"delete": [ours]})  # someone clears it in ComfyUI's UI
    result = await asyncio.wait_for(task, 10)
    assert result["error"].startswith("INTERRUPTED:"), result
    if comfy_profile == "current":
        assert "ComfyUI no longer knows the prompt" in result["error"]
    else:
        assert "disappeared from ComfyUI's queue" in result["error"]


# -- cancel ---------------------------------------------------------------------------------------


async def test_a_timeout_cancels_through_the_jobs_route_where_it_exists(
    worker: Worker, comfy: ComfyTestServer, comfy_profile: str
) -> None:
    comfy.behaviour.step_delay_s = 0.3
    result = await worker.handle({"id": "slow", "input": {"workflow": wf.sampler(steps=50), "timeout": 1}})
    assert result["error"].startswith("TIMEOUT: the job did not finish within 1 s"), result
    assert comfy.queue_state() == ([], [])
    assert comfy.executions[-1].outcome == "interrupted"
    prompt_id = result["details"]["prompt_id"]
    if comfy_profile == "current":
        assert calls(comfy, "POST", f"/jobs/{prompt_id}/cancel")
        assert calls(comfy, "POST", "/interrupt") == []
    else:
        assert calls(comfy, "POST", "/interrupt") and calls(comfy, "POST", "/jobs/") == []


async def test_a_cancelled_job_leaves_no_pending_prompt_behind(
    worker: Worker, comfy: ComfyTestServer, comfy_profile: str
) -> None:
    comfy.behaviour.node_delay_s = 1.0
    blocker = http(f"{comfy.url}/prompt", {"prompt": wf.save_image("blocker")})["prompt_id"]
    await wait_until(lambda: comfy.queue_state()[0] == [blocker])
    task = asyncio.create_task(worker.handle({"id": "c", "input": {"workflow": wf.save_image("waits")}}))
    await wait_until(lambda: len(comfy.queue_state()[1]) == 1)
    [ours] = comfy.queue_state()[1]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ours not in comfy.queue_state()[1]
    if comfy_profile == "current":
        assert calls(comfy, "POST", f"/jobs/{ours}/cancel")
        assert not [r for r in comfy.requests if r.path == "/queue" and r.method == "POST"]
    else:
        assert [r.json for r in comfy.requests if r.path == "/queue" and r.method == "POST"] == [
            {"delete": [ours]}
        ]


async def test_a_failed_jobs_prompt_is_released_through_the_jobs_api_where_it_exists(
    worker: Worker, comfy: ComfyTestServer, comfy_profile: str
) -> None:
    comfy.behaviour.out_of_memory_class = "KSampler"
    failed = await worker.handle({"id": "oom", "input": {"workflow": wf.sampler(steps=2)}})
    assert failed["error"].startswith("OUT_OF_MEMORY"), failed
    prompt_id = failed["details"]["prompt_id"]
    assert prompt_id not in comfy.history()  # released: its entry (and workflow) is gone
    after = [(r.method, r.path) for r in after_queueing(comfy)]
    assert ("POST", "/history") in after
    if comfy_profile == "current":
        assert ("GET", "/queue") not in after  # the job record tells it ended: no /queue listing
    else:
        assert ("GET", "/queue") in after


async def test_liveness_probes_the_jobs_api_not_the_queue_where_it_exists(
    worker: Worker, comfy: ComfyTestServer, comfy_profile: str
) -> None:
    comfy.behaviour.ws_silent = True  # silence: liveness probes before each status read
    comfy.behaviour.node_delay_s = 1.0
    result = await worker.handle({"id": "p", "input": {"workflow": wf.save_image("probed")}})
    assert "error" not in result, result
    after = after_queueing(comfy)
    running_probes = [r for r in after if r.path == "/jobs" and r.query.get("status") == "in_progress"]
    queue_reads = [r for r in after if r.method == "GET" and r.path == "/queue"]
    if comfy_profile == "current":
        assert running_probes and queue_reads == []
        assert all(r.query.get("limit") == "1" for r in running_probes)  # one record, whatever is queued
    else:
        assert queue_reads and running_probes == []


# -- progress -------------------------------------------------------------------------------------


def _running(updates: list[dict[str, Any]], node: str) -> list[dict[str, Any]]:
    return [u for u in updates if u["stage"] == "running" and u.get("node") == node]


async def test_progress_names_the_model_being_loaded_and_moves_while_it_loads(
    worker: Worker, comfy: ComfyTestServer, progress: Progress
) -> None:
    comfy.behaviour.model_load_delay_s = 2.0  # the loader reads tiny.safetensors for 2 s
    comfy.behaviour.loading_activity = True  # current: ComfyUI says "loading" (PR #16202)
    result = await worker.handle({"id": "load", "input": {"workflow": wf.sampler(steps=2)}})
    assert "error" not in result, result
    loading = [u for u in _running(progress.updates, "1") if u.get("activity")]
    assert {u["activity"] for u in loading} == {"loading model tiny.safetensors"}
    percents = [u["percent"] for u in loading]
    assert len(set(percents)) >= 3 and percents == sorted(percents)  # moves during the 2 s load
    elapsed = [u["node_elapsed_s"] for u in loading]
    assert elapsed == sorted(elapsed) and elapsed[-1] >= 1.5
    every = [u["percent"] for u in progress.updates if "percent" in u]
    assert every == sorted(every) and every[-1] < 100  # never backwards; 100 is the job's end


async def test_after_an_out_of_memory_error_the_reload_shows_and_the_bar_moves(
    worker: Worker, comfy: ComfyTestServer, progress: Progress
) -> None:
    comfy.behaviour.out_of_memory_class = "KSampler"  # fails once; ComfyUI unloads every model
    failed = await worker.handle({"id": "oom", "input": {"workflow": wf.sampler(steps=2)}})
    assert failed["error"].startswith("OUT_OF_MEMORY"), failed
    # The worker freed ComfyUI's memory (POST /free resets its caches too): the loader runs again.
    assert any(r.path == "/free" for r in comfy.requests)
    comfy.behaviour.model_load_delay_s = 1.5
    comfy.behaviour.loading_activity = True
    progress.updates.clear()
    result = await worker.handle({"id": "again", "input": {"workflow": wf.sampler(steps=2)}})
    assert "error" not in result, result
    loader = _running(progress.updates, "1")
    assert "loading model tiny.safetensors" in {u.get("activity") for u in loader}
    percents = [u["percent"] for u in loader]
    assert len(set(percents)) >= 2 and percents == sorted(percents)


async def test_the_percentage_moves_between_slow_sampler_steps(
    worker: Worker, comfy: ComfyTestServer, progress: Progress
) -> None:
    comfy.behaviour.step_delay_s = 1.0  # a slow GPU: a second per step, no news in between
    result = await worker.handle({"id": "steps", "input": {"workflow": wf.sampler(steps=3)}})
    assert "error" not in result, result
    sampler = _running(progress.updates, "5")
    for step in (1, 2):
        percents = [u["percent"] for u in sampler if u.get("step") == step]
        assert len(set(percents)) >= 2 and percents == sorted(percents), (step, percents)
    every = [u["percent"] for u in progress.updates if "percent" in u]
    assert every == sorted(every)


# -- outputs and keys -----------------------------------------------------------------------------


async def test_output_metadata_reaches_the_result_entry_where_comfyui_gives_it(
    worker: Worker, comfy_profile: str
) -> None:
    result = await worker.handle({"id": "m", "input": {"workflow": wf.save_image("meta")}})
    assert "error" not in result, result
    [image] = result["images"]
    shape = {"filename", "type", "data", "mime_type", "size_bytes", "node_id", "subfolder"}
    if comfy_profile == "current":
        assert set(image) == shape | {"metadata"}
        assert image["metadata"] == {"kind": "image", "width": 16, "height": 16}
    else:
        assert set(image) == shape  # today's entry, unchanged


async def test_the_comfy_org_key_is_out_of_queue_where_comfyui_has_the_sensitive_slot(
    worker: Worker, comfy: ComfyTestServer, comfy_profile: str, caplog: pytest.LogCaptureFixture
) -> None:
    comfy.behaviour.node_delay_s = 0.5
    key = "comfyui-0123456789abcdef"
    job = {"id": "k", "input": {"workflow": wf.save_image("key"), "comfy_org_api_key": key}}
    task = asyncio.create_task(worker.handle(job))
    await wait_until(lambda: any(comfy.queue_state()))
    shown = json.dumps(http(f"{comfy.url}/queue"))
    result = await task
    assert "error" not in result, result
    [queued] = [r.json for r in comfy.requests if r.path == "/prompt" and r.method == "POST"]
    assert (
        isinstance(queued, dict) and queued["extra_data"]["api_key_comfy_org"] == key
    )  # the name both versions read
    warned = [r.getMessage() for r in caplog.records if "Comfy.org key" in r.getMessage()]
    if comfy_profile == "current":
        assert key not in shown and warned == []
    else:
        assert key in shown  # 0.3.64 shows it to anyone who reads /queue: the log says so
        assert len(warned) == 1 and key not in warned[0] and "GET /queue" in warned[0]
