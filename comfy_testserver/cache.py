"""ComfyUI's default ("classic") output cache.

A node's key is its class, its IS_CHANGED value and its inputs, with links replaced by the key of
the linked node, recursively: an identical sub-graph has the same key in any prompt, from any
client. When a prompt starts, entries whose keys the new prompt does not use are dropped (ComfyUI's
`clean_unused`), so the cache carries over from one prompt to the next, not further back;
`POST /free {"free_memory": true}` empties it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from .folders import Folders
from .graph import is_link
from .nodes import NODE_CLASSES

__all__ = ["CacheEntry", "NodeCache"]


@dataclass(frozen=True)
class CacheEntry:
    """A finished node: its link outputs and, for UI nodes, `{"output": ..., "meta": ...}`."""

    outputs: tuple[Any, ...]
    ui: dict[str, Any] | None


class NodeCache:
    def __init__(self) -> None:
        self._entries: dict[str, CacheEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> CacheEntry | None:
        return self._entries.get(key)

    def put(self, key: str, entry: CacheEntry) -> None:
        self._entries[key] = entry

    def clear(self) -> None:
        self._entries.clear()

    def keep_only(self, keys: set[str]) -> None:
        for key in [key for key in self._entries if key not in keys]:
            del self._entries[key]

    @staticmethod
    def keys_for(prompt: dict[str, Any], folders: Folders) -> dict[str, str]:
        """The cache key of every node of `prompt`."""
        keys: dict[str, str] = {}
        visiting: set[str] = set()

        def key_of(node_id: str) -> str:
            if node_id in keys:
                return keys[node_id]
            node = prompt.get(node_id)
            known = isinstance(node, dict) and node.get("class_type") in NODE_CLASSES
            if not isinstance(node, dict) or not known or node_id in visiting:
                return f"uncacheable:{uuid.uuid4()}"  # ComfyUI uses NaN here: equal to nothing
            visiting.add(node_id)
            cls = NODE_CLASSES[node["class_type"]]
            inputs = node.get("inputs", {})
            try:
                changed = cls.is_changed(folders, inputs)
            except OSError:
                changed = f"unknown:{uuid.uuid4()}"
            signature: list[Any] = [node["class_type"], changed]
            for name in sorted(inputs):
                value = inputs[name]
                signature.append([name, ["LINK", key_of(value[0]), value[1]] if is_link(value) else value])
            visiting.discard(node_id)
            keys[node_id] = json.dumps(signature, sort_keys=True, default=repr)
            return keys[node_id]

        for node_id in prompt:
            key_of(node_id)
        return keys
