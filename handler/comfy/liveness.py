"""Whether ComfyUI is still executing prompts, from queue, WebSocket and process evidence.

One `Liveness` per worker connection: connection.py tells it of every WebSocket frame, and a job's
tracker asks it (`check`) whenever its prompt has been silent for COMFY_WS_IDLE_S. Each check
first looks at the process, then probes ComfyUI's queue, waiting at most COMFY_LIVENESS_PROBE_S:

- where ComfyUI has the jobs API (capabilities.py): GET /api/jobs?status=in_progress&limit=1 (is
  anything running?) and, only when nothing runs, GET /api/jobs/{id} (is our prompt waiting?).
  Both answers stay small however long the queue;
- otherwise GET /queue, whose answer carries every queued prompt (in 0.3.64 with its workflow and
  extra_data) and so grows with the queue.

Verdicts, and the evidence behind each:

- **Frozen** (`ComfyFrozen`, COMFY_FROZEN): ComfyUI's process is stopped (state ``T`` in
  /proc/<pid>/stat; needs COMFY_PID_FILE) and silent for 5 s (or COMFY_UNRESPONSIVE_S if
  shorter: a debugger's or `docker pause`'s brief stop is forgiven), or ComfyUI gave no sign of
  life at all, neither a WebSocket frame nor an answer to a probe, for COMFY_UNRESPONSIVE_S (a
  SIGSTOPped or hung process still takes TCP connections, so /system_stats "works" until its
  read times out).
- **Stalled** (`ComfyStalled`, COMFY_STALLED): ComfyUI answers, but its prompt runner is dead:
  every probe for COMFY_RUNNER_STALL_S shows the job's prompt pending and nothing running. A live
  runner takes a pending prompt within milliseconds; between two prompts it pauses only to unload
  models and collect garbage (main.py `prompt_worker`), seconds at most.

Never a verdict: a prompt that runs and is silent. A 10-minute sampler step without progress
events or a 20 GB model load sends no frame for minutes and may use the GPU rather than the CPU,
but ComfyUI's HTTP server (its own thread) keeps answering and shows the prompt running.
Only the job's deadline ends such a prompt.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ComfyFrozen, ComfyNoAnswer, ComfyStalled, ComfyUnavailable
from .client import ComfyClient
from .process import comfy_pid, comfy_process_stopped

__all__ = ["STOPPED_GRACE_S", "Liveness", "LivenessOptions"]

STOPPED_GRACE_S = 5.0  # a stopped process silent this long is frozen (COMFY_UNRESPONSIVE_S if shorter)


@dataclass(frozen=True)
class RunnerView:
    """What one probe saw of ComfyUI's prompt runner, as far as the stall verdict needs."""

    ours_waiting: bool  # the job's prompt is pending
    any_running: bool  # ComfyUI is executing some prompt


@dataclass(frozen=True)
class LivenessOptions:
    probe_s: float = 3.0  # COMFY_LIVENESS_PROBE_S
    unresponsive_s: float = 10.0  # COMFY_UNRESPONSIVE_S
    stall_s: float = 10.0  # COMFY_RUNNER_STALL_S
    pid_file: Path | None = None  # COMFY_PID_FILE
    restartable: bool = False  # COMFY_SUPERVISED and COMFY_PID_FILE: ComfyUI can be restarted in place


class Liveness:
    """The evidence of one connection: when ComfyUI last gave a sign of life, which prompt waits
    with nothing running since when."""

    def __init__(self, client: ComfyClient, options: LivenessOptions) -> None:
        self._client = client
        self.options = options
        self._last_heard = time.monotonic()
        self._stalled_since: dict[str, float] = {}
        self.last_probe_answered = True

    def heard(self) -> None:
        """ComfyUI said something (a WebSocket frame, an HTTP answer)."""
        self._last_heard = time.monotonic()

    def forget(self, prompt_id: str) -> None:
        self._stalled_since.pop(prompt_id, None)

    @property
    def silent_s(self) -> float:
        return time.monotonic() - self._last_heard

    async def check(self, prompt_id: str, *, stage: str) -> bool:
        """Raise ComfyFrozen or ComfyStalled on evidence; True when ComfyUI answered the probe (the
        caller may then ask /history), False when it did not (yet) within COMFY_LIVENESS_PROBE_S.

        A refused connection is not this module's verdict: True, and the caller's own HTTP call
        finds out (COMFY_CRASHED)."""
        if comfy_process_stopped(self.options.pid_file):
            if self.silent_s >= min(STOPPED_GRACE_S, self.options.unresponsive_s):
                raise self._frozen(prompt_id, stage, stopped_pid=comfy_pid(self.options.pid_file))
            self.last_probe_answered = False  # a probe would only wait out its timeout: look again soon
            return False
        view = await self._probe(prompt_id)
        if view is None:
            if self.silent_s >= self.options.unresponsive_s:
                raise self._frozen(prompt_id, stage, stopped_pid=None)
            return False
        self._check_runner(prompt_id, view)
        return True

    async def _probe(self, prompt_id: str) -> RunnerView | None:
        """Look at the queue within COMFY_LIVENESS_PROBE_S; None when ComfyUI took the connection but
        did not answer in time. A refused or reset connection raises ComfyUnavailable."""
        try:
            async with asyncio.timeout(self.options.probe_s):
                view = await self._look(prompt_id)
        except (TimeoutError, ComfyNoAnswer):
            self.last_probe_answered = False
            return None
        except ComfyUnavailable:
            self.last_probe_answered = True
            raise
        self.last_probe_answered = True
        self.heard()
        return view

    async def _look(self, prompt_id: str) -> RunnerView:
        if self._client.capabilities.jobs_api:
            if await self._client.running_job_ids():
                return RunnerView(ours_waiting=False, any_running=True)  # whichever runs: not stalled
            job = await self._client.job(prompt_id)
            waiting = job is not None and job.get("status") == "pending"
            return RunnerView(ours_waiting=waiting, any_running=False)
        entries = await self._client.queue_entries()
        ours = next((entry for entry in entries if entry.prompt_id == prompt_id), None)
        return RunnerView(
            ours_waiting=ours is not None and not ours.running,
            any_running=any(entry.running for entry in entries),
        )

    def _check_runner(self, prompt_id: str, view: RunnerView) -> None:
        if not view.ours_waiting or view.any_running:
            self._stalled_since.pop(prompt_id, None)
            return
        since = self._stalled_since.setdefault(prompt_id, time.monotonic())
        waited = time.monotonic() - since
        if waited >= self.options.stall_s:
            raise ComfyStalled(prompt_id=prompt_id, waited_s=waited, restartable=self.restartable)

    @property
    def restartable(self) -> bool:
        return self.options.restartable

    def _frozen(self, prompt_id: str, stage: str, *, stopped_pid: int | None) -> ComfyFrozen:
        return ComfyFrozen(
            stage=stage,
            prompt_id=prompt_id,
            host=self._client.host,
            silent_s=self.silent_s,
            stopped_pid=stopped_pid,
            restartable=self.restartable,
        )
