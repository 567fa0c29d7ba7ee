"""A loopback reverse proxy in front of moto that answers 503 SlowDown to the first N uploads.

Real providers throttle exactly like this; boto3's retries must get the upload through.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

from ..loopback import ThreadedApp

_SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
)
_HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


class ThrottlingProxy:
    def __init__(self, upstream: str, *, throttle_puts: int) -> None:
        self.upstream = upstream
        self.throttle_puts = throttle_puts
        self.throttled = 0
        self.forwarded = 0
        self.url = ""
        self._server = ThreadedApp("throttling-proxy")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.method == "PUT" and self.throttled < self.throttle_puts:
            self.throttled += 1
            return web.Response(status=503, body=_SLOW_DOWN, content_type="application/xml")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method, f"{self.upstream}{request.path_qs}", data=body, headers=headers
            ) as upstream,
        ):
            payload = await upstream.read()
            self.forwarded += 1
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS}
            return web.Response(status=upstream.status, body=payload, headers=out)

    def start(self) -> ThrottlingProxy:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.url = self._server.start(app)
        return self

    def stop(self) -> None:
        self._server.stop()
