"""Getting ComfyUI free for the next job: orphans, restarts, leftovers.

At a job's deadline or cancel the worker stops its prompt within COMFY_STOP_WAIT_S (stopping.py);
what does not stop in time comes here.

- `Recovery`, one per worker connection, does what may take longer, in the background:
  - `adopt`: a prompt that did not stop in time (an *orphan*). The worker asks ComfyUI again to
    let go of it (stopping.ask_to_let_go: the jobs API's cancel where ComfyUI has it, else GET
    /queue and POST /interrupt or a queue delete) with back-off (0.25 s doubling to 5 s)
    until ComfyUI lets go of it or COMFY_INTERRUPT_SETTLE_S has passed, then cleans what it
    wrote; if it never lets go, ComfyUI is restarted.
  - `restart_for`: after a frozen ComfyUI or a dead prompt runner (liveness.py).
  - Restarting = SIGKILL to the process named by COMFY_PID_FILE; start.sh's supervision starts a
    new ComfyUI and rewrites the file; the worker waits for it to answer (COMFY_READY_TIMEOUT_S).
    Without a PID file, or if no new ComfyUI answers, the worker is unusable: every later job
    fails at once with COMFY_STUCK and refresh_worker, so RunPod replaces it.
  - `wait_free`: the gate. While any of that is under way (`busy`), jobs wait here before they
    upload or queue anything, so none queues behind an orphan; the worker's intake shrinks by
    one slot (`Worker.capacity`).
  - `clear_leftovers`: once per connection, prompts a dead worker process left in the queue
    (GET /queue lists them with their client ids; client_ids.py says whose they are) are removed,
    or stopped and adopted if running, each through stopping.ask_to_let_go; then what each left on
    disk goes (the worker's cleaner: its job's uploaded inputs, and the files it wrote).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ComfyCrashed, ComfyFrozen, ComfyStalled, ComfyStuck, ComfyUnavailable
from .client import ComfyClient, QueueEntry
from .client_ids import is_leftover
from .process import comfy_pid, comfy_process_dead, comfy_process_stopped, kill_comfy
from .readiness import wait_until_ready
from .stopping import ask_to_let_go

__all__ = ["LeftoverCleaner", "Recovery", "RecoveryOptions"]

logger = logging.getLogger(__name__)

_ORPHAN_FIRST_PAUSE_S = 0.25  # after the stop's own passes: 0.25, 0.5, 1, 2, 4, 5, 5... s
_ORPHAN_MAX_PAUSE_S = 5.0
_NO_RESTART = "that needs start.sh's supervision, COMFY_SUPERVISED, and COMFY_PID_FILE"


@dataclass(frozen=True)
class RecoveryOptions:
    settle_s: float  # COMFY_INTERRUPT_SETTLE_S
    probe_s: float  # COMFY_LIVENESS_PROBE_S: one HTTP call's wait while following an orphan
    ready_timeout_s: float  # COMFY_READY_TIMEOUT_S: a restarted ComfyUI's start
    ready_poll_s: float
    pid_file: Path | None  # COMFY_PID_FILE
    restartable: bool  # COMFY_SUPERVISED and COMFY_PID_FILE: start.sh starts a new ComfyUI


# Cleans what an orphan wrote, given its history entry (None after a restart).
Released = Callable[[dict[str, Any] | None], Awaitable[None]]
# Cleans what a dead worker's prompt left on disk, given its history entry if it has one.
LeftoverCleaner = Callable[[QueueEntry, dict[str, Any] | None], Awaitable[None]]


class Recovery:
    """The worker's background work on ComfyUI after a stop that did not land or a fault."""

    def __init__(
        self,
        comfy: ComfyClient,
        options: RecoveryOptions,
        *,
        on_restarted: Callable[[], None],
        stuck: str | None = None,
    ) -> None:
        self._comfy = comfy
        self._options = options
        self._on_restarted = on_restarted
        self._free = asyncio.Event()
        self._free.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stuck = stuck  # why ComfyUI is unusable, once it is (a new connection keeps it)
        self._leftovers_checked = False
        self.restarts = 0  # restarts done or under way: a job queued before one must queue again
        self.on_idle: Callable[[], None] | None = None

    @property
    def stuck(self) -> str | None:
        return self._stuck

    @property
    def busy(self) -> bool:
        """An orphan or a restart is being dealt with: jobs wait at the gate."""
        return not self._free.is_set()

    async def wait_free(self) -> float:
        """Wait until no orphan or restart holds ComfyUI; the seconds waited. Raise ComfyStuck if
        ComfyUI could not be freed. The caller's deadline bounds the wait."""
        self._raise_if_stuck()
        if self._free.is_set():
            return 0.0
        started = time.monotonic()
        await self._free.wait()
        self._raise_if_stuck()
        return time.monotonic() - started

    def adopt(self, prompt_id: str, *, on_released: Released) -> None:
        """Follow a prompt that did not stop in time until ComfyUI lets go of it (or restart it)."""
        logger.warning(
            "prompt %s did not stop in time; no new job until ComfyUI lets go of it (up to %g s)",
            prompt_id,
            self._options.settle_s,
        )
        self._start(self._follow_orphan(prompt_id, on_released), f"orphan-{prompt_id[:8]}")

    def restart_for(self, error: ComfyFrozen | ComfyStalled) -> None:
        """Restart ComfyUI after a fault (frozen, dead runner), unless a restart is already coming."""
        if self.busy:
            return
        self.restarts += 1  # at once: jobs that fail meanwhile know a restart explains it
        self._start(self._restart(error.summary, counted=True), "comfy-restart")

    async def clear_leftovers(self, own_client_id: str, *, clean: LeftoverCleaner) -> None:
        """Once per connection: drop what dead worker processes left in ComfyUI's queue; ``clean``
        removes what each left on disk once ComfyUI has let go of it."""
        if self._leftovers_checked:
            return
        self._leftovers_checked = True
        try:
            async with asyncio.timeout(self._options.probe_s):
                entries = await self._comfy.queue_entries()
        except (TimeoutError, ComfyUnavailable):
            return  # the job's own calls find out what is wrong
        # Pending ones first: once the running one stops, ComfyUI would take the next at once.
        for entry in sorted(entries, key=lambda entry: entry.running):
            if not is_leftover(entry.client_id, own_client_id=own_client_id):
                continue
            logger.warning(
                "removing prompt %s left %s by a previous worker process (client id %s)",
                entry.prompt_id,
                "running" if entry.running else "queued",
                entry.client_id,
            )
            try:
                where = await ask_to_let_go(self._comfy, entry.prompt_id)
                # A queued one may start between the look-up and the delete: ask once more.
                gone = where is None or await ask_to_let_go(self._comfy, entry.prompt_id) is None
            except ComfyUnavailable:
                continue
            if entry.running or where == "running" or not gone:
                self.adopt(entry.prompt_id, on_released=functools.partial(clean, entry))
            else:
                await clean(entry, None)  # never ran: only the inputs its job uploaded

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- background work ---------------------------------------------------------------------------

    def _start(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self._free.clear()
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("recovery task %s failed", task.get_name(), exc_info=task.exception())
        if not self._tasks:
            self._free.set()
            if self.on_idle is not None:
                self.on_idle()

    async def _follow_orphan(self, prompt_id: str, on_released: Released) -> None:
        settle_s = self._options.settle_s
        if await self._until_released(prompt_id, on_released, time.monotonic() + settle_s):
            return
        why = f"prompt {prompt_id} did not stop within {settle_s:g} s of its interrupt"
        why += " (COMFY_INTERRUPT_SETTLE_S)"
        if self._options.restartable and self._options.pid_file is not None:
            await self._restart(why, prompt_id=prompt_id)
            await on_released(None)
            return
        # No restart possible: jobs fail at once (COMFY_STUCK, RunPod replaces the worker); if the
        # prompt ends after all (a pod, where nobody replaces it), the worker is usable again.
        self._stuck = f"{why}, and the worker cannot restart ComfyUI in place ({_NO_RESTART})"
        logger.error("ComfyUI is unusable until it lets go of prompt %s: %s", prompt_id, self._stuck)
        if await self._until_released(prompt_id, on_released, None):
            self._stuck = None
            logger.info("ComfyUI let go of prompt %s at last; taking jobs again", prompt_id)

    async def _until_released(self, prompt_id: str, on_released: Released, deadline: float | None) -> bool:
        """Re-send the interrupt with back-off until ComfyUI lets go of the prompt (True) or the
        deadline passes or its process is stopped (False)."""
        pause_s = _ORPHAN_FIRST_PAUSE_S
        while deadline is None or time.monotonic() < deadline:
            if comfy_process_stopped(self._options.pid_file) and deadline is not None:
                return False  # frozen: waiting cannot help
            if await self._bounded(self._released(prompt_id)):
                history = await self._bounded(self._comfy.history(prompt_id))
                logger.info("ComfyUI let go of prompt %s", prompt_id)
                await on_released(history)
                if history is not None:
                    await self._bounded(self._comfy.delete_history(prompt_id))
                return True
            left = _ORPHAN_MAX_PAUSE_S if deadline is None else max(0.0, deadline - time.monotonic())
            await asyncio.sleep(min(pause_s, left))
            pause_s = min(pause_s * 2, _ORPHAN_MAX_PAUSE_S)
        return False

    async def _restart(self, why: str, *, prompt_id: str | None = None, counted: bool = False) -> None:
        pid_file = self._options.pid_file
        if not counted:
            self.restarts += 1
        if pid_file is None or not self._options.restartable:
            self._stuck = f"{why}, and the worker cannot restart ComfyUI in place ({_NO_RESTART})"
            logger.error("ComfyUI is unusable: %s", self._stuck)
            return
        old_pid = comfy_pid(pid_file)
        kill_comfy(pid_file)
        logger.warning("restarting ComfyUI (killed pid %s): %s", old_pid, why)
        started = time.monotonic()
        timeout_s = self._options.ready_timeout_s
        while comfy_pid(pid_file) in (None, old_pid) or comfy_process_dead(pid_file):
            if time.monotonic() - started >= timeout_s:
                self._stuck = (
                    f"{why}; ComfyUI was killed to free it, and no new ComfyUI process appeared in "
                    f"{pid_file} within {timeout_s:g} s (COMFY_READY_TIMEOUT_S; is start.sh supervising it?)"
                )
                logger.error("ComfyUI is unusable: %s", self._stuck)
                return
            await asyncio.sleep(0.1)
        try:
            up_at = time.monotonic()
            await wait_until_ready(
                self._comfy,
                timeout_s=max(0.1, timeout_s - (time.monotonic() - started)),
                poll_s=self._options.ready_poll_s,
                pid_file=pid_file,
                supervised=True,
            )
        except (ComfyCrashed, ComfyUnavailable) as exc:
            self._stuck = f"{why}; the restarted ComfyUI did not come up ({exc.message})"
            logger.error("ComfyUI is unusable: %s", self._stuck)
            return
        total_s = time.monotonic() - started
        waited = time.monotonic() - up_at
        logger.info("ComfyUI restarted in %.1f s (%.1f s of it starting up)", total_s, waited)
        self._on_restarted()

    async def _released(self, prompt_id: str) -> bool:
        """One pass of asking ComfyUI to let go of the prompt: True once it no longer has it."""
        return await ask_to_let_go(self._comfy, prompt_id) is None

    async def _bounded(self, call: Coroutine[Any, Any, Any]) -> Any:
        """One HTTP call within COMFY_LIVENESS_PROBE_S; None if it failed or took longer."""
        try:
            async with asyncio.timeout(self._options.probe_s):
                return await call
        except (TimeoutError, ComfyUnavailable):
            return None

    def _raise_if_stuck(self) -> None:
        if self._stuck is not None:
            raise ComfyStuck(why=self._stuck)
