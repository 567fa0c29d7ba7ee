"""Text nodes: PrimitiveString, StringConcatenate and PreviewAny (the core "text" UI output).

PreviewAny's `executed.output` is `{"text": [value]}`, with the value formatted exactly like
`comfy_extras/nodes_preview_any.py` does (transcript 07: INT 40 -> "40").
"""

from __future__ import annotations

import json
from typing import Any

from ..folders import Folders
from .base import InputTypes, Node, NodeResult, NodeRun, spec

__all__ = ["PreviewAny", "PrimitiveString", "StringConcatenate"]


class PrimitiveString(Node):
    CLASS_TYPE = "PrimitiveString"
    DISPLAY_NAME = "String"
    CATEGORY = "utils/primitive"
    PYTHON_MODULE = "comfy_extras.nodes_primitive"
    NEW_STYLE = True
    RETURN_TYPES = ("STRING",)
    OUTPUT_TOOLTIPS = (None,)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {"required": {"value": spec("STRING", multiline=False)}}

    async def run(self, ctx: NodeRun, *, value: str, **_: Any) -> NodeResult:
        return NodeResult((value,))


class StringConcatenate(Node):
    CLASS_TYPE = "StringConcatenate"
    DISPLAY_NAME = "Concatenate"
    CATEGORY = "utils/string"
    PYTHON_MODULE = "comfy_extras.nodes_string"
    NEW_STYLE = True
    RETURN_TYPES = ("STRING",)
    OUTPUT_TOOLTIPS = (None,)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {
                "string_a": spec("STRING", multiline=True),
                "string_b": spec("STRING", multiline=True),
                "delimiter": spec("STRING", multiline=False, default=""),
            }
        }

    async def run(
        self, ctx: NodeRun, *, string_a: str, string_b: str, delimiter: str = "", **_: Any
    ) -> NodeResult:
        return NodeResult((f"{string_a}{delimiter}{string_b}",))


class PreviewAny(Node):
    CLASS_TYPE = "PreviewAny"
    DISPLAY_NAME = "Preview Any"
    CATEGORY = "utils"
    PYTHON_MODULE = "comfy_extras.nodes_preview_any"
    OUTPUT_NODE = True

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {"required": {"source": ("*", {})}}

    async def run(self, ctx: NodeRun, *, source: Any = None, **_: Any) -> NodeResult:
        return NodeResult(ui={"text": [preview_text(source)]})


def preview_text(source: Any) -> str:
    if isinstance(source, str):
        return source
    if isinstance(source, (int, float, bool)):
        return str(source)
    if source is None:
        return "None"
    try:
        return json.dumps(source)
    except (TypeError, ValueError):
        return str(source)
