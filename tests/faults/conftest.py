"""Fault-injection fixtures: ComfyUI as a separate process, the test server always and a real
ComfyUI when REAL_COMFYUI_DIR and REAL_COMFYUI_PYTHON name one (read at import: the autouse
fixture that cleans the environment runs before any test)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.comfy_process import ComfyProcess, real_comfy_from_env

REAL = real_comfy_from_env(os.environ)

KINDS = [
    "test server",
    pytest.param(
        "real ComfyUI",
        marks=pytest.mark.skipif(
            REAL is None, reason="no real ComfyUI: set REAL_COMFYUI_DIR and REAL_COMFYUI_PYTHON"
        ),
    ),
]


@pytest.fixture(params=KINDS)
def comfy_process(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ComfyProcess]:
    """A started ComfyUI process (its own port, install folder and PID file under tmp_path)."""
    if request.param == "test server":
        process = ComfyProcess.test_server(tmp_path)
        timeout_s = 30.0
    else:
        assert REAL is not None
        process = ComfyProcess.real(tmp_path, REAL)
        timeout_s = 180.0
    process.start(timeout_s)
    try:
        yield process
    finally:
        process.stop()
