"""Progress lines for concurrent downloads: one line per file every few seconds, thread-safe.

Container logs are not terminals, so there are no bars or carriage returns: each line stands
alone and says file, bytes, percent, speed and time left.

    [models] qwen_image_vae.safetensors: 120.0 MiB / 242.0 MiB (49%), 80.2 MiB/s, 2s left
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

__all__ = ["Progress", "human_bytes"]

PREFIX = "[models]"


def human_bytes(count: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


@dataclass
class _Transfer:
    total: int | None
    done: int
    resumed_from: int
    started: float
    last_line: float


class Progress:
    """Reports transfers to `stream` (stderr), at most one line per file per `interval_s`."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._transfers: dict[str, _Transfer] = {}

    def line(self, message: str) -> None:
        with self._lock:
            self._write(f"{PREFIX} {message}")

    def start(self, name: str, *, total: int | None, offset: int) -> None:
        now = self._clock()
        with self._lock:
            self._transfers[name] = _Transfer(total, offset, offset, now, now)
            size = human_bytes(total) if total is not None else "unknown size"
            resumed = f", resuming at {human_bytes(offset)}" if offset else ""
            self._write(f"{PREFIX} {name}: downloading ({size}{resumed})")

    def advance(self, name: str, count: int) -> None:
        now = self._clock()
        with self._lock:
            transfer = self._transfers.get(name)
            if transfer is None:
                return
            transfer.done += count
            if now - transfer.last_line >= self._interval_s:
                transfer.last_line = now
                self._write(self._status(name, transfer, now))

    def restart(self, name: str) -> None:
        """The server ignored our Range request: the count starts again from zero."""
        with self._lock:
            transfer = self._transfers.get(name)
            if transfer is not None:
                transfer.done = transfer.resumed_from = 0

    def finish(self, name: str) -> float:
        """Forget a transfer; return its average speed in bytes per second."""
        now = self._clock()
        with self._lock:
            transfer = self._transfers.pop(name, None)
        if transfer is None:
            return 0.0
        elapsed = max(now - transfer.started, 1e-9)
        return (transfer.done - transfer.resumed_from) / elapsed

    def _status(self, name: str, transfer: _Transfer, now: float) -> str:
        elapsed = max(now - transfer.started, 1e-9)
        speed = (transfer.done - transfer.resumed_from) / elapsed
        text = f"{PREFIX} {name}: {human_bytes(transfer.done)}"
        if transfer.total:
            percent = 100.0 * transfer.done / transfer.total
            text += f" / {human_bytes(transfer.total)} ({percent:.0f}%)"
        text += f", {human_bytes(speed)}/s"
        if transfer.total and speed > 0:
            text += f", {_duration(max(transfer.total - transfer.done, 0) / speed)} left"
        return text

    def _write(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()
