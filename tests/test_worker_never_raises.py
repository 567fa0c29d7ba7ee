"""`Worker.handle` turns every input or environment failure into a result; it never raises."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from comfy_testserver import ComfyTestServer
from handler.worker import Worker

from . import workflows as wf
from .conftest import make_settings


async def test_a_temp_folder_that_cannot_be_made_is_a_result_not_a_traceback(
    comfy: ComfyTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-folder"  # mkdtemp fails for real: FileNotFoundError
    monkeypatch.setattr(tempfile, "tempdir", str(missing))
    worker = Worker(make_settings(comfy))  # constructing the worker touches no disk
    result = await worker.handle({"id": "full-disk", "input": {"workflow": wf.save_image()}})
    assert result["error"].startswith(
        "WORKDIR_UNAVAILABLE: the worker could not create the job's temp folder"
    )
    assert str(missing) in result["error"] and "TMPDIR" in result["error"]
    assert result["refresh_worker"] is True
    assert not any(r.path == "/prompt" for r in comfy.requests)  # nothing ran, nothing to clean up


@pytest.mark.parametrize("job", [None, [], "a string", 7, {"id": "x"}, {"id": "x", "input": None}])
async def test_a_job_of_any_shape_gets_invalid_input(comfy: ComfyTestServer, job: Any) -> None:
    result = await Worker(make_settings(comfy)).handle(job)
    assert result["error"].startswith("INVALID_INPUT: the job has no input")


async def test_a_failing_progress_sender_is_a_result_not_a_traceback(comfy: ComfyTestServer) -> None:
    def broken_sender(job: dict[str, Any]) -> Any:
        raise RuntimeError("the SDK's progress channel is gone")

    worker = Worker(make_settings(comfy), progress_sender=broken_sender)
    result = await worker.handle({"id": "p", "input": {"workflow": wf.save_image()}})
    assert result["error"].startswith("INTERNAL_ERROR: the worker hit an unexpected RuntimeError")
