"""What ComfyUI's /object_info says about each node class (output node? which inputs are files?),
asked once per class.

A ComfyUI's node classes do not change while it runs, so one `NodeClasses` lives as long as the
worker; each job only asks about classes it has not seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..workflow import class_types
from ..workflow_limits import file_inputs_of
from .client import ComfyClient

__all__ = ["NodeClasses"]


class NodeClasses:
    """``is_output[class_type]`` and ``file_inputs[class_type]`` (inputs /object_info marks as
    uploads) for every class ComfyUI knows that a job has used so far."""

    def __init__(self) -> None:
        self.is_output: dict[str, bool] = {}
        self.file_inputs: dict[str, frozenset[str]] = {}

    async def learn(self, comfy: ComfyClient, workflow: Mapping[str, Mapping[str, Any]]) -> None:
        """Ask about the workflow's classes not seen yet; unknown ones are left for POST /prompt."""
        for class_type in class_types(workflow):
            if class_type not in self.is_output:
                info = await comfy.object_info(class_type)
                if info:
                    self.is_output[class_type] = bool(info.get("output_node"))
                    self.file_inputs[class_type] = file_inputs_of(info)

    def output_nodes(self, workflow: Mapping[str, Mapping[str, Any]]) -> frozenset[str]:
        """The ids of the workflow's output nodes (call `learn` first)."""
        return frozenset(
            node_id for node_id, node in workflow.items() if self.is_output.get(node["class_type"], False)
        )
