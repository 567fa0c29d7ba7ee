"""``python -m handler`` as a real process inside the unmodified runpod SDK.

Two ways in, as on RunPod: the SDK's own local API (``--rp_serve_api``: /runsync, /run + /status),
and the production worker loop talking to a control-plane stand-in (job-take, job-stop for cancel,
job-done for progress and results).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from comfy_testserver import ComfyTestServer

from . import workflows as wf
from .conftest import b64, free_port, png_bytes
from .runpod_standin import ControlPlane

REPO = Path(__file__).resolve().parents[1]


def worker_env(comfy: ComfyTestServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "COMFY"))}
    env.update(
        {
            "COMFY_HOST": comfy.address,
            "COMFYUI_PATH": str(comfy.root),
            "COMFY_READY_TIMEOUT_S": "10",
            "COMFY_WS_IDLE_S": "0.5",
            "COMFY_PROGRESS_INTERVAL_S": "0.2",
            "WEBSOCKET_RECONNECT_DELAY_S": "0.1",  # a crashed ComfyUI is given up on in 0.5 s, not 5 s
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


class Process:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._file = log.open("wb")
        self.proc = subprocess.Popen(
            args, env=env, cwd=REPO, stdout=self._file, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._file.close()


def http_json(method: str, url: str, body: Any = None, timeout: float = 30) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def wait_for_http(url: str, process: Process, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise AssertionError(f"worker exited early:\n{process.output()}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered:\n{process.output()}")


@pytest.fixture(scope="module")
def serve_api(shared_comfy: ComfyTestServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One handler process serving the SDK's local API per module and profile (its tests only
    send jobs and read their own results)."""
    port = free_port()
    process = Process(
        [sys.executable, "-m", "handler", "--rp_serve_api", "--rp_api_port", str(port)],
        worker_env(shared_comfy),
        tmp_path_factory.mktemp("serve-api") / "serve.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/docs", process)
        yield base
    finally:
        process.stop()


def test_runsync_returns_images_through_the_sdk_local_api(serve_api: str) -> None:
    reply = http_json("POST", f"{serve_api}/runsync", {"input": {"workflow": wf.save_image("sync")}})
    assert reply["status"] == "COMPLETED", reply
    [image] = reply["output"]["images"]
    assert (
        image["filename"].startswith("sync_")
        and image["type"] == "base64"
        and image["mime_type"] == "image/png"
    )


def test_run_then_status(serve_api: str) -> None:
    submitted = http_json("POST", f"{serve_api}/run", {"input": {"workflow": wf.every_output_kind()}})
    # The SDK's local server runs the job when /status is first asked (a POST there).
    status = http_json("POST", f"{serve_api}/status/{submitted['id']}")
    assert status["status"] == "COMPLETED", status
    assert {f["mime_type"] for f in status["output"]["files"]} >= {"video/mp4", "application/ply"}


def test_runsync_error_is_one_line_with_code(serve_api: str) -> None:
    reply = http_json("POST", f"{serve_api}/runsync", {"input": {"workflow": {"nodes": [], "links": []}}})
    assert reply["status"] == "FAILED"
    assert reply["error"].startswith("INVALID_INPUT: input.workflow is a UI-format export")


@pytest.fixture
def plane() -> Iterator[ControlPlane]:
    control = ControlPlane().start()
    yield control
    control.close()


def start_worker(plane: ControlPlane, comfy: ComfyTestServer, tmp_path: Path, **env: str) -> Process:
    return Process(
        [sys.executable, "-m", "handler"],
        worker_env(comfy, **plane.worker_env(), **env),
        tmp_path / "worker.log",
    )


def test_worker_loop_reports_progress_and_result(
    plane: ControlPlane, comfy: ComfyTestServer, tmp_path: Path
) -> None:
    comfy.behaviour.step_delay_s = 0.1
    worker = start_worker(plane, comfy, tmp_path)
    try:
        job_id = plane.submit({"workflow": wf.sampler(steps=8)})
        body = plane.wait_result(job_id)
        assert "error" not in body, (body, worker.output())
        assert body["output"]["images"][0]["mime_type"] == "image/png"
        progress = plane.jobs[job_id].progress
        assert any(p.get("node_class") == "KSampler" and p.get("max_steps") == 8 for p in progress), progress
        assert 3 <= len(progress) <= 20  # throttled to COMFY_PROGRESS_INTERVAL_S, not one per message
        assert "iVBORw0KGgo" not in worker.output()  # the SDK's DEBUG dump of results is off by default
    finally:
        worker.stop()


def test_worker_loop_error_keeps_details_and_refreshes_on_crash(
    plane: ControlPlane, comfy: ComfyTestServer, tmp_path: Path
) -> None:
    worker = start_worker(plane, comfy, tmp_path)
    try:
        invalid = plane.submit({"workflow": wf.sampler(ckpt="missing.safetensors")})
        body = plane.wait_result(invalid)
        assert body["error"].startswith("WORKFLOW_INVALID: ")
        assert body["output"]["details"]["problems"]
        assert "stopPod" not in body
        comfy.behaviour.kill_on_execute = True
        crashed = plane.submit({"workflow": wf.save_image()})
        body = plane.wait_result(crashed)
        assert body["error"].startswith("COMFY_CRASHED: ")
        assert body["stopPod"] is True
    finally:
        worker.stop()


