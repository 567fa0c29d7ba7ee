"""Every way a call to ComfyUI can fail, caused for real on loopback, and the error each becomes.

In the manner of httpx's tests/test_exceptions.py: a closed port, a server too slow for the
timeout, a server that hangs up, error statuses, replies that are not JSON, and uploads ComfyUI
refuses. Each maps to one class in handler/errors.py with its own wording and code.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from handler.comfy.client import ComfyClient
from handler.error_result import error_result
from handler.errors import (
    ComfyBadReply,
    ComfyHTTPError,
    ComfyNoAnswer,
    ComfyUnavailable,
    ComfyUnreachable,
    UploadRefused,
    WorkerError,
)
from handler.values import InputImage

from ..conftest import png_bytes
from ..loopback import ThreadedApp

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]
IMAGE = InputImage(name="photo.png", data=png_bytes(), mime_type="image/png")


@pytest.fixture
def serve() -> Iterator[Callable[[str, str, Route], str]]:
    """``host = serve(method, path, route)``: a one-route server on 127.0.0.1."""
    apps: list[ThreadedApp] = []

    def start(method: str, path: str, route: Route) -> str:
        app = web.Application()
        app.router.add_route(method, path, route)
        runner = ThreadedApp("comfy-stand-in")
        apps.append(runner)
        return runner.start(app).removeprefix("http://")

    yield start
    for app in apps:
        app.stop()


def status(code: int, body: str = "", content_type: str = "text/plain") -> Route:
    async def route(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(status=code, text=body, content_type=content_type)

    return route


async def call(
    host: str, action: Callable[[ComfyClient], Awaitable[Any]], timeout_s: float = 5.0
) -> WorkerError:
    async with ComfyClient(host, http_timeout_s=timeout_s) as comfy:
        with pytest.raises(WorkerError) as info:
            await action(comfy)
    return info.value


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens here once the socket is closed


async def test_a_closed_port_is_unreachable() -> None:
    port = closed_port()
    error = await call(f"127.0.0.1:{port}", lambda c: c.system_stats())
    assert type(error) is ComfyUnreachable and error.code == "COMFY_UNAVAILABLE"
    assert error.message.startswith(
        f"cannot reach ComfyUI at 127.0.0.1:{port} while checking that ComfyUI is up"
    )
    assert "Connect call failed" in error.message or "refused" in error.message.lower()
    assert "COMFY_HOST" in error.message


async def test_a_server_slower_than_the_timeout_gives_no_answer(serve: Any) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({})

    host = serve("GET", "/history/p1", slow)
    error = await call(host, lambda c: c.history("p1"), timeout_s=0.2)
    assert type(error) is ComfyNoAnswer
    assert error.message.startswith(
        f"ComfyUI at {host} did not answer within 0.2 s while reading the prompt's history"
    )
    assert "cannot reach" not in error.message and "COMFY_HTTP_TIMEOUT_S" in error.message


def hang_up_server() -> tuple[str, threading.Event]:
    """A server that accepts, reads the request, and closes without a byte of answer."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def run() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            conn.close()
        listener.close()

    threading.Thread(target=run, daemon=True).start()
    return f"127.0.0.1:{listener.getsockname()[1]}", stop


async def test_a_server_that_hangs_up_is_unreachable() -> None:
    host, stop = hang_up_server()
    try:
        error = await call(host, lambda c: c.queue())
    finally:
        stop.set()
    assert type(error) is ComfyUnreachable
    assert error.message.startswith(
        f"cannot reach ComfyUI at {host} while reading the queue (ServerDisconnectedError)"
    )


async def test_an_error_status_names_the_status_and_the_action(serve: Any) -> None:
    host = serve("GET", "/queue", status(502, "Bad Gateway"))
    error = await call(host, lambda c: c.queue())
    assert type(error) is ComfyHTTPError
    assert error.message == f"ComfyUI at {host} answered HTTP 502 while reading the queue"
    assert error.details["status"] == 502


async def test_a_reply_that_is_not_json_is_not_called_unreachable(serve: Any) -> None:
    host = serve("GET", "/system_stats", status(200, "<html>nginx welcome page</html>", "text/html"))
    error = await call(host, lambda c: c.system_stats())
    assert type(error) is ComfyBadReply and error.code == "COMFY_UNAVAILABLE"
    assert "cannot reach" not in error.message
    assert error.message.startswith(
        f"the server at {host} answered with something that is not ComfyUI's JSON"
    )
    assert "nginx welcome page" in error.message and "COMFY_HOST" in error.message


