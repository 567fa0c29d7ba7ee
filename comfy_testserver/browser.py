"""The browser handshake of comfyui-GaussianViewer, and the HTTP routes that answer it.

GaussianViewer (CarlMarkswx/comfyui-GaussianViewer @5da86e7, `render_gaussian.py`) broadcasts a
`geompack_render_request` frame (`{"request_id": "render-<16 hex>", "node_id": ..., "ply_file": ...}`)
to every WebSocket, then polls until the browser's viewer POSTs the rendered PNG to
`/geompack/render_result` (`{"request_id", "image": <base64 or data URL>}`) or gives up through
`/geompack/render_error` (`{"request_id", "error"}`), or until 30 s have passed. Both routes
answer `{"status": "ok"}`, or 400 with `{"status": "error", "reason": ...}` when a field is
missing. Answers may arrive before anyone waits for them (the real node stores them for 300 s).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web

__all__ = ["BrowserAnswer", "BrowserRenders"]


@dataclass(frozen=True)
class BrowserAnswer:
    """What the browser sent back: a rendered image (base64) or an error text."""

    image: str | None = None
    error: str | None = None


class BrowserRenders:
    """Render answers by request id; nodes wait on them, the HTTP routes fill them in."""

    def __init__(self) -> None:
        self._answers: dict[str, BrowserAnswer] = {}
        self._changed = asyncio.Event()
        self.requests_seen = 0

    def store(self, request_id: str, answer: BrowserAnswer) -> None:
        self._answers[request_id] = answer
        self._changed.set()

    async def wait(self, request_id: str, timeout_s: float) -> BrowserAnswer | None:
        """The answer for `request_id`, or None once `timeout_s` passed without one."""
        self.requests_seen += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while request_id not in self._answers:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return None
        return self._answers.pop(request_id)

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("POST", "/geompack/render_result", self.render_result),
            ("POST", "/geompack/render_error", self.render_error),
        ]

    async def render_result(self, request: web.Request) -> web.Response:
        data = await request.json()
        request_id, image = data.get("request_id"), data.get("image")
        if not request_id or not image:
            return _bad("missing request_id or image")
        self.store(str(request_id), BrowserAnswer(image=str(image)))
        return web.json_response({"status": "ok"})

    async def render_error(self, request: web.Request) -> web.Response:
        data = await request.json()
        request_id = data.get("request_id")
        if not request_id:
            return _bad("missing request_id")
        error = data.get("error") or "unknown frontend render error"
        self.store(str(request_id), BrowserAnswer(error=str(error)))
        return web.json_response({"status": "ok"})


def _bad(reason: str) -> web.Response:
    return web.json_response({"status": "error", "reason": reason}, status=400)
