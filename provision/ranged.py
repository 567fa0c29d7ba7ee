"""One file over several connections: HTTP Range blocks written in place, resumable per block.

Hosting CDNs cap each connection, so a 20 GB file over one stream goes at that cap however fast
the machine is. Here the file is cut into blocks; `connections` threads each take the next
unclaimed block (``Range: bytes=a-b``) and write it at its offset with ``pwrite``. The next
free block is always the lowest, so the finished part of the file grows from the start, and the
calling thread hashes that contiguous prefix while the workers write (sha256 while writing).

Progress per block is kept in ``.<name>.ranges`` beside the ``.part`` file, so a cut connection
resumes its own block where it stopped (``Range: bytes=<start+done>-<end>``) and a restarted
process resumes every block. A block that fails is retried with backoff up to `retries` times;
a server that stops honouring ranges raises `RangesRefused` and the caller falls back to one
stream. Only bytes already written are ever recorded as done.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import http.client
import itertools
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DownloadError, RetryableDownloadError
from .progress import Progress, human_bytes

__all__ = ["RangeJob", "RangesRefused", "block_size_for", "fetch_ranges", "ranges_path"]

READ_BYTES = 1 << 20
HASH_BYTES = 8 << 20
SAVE_EVERY_S = 1.0
MIN_BLOCK = 8 << 20
MAX_BLOCK = 256 << 20


class RangesRefused(RetryableDownloadError):
    """The server answered a Range request with the whole file (or another range): use one stream."""


def ranges_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.ranges")


def block_size_for(total: int, connections: int) -> int:
    """About four blocks per connection, between 8 MiB and 256 MiB: few requests, an even finish."""
    return max(MIN_BLOCK, min(MAX_BLOCK, -(-total // (connections * 4))))


@dataclass
class _Block:
    start: int
    end: int  # exclusive
    done: int = 0
    failures: int = 0

    @property
    def complete(self) -> bool:
        return self.start + self.done >= self.end


@dataclass(frozen=True)
class RangeJob:
    """What to fetch and how: one file, already known to be `total` bytes and range-capable."""

    url: str
    total: int
    name: str  # for progress lines
    target: Path  # the final file name (for messages)
    state_path: Path  # the .ranges file
    connections: int
    block_bytes: int
    retries: int
    timeout_s: float
    headers: dict[str, str]  # User-Agent and friends; the token goes in `unredirected`
    unredirected: dict[str, str]


@dataclass(frozen=True)
class RangeResult:
    sha256: str
    received: int  # bytes fetched in this run
    resumed: bool  # some blocks came from an earlier run


def fetch_ranges(
    job: RangeJob,
    fd: int,
    *,
    opener: urllib.request.OpenerDirector,
    progress: Progress,
    backoff: Callable[[int, RetryableDownloadError], float],
    sleep: Callable[[float], None] = time.sleep,
    map_http_error: Callable[[urllib.error.HTTPError], DownloadError],
    transient: Callable[[BaseException, int], RetryableDownloadError],
) -> RangeResult:
    """Fill `fd` (the locked .part file) with the whole file; return its sha256.

    Raises the first error that is not worth retrying, or the last retryable one once a block
    used up its retries; the .ranges file then holds what was done, for the next run.
    """
    return _RangeRun(job, fd, opener, progress, backoff, sleep, map_http_error, transient).run()


class _RangeRun:
    def __init__(
        self,
        job: RangeJob,
        fd: int,
        opener: urllib.request.OpenerDirector,
        progress: Progress,
        backoff: Callable[[int, RetryableDownloadError], float],
        sleep: Callable[[float], None],
        map_http_error: Callable[[urllib.error.HTTPError], DownloadError],
        transient: Callable[[BaseException, int], RetryableDownloadError],
    ) -> None:
        self.job = job
        self.fd = fd
        self.opener = opener
        self.progress = progress
        self.backoff = backoff
        self.sleep = sleep
        self.map_http_error = map_http_error
        self.transient = transient
        self.cond = threading.Condition()
        self.failure: DownloadError | None = None
        self.received = 0

    def run(self) -> RangeResult:
        job = self.job
        blocks = _load(job)
        if blocks is not None and os.fstat(self.fd).st_size != job.total:
            blocks = None  # the .part is not the file the state describes: start afresh
        resumed = blocks is not None and any(b.done for b in blocks)
        if blocks is None:
            blocks = [
                _Block(start, min(start + job.block_bytes, job.total))
                for start in range(0, job.total, job.block_bytes)
            ]
            os.ftruncate(self.fd, 0)
            os.ftruncate(self.fd, job.total)  # sparse: blocks land at their offsets
            _save(job, blocks)
        self.blocks = blocks
        already = sum(b.done for b in blocks)
        self.pending = collections.deque(b for b in blocks if not b.complete)
        self.progress.start(job.name, total=job.total, offset=already)
        if resumed:
            self.progress.line(
                f"{job.name}: resuming {len(self.pending)} block(s), {human_bytes(already)} kept"
            )
        threads = [
            threading.Thread(target=self._worker, name=f"range-{job.name}-{i}", daemon=True)
            for i in range(min(job.connections, len(self.pending)))
        ]
        for thread in threads:
            thread.start()
        try:
            digest = self._hash_while_writing()
        finally:
            with self.cond:
                if self.failure is None and any(not b.complete for b in blocks):
                    self.failure = DownloadError("interrupted", url=job.url, target=job.target)
                self.cond.notify_all()
            for thread in threads:
                thread.join()
            _save(job, blocks)
        if self.failure is not None:
            raise self.failure
        return RangeResult(digest.hexdigest(), self.received, resumed)

    def _prefix(self) -> int:
        """Bytes written contiguously from the start of the file (caller holds the lock)."""
        end = 0
        for block in self.blocks:
            end = block.start + block.done
            if not block.complete:
                break
        return end

    def _hash_while_writing(self) -> hashlib._Hash:
        digest = hashlib.sha256()
        hashed = 0
        last_save = time.monotonic()
        while True:
            with self.cond:
                while self.failure is None and self._prefix() == hashed:
                    self.cond.wait(SAVE_EVERY_S)
                    if time.monotonic() - last_save >= SAVE_EVERY_S:
                        break
                if self.failure is not None:
                    return digest
                ready = self._prefix()
            while hashed < ready:
                chunk = os.pread(self.fd, min(HASH_BYTES, ready - hashed), hashed)
                if not chunk:
                    raise DownloadError(
                        f"the .part file is shorter than expected at {hashed} bytes",
                        url=self.job.url,
                        target=self.job.target,
                    )
                digest.update(chunk)
                hashed += len(chunk)
            if time.monotonic() - last_save >= SAVE_EVERY_S:
                with self.cond:
                    _save(self.job, self.blocks)
                last_save = time.monotonic()
            if hashed >= self.job.total:
                return digest

    def _worker(self) -> None:
        while True:
            with self.cond:
                if self.failure is not None or not self.pending:
                    return
                block = self.pending.popleft()
            try:
                self._fetch(block)
            except RetryableDownloadError as exc:
                block.failures += 1
                if isinstance(exc, RangesRefused) or block.failures > self.job.retries:
                    self._fail(exc, block)
                    return
                delay = self.backoff(block.failures - 1, exc)
                self.progress.line(
                    f"{self.job.name}: block at {human_bytes(block.start + block.done)}: {exc.reason}; "
                    f"resuming it in {delay:.1f}s (attempt {block.failures + 1} of {self.job.retries + 1})"
                )
                self.sleep(delay)
                with self.cond:
                    self.pending.appendleft(block)
            except DownloadError as exc:
                self._fail(exc, block)
                return
            with self.cond:
                self.cond.notify_all()

    def _fail(self, exc: DownloadError, block: _Block) -> None:
        with self.cond:
            if self.failure is None:
                if isinstance(exc, RetryableDownloadError) and not isinstance(exc, RangesRefused):
                    exc = DownloadError(
                        f"gave up after {block.failures} attempts on the block at "
                        f"{human_bytes(block.start + block.done)}, last: {exc.reason}; "
                        "the finished blocks are kept for the next run",
                        url=exc.url,
                        target=exc.target,
                    )
                self.failure = exc
            self.cond.notify_all()

    def _fetch(self, block: _Block) -> None:
        job = self.job
        first = block.start + block.done
        request = urllib.request.Request(
            job.url, headers={**job.headers, "Range": f"bytes={first}-{block.end - 1}"}
        )
        for name, value in job.unredirected.items():
            request.add_unredirected_header(name, value)
        try:
            response = self.opener.open(request, timeout=job.timeout_s)
        except urllib.error.HTTPError as exc:
            with contextlib.closing(exc):
                raise self.map_http_error(exc) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise self.transient(exc, 0) from exc
        with response:
            _check_range(response, first, block.end - 1, job)
            buffer = memoryview(bytearray(READ_BYTES))
            position = first
            while position < block.end:
                with self.cond:
                    if self.failure is not None:
                        return
                want = min(READ_BYTES, block.end - position)
                try:
                    count = response.readinto(buffer[:want])
                except (OSError, http.client.HTTPException) as exc:
                    raise self.transient(exc, position - first) from exc
                if not count:
                    raise RetryableDownloadError(
                        f"connection closed after {human_bytes(position - first)} of the block",
                        url=job.url,
                        target=job.target,
                    )
                written = os.pwrite(self.fd, buffer[:count], position)
                position += written
                with self.cond:
                    block.done += written
                    self.received += written
                    self.cond.notify_all()
                self.progress.advance(job.name, written)


def _check_range(response: Any, first: int, last: int, job: RangeJob) -> None:
    content_range = response.headers.get("Content-Range", "")
    expected = f"bytes {first}-{last}/{job.total}"
    if response.status != 206 or content_range != expected:
        raise RangesRefused(
            f"asked for bytes {first}-{last}, the server answered {response.status} "
            f"{content_range or 'without Content-Range'}; falling back to one stream",
            url=job.url,
            target=job.target,
        )


def _load(job: RangeJob) -> list[_Block] | None:
    try:
        data = json.loads(job.state_path.read_text(encoding="utf-8"))
        if data["url"] != job.url or data["total"] != job.total:
            return None
        blocks = [_Block(int(s), int(e), int(d)) for s, e, d in data["blocks"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not blocks or blocks[0].start != 0 or blocks[-1].end != job.total:
        return None
    for before, after in itertools.pairwise(blocks):
        if before.end != after.start:
            return None
    if any(b.done < 0 or b.start + b.done > b.end for b in blocks):
        return None
    return blocks


def _save(job: RangeJob, blocks: list[_Block]) -> None:
    payload = {"url": job.url, "total": job.total, "blocks": [[b.start, b.end, b.done] for b in blocks]}
    tmp = job.state_path.with_name(job.state_path.name + ".tmp")
    tmp.write_text(json.dumps(payload) + "\n", encoding="utf-8")
    os.replace(tmp, job.state_path)
