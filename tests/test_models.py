"""MODEL_MISSING: a job needing a model the boot could not provide fails at once, naming it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from comfy_testserver import ComfyTestServer
from handler.errors import ModelMissing
from handler.models import check_workflow, read_missing
from handler.worker import Worker

from . import workflows as wf
from .conftest import make_settings

SHARP = {
    "name": "SHARP weights",
    "group": "GAUSSIAN",
    "folder": "sharp",
    "filename": "sharp_2572gikvuh.pt",
    "loaded_by": ["LoadSharpModel"],
    "error": "ChecksumMismatch",
    "reason": "sha256 is aaa, manifest.toml expects bbb; the download was moved aside",
}
CKPT = {
    **SHARP,
    "name": "Tiny",
    "group": "TEST",
    "folder": "checkpoints",
    "filename": "tiny.safetensors",
    "loaded_by": [],
    "error": "NotFound",
    "reason": "the server answered 404 Not Found",
}


def _status(path: Path, *missing: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"version": 1, "missing": list(missing)}))
    return path


def test_a_workflow_naming_the_file_or_using_its_loader_needs_it() -> None:
    with pytest.raises(ModelMissing) as caught:
        check_workflow(wf.sampler(ckpt="tiny.safetensors"), [CKPT])
    assert caught.value.code == "MODEL_MISSING"
    assert "'Tiny' (models/checkpoints/tiny.safetensors, group TEST)" in caught.value.message
    assert "the server answered 404 Not Found" in caught.value.message
    with pytest.raises(ModelMissing):
        check_workflow(wf.sampler(ckpt="sub\\tiny.safetensors"), [CKPT])  # in a subfolder, Windows-style
    sharp = {"1": {"class_type": "LoadSharpModel", "inputs": {"device": "auto"}}}
    with pytest.raises(ModelMissing) as caught:
        check_workflow(sharp, [SHARP, CKPT])
    assert [m["name"] for m in caught.value.details["models"]] == ["SHARP weights"]


def test_a_workflow_that_needs_none_of_them_passes() -> None:
    check_workflow(wf.sampler(ckpt="other.safetensors"), [SHARP, CKPT])
    check_workflow(wf.sampler(), [])


def test_no_status_file_or_an_unreadable_one_means_nothing_missing(tmp_path: Path) -> None:
    assert read_missing(None) == []
    assert read_missing(tmp_path / "absent.json") == []
    (tmp_path / "bad.json").write_text("{not json")
    assert read_missing(tmp_path / "bad.json") == []
    assert read_missing(_status(tmp_path / "ok.json", SHARP)) == [SHARP]


async def test_the_job_fails_with_model_missing_before_anything_reaches_comfyui(
    comfy: ComfyTestServer, tmp_path: Path
) -> None:
    status = _status(tmp_path / "models-status.json", CKPT)
    worker = Worker(make_settings(comfy, MODELS_STATUS_FILE=str(status)))

    result = await worker.handle({"id": "job-1", "input": {"workflow": wf.sampler()}})

    assert result["error"].startswith("MODEL_MISSING: this workflow needs 'Tiny'")
    assert result["details"]["models"][0]["filename"] == "tiny.safetensors"
    assert not [r for r in comfy.requests if r.path == "/prompt" and r.method == "POST"]
    # A job that does not need it still runs on this worker.
    ok = await worker.handle({"id": "job-2", "input": {"workflow": wf.save_image("fine")}})
    assert "error" not in ok, ok


def test_the_status_file_defaults_to_comfyui_path(tmp_path: Path) -> None:
    from handler.config import Settings

    settings = Settings.from_env({"COMFYUI_PATH": str(tmp_path)})
    assert settings.models_status_file == tmp_path / ".provision" / "models-status.json"
