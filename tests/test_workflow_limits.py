"""Workflow values ComfyUI could not survive, and loader paths outside its folders (issue 14, points 1, 2, 7).

The end-to-end tests run the worker against the ComfyUI test server over real sockets: its
LoadImage joins names to the input folder the way ComfyUI's does, so before the fix an absolute
path or ``..`` returned any image of the machine as an output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from comfy_testserver import ComfyTestServer
from handler.config import ConfigError, Settings
from handler.errors import JobInputError
from handler.job import JobLimits, parse_job_input
from handler.worker import Worker
from handler.workflow_limits import (
    MAX_NESTING_DEPTH,
    check_file_inputs,
    check_workflow_limits,
    file_inputs_of,
)

from . import workflows as wf
from .conftest import b64, make_settings, png_bytes

LIMITS = JobLimits(max_input_bytes=10_000_000, default_timeout_s=60.0)


def nested(depth: int) -> Any:
    """``depth`` lists, one inside the other."""
    value: Any = ["leaf"]
    for _ in range(depth - 1):
        value = [value]
    return value


def rejected(job_input: dict[str, Any], limits: JobLimits = LIMITS) -> str:
    with pytest.raises(JobInputError) as caught:
        parse_job_input(job_input, limits)
    return caught.value.message


def with_input(name: str, value: Any, class_type: str = "CLIPTextEncode") -> dict[str, Any]:
    return {
        **wf.save_image("ok"),
        "7": {"class_type": class_type, "inputs": {name: value}},
    }


# --- point 1: nesting, sizes, numbers ------------------------------------------------------------


def test_depth_at_the_limit_passes_and_one_more_is_refused_naming_node_and_input() -> None:
    parse_job_input({"workflow": with_input("text", nested(MAX_NESTING_DEPTH))}, LIMITS)
    message = rejected({"workflow": with_input("text", nested(MAX_NESTING_DEPTH + 1))})
    assert "input.workflow['7'].inputs.text (CLIPTextEncode)" in message
    assert f"more than {MAX_NESTING_DEPTH} levels" in message and "flatten" in message


def test_depth_that_killed_comfyui_is_refused_without_a_recursion_error() -> None:
    # 5000 levels: deeper than Python's recursion limit, so the check itself must not recurse.
    message = rejected({"workflow": with_input("text", nested(5000))})
    assert "nested more than" in message


def test_deep_meta_is_refused_too() -> None:
    workflow = wf.save_image("ok")
    workflow["2"]["_meta"] = {"title": nested(600)}
    assert "input.workflow['2']._meta" in rejected({"workflow": workflow})


def test_huge_string_and_list_are_refused() -> None:
    message = rejected({"workflow": with_input("text", "x" * (8 * 1024 * 1024 + 1))})
    assert "characters" in message and "input.files" in message
    message = rejected({"workflow": with_input("values", list(range(100_001)))})
    assert "100000-item limit" in message


def test_5000_digit_integer_in_a_json_string_workflow_is_invalid_input() -> None:
    text = json.dumps(wf.save_image("ok")).replace('"ok"', "1" + "0" * 4999)
    message = rejected({"workflow": text})
    assert "input.workflow" in message and "not usable JSON" in message


def test_integer_over_64_bits_is_refused() -> None:
    message = rejected({"workflow": with_input("seed", 2**64, "KSampler")})
    assert "inputs.seed (KSampler)" in message and "64 bits" in message
    parse_job_input({"workflow": with_input("seed", 2**64 - 1, "KSampler")}, LIMITS)


# --- point 7: names and prefixes against file-system limits --------------------------------------


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("p" * 240, "at most 200 bytes"),
        ("renders/" + "é" * 101, "202 bytes"),
        ("a\nb", "control character"),
        ("/etc/x", "outside ComfyUI's output folder"),
        ("../../x", "outside ComfyUI's output folder"),
    ],
)
def test_bad_filename_prefix_is_invalid_input(prefix: str, expected: str) -> None:
    message = rejected({"workflow": wf.save_image(prefix)})
    assert "inputs.filename_prefix (SaveImage)" in message and expected in message


def test_filename_prefix_with_subfolder_and_date_passes() -> None:
    parse_job_input({"workflow": wf.save_image("renders/%date:yyyy-MM-dd%/shot" + "p" * 150)}, LIMITS)


@pytest.mark.parametrize(("name", "expected"), [("a\nb.png", "control character"), ("é" * 124, "248 bytes")])
def test_bad_input_names_are_invalid_input(name: str, expected: str) -> None:
    message = rejected({"workflow": wf.save_image(), "images": [{"name": name, "image": b64(png_bytes())}]})
    assert "input.images[0].name" in message and expected in message


def test_name_of_246_bytes_passes() -> None:
    name = "n" * 242 + ".png"
    parse_job_input(
        {"workflow": wf.save_image(), "images": [{"name": name, "image": b64(png_bytes())}]}, LIMITS
    )


@pytest.mark.parametrize("class_type", ["a/b", "Load\nImage", "X" * 300])
def test_class_type_comfyui_cannot_look_up_is_invalid_input(class_type: str) -> None:
    workflow = {"1": {"class_type": class_type, "inputs": {}}}
    assert "is not a node class ComfyUI can look up" in rejected({"workflow": workflow})


# --- point 2: loader paths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "/etc/passwd",
        "../../x.png",
        "sub/../../x.png",
        "..\\x.png",
        "C:\\x.png",
        "~/x.png",
        "/tmp/x.png [input]",
    ],
)
def test_loader_path_outside_comfyui_folders_is_refused(value: str) -> None:
    message = rejected({"workflow": wf.invert_upload(value)})
    assert "input.workflow['1'].inputs.image (LoadImage)" in message
    assert "COMFY_ALLOWED_INPUT_PATHS" in message and "input.images" in message


@pytest.mark.parametrize("value", ["photo.png", "sub/photo.png", "photo.png [output]", "a..b.png"])
def test_plain_loader_names_pass(value: str) -> None:
    parse_job_input({"workflow": wf.invert_upload(value)}, LIMITS)


def test_text_inputs_may_hold_paths() -> None:
    parse_job_input({"workflow": with_input("text", "/etc/passwd and ../../x")}, LIMITS)


def test_allow_list_admits_its_folders_only(tmp_path: Path) -> None:
    allowed = Settings.from_env({"COMFY_ALLOWED_INPUT_PATHS": "/data/shared/, /mnt/x"}).allowed_input_paths
    assert allowed == ("/data/shared", "/mnt/x")
    check_workflow_limits(wf.invert_upload("/data/shared/a/b.png"), allowed_paths=allowed)
    for outside in ("/data/shared/../secret.png", "/data/sharedx/b.png", "/etc/passwd"):
        with pytest.raises(JobInputError):
            check_workflow_limits(wf.invert_upload(outside), allowed_paths=allowed)


def test_allow_list_setting_refuses_relative_folders() -> None:
    with pytest.raises(ConfigError, match="COMFY_ALLOWED_INPUT_PATHS"):
        Settings.from_env({"COMFY_ALLOWED_INPUT_PATHS": "data/shared"})


def test_schema_marks_upload_inputs_as_files() -> None:
    info = {
        "input": {
            "required": {"image": [["a.png"], {"image_upload": True}], "strength": ["FLOAT", {}]},
            "optional": {"clip": [["c.wav"], {"audio_upload": True}]},
        }
    }
    assert file_inputs_of(info) == frozenset({"image", "clip"})
    workflow = {"1": {"class_type": "MyLoader", "inputs": {"clip": "/root/x.wav", "strength": 1.0}}}
    with pytest.raises(JobInputError, match=r"inputs.clip \(MyLoader\)"):
        check_file_inputs(workflow, {"MyLoader": file_inputs_of(info)})


# --- end to end over real sockets -----------------------------------------------------------------


@pytest.fixture
def secret_image(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "secret.png"
    path.parent.mkdir()
    path.write_bytes(png_bytes((8, 8), (1, 2, 3)))
    return path


@pytest.mark.parametrize("class_type", ["LoadImage", "LoadImageWithExif"])
async def test_worker_never_reads_a_file_outside_comfyui(
    comfy: ComfyTestServer, secret_image: Path, class_type: str
) -> None:
    # LoadImageWithExif (ComfyUI-Sharp) is refused from its /object_info schema (image_upload).
    worker = Worker(make_settings(comfy))
    relative = "../../" + secret_image.relative_to(comfy.root.parent).as_posix()
    for value in (str(secret_image), relative):
        workflow = wf.invert_upload(value)
        workflow["1"]["class_type"] = class_type
        result = await worker.handle({"id": "j", "input": {"workflow": workflow}})
        assert result["error"].startswith("INVALID_INPUT"), result
        assert "outside ComfyUI's folders" in result["error"] and "images" not in result
    assert not [r for r in comfy.requests if r.path == "/prompt" and r.method == "POST"]  # nothing queued


async def test_worker_reads_an_allowed_folder(comfy: ComfyTestServer, secret_image: Path) -> None:
    worker = Worker(make_settings(comfy, COMFY_ALLOWED_INPUT_PATHS=str(secret_image.parent)))
    result = await worker.handle({"id": "j", "input": {"workflow": wf.invert_upload(str(secret_image))}})
    assert "error" not in result, result
    assert len(result["images"]) == 1


async def test_worker_answers_deep_nesting_and_long_prefix_with_invalid_input(comfy: ComfyTestServer) -> None:
    worker = Worker(make_settings(comfy))
    for workflow in (with_input("text", nested(600)), wf.save_image("p" * 240)):
        result = await worker.handle({"id": "j", "input": {"workflow": workflow}})
        assert result["error"].startswith("INVALID_INPUT"), result
    assert not [r for r in comfy.requests if r.path == "/prompt" and r.method == "POST"]
