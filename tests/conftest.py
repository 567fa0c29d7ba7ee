"""Shared fixtures: a clean environment for every test, sample media, and job helpers."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from PIL import Image

from comfy_testserver import Behaviour, ComfyTestServer
from comfy_testserver.profiles import PROFILES
from handler.config import Settings
from handler.worker import Worker

# Variables the worker or the runpod SDK read; a developer's shell must not leak into tests.
_ENV_PREFIXES = ("COMFY", "RUNPOD_", "WEBSOCKET_", "REFRESH_WORKER", "BUCKET_", "INPUT_URL_")


def profiles_under_test(value: str | None) -> tuple[str, ...]:
    """COMFY_TESTSERVER_PROFILE: the test server profiles the worker's end-to-end tests run against,
    comma-separated ("0.3.64", "current"); unset or empty means both."""
    names = tuple(name.strip() for name in (value or "").split(",") if name.strip()) or tuple(PROFILES)
    unknown = [name for name in names if name not in PROFILES]
    if unknown:
        known = ", ".join(PROFILES)
        raise pytest.UsageError(
            f"COMFY_TESTSERVER_PROFILE={value!r}: unknown profile {unknown[0]!r}; use {known}"
        )
    return names


# Read once at import: `clean_environ` below removes every COMFY* variable before each test.
PROFILES_UNDER_TEST = profiles_under_test(os.environ.get("COMFY_TESTSERVER_PROFILE"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "xfail_on_current(reason): the worker does not yet handle this difference of today's ComfyUI "
        "(PROFILES.md); strict xfail for the test's [current] profile run only",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("xfail_on_current")
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        profile = (params.get("comfy_profile"), params.get("comfy"), params.get("shared_comfy"))
        if marker is not None and "current" in profile:
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"current profile: {marker.args[0]}"))


@pytest.fixture(params=PROFILES_UNDER_TEST)
def comfy_profile(request: pytest.FixtureRequest) -> str:
    """The ComfyUI protocol profile of this test's test server: every test using it runs once per profile."""
    return str(request.param)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name)
    yield


def png_bytes(size: tuple[int, int] = (8, 8), color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


RECORDED = Path(__file__).resolve().parents[1] / "comfy_testserver" / "recorded"


def recorded(name: str) -> dict:
    """A transcript recorded from a real ComfyUI (a copy of shared/comfyui-protocol)."""
    return json.loads((RECORDED / f"{name}.json").read_text(encoding="utf-8"))


@contextlib.contextmanager
def comfy_test_server(root: Path, profile: str) -> Iterator[ComfyTestServer]:
    """A ComfyUI test server over real loopback sockets with one checkpoint and the SHARP model."""
    with ComfyTestServer(root=root, behaviour=Behaviour(), profile=profile) as server:
        (root / "models" / "checkpoints" / "tiny.safetensors").write_bytes(b"\0")
        (root / "models" / "sharp").mkdir(parents=True)
        (root / "models" / "sharp" / "sharp_2572gikvuh.pt").write_bytes(b"\0")
        yield server


@pytest.fixture
def comfy(tmp_path: Path, comfy_profile: str) -> Iterator[ComfyTestServer]:
    """A fresh ComfyUI test server per test (once per profile)."""
    with comfy_test_server(tmp_path / "comfyui", comfy_profile) as server:
        yield server


@pytest.fixture(scope="module", params=PROFILES_UNDER_TEST)
def shared_comfy(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ComfyTestServer]:
    """One test server per module and profile, for tests that change nothing in it (no `behaviour`
    change, nothing asserted about its whole queue, history or output folder): a worker process
    started once can serve them all."""
    with comfy_test_server(tmp_path_factory.mktemp("comfyui"), str(request.param)) as server:
        yield server


class Progress:
    """Collects what the worker would send to runpod.serverless.progress_update."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []

    def __call__(self, job: dict[str, Any]) -> Any:
        return self.updates.append


@pytest.fixture
def progress() -> Progress:
    return Progress()


@pytest.fixture
def worker(comfy: ComfyTestServer, progress: Progress) -> Worker:
    """A worker on this test's test server, its progress updates in `progress` (a module whose jobs
    need other settings defines its own)."""
    return Worker(make_settings(comfy), progress_sender=progress)


def make_settings(server: ComfyTestServer, **env: str) -> Settings:
    """Worker settings pointing at the test server, with short waits so failures show fast."""
    base = {
        "COMFY_HOST": server.address,
        "COMFYUI_PATH": str(server.root),
        "COMFY_READY_TIMEOUT_S": "5",
        "COMFY_WS_IDLE_S": "0.3",
        "WEBSOCKET_RECONNECT_ATTEMPTS": "3",
        "WEBSOCKET_RECONNECT_DELAY_S": "0.1",
        "COMFY_INTERRUPT_SETTLE_S": "5",
        "COMFY_PROGRESS_INTERVAL_S": "0",
        "RUNPOD_WEBHOOK_POST_OUTPUT": "http://unused/",  # turns progress on; the sender is ours
    }
    return Settings.from_env({**base, **env})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_admin(url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="admin",
        aws_secret_access_key="admin-secret",
    )


@pytest.fixture
def bucket(moto_url: str) -> str:
    name = f"outputs-{uuid.uuid4().hex[:10]}"
    s3_admin(moto_url).create_bucket(Bucket=name)
    return name
