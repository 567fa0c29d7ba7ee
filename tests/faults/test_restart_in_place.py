"""ComfyUI restarted in place under start.sh's supervision (COMFY_SUPERVISED): the job in flight
fails with COMFY_CRASHED without asking RunPod for a new worker, and the next job waits for the
restarted ComfyUI instead of failing. start.sh's side: tests/scripts/test_start_supervise.py."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from comfy_testserver import ComfyTestServer
from handler.worker import Worker
from testkit.comfy_process import ComfyProcess
from testkit.faults import FAULTS, fault_workflow, run_fault, worker_settings

from ..conftest import make_settings

pytestmark = pytest.mark.timeout(400)  # a real ComfyUI boots twice here


async def test_crash_fails_the_job_in_flight_and_the_next_job_waits_for_the_restart(
    comfy_process: ComfyProcess,
) -> None:
    env = {"COMFY_SUPERVISED": "true", "COMFY_HTTP_TIMEOUT_S": "3", "COMFY_READY_TIMEOUT_S": "300"}
    report = await run_fault(FAULTS["kill -9 mid-job"], comfy_process, deadline_s=60, env=env)
    assert report.code == "COMFY_CRASHED", report
    assert "start.sh is restarting it" in report.message
    assert report.refresh_worker is False  # restarted in place: RunPod keeps this worker
    # A ComfyUI found dead is not "crashed at start-up" while start.sh brings it back: wait.
    restarter = threading.Timer(1.0, comfy_process.restart, kwargs={"timeout_s": 300.0})
    restarter.start()
    try:
        started = time.monotonic()
        result = await Worker(worker_settings(comfy_process, **env)).handle(
            {"id": "next", "input": {"workflow": fault_workflow(seconds=0.1)}}
        )
    finally:
        restarter.join()
    assert "error" not in result, result
    assert time.monotonic() - started >= 1.0
    assert result["timings"]["ready_ms"] >= 900


async def test_unsupervised_crash_still_asks_for_a_new_worker(comfy_process: ComfyProcess) -> None:
    report = await run_fault(FAULTS["kill -9 mid-job"], comfy_process, deadline_s=60, env={})
    assert report.code == "COMFY_CRASHED" and report.refresh_worker is True
    assert "This worker will be replaced" in report.message
    assert report.next_job == "COMFY_CRASHED"


async def test_a_prompt_lost_to_a_restart_is_reported_as_a_crash(
    comfy: ComfyTestServer, tmp_path: Path
) -> None:
    # ComfyUI came back so fast that its new process answers: the prompt vanished, the PID changed.
    pid_file = tmp_path / "comfy.pid"
    first = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    second = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pid_file.write_text(str(first.pid))
        settings = make_settings(comfy, COMFY_SUPERVISED="true", COMFY_PID_FILE=str(pid_file))
        task = asyncio.create_task(
            Worker(settings).handle({"id": "r", "input": {"workflow": fault_workflow()}})
        )
        while not comfy.queue_state()[0]:
            await asyncio.sleep(0.02)
        pid_file.write_text(str(second.pid))
        request = urllib.request.Request(f"{comfy.url}/interrupt", data=b"", method="POST")
        await asyncio.to_thread(urllib.request.urlopen, request)
        result = await task
    finally:
        for proc in (first, second):
            proc.kill()
            proc.wait()
    assert result["error"].startswith("COMFY_CRASHED: ComfyUI's process died while this job was"), result
    assert "refresh_worker" not in result


async def test_supervised_readiness_waits_for_a_new_process(comfy: ComfyTestServer, tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pid_file = tmp_path / "comfy.pid"
    pid_file.write_text(str(dead.pid))
    settings = make_settings(comfy, COMFY_SUPERVISED="true", COMFY_PID_FILE=str(pid_file))
    threading.Timer(0.5, lambda: pid_file.write_text(str(os.getpid()))).start()
    result = await Worker(settings).handle({"id": "w", "input": {"workflow": fault_workflow(seconds=0)}})
    assert "error" not in result, result
    assert result["timings"]["ready_ms"] >= 400
