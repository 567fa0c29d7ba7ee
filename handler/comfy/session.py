"""Follow one queued prompt to its end over the worker's connection, with /history as the fallback.

The prompt's events (connection.py routes them) tell us progress, streamed images and completion;
/history is the truth about the outcome. If the socket drops (a `Gap`) or goes silent we ask
/history; while there is no socket we poll it; if ComfyUI's process dies we fail at once with
`ComfyCrashed`. A lost message therefore never hangs a job (shared/comfyui-protocol README,
"Completion detection"). Where ComfyUI has the jobs API (capabilities.py), one GET /api/jobs/{id}
replaces /history + /queue: it tells "still running" from "gone" in one answer.

Progress is reported about once a second while the prompt runs, even when ComfyUI is silent: the
percentage moves with time (progress_estimate.py), with what the running node is doing (loading
a model) and how long it has been at it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..browser_nodes import NO_BROWSER_ERROR, BrowserHandshake
from ..errors import ComfyCrashed, ComfyUnavailable, HistoryMissing, Interrupted
from ..progress_estimate import STEPS_FROM, RunPlan, StepPace, creep, model_behind, model_file, node_fill
from ..values import RunProgress
from . import events as ev
from .connection import ComfyConnection, Gap, SocketDown, Subscription
from .process import comfy_process_dead

__all__ = [
    "PromptOutcome",
    "PromptTracker",
    "RunProgress",
    "StreamedImage",
    "TrackerOptions",
    "waiting_activity",
]

logger = logging.getLogger(__name__)

_TICK_S = 1.0  # a progress update (time moves the estimate) at least this often while running
_JOB_DONE = frozenset({"completed", "failed", "cancelled"})  # /api/jobs statuses with a history entry


@dataclass(frozen=True)
class StreamedImage:
    """An image an output node sent over the socket instead of saving it (SaveImageWebsocket)."""

    node_id: str
    path: Path
    mime_type: str


@dataclass
class PromptOutcome:
    """How the prompt ended, read from /history, plus what only the socket carried."""

    prompt_id: str
    history: dict[str, Any]
    node_errors: dict[str, Any] = field(default_factory=dict)  # branches ComfyUI refused but skipped
    streamed: list[StreamedImage] = field(default_factory=list)
    queued_at: float = 0.0
    started_at: float | None = None
    finished_at: float = 0.0

    @property
    def status(self) -> str:
        """``success``, ``error`` or ``interrupted``."""
        status = self.history.get("status") or {}
        if status.get("status_str") == "success" and status.get("completed", True):
            return "success"
        return "interrupted" if self.terminal_message[0] == "execution_interrupted" else "error"

    @property
    def terminal_message(self) -> tuple[str, dict[str, Any]]:
        """The last execution_error / execution_interrupted message in history, if any."""
        messages = (self.history.get("status") or {}).get("messages") or []
        for message in reversed(messages):
            if (
                isinstance(message, list)
                and len(message) == 2
                and message[0] in ("execution_error", "execution_interrupted")
                and isinstance(message[1], dict)
            ):
                return str(message[0]), message[1]
        return "", {}


@dataclass(frozen=True)
class TrackerOptions:
    ws_idle_s: float
    reconnect_attempts: int
    reconnect_delay_s: float
    pid_file: Path | None


class PromptTracker:
    """Queue one prompt and follow it to the end over the worker's shared connection. One per job."""

    def __init__(
        self,
        connection: ComfyConnection,
        options: TrackerOptions,
        *,
        workflow: Mapping[str, Mapping[str, Any]],
        output_nodes: frozenset[str],
        workdir: Path,
        on_progress: Callable[[RunProgress], None],
        on_queued: Callable[[], None] | None = None,
        on_started: Callable[[], None] | None = None,
        browser_answers: Mapping[str, BrowserHandshake] | None = None,
    ) -> None:
        self._connection = connection
        self._comfy = connection.client
        self._browser_answers = dict(browser_answers or {})  # node id -> how to refuse its request
        self._options = options
        self._workflow = workflow
        self._output_nodes = output_nodes
        self._workdir = workdir
        self._on_progress = on_progress
        self._on_queued = on_queued
        self._on_started = on_started
        self._prompt_id = ""
        self._current_node: str | None = None
        self._done_nodes: set[str] = set()
        self._streamed: list[StreamedImage] = []
        self._plan = RunPlan.of(workflow)
        self._node_started_at: float | None = None
        self._step: tuple[int, int] | None = None  # the running node's (value, max), if it has steps
        # The running node's steps: fill before the first, first step (value, time), last step time.
        self._steps_base = 0.0
        self._first_step: tuple[int, float] = (0, 0.0)
        self._last_step_at = 0.0
        self._activity: dict[str, str] = {}  # node -> ComfyUI's activity (progress_state, newer ComfyUI)
        self.queued_at: float | None = None
        self.started_at: float | None = None
        self.stage = "waiting in ComfyUI's queue"
        self._ahead: int | None = None  # the worker's jobs ahead of ours in the queue, as last reported

    async def run(self, *, prompt_id: str, extra_data: dict[str, Any]) -> PromptOutcome:
        """Queue the workflow and return once ComfyUI has finished with it."""
        self._prompt_id = prompt_id
        # Subscribe before queueing: the first messages of a fast prompt arrive within milliseconds.
        subscription = self._connection.subscribe(prompt_id)
        try:
            queued = await self._comfy.queue_prompt(
                dict(self._workflow),
                client_id=self._connection.client_id,
                prompt_id=prompt_id,
                extra_data=extra_data,
            )
            self.queued_at = time.monotonic()
            if self._on_queued is not None and self.started_at is None:
                self._on_queued()
            self._report_wait()
            history = await self._follow(subscription)
        finally:
            self._connection.unsubscribe(prompt_id)
            self._connection.liveness.forget(prompt_id)
        return PromptOutcome(
            prompt_id=prompt_id,
            history=history,
            node_errors=queued.node_errors,
            streamed=self._streamed,
            queued_at=self.queued_at,
            started_at=self.started_at,
            finished_at=time.monotonic(),
        )

    async def _follow(self, subscription: Subscription) -> dict[str, Any]:
        idle_s = self._options.ws_idle_s
        heard_at = time.monotonic()
        while True:
            try:
                item = await subscription.next(min(idle_s, _TICK_S))
            except TimeoutError:
                self._tick()
                # Without a socket nothing arrives: poll about once a second. With one, silence
                # for ws_idle_s: a long node, or a socket that stopped delivering. /history decides,
                # once liveness has ruled out a frozen ComfyUI or a dead prompt runner; while
                # ComfyUI is slow to answer liveness's probe, look again every tick.
                quiet = not self._connection.liveness.last_probe_answered
                if self._connection.socket_up and not quiet and time.monotonic() - heard_at < idle_s:
                    continue
                heard_at = time.monotonic()
                if not await self._alive():
                    continue
                history = await self._history_if_done()
                if history is not None:
                    self._apply_waiting(subscription)  # the prompt's start may be among them
                    return history
                continue
            heard_at = time.monotonic()
            if isinstance(item, Gap | SocketDown):
                self._check_process()
                if isinstance(item, Gap):
                    logger.warning("prompt %s: %s; asking /history", self._prompt_id, item.reason)
                history = await self._history_if_done()  # the end may have been in the lost frames
                if history is not None:
                    return history
                continue
            if isinstance(item, ev.BrowserRequest):
                await self._answer_browser(item)
            elif self._handle(item):
                return await self._final_history()

    def _handle(self, event: ev.Event) -> bool:
        """Apply one event; True once ComfyUI says the prompt is finished."""
        if event.prompt_id is not None and event.prompt_id != self._prompt_id:
            return False  # another client's prompt
        if isinstance(event, ev.ExecutionStart):
            if self.started_at is None:
                self.started_at = time.monotonic()
                if self._on_started is not None:
                    self._on_started()
            self.stage = "running"
            self._report("running")
        elif isinstance(event, ev.ExecutionCached):
            self._done_nodes.update(n for n in event.nodes if n in self._workflow)
            self._report("running")
        elif isinstance(event, ev.Executing):
            if event.node is None:
                return event.prompt_id == self._prompt_id
            if event.node != self._current_node:  # a reconnect repeats the running node: not done
                if self._current_node is not None:
                    self._done_nodes.add(self._current_node)
                self._node_started_at, self._step = time.monotonic(), None
            self._current_node = event.node
            self.stage = f"running node {event.node} ({self._class_of(event.node)})"
            self._report("running")
        elif isinstance(event, ev.Progress):
            if event.node is None or event.node == self._current_node:
                self._note_step(event.value, event.max)
            self._report("running", step=event.value, max_steps=event.max, node=event.node)
        elif isinstance(event, ev.ProgressState):
            self._note_activity(event)
        elif isinstance(event, ev.Executed):
            self._done_nodes.add(event.node)
        elif isinstance(event, ev.BinaryImage):
            self._keep_streamed(event)
        return False

    async def _answer_browser(self, request: ev.BrowserRequest) -> None:
        """Refuse a browser request of one of our running nodes at once, so it stops waiting.

        These frames go to every socket; ComfyUI runs one prompt at a time, so a request from
        the node our prompt is running now is ours.
        """
        handshake = self._browser_answers.get(request.node or "")
        if handshake is None or handshake.event != request.kind or request.node != self._current_node:
            return
        try:
            await self._comfy.answer_browser(
                handshake.answer_route, {"request_id": request.request_id, "error": NO_BROWSER_ERROR}
            )
        except ComfyUnavailable as exc:  # the node then waits out its own timeout; the job goes on
            logger.warning("could not answer %s of node %s: %s", request.kind, request.node, exc.message)

    def _apply_waiting(self, subscription: Subscription) -> None:
        """A poll found the prompt finished: apply the events that came meanwhile (its start time)."""
        for item in subscription.take_waiting():
            if not isinstance(item, Gap | SocketDown | ev.BrowserRequest):
                self._handle(item)

    def _note_step(self, value: int, maximum: int) -> None:
        now = time.monotonic()
        if self._step is None:  # the first step: what came before keeps its part of the share
            started = self._node_started_at if self._node_started_at is not None else now
            self._steps_base = min(creep(now - started), STEPS_FROM)
            self._first_step = (value, now)
        self._step, self._last_step_at = (value, maximum), now

    def _pace(self, now: float) -> StepPace | None:
        if self._step is None:
            return None
        value, maximum = self._step
        first_value, first_at = self._first_step
        if value > first_value:
            step_s = (self._last_step_at - first_at) / (value - first_value)
        else:  # one step so far: assume the next takes as long as the wait for the first (slowly)
            started = self._node_started_at if self._node_started_at is not None else first_at
            step_s = max(first_at - started, 1.0)
        return StepPace(self._steps_base, value, maximum, now - self._last_step_at, step_s)

    def _note_activity(self, state: ev.ProgressState) -> None:
        """Newer ComfyUI says what a running node spends its time on (``"loading"``)."""
        before = dict(self._activity)
        self._activity = {
            node.node: node.activity for node in state.nodes if node.activity and node.state == "running"
        }
        if self._activity != before:
            self._report("running")

    def _tick(self) -> None:
        """No news from ComfyUI for a second: time still moves the estimate, and a prompt still
        in ComfyUI's queue says so when the jobs ahead of it change."""
        if self.started_at is not None and self._current_node is not None:
            self._report("running")
        elif self.started_at is None and self.queued_at is not None:
            self._report_wait()

    def _report_wait(self) -> None:
        """Queued, not started: ``waiting`` while this worker's other jobs run or wait ahead of it
        (pipelined intake), else ``queued``. Sent when that changes: a client sees nothing new in a
        repeat, and each update costs the SDK a thread and an HTTP request."""
        ahead = self._connection.prompts_ahead(self._prompt_id)
        if ahead == self._ahead:
            return
        self._ahead = ahead
        if ahead == 0:
            self._report("queued")
        else:
            self._report("waiting", activity=waiting_activity(ahead))

    def _keep_streamed(self, image: ev.BinaryImage) -> None:
        # Latent previews (KSampler) arrive the same way; only output nodes' frames are outputs.
        node = image.node or self._current_node
        if node is None or node not in self._output_nodes:
            return
        index = len(self._streamed) + 1
        suffix = ".jpg" if image.mime_type == "image/jpeg" else ".png"
        path = self._workdir / f"ws_{node}_{index:05d}{suffix}"
        path.write_bytes(image.data)
        self._streamed.append(StreamedImage(node_id=node, path=path, mime_type=image.mime_type))

    async def _final_history(self) -> dict[str, Any]:
        """ComfyUI writes the entry before its final status frame; allow a short lag anyway."""
        for _ in range(50):
            history = await self._history_if_done()
            if history is not None:
                return history
            await asyncio.sleep(0.1)
        raise HistoryMissing(prompt_id=self._prompt_id)

    async def _alive(self) -> bool:
        """Liveness evidence (liveness.py): raise if ComfyUI is frozen or its runner is dead;
        False while ComfyUI is slow to answer (not yet frozen), so /history is not asked."""
        try:
            return await self._connection.liveness.check(self._prompt_id, stage=self.stage)
        except ComfyUnavailable:
            return True  # refused or reset: _history_if_done's own call tells a crash

    async def _history_if_done(self) -> dict[str, Any] | None:
        """The history entry if the prompt finished; raise if ComfyUI died or dropped the prompt."""
        if self._connection.capabilities.jobs_api:
            return await self._history_via_jobs()
        try:
            history = await self._comfy.history(self._prompt_id)
            if history is not None:
                return history
            running, pending = await self._comfy.queue()
        except ComfyUnavailable:
            await self._confirm_alive()
            return None
        if self._prompt_id in running or self._prompt_id in pending:
            return None
        # Not queued and no history: it finished between the two calls, or someone removed it.
        history = await self._comfy.history(self._prompt_id)
        if history is None:
            raise Interrupted(
                {},
                prompt_id=self._prompt_id,
                reason="the prompt disappeared from ComfyUI's queue (someone cleared or deleted it)",
            )
        return history

    async def _history_via_jobs(self) -> dict[str, Any] | None:
        """The same with one GET /api/jobs/{id}: pending, running, finished or unknown at once
        (ComfyUI reads its queue and history together), /history only once it has an entry."""
        try:
            job = await self._comfy.job(self._prompt_id)
            if job is not None and job.get("status") not in _JOB_DONE:
                return None  # pending or in_progress
            history = await self._comfy.history(self._prompt_id)
        except ComfyUnavailable:
            await self._confirm_alive()
            return None
        if history is None and job is None:
            raise Interrupted(
                {},
                prompt_id=self._prompt_id,
                reason="ComfyUI no longer knows the prompt (someone cleared its queue or deleted it)",
            )
        return history  # None: a finished job whose entry is not readable yet; asked again later

    async def _confirm_alive(self, attempts: int | None = None) -> None:
        """Raise ComfyCrashed unless ComfyUI answers HTTP within the reconnect budget."""
        attempts = max(1, self._options.reconnect_attempts if attempts is None else attempts)
        for attempt in range(attempts):
            self._check_process()
            try:
                await self._comfy.system_stats()
                return
            except ComfyUnavailable:
                if attempt + 1 < attempts:
                    await asyncio.sleep(self._options.reconnect_delay_s)
        raise ComfyCrashed(stage=self.stage, prompt_id=self._prompt_id, host=self._comfy.host)

    def _check_process(self) -> None:
        if comfy_process_dead(self._options.pid_file):
            raise ComfyCrashed(stage=self.stage, prompt_id=self._prompt_id)

    def _class_of(self, node: str) -> str:
        entry = self._workflow.get(node)
        return str(entry.get("class_type")) if isinstance(entry, Mapping) else "?"

    def _report(
        self,
        stage: str,
        *,
        step: int | None = None,
        max_steps: int | None = None,
        node: str | None = None,
        activity: str | None = None,
    ) -> None:
        node = node or self._current_node
        if step is None and self._step is not None and node == self._current_node:
            step, max_steps = self._step  # a tick between steps still shows where the sampler is
        now = time.monotonic()
        running = stage == "running" and self.started_at is not None
        node_elapsed = now - self._node_started_at if running and self._node_started_at else None
        percent = 0.0 if stage in ("queued", "waiting") else None
        if running:
            fill = node_fill(node_elapsed or 0.0, self._pace(now))
            percent = self._plan.percent(done=self._done_nodes, current=self._current_node, fill=fill)
        self._on_progress(
            RunProgress(
                stage=stage,
                node=node,
                node_class=self._class_of(node) if node else None,
                step=step,
                max_steps=max_steps,
                nodes_done=len(self._done_nodes),
                nodes_total=len(self._workflow),
                percent=percent,
                activity=self._activity_of(node) if running else activity,
                elapsed_s=round(now - self.started_at, 1) if running and self.started_at else None,
                node_elapsed_s=round(node_elapsed, 1) if node_elapsed is not None else None,
            )
        )

    def _activity_of(self, node: str | None) -> str | None:
        """What the running node does: "loading model <file>" while it loads one (ComfyUI says so,
        or a loader node runs and has no steps yet), else ComfyUI's own word for it, else None."""
        if node is None or node != self._current_node:
            return None
        said = self._activity.get(node)
        if said == "loading":  # newer ComfyUI: a sampler moving weights to the GPU says so too
            model = model_behind(self._workflow, node)
            return f"loading model {model}" if model else "loading a model"
        model = model_file(self._workflow.get(node))
        if said is None and model is not None and self._step is None:
            return f"loading model {model}"
        return said


def waiting_activity(ahead: int) -> str:
    """The ``waiting`` stage's words: what a queued prompt waits for."""
    if ahead == 1:
        return "queued behind another job in this worker"
    return f"queued behind {ahead} other jobs in this worker"
