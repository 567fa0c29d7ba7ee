"""scripts/start.sh in serverless mode restarts a crashed ComfyUI in place (bounded), run for real
with the stub ComfyUI and handler (testkit/stubs.py)."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from pathlib import Path

from handler.comfy.process import process_exists
from testkit.stubs import StubBox


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition never became true")


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/system_stats", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_crashed_comfyui_is_restarted_and_the_handler_keeps_running(box: StubBox) -> None:
    proc = box.start("serverless", env=box.env(STUB_HANDLER_LINGER="1"))
    box.wait_for("handler.json")
    handler = box.handler()
    assert handler["env"]["COMFY_SUPERVISED"] == "true"  # the worker waits for a restarted ComfyUI
    pid_file = Path(handler["env"]["COMFY_PID_FILE"])
    first = int(pid_file.read_text())

    os.kill(first, signal.SIGKILL)
    _wait(lambda: pid_file.exists() and pid_file.read_text().strip() not in ("", str(first)))
    second = int(pid_file.read_text())
    _wait(lambda: _answers(box.port))

    assert box.read("comfy_pid").split() == [str(first), str(second)]  # the PID file names the new one
    assert process_exists(second) and process_exists(handler["pid"])  # the worker was not replaced
    os.kill(proc.pid, signal.SIGTERM)
    result = box.finish(proc, timeout=10)
    assert result.returncode == 143
    assert (
        "ComfyUI exited unexpectedly with status 137 (killed by SIGKILL) while the handler runs"
        in result.stderr
    )
    assert "the job in flight fails with COMFY_CRASHED" in result.stderr
    assert "| Total VRAM 24000 MB (stub ComfyUI)" in result.stderr  # its log, to say why
    assert "restarting ComfyUI (restart 1 of at most 3 within 600s)" in result.stdout
    assert box.wait_for("handler_signals").strip() == "SIGTERM"
    assert not pid_file.exists()


def test_restarts_are_bounded_then_the_container_stops(box: StubBox) -> None:
    env = box.env(
        STUB_HANDLER_LINGER="1",
        STUB_COMFY_LIFETIME_S="0.3",
        STUB_COMFY_EXIT_CODE="1",
        COMFY_RESTART_MAX="2",
        COMFY_RESTART_WINDOW_S="60",
    )
    started = time.monotonic()
    result = box.run("serverless", env=env, timeout=30)

    assert result.returncode == 1
    assert time.monotonic() - started < 20
    assert len(box.read("comfy_pid").split()) == 3  # the first start and two restarts
    assert result.stdout.count("restarting ComfyUI") == 2
    assert "ComfyUI crashed 3 times within COMFY_RESTART_WINDOW_S=60s (COMFY_RESTART_MAX=2)" in result.stderr
    assert "stopping the container so RunPod replaces this worker" in result.stderr
    assert box.wait_for("handler_signals").strip() == "SIGTERM"
    assert not Path(env["COMFY_PID_FILE"]).exists()


def test_one_crash_then_the_handler_ends_normally(box: StubBox) -> None:
    env = box.env(
        STUB_COMFY_LIFETIME_S="0.3",
        STUB_COMFY_EXIT_CODE="1",
        STUB_COMFY_CRASH_ONCE="1",
        STUB_HANDLER_LIFETIME_S="2",
        STUB_HANDLER_EXIT="0",
    )
    result = box.run("serverless", env=env, timeout=30)

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("restarting ComfyUI") == 1
    assert "the handler exited with status 0; stopping ComfyUI" in result.stdout
    assert box.wait_for("comfy_signals").strip() == "SIGTERM"  # the restarted one, stopped with it


def test_the_handler_exit_status_is_the_containers(box: StubBox) -> None:
    result = box.run("serverless", env=box.env(STUB_HANDLER_EXIT="5"))

    assert result.returncode == 5
    assert box.wait_for("comfy_signals").strip() == "SIGTERM"
    assert "restarting" not in result.stdout


def test_a_bad_restart_setting_is_refused(box: StubBox) -> None:
    result = box.run("serverless", env=box.env(COMFY_RESTART_MAX="three"))

    assert result.returncode == 1
    assert "COMFY_RESTART_MAX=three is not a whole number" in result.stderr
    assert box.handler() is None


def test_a_restart_that_dies_while_starting_counts_as_the_next_crash(box: StubBox) -> None:
    env = box.env(STUB_HANDLER_LINGER="1", STUB_COMFY_FAIL_RESTARTS="1", COMFY_RESTART_MAX="2")
    proc = box.start("serverless", env=env)
    box.wait_for("handler.json")
    os.kill(int(Path(env["COMFY_PID_FILE"]).read_text()), signal.SIGKILL)
    result = box.finish(proc, timeout=20)  # never a hang waiting on a process already reaped

    assert result.returncode == 1
    assert len(box.read("comfy_pid").split()) == 3
    assert result.stderr.count("ComfyUI exited with status 3 before it was ready") == 2
    assert "ComfyUI crashed 3 times within COMFY_RESTART_WINDOW_S=600s" in result.stderr
    assert box.wait_for("handler_signals").strip() == "SIGTERM"
