"""HTTP and WebSocket calls to ComfyUI, and the one place aiohttp's errors become ours.

Every method maps transport failures to a `ComfyUnavailable` subclass that says what happened
(no connection, no answer in time, an HTTP error status, a reply that is not JSON), keeping the
original as ``__cause__``; an input ComfyUI refuses with a 4xx is `UploadRefused` (INVALID_INPUT).
The WebSocket is handed out as a `ComfySocket` of typed frames, so no other module imports aiohttp.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp

from ..errors import (
    ComfyBadReply,
    ComfyHTTPError,
    ComfyNoAnswer,
    ComfyUnavailable,
    ComfyUnreachable,
    FetchFailed,
    UploadRefused,
    WorkflowInvalid,
)
from ..values import InputImage
from .capabilities import LEGACY, Capabilities, RouteAnswer
from .client_ids import uploads_of
from .events import feature_flags_frame

__all__ = ["ComfyClient", "ComfySocket", "Frame", "QueueEntry", "QueuedPrompt"]

logger = logging.getLogger(__name__)

DOWNLOAD_CHUNK_BYTES = 1024 * 1024
_MAX_WS_FRAME_BYTES = 512 * 1024 * 1024  # SaveImageWebsocket frames carry whole images


@dataclass(frozen=True)
class QueuedPrompt:
    prompt_id: str
    number: int | None
    node_errors: dict[str, Any]


@dataclass(frozen=True)
class QueueEntry:
    """One prompt in GET /queue: its id, the client id that queued it, whether it runs now, and
    the input files its job uploaded (client_ids.uploads_of; a worker's prompts only)."""

    prompt_id: str
    client_id: str | None
    running: bool
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Frame:
    """One WebSocket frame: ``text`` (JSON), ``binary`` (preview/streamed image), or ``closed``."""

    kind: Literal["text", "binary", "closed", "other"]
    text: str = ""
    data: bytes = b""


_CLOSED = (
    aiohttp.WSMsgType.CLOSE,
    aiohttp.WSMsgType.CLOSING,
    aiohttp.WSMsgType.CLOSED,
    aiohttp.WSMsgType.ERROR,
)


class ComfySocket:
    """ComfyUI's ``/ws`` for one client id; the caller closes it."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws

    async def receive(self, timeout_s: float) -> Frame:
        """The next frame; raise TimeoutError if none came within ``timeout_s``."""
        try:
            message = await self._ws.receive(timeout=timeout_s)
        except TimeoutError:
            raise
        except aiohttp.ClientError:
            return Frame("closed")  # a broken socket ends like a closed one: the caller reconnects
        if message.type == aiohttp.WSMsgType.TEXT:
            return Frame("text", text=message.data)
        if message.type == aiohttp.WSMsgType.BINARY:
            return Frame("binary", data=message.data)
        if message.type in _CLOSED:
            return Frame("closed")
        return Frame("other")

    async def close(self) -> None:
        await self._ws.close()


class ComfyClient:
    """A session with one ComfyUI server. Use as ``async with ComfyClient(...) as comfy:``."""

    def __init__(self, host: str, *, http_timeout_s: float) -> None:
        self.host = host
        self.base_url = f"http://{host}"
        self._http_timeout_s = http_timeout_s
        self._timeout = aiohttp.ClientTimeout(total=http_timeout_s)
        # Downloads of large outputs may take longer than one API call: bound the gaps only.
        self._download_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=http_timeout_s, sock_read=http_timeout_s
        )
        self._session: aiohttp.ClientSession | None = None
        # What this ComfyUI supports (capabilities.py): set by the connection once it detected them;
        # the 0.3.64 protocol until then.
        self.capabilities: Capabilities = LEGACY

    async def __aenter__(self) -> ComfyClient:
        self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def open(self) -> None:
        """Start the HTTP session (inside a running event loop); idempotent."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("ComfyClient used outside 'async with'")
        return self._session

    async def system_stats(self) -> dict[str, Any]:
        """GET /system_stats: answers as soon as ComfyUI has finished starting."""
        with self._mapped("checking that ComfyUI is up"):
            async with self.session.get(f"{self.base_url}/system_stats") as response:
                response.raise_for_status()
                data = await response.json(content_type=None)
        return data if isinstance(data, dict) else {}

    async def upload(self, image: InputImage) -> str:
        """POST /upload/image with overwrite; return the name ComfyUI stored it under."""
        form = aiohttp.FormData()
        form.add_field("image", image.data, filename=image.name, content_type=image.mime_type)
        form.add_field("overwrite", "true")
        with self._mapped(f"uploading input {image.name!r}"):
            async with self.session.post(f"{self.base_url}/upload/image", data=form) as response:
                await self._check_upload(response, image.name)
                data = await response.json(content_type=None)
        name = data.get("name") if isinstance(data, dict) else None
        return str(name or image.name)

    async def upload_file(self, *, name: str, path: Path, mime_type: str) -> str:
        """POST /upload/image streaming ``path`` from disk; return the name ComfyUI stored it under."""
        with path.open("rb") as source:
            form = aiohttp.FormData()
            form.add_field("image", source, filename=name, content_type=mime_type)
            form.add_field("overwrite", "true")
            with self._mapped(f"uploading input {name!r}"):
                async with self.session.post(
                    f"{self.base_url}/upload/image", data=form, timeout=self._download_timeout
                ) as response:
                    await self._check_upload(response, name)
                    data = await response.json(content_type=None)
        stored = data.get("name") if isinstance(data, dict) else None
        return str(stored or name)

    async def queue_prompt(
        self, workflow: dict[str, Any], *, client_id: str, prompt_id: str, extra_data: dict[str, Any]
    ) -> QueuedPrompt:
        """POST /prompt; raise WorkflowInvalid with ComfyUI's node errors on 400."""
        body: dict[str, Any] = {"prompt": workflow, "client_id": client_id, "prompt_id": prompt_id}
        if extra_data:
            body["extra_data"] = extra_data
        with self._mapped("queueing the workflow"):
            async with self.session.post(f"{self.base_url}/prompt", json=body) as response:
                text = await response.text()
        if response.status == 400:
            raise WorkflowInvalid(_json_or_text(text), workflow=workflow)
        if response.status != 200:
            raise ComfyHTTPError(
                host=self.host, action="queueing the workflow", status=response.status, body=text
            )
        data = _json_or_text(text)
        if not isinstance(data, dict) or "prompt_id" not in data:
            raise ComfyBadReply(host=self.host, action="queueing the workflow", body=text)
        node_errors = data.get("node_errors")
        return QueuedPrompt(
            prompt_id=str(data["prompt_id"]),
            number=data.get("number") if isinstance(data.get("number"), int) else None,
            node_errors=node_errors if isinstance(node_errors, dict) else {},
        )

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        """GET /history/<id>: the entry once the prompt finished, else None."""
        with self._mapped("reading the prompt's history"):
            async with self.session.get(f"{self.base_url}/history/{prompt_id}") as response:
                response.raise_for_status()
                data = await response.json(content_type=None)
        entry = data.get(prompt_id) if isinstance(data, dict) else None
        return entry if isinstance(entry, dict) else None

    async def recent_history(self, max_items: int) -> dict[str, dict[str, Any]]:
        """GET /history?max_items=N: the last N entries, prompt id -> entry."""
        with self._mapped("reading ComfyUI's history"):
            async with self.session.get(
                f"{self.base_url}/history", params={"max_items": str(max_items)}
            ) as response:
                response.raise_for_status()
                data = await response.json(content_type=None)
        if not isinstance(data, dict):
            return {}
        return {str(key): entry for key, entry in data.items() if isinstance(entry, dict)}

    async def queue(self) -> tuple[list[str], list[str]]:
        """GET /queue: (running prompt ids, pending prompt ids)."""
        with self._mapped("reading the queue"):
            async with self.session.get(f"{self.base_url}/queue") as response:
                response.raise_for_status()
                data = await response.json(content_type=None)
        return _queue_ids(data, "queue_running"), _queue_ids(data, "queue_pending")

    async def queue_entries(self) -> list[QueueEntry]:
        """GET /queue with each prompt's client id (``extra_data.client_id``): liveness and the
        start-up clearing of a previous worker's prompts read it."""
        with self._mapped("reading the queue"):
            async with self.session.get(f"{self.base_url}/queue") as response:
                response.raise_for_status()
                data = await response.json(content_type=None)
        return [
            *_queue_entries(data, "queue_running", running=True),
            *_queue_entries(data, "queue_pending", running=False),
        ]

    async def probe(self, method: str, path: str) -> RouteAnswer:
        """Ask a route whether it exists (capabilities.py): its status and JSON body, any status."""
        with self._mapped(f"probing {method} {path}"):
            async with self.session.request(method, f"{self.base_url}{path}") as response:
                text = await response.text()
        body = _json_or_text(text)
        return RouteAnswer(response.status, body if isinstance(body, dict | list) else None)

    async def job(self, prompt_id: str) -> dict[str, Any] | None:
        """GET /api/jobs/<id> (newer ComfyUI): the job's record, or None if ComfyUI knows no such job."""
        with self._mapped("reading the prompt's job status"):
            async with self.session.get(f"{self.base_url}/api/jobs/{prompt_id}") as response:
                if response.status == 404:
                    return None
                response.raise_for_status()
                data = await response.json(content_type=None)
        if not isinstance(data, dict):
            raise ComfyBadReply(host=self.host, action="reading the prompt's job status", body=str(data))
        return data

    async def running_job_ids(self) -> list[str]:
        """GET /api/jobs?status=in_progress&limit=1 (newer ComfyUI): the prompt ComfyUI runs now, if
        any, as one small record however long the queue (GET /queue carries every queued prompt)."""
        action = "reading which prompt runs"
        with self._mapped(action):
            query = {"status": "in_progress", "limit": "1"}
            async with self.session.get(f"{self.base_url}/api/jobs", params=query) as response:
                response.raise_for_status()
                data = await response.json(content_type=None)
        jobs = data.get("jobs") if isinstance(data, dict) else None
        if not isinstance(jobs, list):
            raise ComfyBadReply(host=self.host, action=action, body=str(data))
        return [str(job["id"]) for job in jobs if isinstance(job, dict) and "id" in job]

    async def cancel_job(self, prompt_id: str) -> bool:
        """POST /api/jobs/<id>/cancel (newer ComfyUI): dequeue or interrupt it, whichever applies,
        atomically; True if a pending or running prompt was cancelled, False if it had ended."""
        with self._mapped("cancelling the prompt"):
            async with self.session.post(f"{self.base_url}/api/jobs/{prompt_id}/cancel") as response:
                response.raise_for_status()
                data = await response.json(content_type=None)
        return bool(data.get("cancelled")) if isinstance(data, dict) else False

    async def interrupt(self, prompt_id: str) -> None:
        """POST /interrupt for this prompt only (ignored by ComfyUI unless it is running)."""
        with self._mapped("interrupting the prompt"):
            async with self.session.post(f"{self.base_url}/interrupt", json={"prompt_id": prompt_id}) as r:
                r.raise_for_status()

    async def delete_queued(self, prompt_id: str) -> None:
        """POST /queue {delete}: removes the prompt if it is still pending."""
        with self._mapped("removing the prompt from the queue"):
            async with self.session.post(f"{self.base_url}/queue", json={"delete": [prompt_id]}) as r:
                r.raise_for_status()

    async def delete_history(self, prompt_id: str) -> bool:
        """POST /history {delete}: drop the prompt's entry (its outputs list, its whole workflow).

        Best effort, called once the outputs are collected: a failure is logged and returns False,
        since failing a job whose results are in hand would lose them.
        """
        try:
            with self._mapped("removing the prompt from ComfyUI's history"):
                async with self.session.post(f"{self.base_url}/history", json={"delete": [prompt_id]}) as r:
                    r.raise_for_status()
        except ComfyUnavailable as exc:
            logger.warning("prompt %s stays in ComfyUI's history: %s", prompt_id, exc.message)
            return False
        return True

    async def free_memory(self) -> None:
        """POST /free: unload every model and free cached memory (ComfyUI applies it between prompts)."""
        with self._mapped("asking ComfyUI to free its memory"):
            body = {"unload_models": True, "free_memory": True}
            async with self.session.post(f"{self.base_url}/free", json=body) as r:
                r.raise_for_status()

    async def answer_browser(self, route: str, body: dict[str, Any]) -> None:
        """POST a custom node's browser route (GaussianViewer's /geompack/render_error)."""
        with self._mapped(f"answering a browser request at {route}"):
            async with self.session.post(f"{self.base_url}{route}", json=body) as response:
                response.raise_for_status()

    async def object_info(self, class_type: str) -> dict[str, Any]:
        """GET /object_info/<class>: the node's definition, or {} if ComfyUI has no such node."""
        with self._mapped(f"reading the definition of {class_type}"):
            async with self.session.get(f"{self.base_url}/object_info/{class_type}") as response:
                response.raise_for_status()
                data = await response.json(content_type=None)
        entry = data.get(class_type) if isinstance(data, dict) else None
        return entry if isinstance(entry, dict) else {}

    async def download(self, *, filename: str, subfolder: str, folder_type: str, dest: Path) -> int:
        """Stream GET /view to ``dest`` without holding the file in memory; return its size."""
        params = {"filename": filename, "subfolder": subfolder, "type": folder_type}
        size = 0
        try:
            async with self.session.get(
                f"{self.base_url}/view", params=params, timeout=self._download_timeout
            ) as response:
                if response.status != 200:
                    reason = "not found" if response.status == 404 else f"HTTP {response.status}"
                    raise FetchFailed(filename, f"GET /view answered {reason}")
                with dest.open("wb") as sink:
                    async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK_BYTES):
                        sink.write(chunk)
                        size += len(chunk)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise FetchFailed(filename, f"the download broke off ({type(exc).__name__})") from exc
        return size

    async def open_websocket(self, client_id: str) -> ComfySocket:
        """Open ``/ws?clientId=...`` and ask for frames that name their node; the caller closes it."""
        with self._mapped("connecting to ComfyUI's WebSocket"):
            ws = await self.session.ws_connect(
                f"ws://{self.host}/ws",
                params={"clientId": client_id},
                max_msg_size=_MAX_WS_FRAME_BYTES,
                timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
            )
            await ws.send_str(feature_flags_frame())
        return ComfySocket(ws)

    async def _check_upload(self, response: aiohttp.ClientResponse, name: str) -> None:
        """A 4xx is about the file (too big, not an image): the job's input. Anything else is ComfyUI's."""
        if response.status == 200:
            return
        body = (await response.text())[:400]
        if 400 <= response.status < 500:
            raise UploadRefused(name=name, status=response.status, body=body)
        raise ComfyHTTPError(
            host=self.host, action=f"uploading input {name!r}", status=response.status, body=body
        )

    @contextlib.contextmanager
    def _mapped(self, action: str) -> Iterator[None]:
        """aiohttp's failures as ours, the most specific first (several are also TimeoutError or
        OSError subclasses); the original stays the cause for the log."""
        try:
            yield
        except aiohttp.ClientResponseError as exc:  # raise_for_status, a refused WebSocket upgrade
            raise ComfyHTTPError(host=self.host, action=action, status=exc.status) from exc
        except json.JSONDecodeError as exc:
            raise ComfyBadReply(host=self.host, action=action, body=exc.doc) from exc
        except aiohttp.ConnectionTimeoutError as exc:  # no connection within the timeout: unreachable
            raise ComfyUnreachable(host=self.host, action=action, reason="connect timed out") from exc
        except TimeoutError as exc:  # connected, then no answer (aiohttp's read timeouts included)
            raise ComfyNoAnswer(host=self.host, action=action, timeout_s=self._http_timeout_s) from exc
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            raise ComfyUnreachable(host=self.host, action=action, reason=reason) from exc
        except aiohttp.ClientError as exc:  # reset or closed mid-answer, a malformed HTTP reply
            raise ComfyUnreachable(host=self.host, action=action, reason=type(exc).__name__) from exc


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _queue_ids(data: Any, key: str) -> list[str]:
    items = data.get(key) if isinstance(data, dict) else None
    ids = []
    for item in items or []:
        if isinstance(item, list) and len(item) > 1:
            ids.append(str(item[1]))
    return ids


def _queue_entries(data: Any, key: str, *, running: bool) -> list[QueueEntry]:
    items = data.get(key) if isinstance(data, dict) else None
    entries = []
    for item in items or []:
        if isinstance(item, list) and len(item) > 1:
            extra = item[3] if len(item) > 3 and isinstance(item[3], dict) else {}
            client_id = extra.get("client_id")
            owner = client_id if isinstance(client_id, str) else None
            entries.append(QueueEntry(str(item[1]), owner, running, uploads_of(extra)))
    return entries
