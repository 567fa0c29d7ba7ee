"""Every example workflow is API format and valid against the node definitions recorded from ComfyUI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from comfy_testserver import NODE_CLASSES
from handler.job import JobLimits, parse_job_input

from .conftest import recorded

WORKFLOWS = sorted((Path(__file__).resolve().parents[1] / "workflows").glob("*.json"))
LIMITS = JobLimits(max_input_bytes=1, default_timeout_s=1)
NO_MODEL_NEEDED = {"simple_test.json", "image_batch.json", "animated.json", "video.json", "text.json"}


def recorded_object_info() -> dict[str, Any]:
    """The node definitions transcript 00 recorded in full."""
    found: dict[str, Any] = {}
    for event in recorded("00_server_info")["events"]:
        if event["kind"] != "http" or not event["request"]["path"].startswith("/object_info"):
            continue
        body = event["response"].get("json")
        if isinstance(body, dict):
            for name, entry in body.items():
                if isinstance(entry, dict) and "input" in entry:
                    found[name] = entry
    return found


RECORDED_INFO = recorded_object_info()
# ComfyUI 0.3.64 with ComfyUI-Sharp and comfyui-GaussianViewer at the manifest's commits (+ Qwen nodes).
GAUSSIAN_INFO = json.loads(
    (
        Path(__file__).resolve().parents[1] / "comfy_testserver" / "recorded" / "gaussian_object_info.json"
    ).read_text()
)["object_info"]
GAUSSIAN_WORKFLOWS = ["sharp_splat", "sharp_splat_viewer", "qwen_edit_sharp", "qwen_edit_sharp_viewer"]


@pytest.mark.parametrize("name", GAUSSIAN_WORKFLOWS)
def test_gaussian_workflows_match_the_real_node_definitions(name: str) -> None:
    workflow = json.loads((Path(__file__).resolve().parents[1] / "workflows" / f"{name}.json").read_text())
    for node_id, node in workflow.items():
        info = GAUSSIAN_INFO[node["class_type"]]
        required, optional = info["input"].get("required", {}), info["input"].get("optional", {})
        assert set(required) <= set(node["inputs"]) <= set(required) | set(optional), node_id
        for input_name, value in node["inputs"].items():
            spec = {**required, **optional}[input_name]
            if isinstance(value, list):  # a link: the source's output type must be what the input takes
                source = workflow[value[0]]
                produced = GAUSSIAN_INFO[source["class_type"]]["output"][value[1]]
                assert produced == spec[0], f"{name}: node {node_id}.{input_name} gets {produced}"
            elif isinstance(spec[0], list) and not str(value).endswith((".safetensors", ".png")):
                # Model and input file lists depend on the machine; the other choices do not.
                assert value in spec[0], f"{name}: node {node_id}.{input_name}={value!r}"
    viewer = "GaussianViewer" in {n["class_type"] for n in workflow.values()}
    assert viewer == name.endswith("_viewer")


def test_the_examples_cover_every_output_kind() -> None:
    names = {path.name for path in WORKFLOWS}
    assert NO_MODEL_NEEDED | {"txt2img.json", "img2img.json"} <= names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_api_format(path: Path) -> None:
    workflow = json.loads(path.read_text())
    request = parse_job_input({"workflow": workflow}, LIMITS)
    for node_id, node in request.workflow.items():
        for value in node["inputs"].values():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                assert value[0] in request.workflow, (
                    f"{path.name}: node {node_id} links to missing node {value[0]}"
                )


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_recorded_node_definitions(path: Path) -> None:
    workflow = json.loads(path.read_text())
    checked = 0
    for node_id, node in workflow.items():
        info = RECORDED_INFO.get(node["class_type"])
        if info is None:
            continue
        checked += 1
        required = info["input"].get("required", {})
        optional = info["input"].get("optional", {})
        for name in required:
            assert name in node["inputs"], f"{path.name}: node {node_id} lacks required input {name!r}"
        for name in node["inputs"]:
            assert name in required or name in optional, (
                f"{path.name}: node {node_id} has unknown input {name!r}"
            )
    # The Gaussian workflows are checked against their own recording (test above).
    assert checked or path.name in {"video.json", "text.json", *(f"{n}.json" for n in GAUSSIAN_WORKFLOWS)}, (
        f"{path.name}: no node covered by the recording"
    )


def test_model_free_workflows_only_use_nodes_the_test_server_runs() -> None:
    for path in WORKFLOWS:
        if path.name in NO_MODEL_NEEDED:
            classes = {node["class_type"] for node in json.loads(path.read_text()).values()}
            assert classes <= set(NODE_CLASSES), f"{path.name}: {classes - set(NODE_CLASSES)}"