def test_stop_signal_cancels_the_prompt_and_the_worker_serves_the_next_job(
    plane: ControlPlane, comfy: ComfyTestServer, tmp_path: Path
) -> None:
    comfy.behaviour.step_delay_s = 0.3
    worker = start_worker(plane, comfy, tmp_path)
    try:
        slow = plane.submit({"workflow": wf.sampler(steps=100)})
        plane.wait_taken(slow)
        deadline = time.monotonic() + 20
        while not comfy.queue_state()[0]:
            assert time.monotonic() < deadline, worker.output()
            time.sleep(0.05)
        plane.stop(slow)
        deadline = time.monotonic() + 10
        while comfy.queue_state() != ([], []):
            assert time.monotonic() < deadline, worker.output()
            time.sleep(0.05)
        assert comfy.executions[-1].outcome == "interrupted"
        comfy.behaviour.step_delay_s = 0.0
        follow = plane.submit({"workflow": wf.save_image("after-cancel")})
        body = plane.wait_result(follow)
        assert "error" not in body, (body, worker.output())
    finally:
        worker.stop()


def test_worker_loop_holds_two_jobs_and_queues_the_next_behind_the_running_one(
    plane: ControlPlane, comfy: ComfyTestServer, tmp_path: Path
) -> None:
    comfy.behaviour.step_delay_s = 0.2
    worker = start_worker(plane, comfy, tmp_path, COMFY_PIPELINE_DEPTH="2")
    try:
        first = plane.submit({"workflow": wf.sampler(steps=10, prefix="first")})
        deadline = time.monotonic() + 20
        while comfy.queue_state()[0] == []:
            assert time.monotonic() < deadline, worker.output()
            time.sleep(0.02)
        second = plane.submit({"workflow": wf.save_image("second")})
        while comfy.queue_state()[1] == []:  # the second prompt waits in ComfyUI behind the first
            assert time.monotonic() < deadline, worker.output()
            time.sleep(0.02)
        assert plane.jobs[first].result is None  # taken and queued while the first one runs
        bodies = [plane.wait_result(first), plane.wait_result(second)]
        assert all("error" not in body for body in bodies), (bodies, worker.output())
        a, b = comfy.executions[-2:]
        assert b.started_at - a.finished_at < 0.5  # ComfyUI started the second at once
        assert bodies[1]["output"]["timings"]["queue_wait_ms"] > 300
    finally:
        worker.stop()


def test_a_worker_killed_mid_job_leaves_nothing_once_the_next_worker_process_starts(
    plane: ControlPlane, comfy: ComfyTestServer, tmp_path: Path
) -> None:
    def upload_job(name: str) -> dict[str, Any]:
        # An uploaded image inverted and saved, beside a long sampler run (100 steps of 0.2 s).
        workflow = {
            **wf.sampler(steps=100, prefix=name),
            **{f"1{k}": n for k, n in wf.invert_upload(name).items()},
        }
        workflow["12"]["inputs"]["image"] = ["11", 0]
        workflow["13"]["inputs"]["images"] = ["12", 0]
        return {"workflow": workflow, "images": [{"name": name, "image": b64(png_bytes())}]}

    def until(condition: Any, what: str, process: Process, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, (what, process.output())
            time.sleep(0.05)

    comfy.behaviour.step_delay_s = 0.2
    first = start_worker(plane, comfy, tmp_path)  # holds two jobs: one runs, one is queued behind it
    running, waiting = plane.submit(upload_job("running.png")), plane.submit(upload_job("waiting.png"))
    until(lambda: [len(q) for q in comfy.queue_state()] == [1, 1], "both prompts queued", first)
    assert len(list((comfy.root / "input").iterdir())) == 2
    os.killpg(first.proc.pid, signal.SIGKILL)  # OOM-killed, say: no cleanup of its own
    first.proc.wait(10)
    first.stop()

    (tmp_path / "second").mkdir()
    second = start_worker(plane, comfy, tmp_path / "second")
    try:
        body = plane.wait_result(plane.submit({"workflow": wf.save_image("next")}))
        assert "error" not in body, (body, second.output())
        # The dead worker's running prompt is stopped, its queued one removed; the inputs both
        # jobs uploaded, the files they wrote and their history entries go too.
        until(lambda: list((comfy.root / "input").iterdir()) == [], "the dead worker's inputs gone", second)
        until(lambda: list((comfy.root / "output").rglob("*.*")) == [], "no outputs left", second)
        outcomes = [e.outcome for e in comfy.executions]
        assert outcomes == ["interrupted", "success"], outcomes
        until(lambda: comfy.history() == {}, "no history entries left", second)
        assert plane.jobs[running].taken and plane.jobs[waiting].taken
    finally:
        second.stop()
