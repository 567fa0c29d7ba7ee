"""A file server on loopback for input-URL tests, with routes that misbehave on purpose."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from testkit.certificates import self_signed_certificate

from ..conftest import png_bytes

PNG = png_bytes((16, 16), (200, 30, 30))
TOKEN = "Bearer tok-5ecret-77"


@dataclass
class Seen:
    path: str
    host: str
    authorization: str | None


@dataclass
class FileServer:
    """One aiohttp app on ``host:port`` in a thread; ``seen`` lists every request it got."""

    host: str = "127.0.0.1"
    port: int = 0
    ssl_context: ssl.SSLContext | None = None
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/photo.png", self._photo)
        app.router.add_get("/auth.png", self._auth)
        app.router.add_get("/redirect", self._redirect)
        app.router.add_get("/loop/{n}", self._loop_redirect)
        app.router.add_get("/declared-big", self._declared_big)
        app.router.add_get("/streamed-big", self._streamed_big)
        app.router.add_get("/slow.png", self._slow)
        app.router.add_get("/page.html", self._page)
        app.router.add_get("/doc.pdf", self._pdf)
        app.router.add_get("/empty", self._empty)
        app.router.add_get("/missing.png", self._missing)
        app.router.add_get("/bytes/{size}", self._bytes)
        return app

    def start(self) -> FileServer:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            runner = (
                web.AppRunner(  # access_log=None: it logs queries; a short shutdown: /slow.png never ends
                    self.app(), handle_signals=False, access_log=None, shutdown_timeout=0.5
                )
            )
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl_context)
            loop.run_until_complete(site.start())
            self.port = runner.addresses[0][1]
            scheme = "https" if self.ssl_context else "http"
            self.url = f"{scheme}://{self.host}:{self.port}"
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name=f"file-server-{self.host}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("file server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    @web.middleware
    async def _record(self, request: web.Request, handler):
        self.seen.append(Seen(request.path, request.host, request.headers.get("Authorization")))
        return await handler(request)

    async def _photo(self, request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="application/octet-stream")

    async def _auth(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != TOKEN:
            return web.Response(status=401, text="who are you")
        return web.Response(body=PNG, content_type="image/png")

    async def _redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def _loop_redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(f"/loop/{int(request.match_info['n']) + 1}")

    async def _declared_big(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(50 * 1024 * 1024)})
        await response.prepare(request)
        await response.write(PNG)  # the client must give up on the header alone
        return response

    async def _streamed_big(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(PNG)
        for _ in range(40):
            await response.write(b"\0" * 65536)
        await response.write_eof()
        return response

    async def _slow(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(len(PNG) + 10)})
        await response.prepare(request)
        await response.write(PNG)
        await asyncio.sleep(30)
        return response

    async def _page(self, request: web.Request) -> web.Response:
        # A login page served as "image/png" with 200: the bytes decide, not the header.
        return web.Response(
            body=b"<!DOCTYPE html><html><body>Please sign in</body></html>" + b" " * 64,
            content_type="image/png",
        )

    async def _pdf(self, request: web.Request) -> web.Response:
        return web.Response(body=b"%PDF-1.7\n" + b"0" * 200, content_type="application/pdf")

    async def _empty(self, request: web.Request) -> web.Response:
        return web.Response(body=b"")

    async def _missing(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text="nope")

    async def _bytes(self, request: web.Request) -> web.Response:
        return web.Response(body=PNG + b"\0" * (int(request.match_info["size"]) - len(PNG)))


@pytest.fixture
def files() -> Iterator[FileServer]:
    server = FileServer().start()
    yield server
    server.stop()


def self_signed(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for a certificate valid for ``name`` only."""
    cert_path, key_path = self_signed_certificate(tmp_path, name)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)
