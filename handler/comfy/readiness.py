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
    comfy: ComfyClient, *, timeout_s: float, poll_s: float, pid_file: Path | None, supervised: bool = False
) -> dict[str, Any]:
    """Poll GET /system_stats until it answers; return its answer (capabilities.py reads the version).

    A dead process fails at once, unless ``supervised`` (COMFY_SUPERVISED: start.sh restarts
    ComfyUI and rewrites the PID file): then the wait goes on, up to ``timeout_s``, for the new one.
    """
    deadline = time.monotonic() + timeout_s
    last_error = "its process is not running"
    while True:
        dead = comfy_process_dead(pid_file)
        if dead and not supervised:
            raise ComfyCrashed(pid_file=str(pid_file))
        if not dead:
            try:
                return await comfy.system_stats()
            except ComfyUnavailable as exc:
                last_error = exc.message
        if time.monotonic() >= deadline:
            if dead:
                raise ComfyCrashed(pid_file=str(pid_file))
            raise ComfyNotReady(host=comfy.host, timeout_s=timeout_s, last_error=last_error)
        await asyncio.sleep(poll_s)
