"""A loopback TCP proxy in front of ComfyUI whose WebSocket connections can be made to go silent.

`StallProxy.stall_websockets()` makes every `/ws` connection stop delivering ComfyUI's frames (the
bytes are read and dropped, the TCP connection stays open), while plain HTTP keeps flowing: the
"socket stops delivering while HTTP answers" fault, for the test server and a real ComfyUI alike.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["StallProxy"]

_CHUNK = 65536


class StallProxy:
    """Forward 127.0.0.1:<port> to `upstream_port`; run inside the test's event loop."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._stalled = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> StallProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stall_websockets(self) -> None:
        self._stalled = True

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            websocket = head.startswith(b"GET /ws")
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            up_writer.write(head)
            await asyncio.gather(
                self._pipe(reader, up_writer, may_stall=False),
                self._pipe(up_reader, writer, may_stall=websocket),
            )
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # either side went away: so does the connection
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, may_stall: bool
    ) -> None:
        try:
            while data := await reader.read(_CHUNK):
                if may_stall and self._stalled:
                    continue  # read and dropped: ComfyUI never blocks, the client hears nothing
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
