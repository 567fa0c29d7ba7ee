"""The changes the worker makes to a workflow before queueing it."""

from __future__ import annotations

from typing import Any

from handler.workflow import RERUN_INPUT, class_types, with_renamed_inputs, with_rerun_marker

WORKFLOW: dict[str, dict[str, Any]] = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "photo.png"}},
    "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a photo.png of a cat", "clip": ["9", 1]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "photo.png"}},
}


def test_uploaded_names_are_rewritten_only_where_a_whole_value_names_them() -> None:
    renamed = with_renamed_inputs(WORKFLOW, {"photo.png": "ab12cd34-photo.png"})
    assert renamed["1"]["inputs"]["image"] == "ab12cd34-photo.png"
    assert renamed["2"]["inputs"] == WORKFLOW["2"]["inputs"]  # text merely containing it, and links
    assert renamed["3"]["inputs"]["filename_prefix"] == "ab12cd34-photo.png"  # a whole value: renamed too
    assert WORKFLOW["1"]["inputs"]["image"] == "photo.png"  # the job's own workflow is not mutated


def test_rerun_marker_only_on_the_given_nodes() -> None:
    marked = with_rerun_marker(WORKFLOW, {"3"}, "job-7")
    assert marked["3"]["inputs"][RERUN_INPUT] == "job-7"
    assert RERUN_INPUT not in marked["1"]["inputs"] and RERUN_INPUT not in WORKFLOW["3"]["inputs"]
    assert class_types(WORKFLOW) == ["LoadImage", "CLIPTextEncode", "SaveImage"]
