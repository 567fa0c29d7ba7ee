"""`progress_state` bookkeeping for one prompt (ComfyUI's ProgressRegistry + WebUIProgressHandler).

Every start, update and finish of a node re-sends the whole map of non-pending nodes. A node that
starts running is `{value: 0.0, max: 1.0}` (floats); `update` stores the node's own numbers (ints);
`finish` sets value to max. A cached output node that is only "finished" reports ints `1`/`1`,
as recorded (transcript 12). `set_activity` is the `activity` field of open ComfyUI PR #16202
(not in any release; `Behaviour.loading_activity` turns it on for the `current` profile).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["ProgressRegistry"]


class ProgressRegistry:
    def __init__(self, prompt_id: str, send: Callable[[dict[str, Any]], None]) -> None:
        self._prompt_id = prompt_id
        self._send = send
        self._nodes: dict[str, dict[str, Any]] = {}

    def start(self, node_id: str) -> None:
        self._nodes[node_id] = {"value": 0.0, "max": 1.0, "state": "running"}
        self._publish()

    def update(self, node_id: str, value: float, maximum: float) -> None:
        entry = self._nodes.setdefault(node_id, {"value": 0, "max": 1, "state": "running"})
        entry.update(value=value, max=maximum, state="running")
        self._publish()

    def set_activity(self, node_id: str, activity: str | None) -> None:
        entry = self._nodes.setdefault(node_id, {"value": 0, "max": 1, "state": "running"})
        if entry.get("activity") == activity:
            return
        if activity is None:
            entry.pop("activity", None)
        else:
            entry["activity"] = activity
        self._publish()

    def finish(self, node_id: str) -> None:
        entry = self._nodes.setdefault(node_id, {"value": 0, "max": 1, "state": "running"})
        entry.update(value=entry["max"], state="finished")
        self._publish()

    def _publish(self) -> None:
        nodes = {
            node_id: {
                "value": entry["value"],
                "max": entry["max"],
                "state": entry["state"],
                "node_id": node_id,
                "prompt_id": self._prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
                **({"activity": entry["activity"]} if "activity" in entry else {}),
            }
            for node_id, entry in self._nodes.items()
        }
        self._send({"prompt_id": self._prompt_id, "nodes": nodes})
