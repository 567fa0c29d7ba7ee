"""Plain records the test server keeps for tests and benchmarks to inspect."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ExecutionRecord", "Outcome", "RecordedRequest"]

Outcome = Literal["success", "error", "interrupted"]


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the server received it; `path` has no `/api` prefix."""

    method: str
    path: str
    query: dict[str, str]
    json: Any | None


@dataclass(frozen=True)
class ExecutionRecord:
    """How long the server itself spent on one prompt (wall-clock `time.time()` seconds).

    `started_at` is when `execution_start` was sent, `finished_at` when the history entry was
    written; `executed_nodes` lists the nodes that really ran (not the cached ones), in order.
    """

    prompt_id: str
    started_at: float
    finished_at: float
    outcome: Outcome
    executed_nodes: list[str] = field(default_factory=list)
