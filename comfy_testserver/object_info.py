"""`GET /object_info` entries, in the shape ComfyUI 0.3.64's `node_info()` builds them.

Classic nodes: `input, input_order, output, output_is_list, output_name, name, display_name,
description, python_module, category, output_node` (+ `output_tooltips`, `experimental` when set).
New-style ("v3") nodes always carry `output_tooltips`, `deprecated`, `experimental`, `api_node` and
list hidden inputs as `["PROMPT"]` (the recorded SaveVideo entry, transcript 00).
"""

from __future__ import annotations

from typing import Any

from .folders import Folders
from .nodes import NODE_CLASSES, Node

__all__ = ["all_node_info", "node_info"]


def node_info(cls: type[Node], folders: Folders) -> dict[str, Any]:
    types = cls.input_types(folders)
    inputs: dict[str, Any] = {}
    for section, entries in types.items():
        if section == "hidden" and cls.NEW_STYLE:
            inputs[section] = {name: [value] for name, value in entries.items()}
        elif section == "hidden":
            inputs[section] = dict(entries)
        else:
            inputs[section] = {name: _jsonable(value) for name, value in entries.items()}
    outputs = list(cls.RETURN_TYPES)
    info: dict[str, Any] = {
        "input": inputs,
        "input_order": {section: list(entries) for section, entries in types.items()},
        "output": outputs,
        "output_is_list": [False] * len(outputs),
        "output_name": list(cls.RETURN_NAMES or cls.RETURN_TYPES),
    }
    if cls.NEW_STYLE:
        info["output_tooltips"] = list(cls.OUTPUT_TOOLTIPS or [None] * len(outputs))
    info.update(
        {
            "name": cls.CLASS_TYPE,
            "display_name": cls.DISPLAY_NAME or cls.CLASS_TYPE,
            "description": cls.DESCRIPTION,
            "python_module": cls.PYTHON_MODULE,
            "category": cls.CATEGORY,
            "output_node": cls.OUTPUT_NODE,
        }
    )
    if cls.NEW_STYLE:
        info.update({"deprecated": False, "experimental": cls.EXPERIMENTAL, "api_node": False})
    else:
        if cls.OUTPUT_TOOLTIPS is not None:
            info["output_tooltips"] = list(cls.OUTPUT_TOOLTIPS)
        if cls.EXPERIMENTAL:
            info["experimental"] = True
    return info


def all_node_info(folders: Folders) -> dict[str, Any]:
    return {name: node_info(cls, folders) for name, cls in NODE_CLASSES.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value
