"""`ComfyTestServer`: runs the fake ComfyUI in a background thread with its own event loop.

The listening socket is bound in `start()` (so `url` is known at once, even with port 0) but only
starts listening after `startup_delay_s`: until then connections are refused, as with a ComfyUI
that is still booting. `kill()` stops listening and aborts every connection at once, mid-prompt
if need be, like a crashed process; `stop()` shuts down cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from .behaviour import Behaviour
from .executor import Executor
from .folders import Folders
from .hub import Hub
from .profiles import Profile, get_profile
from .records import ExecutionRecord, RecordedRequest
from .server import ComfyApp

__all__ = ["ComfyTestServer"]

log = logging.getLogger(__name__)
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0


class ComfyTestServer:
    """A protocol-faithful fake ComfyUI on loopback, speaking 0.3.64 or today's version.

    Example:
        with ComfyTestServer(root=tmp_path, profile="current") as server:
            requests.post(server.url + "/prompt", json={"prompt": workflow})

    `profile` is "0.3.64" (the default: the recorded transcripts) or "current" (PROFILES.md).
    `max_upload_mb` is ComfyUI's `--max-upload-size` (MB, default 100).
    `on_node_start(prompt_id, node_id)` is called in the server thread whenever a node starts
    executing (the CLI's `--exit-on-execute` uses it).
    """

    def __init__(
        self,
        root: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        behaviour: Behaviour | None = None,
        *,
        profile: str | Profile | None = None,
        max_upload_mb: float = 100,
        on_node_start: Callable[[str, str], None] | None = None,
    ) -> None:
        self.root = Path(root)
        self.profile = get_profile(profile)
        self.max_upload_size = round(max_upload_mb * 1024 * 1024)
        self.host = host
        self.port = port
        self.behaviour = behaviour if behaviour is not None else Behaviour()
        self.requests: list[RecordedRequest] = []
        self.executions: list[ExecutionRecord] = []
        self.folders = Folders(self.root)
        self._on_node_start = on_node_start
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Future[None] | None = None
        self._ready = threading.Event()  # loop and executor exist
        self._listening = threading.Event()
        self._startup_error: BaseException | None = None
        self._executor: Executor | None = None
        self._hub: Hub | None = None
        self._runner: web.AppRunner | None = None
        self._aio_server: asyncio.AbstractServer | None = None
        self._executor_task: asyncio.Task[None] | None = None
        self._serving = False
        self.killed = False
        """True once `kill()` (or `kill_on_execute`) took the server down."""

    # --- addresses ---------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """`host:port`, what COMFY_HOST is set to."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> ComfyTestServer:
        """Create the install layout and serve; returns once listening (or at once with a startup delay)."""
        if self._thread is not None:
            raise RuntimeError("ComfyTestServer.start() called twice")
        self.folders.create()
        family, kind, proto, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._thread_main, name=f"comfy_testserver:{self.port}", daemon=True
        )
        self._thread.start()
        self._ready.wait(_START_TIMEOUT_S)
        if self.behaviour.startup_delay_s <= 0 and not self.wait_until_listening(_START_TIMEOUT_S):
            raise RuntimeError(f"comfy_testserver did not start: {self._startup_error!r}")
        return self

    @property
    def alive(self) -> bool:
        """The server thread runs (also during a startup delay); False after stop/kill or a crash."""
        return self._thread is not None and self._thread.is_alive() and not self.killed

    def wait_until_listening(self, timeout: float | None = None) -> bool:
        """Block until the port accepts connections; False on timeout or if the server died."""
        self._listening.wait(timeout)
        return self._serving

    def kill(self) -> None:
        """Die abruptly: stop listening and reset every connection now; later connects are refused."""
        loop = self._loop
        if loop is None or self.killed:
            return
        if _running_loop() is loop:
            self._kill_now()
            return
        done = threading.Event()

        def _kill_and_signal() -> None:
            self._kill_now()
            done.set()

        with contextlib.suppress(RuntimeError):  # loop already closed: nothing left to kill
            loop.call_soon_threadsafe(_kill_and_signal)
            done.wait(_STOP_TIMEOUT_S)
        self._join()

    def stop(self) -> None:
        """Clean shutdown (sockets get a close frame); joins the server thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._finish)
        self._join()

    def __enter__(self) -> ComfyTestServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- inspection --------------------------------------------------------------------------------

    def history(self) -> dict[str, Any]:
        """Every visible history entry, prompt_id -> entry (deep copies)."""
        return self._executor.queue.history() if self._executor else {}

    def queue_state(self) -> tuple[list[str], list[str]]:
        """(running prompt ids, pending prompt ids in the order they will run)."""
        if self._executor is None:
            return [], []
        running, pending = self._executor.queue.snapshot()
        ordered = sorted(pending, key=lambda item: (item.number, item.prompt_id))
        return [item.prompt_id for item in running], [item.prompt_id for item in ordered]

    # --- the server thread -------------------------------------------------------------------------

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as ex:  # reported to start() and logged
            self._startup_error = ex
            log.exception("comfy_testserver crashed")
        finally:
            self._ready.set()
            self._listening.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        hub = Hub(self.behaviour)
        hub.start()
        executor = Executor(
            self.folders,
            self.behaviour,
            self.profile,
            hub,
            self.executions,
            kill=self._kill_now,
            on_node_start=self._on_node_start,
        )
        self._hub, self._executor = hub, executor
        app = ComfyApp(
            self.folders,
            self.behaviour,
            self.profile,
            hub,
            executor,
            self.requests,
            host=self.host,
            port=self.port,
            max_upload_size=self.max_upload_size,
        ).build()
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        self._runner = runner
        self._executor_task = loop.create_task(executor.run_forever())
        self._ready.set()
        try:
            if self.behaviour.startup_delay_s > 0:
                await asyncio.wait({self._done}, timeout=self.behaviour.startup_delay_s)
            if not self._done.done():
                assert self._sock is not None and runner.server is not None
                self._aio_server = await loop.create_server(runner.server, sock=self._sock, backlog=128)
                self._serving = True
                self._listening.set()
                await self._done
        finally:
            self._serving = False
            self._executor_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._executor_task
            if self._aio_server is not None:
                self._aio_server.close()
            await runner.cleanup()
            if self._sock is not None:
                self._sock.close()

    def _finish(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _kill_now(self) -> None:
        """In the server thread: close the listener, reset all connections, stop executing."""
        if self.killed:
            return
        self.killed = True
        self._serving = False
        if self._aio_server is not None:
            self._aio_server.close()
        if self._sock is not None:
            self._sock.close()  # refused from now on, even if the delay had not yet passed
        if self._hub is not None:
            self._hub.kill()
        if self._runner is not None and self._runner.server is not None:
            for handler in self._runner.server.connections:
                if handler.transport is not None:
                    handler.transport.abort()
        if self._executor_task is not None:
            self._executor_task.cancel()
        self._finish()

    def _join(self) -> None:
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(_STOP_TIMEOUT_S)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
