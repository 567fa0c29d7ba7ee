"""Run an aiohttp app on 127.0.0.1 in a background thread: the test-side servers share this."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class ThreadedApp:
    """``url = ThreadedApp().start(app)``; ``stop()`` shuts the app down and joins the thread."""

    def __init__(self, name: str = "loopback-app") -> None:
        self.url = ""
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self, app: web.Application) -> str:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            runner = web.AppRunner(app, handle_signals=False)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
            self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name=self._name, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{self._name} did not start")
        return self.url

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
