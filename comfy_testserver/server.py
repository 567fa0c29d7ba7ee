"""The aiohttp application: prompt, queue and history routes, `/ws`, and the request log.

Every route also answers under `/api` (as ComfyUI registers both); the read-only and file routes
live in `info_routes` and `file_routes`, the `current` profile's job routes in `job_routes`.
Where the profiles differ (PROFILES.md) the handlers read the `Profile`'s flags: prompt id
validation, the Comfy.org keys' sensitive slot, `create_time`. Status codes and bodies follow the transcripts:
empty-bodied 200/400/404 responses, JSON with `application/json; charset=utf-8`, and aiohttp's
own "500 Internal Server Error" page where ComfyUI's handler would raise (malformed JSON, a
`prompt` that is not an object).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler

from .behaviour import Behaviour
from .executor import Executor
from .file_routes import FileRoutes, server_trouble
from .folders import Folders
from .hub import Hub
from .info_routes import InfoRoutes
from .job_routes import JobRoutes
from .jobs import canonical_uuid
from .profiles import Profile
from .prompt_queue import SENSITIVE_EXTRA_DATA_KEYS, QueueItem
from .records import RecordedRequest
from .validation import validate_prompt

__all__ = ["ComfyApp"]

log = logging.getLogger(__name__)


class ComfyApp:
    """Builds the `web.Application` and holds what its handlers share."""

    def __init__(
        self,
        folders: Folders,
        behaviour: Behaviour,
        profile: Profile,
        hub: Hub,
        executor: Executor,
        requests: list[RecordedRequest],
        *,
        host: str,
        port: int,
        max_upload_size: int,
    ) -> None:
        self.folders = folders
        self.behaviour = behaviour
        self.profile = profile
        self.max_upload_size = max_upload_size
        self.features: dict[str, Any] = {**profile.features, "max_upload_size": max_upload_size}
        self.hub = hub
        self.executor = executor
        self.requests = requests
        self.host = host
        self.port = port

    def build(self) -> web.Application:
        app = web.Application(client_max_size=self.max_upload_size, middlewares=[self._record])
        info = InfoRoutes(self.folders, self.profile, self.features, host=self.host, port=self.port)
        routes = [
            *info.routes(),
            *FileRoutes(self.folders, self.profile, self.executor.assets).routes(),
            *(JobRoutes(self.executor).routes() if self.profile.jobs_api else []),
            *self.executor.browser.routes(),
            ("GET", "/ws", self.websocket),
            ("GET", "/prompt", self.get_prompt),
            ("POST", "/prompt", self.post_prompt),
            ("GET", "/queue", self.get_queue),
            ("POST", "/queue", self.post_queue),
            ("GET", "/history", self.get_history),
            ("GET", "/history/{prompt_id}", self.get_history_one),
            ("POST", "/history", self.post_history),
            ("POST", "/interrupt", self.interrupt),
            ("POST", "/free", self.free),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
            app.router.add_route(method, "/api" + path, handler)
        # ComfyUI's last route is `web.static("/", web_root)`: any other GET is a missing file (404,
        # empty body, application/octet-stream) and any other method a 405 (GET, HEAD), as the real
        # 0.3.64 answers e.g. /api/jobs (PROFILES.md).
        app.router.add_get("/{path:.*}", self.no_such_file)
        app.on_shutdown.append(self._close_sockets)
        return app

    async def _close_sockets(self, app: web.Application) -> None:
        await self.hub.close()

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path[4:] if request.path.startswith("/api/") else request.path
        body = None
        if request.can_read_body and not request.content_type.startswith(("multipart/", "application/x-www")):
            try:
                body = json.loads(await request.read())
            except ValueError:
                body = None
        self.requests.append(RecordedRequest(request.method, path, dict(request.query), body))
        return await handler(request)

    async def no_such_file(self, request: web.Request) -> web.Response:
        return web.Response(status=404, content_type="application/octet-stream")

    # --- prompts and queue -------------------------------------------------------------------------

    async def get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response(self.executor.status_data())

    async def post_prompt(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return server_trouble()
        if not isinstance(body, dict):
            body = {}
        queue = self.executor.queue
        # The counter is consumed by every parseable POST, rejected ones included (transcript 09).
        if "number" in body:
            number: float = float(body["number"])
        else:
            number = -queue.next_number if body.get("front") else queue.next_number
            queue.next_number += 1
        if "prompt" not in body:
            error = {
                "type": "no_prompt",
                "message": "No prompt provided",
                "details": "No prompt provided",
                "extra_info": {},
            }
            return web.json_response({"error": error, "node_errors": {}}, status=400)
        prompt = body["prompt"]
        if self.profile.validates_prompt_id:
            # server.py post_prompt: absent or null mints an id; anything else must be canonical.
            client_prompt_id = body.get("prompt_id")
            prompt_id = str(uuid.uuid4()) if client_prompt_id is None else client_prompt_id
            if not canonical_uuid(prompt_id):
                return web.json_response({"error": _INVALID_PROMPT_ID, "node_errors": {}}, status=400)
        else:
            prompt_id = str(body.get("prompt_id", uuid.uuid4()))
        try:
            result = validate_prompt(
                prompt,
                self.folders,
                body.get("partial_execution_targets"),
                missing_node_type=self.profile.missing_node_type,
            )
        except Exception:  # ComfyUI's handler raises here too: aiohttp answers 500
            log.warning("prompt validation raised", exc_info=True)
            return server_trouble()
        extra_data = body.get("extra_data", {})
        if not isinstance(extra_data, dict):
            return server_trouble()
        if "client_id" in body:
            extra_data["client_id"] = body["client_id"]
        if not result.ok:
            return web.json_response({"error": result.error, "node_errors": result.node_errors}, status=400)
        sensitive: dict[str, Any] = {}
        if self.profile.sensitive_slot:
            sensitive = {key: extra_data.pop(key) for key in SENSITIVE_EXTRA_DATA_KEYS if key in extra_data}
        if self.profile.create_time:
            extra_data["create_time"] = int(time.time() * 1000)
        queue.put(QueueItem(number, prompt_id, prompt, extra_data, result.outputs, sensitive))
        response = {"prompt_id": prompt_id, "number": number, "node_errors": result.node_errors}
        return web.json_response(response)

    async def get_queue(self, request: web.Request) -> web.Response:
        running, pending = self.executor.queue.snapshot()
        return web.json_response(
            {
                "queue_running": [item.public() for item in running],
                "queue_pending": [item.public() for item in pending],
            }
        )

    async def post_queue(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return server_trouble()
        queue = self.executor.queue
        if body.get("clear"):
            queue.wipe_pending()
        for prompt_id in body.get("delete", []):
            queue.delete_pending(prompt_id)
        return web.Response(status=200)

    async def interrupt(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
        if prompt_id:
            running, _ = self.executor.queue.snapshot()
            if any(item.prompt_id == prompt_id for item in running):
                self.executor.interrupt()
        else:
            self.executor.interrupt()
        return web.Response(status=200)

    async def free(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return server_trouble()
        # Applied by the worker between prompts, as ComfyUI's queue flags are.
        for flag in ("unload_models", "free_memory"):
            if body.get(flag, False):
                self.executor.queue.set_flag(flag, body[flag])
        return web.Response(status=200)

    # --- history -----------------------------------------------------------------------------------

    async def get_history(self, request: web.Request) -> web.Response:
        try:
            max_items = int(request.query["max_items"]) if "max_items" in request.query else None
            offset = int(request.query["offset"]) if "offset" in request.query else -1
        except ValueError:
            return server_trouble()
        return web.json_response(self.executor.queue.history(max_items=max_items, offset=offset))

    async def get_history_one(self, request: web.Request) -> web.Response:
        return web.json_response(self.executor.queue.history(request.match_info["prompt_id"]))

    async def post_history(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return server_trouble()
        queue = self.executor.queue
        if body.get("clear"):
            queue.clear_history()
        for prompt_id in body.get("delete", []):
            queue.delete_history(prompt_id)
        return web.Response(status=200)

    # --- websocket ---------------------------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        # A short close timeout keeps stop() quick when a client never answers the close frame.
        ws = web.WebSocketResponse(timeout=2.0)
        await ws.prepare(request)
        sid = request.query.get("clientId", "") or uuid.uuid4().hex
        sock = self.hub.register(sid, ws, request)
        try:
            await self.hub.send_now(sock, "status", {"status": self.executor.status_data(), "sid": sid})
            # A client reconnecting while its prompt runs learns the current node (transcript 15).
            if (
                not self.behaviour.ws_silent
                and self.executor.current_client_id == sid
                and self.executor.last_node_id is not None
            ):
                await self.hub.send_now(sock, "executing", {"node": self.executor.last_node_id})
            first_message = True
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(message.data)
                except ValueError:
                    continue
                if first_message and isinstance(data, dict) and data.get("type") == "feature_flags":
                    sock.feature_flags = data.get("data") or {}
                    if not self.behaviour.ws_silent:
                        await self.hub.send_now(sock, "feature_flags", self.features)
                first_message = False
        finally:
            self.hub.unregister(sock)
        return ws


_INVALID_PROMPT_ID = {
    "type": "invalid_prompt_id",
    "message": "prompt_id must be a valid UUID",
    "details": (
        "prompt_id must be a UUID string in canonical lowercase hyphenated form; "
        "omit it to let the server generate one"
    ),
    "extra_info": {},
}
