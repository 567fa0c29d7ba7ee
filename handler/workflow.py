"""Changes the worker makes to a workflow before queueing it. Pure.

ComfyUI caches every node by its class and inputs (comfy_execution/caching.py iterates all of a
node's inputs). A re-submitted workflow therefore re-runs nothing: its output nodes write no new
files, and their old files may already be cleaned up, and nodes such as SharpPredict that save
without reporting produce nothing at all. Adding one input that no node declares (ComfyUI
ignores undeclared inputs) to each output node makes exactly those nodes run again, while
everything upstream (model loads, sampling) stays cached.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "RERUN_INPUT",
    "class_types",
    "missing_classes",
    "output_prefixes",
    "with_renamed_inputs",
    "with_rerun_marker",
]

RERUN_INPUT = "comfy_worker_run"


def class_types(workflow: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The distinct node classes of a workflow, in first-use order."""
    return list(dict.fromkeys(str(node["class_type"]) for node in workflow.values()))


def missing_classes(
    workflow: Mapping[str, Mapping[str, Any]], available: Iterable[str]
) -> dict[str, list[str]]:
    """Node classes of ``workflow`` not in ``available``, each with the ids of the nodes using it."""
    have = set(available)
    missing: dict[str, list[str]] = {}
    for node_id, node in workflow.items():
        cls = str(node["class_type"])
        if cls not in have:
            missing.setdefault(cls, []).append(str(node_id))
    return missing


def with_rerun_marker(
    workflow: Mapping[str, Mapping[str, Any]], node_ids: Iterable[str], marker: str
) -> dict[str, dict[str, Any]]:
    """A copy of ``workflow`` whose given nodes carry ``marker`` in an extra input."""
    marked = set(node_ids)
    result: dict[str, dict[str, Any]] = {}
    for node_id, node in workflow.items():
        copy = dict(node)
        if node_id in marked:
            copy["inputs"] = {**node.get("inputs", {}), RERUN_INPUT: marker}
        result[node_id] = copy
    return result


def with_renamed_inputs(
    workflow: Mapping[str, Mapping[str, Any]], renamed: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """A copy of ``workflow`` in which every input value naming an uploaded file uses its stored name.

    Only whole string values equal to an uploaded name change (what LoadImage, LoadAudio or a video
    loader hold); links, numbers and longer texts that merely contain the name stay as they are.
    """
    result: dict[str, dict[str, Any]] = {}
    for node_id, node in workflow.items():
        inputs = {
            key: renamed.get(value, value) if isinstance(value, str) else value
            for key, value in node.get("inputs", {}).items()
        }
        result[node_id] = {**node, "inputs": inputs}
    return result


def output_prefixes(workflow: Mapping[str, Mapping[str, Any]], nodes: Iterable[str]) -> list[str]:
    """The string inputs of ``nodes`` that could name where they write in output/ (a prefix such as
    SharpPredict's ``output_prefix``), as clean relative paths; [] when none could."""
    prefixes: set[str] = set()
    for node_id in nodes:
        node = workflow.get(node_id)
        inputs = node.get("inputs") if isinstance(node, Mapping) else None
        for value in (inputs or {}).values():
            if not isinstance(value, str) or not value.strip() or len(value) > 255 or "\n" in value:
                continue
            parts = [part for part in value.replace("\\", "/").split("/") if part not in ("", ".")]
            if not parts or ".." in parts or value.startswith(("/", "\\")):
                continue
            prefixes.add("/".join(parts))
    return sorted(prefixes)
