"""Getting one prompt out of ComfyUI: the worker's one stop, whatever ended the job.

`stop_prompt` serves every caller, each with its own budget: a failed job (aftercare.py,
COMFY_INTERRUPT_SETTLE_S) and a job's deadline or cancel (worker.py, COMFY_STOP_WAIT_S: the result
comes at the deadline whatever ComfyUI does). Each pass (`ask_to_let_go`, which recovery.py's
orphan follower and leftover clearing use too, at their own pace) looks the prompt up and asks
ComfyUI to let go of it:

- where ComfyUI has POST /api/jobs/{id}/cancel (capabilities.py): GET /api/jobs/{id}, then the
  cancel while it is pending or in progress. ComfyUI dequeues or interrupts it atomically, under
  its queue lock, so the cancel never hits a prompt that started meanwhile; no /queue read (its
  answer grows with the queue).
- otherwise GET /queue: a pending prompt is deleted from the queue; a running one gets
  POST /interrupt naming it, which 0.3.64 ignores unless that prompt is the one running now. Only
  a prompt the queue shows running is interrupted: never another job's (pipelined workers hold two).

Passes are 50 ms apart, doubling up to 2 s (a few calls per stop, not one every 50 ms: issue 14
saw 188 POST /interrupt in 10 s); every pass asks again, since a POST /prompt still in flight may
queue the prompt after a first delete, and a prompt that started after an interrupt reset the flag.
Once ComfyUI has let go, its history entry (what the prompt wrote before it ended) is read and
deleted: ComfyUI would otherwise keep the whole workflow in memory.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ComfyUnavailable
from .client import ComfyClient

__all__ = ["StopOutcome", "StopState", "ask_to_let_go", "stop_prompt"]

logger = logging.getLogger(__name__)

_FIRST_PAUSE_S = 0.05  # 50, 100, 200, 400 ms... between passes
_MAX_PAUSE_S = 2.0
_ACTIVE = {"pending": "pending", "in_progress": "running"}  # jobs API status -> what we saw

StopState = Literal["stopped", "removed", "not_queued", "still_running"]


@dataclass(frozen=True)
class StopOutcome:
    """What became of the prompt: ``stopped`` (it ran, or had run, and ended), ``removed`` (it was
    still queued and never ran), ``not_queued`` (ComfyUI never had it) or ``still_running``
    (ComfyUI did not let go within the budget, or did not answer); with its history entry, if any."""

    state: StopState
    history: dict[str, Any] | None = None


async def stop_prompt(comfy: ComfyClient, prompt_id: str, *, budget_s: float) -> StopOutcome:
    """Get the prompt out of ComfyUI within ``budget_s`` (every call included); never raises a
    WorkerError. Its history entry is deleted once read."""
    seen: list[str] = []  # "pending" / "running" as each pass found it, "gone" at the end
    try:
        async with asyncio.timeout(budget_s):
            return await _stop(comfy, prompt_id, seen)
    except TimeoutError:
        pass
    except ComfyUnavailable as exc:
        logger.warning("could not stop prompt %s: %s", prompt_id, exc.message)
    if seen and seen[-1] == "gone":  # it left; reading its history failed or took too long
        return StopOutcome("stopped" if "running" in seen else "removed")
    return StopOutcome("still_running")


async def _stop(comfy: ComfyClient, prompt_id: str, seen: list[str]) -> StopOutcome:
    pause_s = _FIRST_PAUSE_S
    while (where := await ask_to_let_go(comfy, prompt_id)) is not None:
        seen.append(where)
        await asyncio.sleep(pause_s)
        pause_s = min(pause_s * 2, _MAX_PAUSE_S)
    seen.append("gone")
    history = await comfy.history(prompt_id)
    if history is not None:  # ComfyUI keeps it (workflow included) until told; we have it
        await comfy.delete_history(prompt_id)
    if "running" in seen or (history is not None and "pending" not in seen):
        return StopOutcome("stopped", history)
    return StopOutcome("removed" if "pending" in seen else "not_queued", history)


async def ask_to_let_go(comfy: ComfyClient, prompt_id: str) -> str | None:
    """One pass: where the prompt was (``pending``/``running``) when ComfyUI was asked to let go
    of it, or None once ComfyUI no longer has it in its queue. Raises ComfyUnavailable."""
    if comfy.capabilities.jobs_cancel:
        job = await comfy.job(prompt_id)
        where = _ACTIVE.get(str(job.get("status"))) if job is not None else None
        if where is not None:
            await comfy.cancel_job(prompt_id)  # pending or running, atomically
        return where
    entry = next((entry for entry in await comfy.queue_entries() if entry.prompt_id == prompt_id), None)
    if entry is None:
        return None
    # Interrupt only a prompt the queue shows running (never another job's), else dequeue it.
    if entry.running:
        await comfy.interrupt(entry.prompt_id)
        return "running"
    await comfy.delete_queued(entry.prompt_id)
    return "pending"
