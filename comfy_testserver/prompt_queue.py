"""The prompt queue and the history, as ComfyUI's `PromptQueue` keeps them.

Pending prompts sit in a heap ordered by `(number, prompt_id)`, so `front: true` (a negative
number) runs first and `GET /queue` shows the heap's own list order. Every change calls
`on_change`, which broadcasts a `status` frame; deleting the last pending prompt changes the queue
twice (ComfyUI wipes it and then reports again), so it sends two. Reads from other threads
(`ComfyTestServer.history()`) take the lock. `QueueItem.sensitive` is the sixth slot of today's
queue tuple (the Comfy.org keys, `current` profile): /queue and history only ever show `public()`.
"""

from __future__ import annotations

import asyncio
import copy
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAXIMUM_HISTORY_SIZE", "SENSITIVE_EXTRA_DATA_KEYS", "PromptQueue", "QueueItem"]

MAXIMUM_HISTORY_SIZE = 10000
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")
"""execution.py: what the `current` profile moves out of extra_data into `QueueItem.sensitive`."""


@dataclass
class QueueItem:
    number: float
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs: list[str]
    sensitive: dict[str, Any] = field(default_factory=dict)

    def public(self) -> list[Any]:
        """`[number, prompt_id, prompt, extra_data, outputs_to_execute]` as /queue and history show it."""
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]

    @property
    def client_id(self) -> str | None:
        return self.extra_data.get("client_id")


class PromptQueue:
    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._lock = threading.Lock()
        self._heap: list[tuple[float, str, int, QueueItem]] = []
        self._order = itertools.count()
        self._running: dict[int, QueueItem] = {}
        self._task_ids = itertools.count()
        self._history: dict[str, dict[str, Any]] = {}
        self._visible_at: dict[str, float] = {}
        self._flags: dict[str, Any] = {}
        self._wakeup = asyncio.Event()
        self.next_number = 0

    # --- pending/running ---------------------------------------------------------------------------

    def put(self, item: QueueItem) -> None:
        with self._lock:
            heapq.heappush(self._heap, (item.number, item.prompt_id, next(self._order), item))
        self._on_change()
        self._wakeup.set()

    async def wait_for_work(self) -> None:
        """Return once a prompt is pending or a `/free` flag is set."""
        while not self._heap and not self._flags:
            self._wakeup.clear()
            await self._wakeup.wait()

    def take(self) -> tuple[int, QueueItem] | None:
        with self._lock:
            if not self._heap:
                return None
            item = heapq.heappop(self._heap)[3]
            task_id = next(self._task_ids)
            self._running[task_id] = item
        self._on_change()
        return task_id, item

    def task_done(self, task_id: int, entry: dict[str, Any], visible_after_s: float = 0.0) -> None:
        """Move a finished prompt into the history (`entry` has outputs, status and meta)."""
        with self._lock:
            item = self._running.pop(task_id)
            for key in SENSITIVE_EXTRA_DATA_KEYS:  # 0.3.64's task_done; today they were never there
                item.extra_data.pop(key, None)
            if len(self._history) > MAXIMUM_HISTORY_SIZE:
                oldest = next(iter(self._history))
                del self._history[oldest]
                self._visible_at.pop(oldest, None)
            self._history[item.prompt_id] = {"prompt": item.public(), "outputs": {}, **entry}
            if visible_after_s > 0:
                self._visible_at[item.prompt_id] = time.time() + visible_after_s
        self._on_change()

    def remaining(self) -> int:
        with self._lock:
            return len(self._heap) + len(self._running)

    def snapshot(self) -> tuple[list[QueueItem], list[QueueItem]]:
        """(running, pending); pending in heap-list order, as `GET /queue` reports it."""
        with self._lock:
            return list(self._running.values()), [entry[3] for entry in self._heap]

    def delete_pending(self, prompt_id: str) -> bool:
        with self._lock:
            index = next((i for i, entry in enumerate(self._heap) if entry[1] == prompt_id), None)
            if index is None:
                return False
            last = len(self._heap) == 1
            self._heap.pop(index)
            heapq.heapify(self._heap)
        if last:
            self._on_change()
        self._on_change()
        return True

    def wipe_pending(self) -> None:
        with self._lock:
            self._heap.clear()
        self._on_change()

    # --- flags (POST /free) ------------------------------------------------------------------------

    def set_flag(self, name: str, value: Any) -> None:
        with self._lock:
            self._flags[name] = value
        self._wakeup.set()

    def take_flags(self) -> dict[str, Any]:
        with self._lock:
            flags, self._flags = self._flags, {}
        return flags

    # --- history -----------------------------------------------------------------------------------

    def history(
        self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1
    ) -> dict[str, Any]:
        """ComfyUI's get_history: one entry, or the last `max_items` (deep copies)."""
        with self._lock:
            now = time.time()
            visible = {k: v for k, v in self._history.items() if self._visible_at.get(k, 0.0) <= now}
            if prompt_id is not None:
                return {prompt_id: copy.deepcopy(visible[prompt_id])} if prompt_id in visible else {}
            if offset < 0 and max_items is not None:
                offset = len(visible) - max_items
            out: dict[str, Any] = {}
            for index, (key, value) in enumerate(visible.items()):
                if index >= offset:
                    out[key] = copy.deepcopy(value)
                    if max_items is not None and len(out) >= max_items:
                        break
            return out

    def delete_history(self, prompt_id: str) -> None:
        with self._lock:
            self._history.pop(prompt_id, None)
            self._visible_at.pop(prompt_id, None)

    def clear_history(self) -> None:
        with self._lock:
            self._history.clear()
            self._visible_at.clear()
