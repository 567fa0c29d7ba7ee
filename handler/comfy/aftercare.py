"""What the worker does to ComfyUI once a job failed (a deadline or cancel: worker.py, stopping.py).

- Its prompt leaves ComfyUI through the one stop (stopping.py, bounded by COMFY_INTERRUPT_SETTLE_S):
  dequeued or interrupted, or cancelled through the jobs API where ComfyUI has it, then deleted
  from /history. A failed or interrupted prompt otherwise stays in ComfyUI's memory with its whole
  workflow, and a prompt still queued keeps the job's Comfy.org key readable through GET /queue
  (ComfyUI 0.3.64 shows extra_data there) after the job has ended (issue 14).
- After an out-of-memory error, POST /free: ComfyUI unloads its models and frees cached memory
  before the next prompt, so the next job does not start from a full GPU.

Nothing here raises a WorkerError: the job's own error is what its result reports.
"""

from __future__ import annotations

import logging

from ..errors import (
    ComfyCrashed,
    ComfyFrozen,
    ComfyNoAnswer,
    ComfyNotReady,
    ComfyRestarting,
    ComfyStalled,
    ComfyStuck,
    ComfyUnavailable,
    ComfyUnreachable,
    OutOfMemory,
    WorkerError,
)
from .client import ComfyClient
from .stopping import StopOutcome, stop_prompt

__all__ = ["after_failure", "release_prompt", "restarting"]

logger = logging.getLogger(__name__)


async def release_prompt(comfy: ComfyClient, prompt_id: str, *, settle_s: float) -> StopOutcome:
    """Stop the prompt if ComfyUI still has it and delete its history entry (stopping.py)."""
    stopped = await stop_prompt(comfy, prompt_id, budget_s=settle_s)
    if stopped.state == "still_running":
        logger.warning(
            "ComfyUI has not let go of prompt %s within %g s (COMFY_INTERRUPT_SETTLE_S); it may still run",
            prompt_id,
            settle_s,
        )
    return stopped


async def after_failure(
    comfy: ComfyClient, prompt_id: str | None, error: BaseException, *, settle_s: float
) -> None:
    """Let go of a failed job's prompt and, after an out-of-memory error, free ComfyUI's memory.

    Skipped when ComfyUI itself is gone or silent (crashed, unreachable, not answering in time):
    every call would only wait out its HTTP timeout again. When it answered, even wrongly (an
    HTTP error, a bad reply, a missing history entry), the prompt is released.
    """
    if isinstance(
        error,
        ComfyCrashed
        | ComfyNoAnswer
        | ComfyNotReady
        | ComfyUnreachable
        | ComfyFrozen
        | ComfyStalled
        | ComfyStuck,
    ):
        return  # gone or silent; liveness errors: recovery.py deals with ComfyUI (restart or replacement)
    if prompt_id is not None:
        await release_prompt(comfy, prompt_id, settle_s=settle_s)
    if isinstance(error, OutOfMemory):
        try:
            await comfy.free_memory()
        except ComfyUnavailable as exc:
            logger.warning(
                "could not ask ComfyUI to free its memory after an out-of-memory error: %s", exc.message
            )
        else:
            logger.info(
                "out of memory in prompt %s: asked ComfyUI to unload its models (POST /free)", prompt_id
            )


def restarting(error: BaseException, *, supervised: bool, restarted: bool) -> BaseException:
    """The error to report. Under start.sh's supervision (COMFY_SUPERVISED) a crashed ComfyUI is
    restarted in place: a crash, or any failure while ComfyUI's PID changed (``restarted``: it
    died and came back, so the prompt vanished), becomes ComfyRestarting, and the worker stays."""
    if not supervised or isinstance(error, ComfyRestarting | ComfyFrozen | ComfyStalled | ComfyStuck):
        return error
    if isinstance(error, ComfyCrashed) or (restarted and isinstance(error, WorkerError)):
        details = error.details if isinstance(error, WorkerError) else {}
        stage = details.get("stage")
        prompt_id = details.get("prompt_id")
        return ComfyRestarting(
            stage=str(stage) if stage else None, prompt_id=str(prompt_id) if prompt_id else None
        )
    return error
