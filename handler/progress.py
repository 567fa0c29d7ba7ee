"""Throttled progress updates to RunPod (``runpod.serverless.progress_update``).

Each SDK call starts a thread and an HTTP session, so updates are limited to about one per
``interval_s``; a change of stage is sent at once so clients see queued -> running -> collecting.

``percent`` never goes backwards within a job: each payload carries the highest estimate seen so
far, and stages without an estimate of their own (collecting) keep the last one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from .values import RunProgress

__all__ = ["ProgressReporter"]

Sender = Callable[[dict[str, Any]], None]


class ProgressReporter:
    def __init__(
        self, send: Sender | None, *, interval_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._send = send
        self._interval_s = interval_s
        self._clock = clock
        self._last_sent_at: float | None = None
        self._last_stage: str | None = None
        self._percent: float | None = None  # the highest estimate seen: percent never decreases
        self.sent: int = 0

    def stage(self, stage: str) -> None:
        """Report a pipeline stage outside ComfyUI's run (uploading, collecting, ...)."""
        self.update(RunProgress(stage=stage))

    def update(self, progress: RunProgress) -> None:
        if self._send is None:
            return
        estimate = _estimate(progress)
        if estimate is not None:
            self._percent = estimate if self._percent is None else max(self._percent, estimate)
        now = self._clock()
        stage_changed = progress.stage != self._last_stage
        due = self._last_sent_at is None or now - self._last_sent_at >= self._interval_s
        if not (stage_changed or due):
            return
        self._last_sent_at, self._last_stage = now, progress.stage
        self.sent += 1
        self._send(_payload(progress, self._percent))


def _estimate(progress: RunProgress) -> float | None:
    """The update's own percentage: the session's estimate, else finished nodes plus steps."""
    if progress.percent is not None:
        return min(max(progress.percent, 0.0), 100.0)
    if progress.nodes_total:
        share = progress.nodes_done / progress.nodes_total
        if progress.step and progress.max_steps:
            share += progress.step / progress.max_steps / progress.nodes_total
        return round(min(share, 1.0) * 100, 1)
    return None


def _payload(progress: RunProgress, percent: float | None) -> dict[str, Any]:
    payload = {k: v for k, v in asdict(progress).items() if v is not None}
    payload.pop("percent", None)
    if percent is not None:
        payload["percent"] = percent
    return payload
