"""Housekeeping that waits until a job's result is out: its files and its history entry.

A finished job still owes ComfyUI two things: the files it uploaded and wrote (`JobCleanup`) and
the prompt's history entry (POST /history delete). Neither changes the result, so a worker that
lives on (``python -m handler``) does them just after the result is returned, while ComfyUI
already runs the next held job, instead of on the job's own clock (docs/throughput.md,
"Per-job overhead"). `drain` waits for what is under way; a worker stopping while a history
delete waits on ComfyUI still removes the job's files (they are removed whatever happens).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .cleanup import JobCleanup

__all__ = ["AfterResult", "Forget", "tidy"]

logger = logging.getLogger(__name__)

Forget = Callable[[], Awaitable[object]]  # deletes the finished prompt's history entry


async def tidy(cleanup: JobCleanup, forget: Forget | None, *, in_thread: bool = False) -> None:
    """One job's housekeeping, in order: its history entry, then its files (always; ``in_thread``:
    off the event loop, which serves the jobs still running)."""
    try:
        if forget is not None:
            await forget()
    finally:
        if in_thread:
            await asyncio.to_thread(cleanup.run)
        else:
            cleanup.run()


class AfterResult:
    """The housekeeping of jobs whose results are out, run as tasks on the worker's loop."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def schedule(self, cleanup: JobCleanup, forget: Forget | None) -> None:
        task = asyncio.get_running_loop().create_task(self._tidy(cleanup, forget))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _tidy(cleanup: JobCleanup, forget: Forget | None) -> None:
        try:
            await tidy(cleanup, forget, in_thread=True)
        except Exception:  # detached: nobody else would hear of it
            logger.exception("housekeeping after a job failed; its files or history entry may remain")

    async def drain(self) -> None:
        """Wait for every scheduled housekeeping to end."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)  # each logs its own failure
