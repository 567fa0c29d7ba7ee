"""The local endpoint under hostile requests (issue 14, points 3, 8, 9, 10), over real sockets.

The endpoint runs in-process with no workers: every defect here is in the HTTP layer and the
webhook delivery, which a queued job and /cancel exercise without a worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from comfy_worker.endpoint.serve import app_runner
from comfy_worker.endpoint.server import EndpointConfig, LocalEndpoint
from handler.config import parse_allowlist

KEY = "hardening-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


class Receiver:
    """A loopback HTTP server recording every request; ``redirect_to`` answers 307 there."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.paths.append(self.path)
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if redirect_to:
                    self.send_response(307)
                    self.send_header("Location", redirect_to)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def victim() -> Iterator[Receiver]:
    """Stands in for ComfyUI's /interrupt on loopback."""
    server = Receiver()
    yield server
    server.close()


class Running:
    def __init__(self, endpoint: LocalEndpoint, url: str) -> None:
        self.endpoint = endpoint
        self.url = url
        self.base = f"{url}/v2/local"


async def start(**options: Any) -> tuple[Running, web.AppRunner]:
    config = EndpointConfig(api_key=KEY, workers=0, **options)
    endpoint = LocalEndpoint(config)
    app = endpoint.app()
    with warnings.catch_warnings():  # serve.py sets this str key the same way
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        app["internal_url"] = "http://127.0.0.1:1"
    runner = app_runner(app, config)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return Running(endpoint, f"http://127.0.0.1:{port}"), runner


@pytest.fixture
async def endpoint() -> AsyncIterator[Running]:
    running, runner = await start(client_idle_s=0.5, body_read_s=0.5)
    yield running
    await runner.cleanup()


async def post(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=data, headers=headers or AUTH) as response,
    ):
        return response.status, await response.json(content_type=None)


async def wait_until(condition: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


# --- point 3: webhooks through the SSRF guard -----------------------------------------------------


async def test_webhook_to_loopback_literal_is_refused_at_submission(
    endpoint: Running, victim: Receiver
) -> None:
    hook = f"http://127.0.0.1:{victim.port}/interrupt"
    status, body = await post(f"{endpoint.base}/run", {"input": {}, "webhook": hook})
    assert status == 400
    assert "loopback" in body["error"] and "--webhook-allow" in body["error"]
    assert endpoint.endpoint.store.counts()["inQueue"] == 0
    status, body = await post(f"{endpoint.base}/run", {"input": {}, "webhook": "file:///etc/passwd"})
    assert status == 400 and "http://" in body["error"]


async def test_webhook_host_resolving_to_loopback_is_never_called_and_never_logged_whole(
    endpoint: Running, victim: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    hook = f"http://alice:hunter22@localhost:{victim.port}/interrupt?token=topsecret"
    status, body = await post(f"{endpoint.base}/run", {"input": {}, "webhook": hook})
    assert status == 200, body
    with caplog.at_level(logging.DEBUG):
        status, _ = await post(f"{endpoint.base}/cancel/{body['id']}", {})
        assert status == 200
        await wait_until(lambda: "not sent" in caplog.text)
    assert victim.paths == []
    assert "loopback" in caplog.text
    assert "hunter22" not in caplog.text and "topsecret" not in caplog.text and "alice" not in caplog.text


async def test_allowed_webhook_is_delivered_but_its_redirect_is_not_followed(
    victim: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    hop = Receiver(redirect_to=f"http://127.0.0.1:{victim.port}/interrupt")
    running, runner = await start(webhook_allow=parse_allowlist("127.0.0.1", "--webhook-allow"))
    try:
        hook = f"http://127.0.0.1:{hop.port}/hook"
        _, body = await post(f"{running.base}/run", {"input": {}, "webhook": hook})
        with caplog.at_level(logging.WARNING):
            await post(f"{running.base}/cancel/{body['id']}", {})
            await wait_until(lambda: "redirects are not followed" in caplog.text)
        assert hop.paths == ["/hook"]
        assert victim.paths == []
    finally:
        hop.close()
        await runner.cleanup()


# --- point 9: every malformed request gets a JSON 4xx ---------------------------------------------


def raw_request(url: str, data: bytes, *, read_timeout_s: float = 5.0) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=read_timeout_s) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("route", ["/v2/local/health", "/v2/local/status/x", "/internal/ping/worker-1"])
@pytest.mark.parametrize("key", ["clé".encode(), b"cl\xe9"], ids=["utf-8", "latin-1"])
async def test_non_ascii_authorization_is_a_json_401(endpoint: Running, route: str, key: bytes) -> None:
    request = (
        f"GET {route} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode()
        + b"Authorization: Bearer "
        + key
        + b"\r\n\r\n"
    )
    answer = await asyncio.to_thread(raw_request, endpoint.url, request)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401"), answer[:200]
    assert "Unauthorized" in json.loads(body)["error"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"input": {}, "policy": {"ttl": 1' + b"0" * 400 + b"}}", "policy.ttl"),
        (b'{"input": {}, "policy": {"executionTimeout": NaN}}', "NaN"),
        (b'{"input": {}, "policy": {"executionTimeout": Infinity}}', "Infinity"),
        (b'{"input": {}, "policy": {"executionTimeout": 1e400}}', "policy.executionTimeout"),
        (b'{"input": {}, "policy": {"executionTimeout": 0}}', "policy.executionTimeout"),
        (b'{"input": {}, "policy": {"ttl": 604800001}}', "7 days"),
        (b'{"input": {}, "webhook": 5}', "webhook"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
async def test_malformed_bodies_are_a_json_400(endpoint: Running, body: bytes, expected: str) -> None:
    status, answer = await post(f"{endpoint.base}/run", body)
    assert status == 400, answer
    assert expected in answer["error"]
    assert endpoint.endpoint.store.counts()["inQueue"] == 0


async def test_unknown_routes_and_methods_answer_json(endpoint: Running) -> None:
    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with session.get(f"{endpoint.base}/nothing") as response:
            assert response.status == 404 and "error" in await response.json()
        async with session.delete(f"{endpoint.base}/run") as response:
            assert response.status == 405 and "error" in await response.json()


async def test_slow_client_is_cut_off(endpoint: Running) -> None:
    # Headers that never end: closed after client_idle_s (0.5 s here), not held an hour.
    started = time.monotonic()
    answer = await asyncio.to_thread(
        raw_request, endpoint.url, b"GET /v2/local/health HTTP/1.1\r\nHost: x\r\n"
    )
    assert answer == b"" and time.monotonic() - started < 4.0
    # A body that stops arriving: a JSON 408 after body_read_s.
    head = f"POST /v2/local/run HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
    request = (head + "Content-Length: 1000\r\nConnection: close\r\n\r\n").encode() + b'{"input": '
    answer = await asyncio.to_thread(raw_request, endpoint.url, request)
    status_line, _, body = answer.partition(b"\r\n\r\n")
    assert status_line.startswith(b"HTTP/1.1 408"), answer[:200]
    assert "did not arrive" in json.loads(body)["error"]
