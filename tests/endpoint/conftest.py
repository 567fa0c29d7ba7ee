"""Fixtures for the endpoint tests: one ComfyUI test server and one local endpoint per module."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from comfy_testserver import Behaviour, ComfyTestServer
from comfy_worker.client import EndpointClient

from ..conftest import PROFILES_UNDER_TEST

REPO = Path(__file__).resolve().parents[2]
KEY = "local-test-key"


@pytest.fixture(scope="module", params=PROFILES_UNDER_TEST)
def comfy(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ComfyTestServer]:
    root = tmp_path_factory.mktemp("comfyui")
    with ComfyTestServer(root=root, behaviour=Behaviour(), profile=request.param) as server:
        (root / "models" / "checkpoints" / "tiny.safetensors").write_bytes(b"\0")
        (root / "models" / "sharp").mkdir(parents=True)
        (root / "models" / "sharp" / "sharp_2572gikvuh.pt").write_bytes(b"\0")
        yield server


@pytest.fixture(autouse=True)
def calm_comfy(request: pytest.FixtureRequest) -> Iterator[None]:
    """Reset the module's test server around each test that uses it. Only those: a test that needs
    no ComfyUI (the client, job table, hardening and SDK-protocol tests) is not run once per profile."""
    if "comfy" not in request.fixturenames:
        yield
        return
    comfy: ComfyTestServer = request.getfixturevalue("comfy")
    comfy.behaviour.step_delay_s = 0.0
    yield
    comfy.behaviour.step_delay_s = 0.0


class Endpoint:
    def __init__(
        self,
        comfy: ComfyTestServer,
        log: Path,
        *extra_args: str,
        workers: int = 2,
        env: dict[str, str] | None = None,
    ) -> None:
        process_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "COMFY", "BUCKET_"))
        }
        process_env.update(
            {
                "COMFY_WS_IDLE_S": "0.5",
                "COMFY_PROGRESS_INTERVAL_S": "0.2",
                "COMFY_INTERRUPT_SETTLE_S": "5",
                "WEBSOCKET_RECONNECT_DELAY_S": "0.2",
                "PYTHONUNBUFFERED": "1",
                # One job per worker, so "two workers busy" means exactly two jobs taken; holding
                # several (COMFY_PIPELINE_DEPTH) is covered by test_concurrency.py and test_pipeline.py.
                "COMFY_PIPELINE_DEPTH": "1",
                # The tests' file servers listen on loopback, which the input-URL guard refuses.
                "INPUT_URL_ALLOWLIST": "127.0.0.1/32",
                **(env or {}),
            }
        )
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "comfy_worker",
                "serve",
                "--comfy-host",
                comfy.address,
                "--comfyui-path",
                str(comfy.root),
                "--workers",
                str(workers),
                "--port",
                "0",
                "--api-key",
                KEY,
                "--retention-s",
                "600",
                # The tests' webhook receivers listen on loopback, which the webhook guard refuses.
                "--webhook-allow",
                "127.0.0.1",
                *extra_args,
            ],
            env=process_env,
            cwd=REPO,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            text = log.read_text(errors="replace")
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", text)
            if found:
                self.url = found.group(1)
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()  # never leave its workers polling behind a failed start
                raise AssertionError(f"endpoint did not start:\n{text[-4000:]}")
            time.sleep(0.1)
        self.base = f"{self.url}/v2"

    def client(self, **kwargs: Any) -> EndpointClient:
        return EndpointClient("local", kwargs.pop("api_key", KEY), base_url=self.base, **kwargs)

    def worker_pids(self) -> dict[str, int]:
        pids = {}
        # Direct children only: each worker forks a heartbeat process that looks just like it.
        for child in psutil.Process(self.process.pid).children(recursive=False):
            try:
                env = child.environ()
                if "handler" in child.cmdline() and "RUNPOD_POD_ID" in env:
                    pids[env["RUNPOD_POD_ID"]] = child.pid
            except psutil.Error:
                continue
        return pids

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # its workers may outlive it: the group
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        self._log_file.close()


@pytest.fixture(scope="module")
def endpoint(comfy: ComfyTestServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    server = Endpoint(comfy, tmp_path_factory.mktemp("endpoint") / "serve.log")
    try:
        yield server
    finally:
        server.close()


def wait_for(predicate: Any, timeout_s: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
