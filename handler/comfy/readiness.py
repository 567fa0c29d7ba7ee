"""Wait until ComfyUI answers, failing fast if its process already died."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from ..errors import ComfyCrashed, ComfyNotReady, ComfyUnavailable
from .client import ComfyClient
from .process import comfy_process_dead

__all__ = ["wait_until_ready"]


async def wait_until_ready(
    comfy: ComfyClient, *, timeout_s: float, poll_s: float, pid_file: Path | None
) -> dict[str, Any]:
    """Poll GET /system_stats until it answers; return its answer (capabilities.py reads the version)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if comfy_process_dead(pid_file):
            raise ComfyCrashed(pid_file=str(pid_file))
        try:
            return await comfy.system_stats()
        except ComfyUnavailable as exc:
            if time.monotonic() >= deadline:
                raise ComfyNotReady(host=comfy.host, timeout_s=timeout_s, last_error=exc.message) from exc
        await asyncio.sleep(poll_s)
