"""Helpers for replaying transcript scenarios against the test server over real sockets.

`summary()` renders a frame the way the transcripts' `ws_message_summary` does, so a recorded
list can be compared with ours entry by entry.
"""

from __future__ import annotations

import asyncio
import json
import struct
import uuid
from pathlib import Path
from typing import Any

import aiohttp

RECORDED = Path(__file__).resolve().parents[2] / "comfy_testserver" / "recorded"
BINARY_EVENTS = {
    1: "PREVIEW_IMAGE",
    2: "UNENCODED_PREVIEW_IMAGE",
    3: "TEXT",
    4: "PREVIEW_IMAGE_WITH_METADATA",
}


def transcript(name: str) -> dict[str, Any]:
    return json.loads((RECORDED / f"{name}.json").read_text(encoding="utf-8"))


def recorded_summary(name: str, socket: str | None = None) -> list[str]:
    summaries = transcript(name)["ws_message_summary"]
    return summaries[socket] if socket is not None else next(iter(summaries.values()))


def recorded_http(name: str) -> list[dict[str, Any]]:
    return [event for event in transcript(name)["events"] if event["kind"] == "http"]


def recorded_prompts(name: str) -> list[dict[str, Any]]:
    """The JSON bodies of every POST /prompt of a transcript, in order."""
    return [
        e["request"]["json"]
        for e in recorded_http(name)
        if e["request"]["method"] == "POST" and e["request"]["path"] == "/prompt" and "json" in e["request"]
    ]


def summary(message: aiohttp.WSMessage) -> str:
    if message.type == aiohttp.WSMsgType.BINARY:
        (event,) = struct.unpack(">I", message.data[:4])
        return f"binary:{BINARY_EVENTS.get(event, event)}"
    frame = json.loads(message.data)
    kind, data = frame["type"], frame["data"]
    if kind == "status":
        return f"status(queue_remaining={data['status']['exec_info']['queue_remaining']})"
    if kind == "execution_cached":
        return f"execution_cached(nodes={data['nodes']!r})"
    if kind == "progress_state":
        return "progress_state(" + ",".join(f"{n}:{s['state']}" for n, s in data["nodes"].items()) + ")"
    if kind in ("executing", "executed"):
        return f"{kind}(node={data['node']!r})"
    if kind == "progress":
        return f"progress({data['value']}/{data['max']} node={data['node']!r})"
    return str(kind)


def kinds(summaries: list[str]) -> list[str]:
    """Only the message types: for runs whose node order the real server did not fix."""
    return [entry.split("(")[0] for entry in summaries]


def without_status(summaries: list[str]) -> list[str]:
    """Drop `status` frames, whose position depends on when other requests arrived."""
    return [entry for entry in summaries if not entry.startswith("status(")]


class Socket:
    """A WebSocket client that keeps every frame it receives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages: list[aiohttp.WSMessage] = []
        self._task = asyncio.ensure_future(self._read())
        self._changed = asyncio.Event()

    @classmethod
    async def connect(
        cls,
        session: aiohttp.ClientSession,
        url: str,
        client_id: str | None = None,
        *,
        feature_flags: dict[str, Any] | None = None,
    ) -> Socket:
        query = f"?clientId={client_id}" if client_id else ""
        sock = cls(await session.ws_connect(f"{url}/ws{query}"))
        if feature_flags is not None:
            await sock.ws.send_json({"type": "feature_flags", "data": feature_flags})
        await sock.wait_for(lambda s: len(s.messages) >= (2 if feature_flags is not None else 1))
        return sock

    async def _read(self) -> None:
        async for message in self.ws:
            self.messages.append(message)
            self._changed.set()
        self._changed.set()

    @property
    def closed(self) -> bool:
        return self._task.done()

    def summaries(self) -> list[str]:
        return [summary(m) for m in self.messages]

    def frames(self) -> list[dict[str, Any]]:
        return [json.loads(m.data) for m in self.messages if m.type == aiohttp.WSMsgType.TEXT]

    async def wait_for(self, predicate: Any, timeout: float = 5.0) -> None:
        async def _wait() -> None:
            while not predicate(self):
                if self.closed:
                    raise AssertionError(f"socket closed while waiting; got {self.summaries()}")
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(_wait(), timeout)

    async def wait_done(self, prompt_id: str, timeout: float = 5.0) -> None:
        """Until `executing(node=None)` for `prompt_id` arrived."""

        def done(sock: Socket) -> bool:
            return any(
                f["type"] == "executing" and f["data"] == {"node": None, "prompt_id": prompt_id}
                for f in sock.frames()
            )

        await self.wait_for(done, timeout)

    async def wait_closed(self, timeout: float = 2.0) -> None:
        """Until the server closed or dropped the connection."""
        await asyncio.wait_for(asyncio.shield(self._task), timeout)

    async def close(self) -> None:
        await self.ws.close()
        await self._task


async def submit(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], client_id: str | None = None
) -> dict[str, Any]:
    body = dict(body)
    body.pop("client_id", None)
    if client_id is not None:
        body["client_id"] = client_id
    async with session.post(f"{url}/prompt", json=body) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def wait_history(
    session: aiohttp.ClientSession, url: str, prompt_id: str, timeout: float = 5.0
) -> dict[str, Any]:
    """Poll `/history/<id>` as a client without a socket must (README "Completion detection")."""

    async def _poll() -> dict[str, Any]:
        while True:
            async with session.get(f"{url}/history/{prompt_id}") as response:
                body = await response.json()
            if body:
                return body[prompt_id]
            await asyncio.sleep(0.01)

    return await asyncio.wait_for(_poll(), timeout)


def new_id() -> str:
    return str(uuid.uuid4())
