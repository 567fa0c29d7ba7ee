"""One connection to ComfyUI for the worker's life: an HTTP session, one WebSocket, one client id.

Every job of the worker shares it (jobs overlap when intake is pipelined, COMFY_PIPELINE_DEPTH).
A reader task reads the socket and routes each event to the prompt it belongs to:

- a frame that names its prompt goes to that prompt's `Subscription`;
- a frame that names none (a streamed or preview image, a custom node's browser request) belongs
  to the prompt ComfyUI is executing now: it runs one prompt at a time;
- when the socket drops, every subscription gets a `Gap` (frames may be lost: /history decides)
  and the reader reconnects with the same client id; when that fails, `SocketDown` (follow by
  polling) and it keeps trying in the background.

Readiness (GET /system_stats) is checked when the connection is made or after a job met a broken
ComfyUI (`suspect`), not before every job; each time, the ComfyUI's `Capabilities` (which newer
protocol mechanisms it has, capabilities.py) are detected again, since a restarted ComfyUI may be
another version. Every frame is also evidence that ComfyUI lives: the connection's `Liveness`
(liveness.py) hears of each one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ComfyUnavailable
from ..ws_trace import trace_line
from . import events as ev
from .capabilities import PROBE_JOB_ID, Capabilities, RouteAnswer, detect_capabilities
from .client import ComfyClient, ComfySocket
from .client_ids import worker_client_id
from .liveness import Liveness, LivenessOptions
from .readiness import wait_until_ready

__all__ = ["ComfyConnection", "ConnectionOptions", "Gap", "SocketDown", "Subscription"]

logger = logging.getLogger(__name__)

_READ_SLICE_S = 3600.0  # a receive() that long without a frame just loops


@dataclass(frozen=True)
class Gap:
    """The socket dropped: frames may have been lost."""

    reason: str


@dataclass(frozen=True)
class SocketDown:
    """No socket could be had after the reconnect attempts: follow by polling."""


Item = ev.Event | Gap | SocketDown


@dataclass(frozen=True)
class ConnectionOptions:
    http_timeout_s: float
    reconnect_attempts: int
    reconnect_delay_s: float
    pid_file: Path | None
    supervised: bool = False  # COMFY_SUPERVISED: a dead ComfyUI comes back (readiness waits for it)
    trace: bool = False
    liveness: LivenessOptions = field(default_factory=LivenessOptions)


class Subscription:
    """The events of one prompt, in the order ComfyUI sent them."""

    def __init__(self, prompt_id: str) -> None:
        self.prompt_id = prompt_id
        self._items: asyncio.Queue[Item] = asyncio.Queue()

    async def next(self, timeout_s: float) -> Item:
        """The next item; raise TimeoutError if none came within ``timeout_s``."""
        # Not asyncio.wait_for: on Python 3.11 it swallows a cancel that lands as an item arrives
        # (the job's cancel then never reaches it: test_pipeline's cancel test failed 1 run in 8).
        async with asyncio.timeout(timeout_s):
            return await self._items.get()

    def put(self, item: Item) -> None:
        self._items.put_nowait(item)

    def take_waiting(self) -> list[Item]:
        """Every item that already arrived, without waiting."""
        items = []
        while not self._items.empty():
            items.append(self._items.get_nowait())
        return items


class ComfyConnection:
    """The worker's one ComfyUI connection. ``start()`` inside the event loop, ``aclose()`` at the end."""

    def __init__(self, host: str, options: ConnectionOptions) -> None:
        self.client = ComfyClient(host, http_timeout_s=options.http_timeout_s)
        self.client_id = worker_client_id()  # names this process: client_ids.py
        self.liveness = Liveness(self.client, options.liveness)
        self._options = options
        self._subscriptions: dict[str, Subscription] = {}
        self._executing: str | None = None  # the prompt ComfyUI runs now, as the socket told us
        self._ws: ComfySocket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready = False
        self._closed = False
        self._readying: asyncio.Lock | None = None  # overlapping jobs check readiness once, together
        self.sockets_opened = 0  # how many times a WebSocket was opened: one unless it dropped
        self.history_checked = False  # dead workers' history entries looked for (handler/leftovers.py)

    @property
    def host(self) -> str:
        return self.client.host

    @property
    def capabilities(self) -> Capabilities:
        """What this ComfyUI supports; the 0.3.64 protocol until ensure_ready detected it. The client
        holds it: every caller that speaks to ComfyUI (stop, liveness) uses the newer routes alike."""
        return self.client.capabilities

    @property
    def socket_up(self) -> bool:
        return self._ws is not None

    def start(self) -> None:
        self.client.open()
        self._readying = asyncio.Lock()

    async def aclose(self) -> None:
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        await self._close_socket()
        await self.client.aclose()

    async def ensure_ready(self, *, timeout_s: float, poll_s: float) -> float:
        """Wait until ComfyUI answers and the socket is open; the seconds waited (0 when it was)."""
        if self._ready and self._reader is not None and not self._reader.done():
            return 0.0
        if self._readying is None:
            raise RuntimeError("ComfyConnection used before start()")
        started = time.monotonic()
        async with self._readying:
            if not (self._ready and self._reader is not None and not self._reader.done()):
                await self._make_ready(timeout_s=timeout_s, poll_s=poll_s)
        return time.monotonic() - started

    async def _make_ready(self, *, timeout_s: float, poll_s: float) -> None:
        stats = await wait_until_ready(
            self.client,
            timeout_s=timeout_s,
            poll_s=poll_s,
            pid_file=self._options.pid_file,
            supervised=self._options.supervised,
        )
        self.client.capabilities = await self._detect_capabilities(stats)
        reader_alive = self._reader is not None and not self._reader.done()
        if self._ws is None and not reader_alive:  # a live reader reconnects by itself
            try:
                await self._open_socket()
            except ComfyUnavailable as exc:  # HTTP works: jobs follow by polling until it comes back
                logger.warning("ComfyUI's WebSocket is not available (%s); polling /history", exc.message)
        if not reader_alive:
            self._reader = asyncio.create_task(self._read_loop(), name="comfy-websocket-reader")
        self._ready = True

    async def _detect_capabilities(self, stats: dict[str, Any]) -> Capabilities:
        """Probe the newer routes once (capabilities.py); a failed probe means: not there."""
        job = await self._probe("GET", f"/api/jobs/{PROBE_JOB_ID}")
        capabilities = detect_capabilities(stats, job_probe=job, cancel_probe=None)
        if capabilities.jobs_api:  # a ComfyUI without the jobs API gets no POST to an unknown route
            cancel = await self._probe("POST", f"/api/jobs/{PROBE_JOB_ID}/cancel")
            capabilities = detect_capabilities(stats, job_probe=job, cancel_probe=cancel)
        logger.info("%s", capabilities.describe())
        return capabilities

    async def _probe(self, method: str, path: str) -> RouteAnswer | None:
        try:
            return await self.client.probe(method, path)
        except ComfyUnavailable as exc:
            logger.info("probe %s %s failed (%s): treated as absent", method, path, exc.message)
            return None

    def suspect(self) -> None:
        """A job met a ComfyUI that did not answer: check readiness again before the next one."""
        self._ready = False

    def subscribe(self, prompt_id: str) -> Subscription:
        """Start collecting a prompt's events; call before queueing it (fast prompts end in ms)."""
        subscription = Subscription(prompt_id)
        self._subscriptions[prompt_id] = subscription
        if self._ws is None:
            subscription.put(SocketDown())
        return subscription

    def unsubscribe(self, prompt_id: str) -> None:
        self._subscriptions.pop(prompt_id, None)

    def prompts_ahead(self, prompt_id: str) -> int:
        """How many of this worker's prompts, followed now, were queued before this one: the jobs
        it waits behind in ComfyUI's queue (jobs queue in the order they subscribe)."""
        for ahead, followed in enumerate(self._subscriptions):
            if followed == prompt_id:
                return ahead
        return 0

    async def _open_socket(self) -> None:
        self._ws = await self.client.open_websocket(self.client_id)
        self.sockets_opened += 1

    async def _close_socket(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def _read_loop(self) -> None:
        while not self._closed:
            ws = self._ws
            if ws is None:
                if not await self._reconnect():
                    await asyncio.sleep(max(self._options.reconnect_delay_s, 0.5))
                continue
            try:
                frame = await ws.receive(_READ_SLICE_S)
            except TimeoutError:
                continue
            if frame.kind != "closed":
                self.liveness.heard()
            if frame.kind == "closed":
                logger.warning("ComfyUI's WebSocket closed; reconnecting")
                await self._close_socket()
                self._ready = False
                self._broadcast(Gap("the WebSocket closed"))
                continue
            if frame.kind == "text":
                if self._options.trace:
                    logger.debug("ws <- %s", trace_line(frame.text))
                self._route(ev.parse_text_frame(frame.text))
            elif frame.kind == "binary":
                self._route(ev.parse_binary_frame(frame.data))

    async def _reconnect(self) -> bool:
        """Reconnect with the same client id; tell everyone to poll if that fails."""
        for attempt in range(1, self._options.reconnect_attempts + 1):
            try:
                await self._open_socket()
            except ComfyUnavailable:
                logger.info("WebSocket reconnect %d/%d failed", attempt, self._options.reconnect_attempts)
                await asyncio.sleep(self._options.reconnect_delay_s)
                continue
            logger.info("WebSocket reconnected on attempt %d", attempt)
            self._broadcast(Gap("the WebSocket was reconnected"))
            return True
        self._broadcast(SocketDown())
        return False

    def _route(self, event: ev.Event) -> None:
        prompt_id = event.prompt_id
        starts = isinstance(event, ev.ExecutionStart)
        if starts or (isinstance(event, ev.Executing) and event.node is not None and prompt_id):
            self._executing = prompt_id
        if prompt_id is None:
            if isinstance(event, ev.Status | ev.Ignored):
                return
            prompt_id = self._executing  # images and browser requests: the running prompt's
        if prompt_id is not None:
            subscription = self._subscriptions.get(prompt_id)
            if subscription is not None:
                subscription.put(event)
        if isinstance(event, ev.Executing) and event.node is None and event.prompt_id == self._executing:
            self._executing = None

    def _broadcast(self, item: Gap | SocketDown) -> None:
        for subscription in self._subscriptions.values():
            subscription.put(item)
