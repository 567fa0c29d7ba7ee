"""Wait until ComfyUI answers, failing fast if its process already died."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ..errors import ComfyCrashed, ComfyNotReady, ComfyUnavailable
from .client import ComfyClient
from .process import comfy_process_dead

__all__ = ["wait_until_ready"]


async def wait_until_ready(
    comfy: ComfyClient, *, timeout_s: float, poll_s: float, pid_file: Path | None
) -> float:
    """Poll GET /system_stats until it answers; return the seconds waited."""
    started = time.monotonic()
    deadline = started + timeout_s
    while True:
        if comfy_process_dead(pid_file):
            raise ComfyCrashed(pid_file=str(pid_file))
        try:
            await comfy.system_stats()
            return time.monotonic() - started
        except ComfyUnavailable as exc:
            if time.monotonic() >= deadline:
                raise ComfyNotReady(host=comfy.host, timeout_s=timeout_s, last_error=exc.message) from exc
        await asyncio.sleep(poll_s)
