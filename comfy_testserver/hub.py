"""The WebSocket side of the server: who is connected, and which socket gets which message.

As in ComfyUI's `PromptServer.send_sync`, messages go through one queue and one publisher task, so
every socket sees them in the order they were produced; `sid=None` means every socket, a sid means
only the newest socket of that client id (and nobody if it has none). The `ws_silent` and
`ws_drop_after_messages` knobs are applied here, at the moment a frame would be written.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .behaviour import Behaviour

__all__ = ["ClientSocket", "Hub"]

log = logging.getLogger(__name__)
_SEND_ERRORS = (ConnectionError, RuntimeError)


@dataclass
class ClientSocket:
    """One accepted WebSocket connection."""

    sid: str
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    serial: int
    feature_flags: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Message:
    payload: str | bytes
    sid: str | None
    prompt_id: str | None


class Hub:
    """Socket registry plus the ordered publisher of JSON and binary frames."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.sockets: dict[str, ClientSocket] = {}
        self.context_prompt_id: str | None = None
        """Set by the executor while a prompt runs: frames sent meanwhile count for its drop."""
        self._serials = itertools.count(1)
        self._queue: asyncio.Queue[_Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._frames_sent: dict[tuple[int, str], int] = {}
        self._dropped_prompts: set[str] = set()
        self._dead = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._publish_forever())

    async def close(self, *, code: int = 1001) -> None:
        """Stop publishing and close every socket cleanly (server shutdown)."""
        self._dead = True
        if self._task is not None:
            self._task.cancel()
        sockets, self.sockets = list(self.sockets.values()), {}
        closing = [sock.ws.close(code=code, message=b"Server shutdown") for sock in sockets]
        await asyncio.gather(*closing, return_exceptions=True)

    def kill(self) -> None:
        """Stop publishing at once; the caller aborts the connections themselves."""
        self._dead = True
        if self._task is not None:
            self._task.cancel()
        self.sockets.clear()

    # --- connections -------------------------------------------------------------------------------

    def register(self, sid: str, ws: web.WebSocketResponse, request: web.Request) -> ClientSocket:
        """Add a socket; an older socket of the same client id stays open but gets nothing more."""
        sock = ClientSocket(sid=sid, ws=ws, transport=request.transport, serial=next(self._serials))
        self.sockets[sid] = sock
        return sock

    def unregister(self, sock: ClientSocket) -> None:
        # ComfyUI pops the sid unconditionally, which would also unregister a newer socket of the
        # same client; only the socket's own entry is removed here so reconnects are race-free.
        if self.sockets.get(sock.sid) is sock:
            del self.sockets[sock.sid]

    def supports_preview_metadata(self, sid: str | None) -> bool:
        sock = self.sockets.get(sid) if sid is not None else None
        return bool(sock and sock.feature_flags.get("supports_preview_metadata"))

    # --- sending -----------------------------------------------------------------------------------

    def send(self, event: str, data: dict[str, Any], sid: str | None = None) -> None:
        """Queue a JSON frame `{"type": event, "data": data}` for `sid` (None: every socket)."""
        self._enqueue(json.dumps({"type": event, "data": data}), sid)

    def send_binary(self, payload: bytes, sid: str | None = None) -> None:
        self._enqueue(payload, sid)

    async def send_now(self, sock: ClientSocket, event: str, data: dict[str, Any]) -> None:
        """Write straight to one socket, bypassing the queue (connect-time frames)."""
        await _write(sock, json.dumps({"type": event, "data": data}))

    def _enqueue(self, payload: str | bytes, sid: str | None) -> None:
        if not self._dead:
            self._queue.put_nowait(_Message(payload, sid, self.context_prompt_id))

    async def drain(self, timeout_s: float = 2.0) -> None:
        """Wait until every queued frame has been written (or `timeout_s` passed)."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout_s)
        except TimeoutError:
            log.warning("frames still queued after %.1f s", timeout_s)

    async def _publish_forever(self) -> None:
        while True:
            message = await self._queue.get()
            try:
                await self._publish(message)
            finally:
                self._queue.task_done()

    async def _publish(self, message: _Message) -> None:
        if self.behaviour.ws_silent:
            return
        if message.sid is None:
            targets = list(self.sockets.values())
        else:
            targets = [self.sockets[message.sid]] if message.sid in self.sockets else []
        for sock in targets:
            await _write(sock, message.payload)
            if isinstance(message.payload, str) and message.prompt_id is not None:
                self._maybe_drop(sock, message.prompt_id)

    def _maybe_drop(self, sock: ClientSocket, prompt_id: str) -> None:
        limit = self.behaviour.ws_drop_after_messages
        if limit is None or prompt_id in self._dropped_prompts:
            return
        key = (sock.serial, prompt_id)
        self._frames_sent[key] = self._frames_sent.get(key, 0) + 1
        if self._frames_sent[key] >= limit:
            self._dropped_prompts.add(prompt_id)
            log.info("dropping socket %s after %d frames of prompt %s", sock.sid, limit, prompt_id)
            if sock.transport is not None:
                sock.transport.abort()


async def _write(sock: ClientSocket, payload: str | bytes) -> None:
    if sock.ws.closed:
        return
    try:
        if isinstance(payload, str):
            await sock.ws.send_str(payload)
        else:
            await sock.ws.send_bytes(payload)
    except _SEND_ERRORS:
        # A socket that went away mid-send is the client's problem, as in ComfyUI.
        log.debug("send to %s failed", sock.sid)