async def test_a_queue_answer_without_a_prompt_id_is_a_bad_reply(serve: Any) -> None:
    host = serve("POST", "/prompt", status(200, '{"queued": true}', "application/json"))
    error = await call(host, lambda c: c.queue_prompt({}, client_id="c", prompt_id="p", extra_data={}))
    assert type(error) is ComfyBadReply and "while queueing the workflow" in error.message


@pytest.mark.parametrize(
    ("code", "hint"),
    [(413, "over ComfyUI's upload limit: raise it with COMFY_ARGS=--max-upload-size"), (400, "valid image")],
)
async def test_an_upload_refused_with_a_4xx_is_the_jobs_input(serve: Any, code: int, hint: str) -> None:
    host = serve("POST", "/upload/image", status(code, "Request Entity Too Large" if code == 413 else ""))
    error = await call(host, lambda c: c.upload(IMAGE))
    assert type(error) is UploadRefused and error.code == "INVALID_INPUT"
    assert error.message.startswith(f"ComfyUI refused the input 'photo.png' with HTTP {code}: ")
    assert hint in error.message
    assert error_result(error)["error"].startswith(
        "INVALID_INPUT: ComfyUI refused the input"
    )  # the job's fault


async def test_an_upload_failing_with_a_5xx_is_comfyuis_problem(serve: Any, tmp_path: Path) -> None:
    host = serve("POST", "/upload/image", status(500, "Internal Server Error"))
    source = tmp_path / "clip.wav"
    source.write_bytes(b"RIFF" + bytes(100))
    error = await call(host, lambda c: c.upload_file(name="clip.wav", path=source, mime_type="audio/wav"))
    assert type(error) is ComfyHTTPError
    assert (
        error.message
        == f"ComfyUI at {host} answered HTTP 500 while uploading input 'clip.wav': Internal Server Error"
    )


async def test_a_refused_websocket_upgrade_is_an_http_error(serve: Any) -> None:
    host = serve("GET", "/ws", status(403, "forbidden"))
    error = await call(host, lambda c: c.open_websocket("client-1"))
    assert (
        type(error) is ComfyHTTPError and "HTTP 403 while connecting to ComfyUI's WebSocket" in error.message
    )


def test_every_transport_error_class_keeps_the_comfy_unavailable_code() -> None:
    # Clients (the studio app, worker-comfyui users) match on the code: the split must not change it.
    for cls in (ComfyUnreachable, ComfyNoAnswer, ComfyHTTPError, ComfyBadReply):
        assert issubclass(cls, ComfyUnavailable) and cls.code == "COMFY_UNAVAILABLE"


def _aiohttp_failures() -> list[type[BaseException]]:
    """Every exception class aiohttp exports that a client call can raise."""
    import aiohttp

    found: list[type[BaseException]] = []
    for name in aiohttp.__all__:
        value = getattr(aiohttp, name, None)
        if isinstance(value, type) and issubclass(value, (aiohttp.ClientError, TimeoutError)):
            found.append(value)
    return found


@pytest.mark.parametrize("failure", _aiohttp_failures(), ids=lambda cls: cls.__name__)
def test_every_aiohttp_failure_leaves_the_client_as_one_of_ours(failure: type[BaseException]) -> None:
    # httpx's tests check that every lower-level exception has a mapping; so does this. A failure
    # aiohttp adds in a later release must not reach a job result as INTERNAL_ERROR.
    exc = failure.__new__(failure)  # the constructors differ; the mapping reads only these fields
    exc.status = 500  # type: ignore[attr-defined]
    exc._os_error = ConnectionRefusedError(111, "Connection refused")  # type: ignore[attr-defined]
    exc.doc = ""  # type: ignore[attr-defined]
    client = ComfyClient("127.0.0.1:1", http_timeout_s=1.0)
    with pytest.raises(ComfyUnavailable) as info, client._mapped("probing"):
        raise exc
    assert info.value.code == "COMFY_UNAVAILABLE" and info.value.__cause__ is exc
    assert "probing" in info.value.message
