"""A recording pass-through in front of ComfyUI, for benchmarks that need its /history entries.

The worker deletes each prompt's history entry once it has collected the outputs (ComfyUI would
otherwise keep every workflow in memory), so a benchmark cannot read the execution windows
afterwards. Put this between the worker and ComfyUI (``COMFY_HOST`` = the tap): every HTTP request
and the WebSocket are passed on unchanged, and each finished history entry the worker reads
(``GET /history/<prompt id>``) is kept. The hop costs a little per request; ``hop_cost_ms``
measures it in the same run so the numbers can be read with it in mind.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import aiohttp
from aiohttp import web

__all__ = ["HistoryTap"]

# Hop-by-hop headers and those aiohttp sets itself: never copied across the tap.
_SKIP = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "content-encoding"}
)


class HistoryTap:
    """``async with HistoryTap("127.0.0.1:8188") as tap``: ``tap.address`` is what the worker uses."""

    def __init__(self, comfy_host: str) -> None:
        self.comfy_host = comfy_host
        self.entries: dict[str, dict[str, Any]] = {}
        self.requests = 0  # HTTP requests passed on (the WebSocket not counted)
        self.address = ""
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HistoryTap:
        self._http = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=1024**3)
        app.router.add_get("/ws", self._websocket)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.address = f"127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    async def history(self, prompt_id: str) -> dict[str, Any]:
        """The prompt's entry as the worker read it, or from ComfyUI if it is still there."""
        if prompt_id in self.entries:
            return self.entries[prompt_id]
        assert self._http is not None
        async with self._http.get(f"http://{self.comfy_host}/history/{prompt_id}") as response:
            body = await response.json()
        if prompt_id not in body:
            raise RuntimeError(f"prompt {prompt_id} is in neither the tap's records nor ComfyUI's history")
        entry: dict[str, Any] = body[prompt_id]
        return entry

    async def hop_cost_ms(self, requests: int = 30) -> float:
        """Median extra time of one small request through the tap over the same request direct."""
        assert self._http is not None

        async def timed(host: str) -> float:
            started = time.perf_counter()
            async with self._http.get(f"http://{host}/queue") as response:  # type: ignore[union-attr]
                await response.read()
            return time.perf_counter() - started

        extra = []
        for _ in range(requests):
            direct = await timed(self.comfy_host)
            tapped = await timed(self.address)
            extra.append((tapped - direct) * 1000.0)
        return statistics.median(extra)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        self.requests += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _SKIP}
        body = await request.read()
        async with self._http.request(
            request.method,
            f"http://{self.comfy_host}{request.rel_url}",
            headers=headers,
            data=body if body else None,
            allow_redirects=False,
        ) as upstream:
            payload = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _SKIP}
            if request.method == "GET" and request.path.startswith("/history/") and upstream.status == 200:
                self._record(payload, upstream.headers.get("Content-Encoding"))
            if upstream.headers.get("Content-Encoding"):
                out["Content-Encoding"] = upstream.headers["Content-Encoding"]
            return web.Response(status=upstream.status, body=payload, headers=out)

    def _record(self, payload: bytes, encoding: str | None) -> None:
        if encoding:  # ComfyUI compresses only with --enable-compress-response-body; read it direct then
            return
        try:
            entries = json.loads(payload)
        except ValueError:
            return
        if not isinstance(entries, dict):
            return
        for prompt_id, entry in entries.items():
            status = entry.get("status") if isinstance(entry, dict) else None
            if isinstance(status, dict) and status.get("completed") is not None and status.get("messages"):
                self.entries[prompt_id] = entry

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        client = web.WebSocketResponse(max_msg_size=0)
        await client.prepare(request)
        async with self._http.ws_connect(
            f"ws://{self.comfy_host}/ws", params=dict(request.query), max_msg_size=0
        ) as upstream:

            async def pump(source: Any, sink: Any) -> None:
                async for message in source:
                    if message.type == aiohttp.WSMsgType.TEXT:
                        await sink.send_str(message.data)
                    elif message.type == aiohttp.WSMsgType.BINARY:
                        await sink.send_bytes(message.data)
                    else:
                        break
                await sink.close()

            tasks = [
                asyncio.create_task(pump(upstream, client)),
                asyncio.create_task(pump(client, upstream)),
            ]
            _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        return client
