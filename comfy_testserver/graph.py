"""Which node runs next: ComfyUI's `ExecutionList` (comfy_execution/graph.py), without lazy inputs.

Nodes enter in the order `add_node` discovers them walking back from each output (a stack, so the
last-listed input is visited first); among the nodes whose inputs are ready, an output node goes
first, then a node that unblocks an output one or two links away, else the earliest discovered.
That reproduces the recorded orders, e.g. 4,5,7,6,3,8,9 for txt2img (transcript 16) and 2,1,3,5,4
for transcript 05. Cached nodes are left out: their outputs are already there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["DependencyCycleError", "ExecutionList", "is_link"]


class DependencyCycleError(Exception):
    """No node is ready although some are pending."""


def is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    )


class ExecutionList:
    """The nodes still to run for one prompt and the order to run them in."""

    def __init__(
        self, prompt: dict[str, Any], is_output: Callable[[str], bool], is_cached: Callable[[str], bool]
    ) -> None:
        self._prompt = prompt
        self._is_output = is_output
        self._is_cached = is_cached
        self._pending: dict[str, bool] = {}
        self._block_count: dict[str, int] = {}
        self._blocking: dict[str, dict[str, None]] = {}

    def add_node(self, node_id: str) -> None:
        stack = [node_id]
        links: list[tuple[str, str]] = []
        while stack:
            current = stack.pop()
            if current in self._pending:
                continue
            self._pending[current] = True
            self._block_count[current] = 0
            self._blocking[current] = {}
            for value in self._prompt[current]["inputs"].values():
                if is_link(value):
                    source = value[0]
                    if not self._is_cached(source):
                        stack.append(source)
                    links.append((source, current))
        for source, target in links:
            self._add_link(source, target)

    def _add_link(self, source: str, target: str) -> None:
        if self._is_cached(source):
            return
        self.add_node(source)
        if target not in self._blocking[source]:
            self._blocking[source][target] = None
            self._block_count[target] += 1

    def is_empty(self) -> bool:
        return not self._pending

    def next_node(self) -> str:
        ready = [node for node in self._pending if self._block_count[node] == 0]
        if not ready:
            raise DependencyCycleError("Dependency cycle detected")
        return self._pick(ready)

    def complete(self, node_id: str) -> None:
        del self._pending[node_id]
        for blocked in self._blocking.pop(node_id):
            self._block_count[blocked] -= 1

    def _pick(self, ready: list[str]) -> str:
        # ComfyUI's ux_friendly_pick_node: show an output (e.g. a preview) as soon as possible.
        for node in ready:
            if self._is_output(node):
                return node
        for node in ready:
            if any(self._is_output(blocked) for blocked in self._blocking[node]):
                return node
        for node in ready:
            for blocked in self._blocking[node]:
                if any(self._is_output(second) for second in self._blocking[blocked]):
                    return node
        return ready[0]
