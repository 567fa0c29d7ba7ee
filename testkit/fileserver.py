"""A loopback HTTP file server with Range support and injectable faults, for tests and benchmarks.

server = FileServer({"/a.bin": b"..."})   # starts on 127.0.0.1, a free port
server.files["/big.bin"] = Path("big.bin")         # served from disk (a file too big for memory)
server.faults["/a.bin"] = Fault(cut_after=1000)   # first response stops after 1000 bytes
server.url("/a.bin"); server.requests  # what clients asked for
server.close()
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["Fault", "FileServer", "Request"]


@dataclass
class Fault:
    """What goes wrong when a path is requested. Counters are consumed as requests arrive."""

    status: int | None = None  # answer this status instead of the file...
    status_times: int = 1_000_000  # ...this many times, then serve normally
    cut_after: int | None = None  # send this many body bytes, then drop the connection...
    cut_times: int = 1  # ...on this many responses
    cut_at_offset: int | None = None  # drop the (first) response whose body reaches this file offset
    ignore_range: bool = False  # always answer 200 with the whole file, without Accept-Ranges
    redirect_to: str | None = None  # answer 302 to this URL
    require_token: str | None = None  # 401 unless "Authorization: Bearer <token>"
    first_byte_delay_s: float = 0.0
    rate_bytes_per_s: float | None = None  # per-connection bandwidth cap
    retry_after_s: int | None = None


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]


class FileServer:
    def __init__(self, files: dict[str, bytes | Path] | None = None, *, host: str = "127.0.0.1") -> None:
        self.files: dict[str, bytes | Path] = dict(files or {})
        self.faults: dict[str, Fault] = {}
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests served at the same time
        self.bytes_sent: dict[str, int] = {}  # body bytes sent per path
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, 0), _handler(self))
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self.host = host
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fileserver", daemon=True
        )
        self._thread.start()

    def url(self, path: str, *, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def requests_for(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _record(self, request: Request) -> Fault | None:
        with self._lock:
            self.requests.append(request)
            return self.faults.get(request.path)

    def _sent(self, path: str, count: int) -> None:
        with self._lock:
            self.bytes_sent[path] = self.bytes_sent.get(path, 0) + count

    def _busy(self, delta: int) -> None:
        with self._lock:
            self.in_flight += delta
            self.max_in_flight = max(self.max_in_flight, self.in_flight)


def _handler(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: tests read server.requests instead

        def do_GET(self) -> None:
            server._busy(+1)
            try:
                self._get()
            finally:
                server._busy(-1)

        def _get(self) -> None:
            fault = server._record(Request(self.path, dict(self.headers.items())))
            fault = fault or Fault()
            if fault.first_byte_delay_s:
                time.sleep(fault.first_byte_delay_s)
            if fault.require_token and self.headers.get("Authorization") != f"Bearer {fault.require_token}":
                return self._status(401)
            if fault.redirect_to:
                self.send_response(302)
                self.send_header("Location", fault.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if fault.status is not None and fault.status_times > 0:
                fault.status_times -= 1
                return self._status(fault.status, retry_after=fault.retry_after_s)
            data = server.files.get(self.path)
            if data is None:
                return self._status(404)
            size = data.stat().st_size if isinstance(data, Path) else len(data)
            start, end = 0, size - 1
            range_header = self.headers.get("Range", "")
            if range_header.startswith("bytes=") and not fault.ignore_range:
                first, _, last = range_header[6:].partition("-")
                start = int(first)
                if last:
                    end = min(int(last), size - 1)
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(end + 1 - start))
            if not fault.ignore_range:
                self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            limit = None
            if fault.cut_after is not None and fault.cut_times > 0:
                fault.cut_times -= 1
                limit = fault.cut_after
            if fault.cut_at_offset is not None and start < fault.cut_at_offset <= end:
                limit = fault.cut_at_offset - start
                fault.cut_at_offset = None
            self._send(data, start, end + 1, limit=limit, rate=fault.rate_bytes_per_s)
            return None

        def _send(
            self, data: bytes | Path, start: int, stop: int, *, limit: int | None, rate: float | None
        ) -> None:
            if limit is not None:
                stop = min(stop, start + limit)
            step = 256 * 1024 if isinstance(data, Path) else 64 * 1024
            started = time.monotonic()
            sent = 0
            fd = os.open(data, os.O_RDONLY) if isinstance(data, Path) else None
            try:
                while start + sent < stop:
                    count = min(step, stop - start - sent)
                    if fd is not None:
                        chunk: bytes | memoryview = os.pread(fd, count, start + sent)
                    else:
                        assert isinstance(data, bytes)
                        chunk = memoryview(data)[start + sent : start + sent + count]
                    self.wfile.write(chunk)
                    sent += len(chunk)
                    server._sent(self.path, len(chunk))
                    if rate:
                        ahead = sent / rate - (time.monotonic() - started)
                        if ahead > 0:
                            time.sleep(ahead)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return
            finally:
                if fd is not None:
                    os.close(fd)
            if limit is not None:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

        def _status(self, code: int, *, retry_after: int | None = None) -> None:
            self.send_response(code)
            if retry_after is not None:
                self.send_header("Retry-After", str(retry_after))
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler
