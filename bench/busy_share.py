"""How much of a span ComfyUI spent executing, from its /history entries. Pure, no I/O.

A history entry's ``status.messages`` carry ComfyUI's own wall-clock stamps (ms since the epoch):
``execution_start`` when the prompt left the queue, and ``execution_success`` (or
``execution_error`` / ``execution_interrupted``) when it ended. That window is what a worker pays
for usefully; everything else in the span (job-take, upload, queueing, fetching outputs, the
SDK's own pauses) is ComfyUI idling.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["JobSpan", "busy_seconds", "execution_window", "span_of"]

_ENDS = ("execution_success", "execution_error", "execution_interrupted")


def execution_window(entry: Mapping[str, Any]) -> tuple[float, float]:
    """(start, end) in seconds since the epoch of one prompt's execution, from its history entry.

    Raises ValueError naming what is missing when the entry has no start or no end (a prompt still
    running, or a history entry from something that is not ComfyUI).
    """
    stamps: dict[str, float] = {}
    for message in entry.get("status", {}).get("messages", []):
        name, data = message[0], message[1]
        if isinstance(data, Mapping) and isinstance(data.get("timestamp"), (int, float)):
            stamps.setdefault(name, float(data["timestamp"]) / 1000.0)
    if "execution_start" not in stamps:
        raise ValueError("the history entry has no execution_start message: did the prompt run?")
    ends = [stamps[name] for name in _ENDS if name in stamps]
    if not ends:
        raise ValueError("the history entry has no execution_success/error/interrupted message yet")
    return stamps["execution_start"], ends[0]


def busy_seconds(windows: Iterable[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of [start, end] covered by at least one window (overlaps counted once)."""
    covered, reached = 0.0, start
    for lo, hi in sorted(windows):
        lo, hi = max(lo, reached), min(hi, end)
        if hi > lo:
            covered += hi - lo
            reached = hi
    return covered


@dataclass(frozen=True)
class JobSpan:
    """One job as the endpoint saw it, in seconds since the epoch: taken by the worker, result in."""

    taken: float
    finished: float

    @classmethod
    def from_status(cls, submitted: float, status: Mapping[str, Any]) -> JobSpan:
        """From the client's submission time and RunPod's /status body (delayTime: in the queue
        until a worker took it; executionTime: from the take to the result, in ms)."""
        taken = submitted + int(status["delayTime"]) / 1000.0
        return cls(taken=taken, finished=taken + int(status["executionTime"]) / 1000.0)


def span_of(jobs: Sequence[JobSpan]) -> tuple[float, float]:
    """From the first take to the last result."""
    if not jobs:
        raise ValueError("no jobs: a span needs at least one")
    return min(job.taken for job in jobs), max(job.finished for job in jobs)
