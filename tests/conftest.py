"""Shared fixtures: a clean environment for every test, sample media, and job helpers."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator

import pytest
from PIL import Image

# Variables the worker or the runpod SDK read; a developer's shell must not leak into tests.
_ENV_PREFIXES = ("COMFY", "RUNPOD_", "WEBSOCKET_", "REFRESH_WORKER", "BUCKET_")


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


RECORDED = __import__("pathlib").Path(__file__).resolve().parents[1] / "comfy_testserver" / "recorded"


def recorded(name: str) -> dict:
    """A transcript recorded from a real ComfyUI (a copy of shared/comfyui-protocol)."""
    import json

    return json.loads((RECORDED / f"{name}.json").read_text(encoding="utf-8"))
