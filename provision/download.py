"""Parallel, resumable, verified model downloads, with the standard library only.

A file gets its final name only after it was received in full and checked (size, sha256): it
is written as ``.<name>.part`` and renamed, so a final name always means a complete file and a
cut download resumes from its ``.part`` with an HTTP Range request. A stamp ``.<name>.sha256``
records what was verified (sha256, size, mtime, url), so a re-run skips verified files without
hashing gigabytes again, and hashes once more any file whose size or mtime changed.

Two processes downloading the same file (two workers on one network volume) take turns: the
``.part`` file is locked with flock, and the second finds the first's verified result.

A file of at least `split_min_bytes` whose server honours Range requests is fetched over
`connections` connections at once (provision/ranged.py); any other file, or a server that
answers a Range request with the whole file, gets one stream. A file whose sha256 is not the
manifest's is moved aside to ``.<name>.rejected`` (kept for inspection, never loaded).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import random
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from .errors import (
    AuthRequired,
    ChecksumMismatch,
    DownloadError,
    NoSpace,
    NotFound,
    ProvisionError,
    RetryableDownloadError,
    SizeMismatch,
    UnverifiedRefused,
)
from .manifest import ModelSpec
from .progress import Progress, human_bytes
from .ranged import RangeJob, RangesRefused, block_size_for, fetch_ranges, ranges_path

__all__ = [
    "DownloadOptions",
    "Downloader",
    "Outcome",
    "hash_file",
    "link_into_comfyui",
    "rejected_path",
    "restamp",
    "stamp_path",
]

CHUNK_BYTES = 1 << 20
USER_AGENT = "comfy-serverless-worker-provision/1"
# Hosts that get the HF token; it never follows a redirect to a CDN or any other host.
HF_TOKEN_HOSTS = frozenset({"huggingface.co", "hf.co"})
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class DownloadOptions:
    concurrency: int = 4
    retries: int = 5  # attempts after the first, per file
    backoff_s: float = 1.0  # first pause; doubles per attempt, with jitter
    backoff_max_s: float = 30.0
    timeout_s: float = 30.0  # longest silence on a connection
    require_sha256: bool = False
    connections: int = 8  # per file, for files of at least split_min_bytes on a range-capable server
    split_min_bytes: int = 64 << 20
    block_bytes: int | None = None  # None: about four blocks per connection (ranged.block_size_for)
    hf_token: str | None = field(default=None, repr=False)
    token_hosts: frozenset[str] = HF_TOKEN_HOSTS


@dataclass(frozen=True)
class Outcome:
    """What happened to one model: ``present`` (already verified), ``downloaded`` or ``failed``."""

    model: ModelSpec
    path: Path
    status: str
    sha256: str | None = None
    bytes_received: int = 0
    error: ProvisionError | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass(frozen=True)
class _Stamp:
    sha256: str
    size: int
    mtime_ns: int
    url: str

    def matches(self, path: Path) -> bool:
        try:
            st = path.stat()
        except OSError:
            return False
        if st.st_size != self.size:
            return False
        if st.st_mtime_ns == self.mtime_ns:
            return True
        # Image layers (BuildKit, moby) store mtimes truncated to whole seconds: a baked file comes
        # back from a push and pull with its nanoseconds zeroed. Accept exactly that, nothing looser.
        second = 1_000_000_000
        return st.st_mtime_ns % second == 0 and st.st_mtime_ns // second == self.mtime_ns // second


def stamp_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.sha256")


def _part_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.part")


def rejected_path(target: Path) -> Path:
    """Where a download whose sha256 is not the manifest's is kept: never under a loadable name."""
    return target.with_name(f".{target.name}.rejected")


def _read_stamp(target: Path) -> _Stamp | None:
    try:
        data = json.loads(stamp_path(target).read_text(encoding="utf-8"))
        return _Stamp(str(data["sha256"]), int(data["size"]), int(data["mtime_ns"]), str(data.get("url", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_stamp(target: Path, *, sha256: str, described: Path, url: str) -> None:
    st = described.stat()
    payload = {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "url": url}
    tmp = stamp_path(target).with_suffix(".tmp")
    tmp.write_text(json.dumps(payload) + "\n", encoding="utf-8")
    os.replace(tmp, stamp_path(target))


def _remove(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def hash_file(path: Path, *, upto: int | None = None) -> hashlib._Hash:
    """sha256 of a file (or of its first `upto` bytes), read in large chunks."""
    digest = hashlib.sha256()
    remaining = upto
    with path.open("rb") as handle:
        while remaining is None or remaining > 0:
            size = CHUNK_BYTES * 8 if remaining is None else min(CHUNK_BYTES * 8, remaining)
            chunk = handle.read(size)
            if not chunk:
                break
            digest.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
    return digest


def verified_copy(model: ModelSpec, root: Path) -> Path | None:
    """The model's file under `root` if a stamp vouches for it (no hashing), else None."""
    target = root.joinpath(*model.relpath.parts)
    stamp = _read_stamp(target)
    if stamp is None or not stamp.matches(target):
        return None
    if model.sha256 is not None:
        return target if stamp.sha256 == model.sha256 else None
    return target if stamp.url == model.url else None


def restamp(root: Path) -> int:
    """Refresh the mtime in every stamp under `root` whose file still has the stamped size.

    For the Dockerfile only, right after copying models it verified in an earlier stage: a copy
    may get new mtimes, which would make the next boot hash every file again. Returns the count.
    """
    count = 0
    for stamp_file in root.rglob(".*.sha256"):
        target = stamp_file.with_name(stamp_file.name[1 : -len(".sha256")])
        stamp = _read_stamp(target)
        if stamp is None or not target.is_file() or target.stat().st_size != stamp.size:
            continue
        _write_stamp(target, sha256=stamp.sha256, described=target, url=stamp.url)
        count += 1
    return count


def link_into_comfyui(model: ModelSpec, source: Path, comfyui_models: Path) -> Path | None:
    """Symlink `source` to <comfyui_models>/<folder>/<file> for nodes that only look there.

    Returns the link, or None when nothing was needed (already the same file, or a real file is
    there, which we never replace).
    """
    link = comfyui_models.joinpath(*model.relpath.parts)
    if link == source or (link.exists() and not link.is_symlink()):
        return None
    if link.is_symlink() and os.readlink(link) == str(source):
        return None
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.link")
    _remove(tmp)
    tmp.symlink_to(source)
    os.replace(tmp, link)
    return link


class _TokenRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects, re-adding the token only for the token hosts.

    The token is an unredirected header, so urllib never copies it to the next request; the
    Hugging Face CDN URLs a redirect leads to are signed and must not see it.
    """

    def __init__(self, token: str | None, hosts: frozenset[str]) -> None:
        self._token = token
        self._hosts = hosts

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and self._token and _host(newurl) in self._hosts:
            new.add_unredirected_header("Authorization", f"Bearer {self._token}")
        return new


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


class _Part:
    """The open, locked ``.part`` file and the sha256 of the bytes it holds so far."""

    def __init__(self, handle: IO[bytes], path: Path, ranges: Path) -> None:
        self.handle = handle
        self.path = path
        self.ranges = ranges  # present while the bytes are blocks of a ranged download, not a prefix
        self.digest = hashlib.sha256()
        self.hashed = 0
        self.fresh_start = True  # every byte came in one request (no resume)

    @property
    def size(self) -> int:
        return os.fstat(self.handle.fileno()).st_size

    def reset(self) -> None:
        _remove(self.ranges)
        self.handle.seek(0)
        self.handle.truncate(0)
        self.digest = hashlib.sha256()
        self.hashed = 0
        self.fresh_start = True

    def catch_up(self) -> int:
        """Hash the bytes already on disk (after a resume or a restart); return the offset."""
        size = self.size
        if self.hashed != size:
            self.handle.flush()
            self.digest = hash_file(self.path, upto=size)
            self.hashed = size
        if size:
            self.fresh_start = False
        self.handle.seek(size)
        return size

    def append(self, chunk: bytes) -> None:
        self.handle.write(chunk)
        self.digest.update(chunk)
        self.hashed += len(chunk)


@dataclass
class _Plan:
    """Per file and run: whether it goes in ranges (None: not asked yet) and its size if so."""

    ranged: bool | None = None
    total: int | None = None


class Downloader:
    """Downloads manifest models into a models root; see the module docstring for the rules."""

    def __init__(
        self,
        options: DownloadOptions,
        progress: Progress,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.options = options
        self.progress = progress
        self._sleep = sleep
        self._opener = urllib.request.build_opener(_TokenRedirects(options.hf_token, options.token_hosts))

    def fetch_all(
        self, models: Sequence[ModelSpec], root: Path, *, elsewhere: Sequence[Path] = ()
    ) -> list[Outcome]:
        """Fetch `models` into `root`, `options.concurrency` at a time; never raises per file.

        A model already verified under one of the `elsewhere` roots (baked into the image, or on
        the other volume) counts as present and is not downloaded again.
        """
        if not models:
            return []
        with ThreadPoolExecutor(max_workers=self.options.concurrency, thread_name_prefix="download") as pool:
            return list(pool.map(lambda model: self.fetch(model, root, elsewhere=elsewhere), models))

    def fetch(self, model: ModelSpec, root: Path, *, elsewhere: Sequence[Path] = ()) -> Outcome:
        target = root.joinpath(*model.relpath.parts)
        for other in elsewhere:
            found = verified_copy(model, other) if other != root else None
            stamp = _read_stamp(found) if found is not None else None
            if found is not None and stamp is not None:
                self.progress.line(f"{model.filename}: present in {other}")
                return Outcome(model, found, "present", sha256=stamp.sha256)
        try:
            if model.sha256 is None and self.options.require_sha256:
                raise UnverifiedRefused(url=model.url, target=target)
            target.parent.mkdir(parents=True, exist_ok=True)
            with self._locked_part(target) as part:
                sha = self._present(model, target)
                if sha is not None:
                    if part.size == 0:
                        _remove(part.path, part.ranges)
                    return Outcome(model, target, "present", sha256=sha)
                sha, received = self._download(model, target, part)
            if model.sha256 is None:
                self._warn_unverified(model, sha)
            return Outcome(model, target, "downloaded", sha256=sha, bytes_received=received)
        except ProvisionError as exc:
            # The full message comes once, in the run's summary.
            self.progress.line(f"{model.filename}: FAILED ({type(exc).__name__}; details at the end)")
            return Outcome(model, target, "failed", error=exc)
        except OSError as exc:
            reason = (
                f"cannot write to {target.parent}: {exc.strerror or exc} (running as uid {os.getuid()}; "
                "README.md, 'Users and permissions')"
            )
            error = DownloadError(reason, url=model.url, target=target)
            self.progress.line(f"{model.filename}: FAILED (cannot write; details at the end)")
            return Outcome(model, target, "failed", error=error)

    @contextlib.contextmanager
    def _locked_part(self, target: Path) -> Iterator[_Part]:
        """Open and flock the .part file, waiting while another process holds it."""
        path = _part_path(target)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.progress.line(f"{target.name}: another process is downloading it; waiting")
                fcntl.flock(fd, fcntl.LOCK_EX)
            # The holder may have renamed the .part to its final name meanwhile: start again.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        with os.fdopen(fd, "r+b") as handle:
            yield _Part(handle, path, ranges_path(target))

    def _present(self, model: ModelSpec, target: Path) -> str | None:
        """The sha256 of a complete, correct file already at `target`, else None (and it is gone)."""
        if not target.is_file():
            return None
        size = target.stat().st_size
        if model.size is not None and size != model.size:
            self.progress.line(
                f"{target.name}: {size} bytes on disk, manifest.toml says {model.size}; downloading again"
            )
            _remove(target, stamp_path(target))
            return None
        stamp = _read_stamp(target)
        if stamp is not None and stamp.matches(target):
            if model.sha256 is not None and stamp.sha256 == model.sha256:
                return stamp.sha256
            if model.sha256 is None and stamp.url == model.url:
                return stamp.sha256
            self.progress.line(f"{target.name}: manifest.toml now names another file; downloading again")
            _remove(target, stamp_path(target))
            return None
        self.progress.line(f"{target.name}: checking the file already there ({human_bytes(size)})")
        sha = hash_file(target).hexdigest()
        if model.sha256 is not None and sha != model.sha256:
            self.progress.line(f"{target.name}: sha256 {sha} is not the manifest's; downloading again")
            _remove(target, stamp_path(target))
            return None
        _write_stamp(target, sha256=sha, described=target, url=model.url)
        return sha

    def _download(self, model: ModelSpec, target: Path, part: _Part) -> tuple[str, int]:
        attempt = 0
        plan = _Plan()
        while True:
            try:
                if self._ranged_size(model, target, part, plan) is not None:
                    return self._ranged(model, target, part, plan)
                return self._attempt(model, target, part)
            except RangesRefused as exc:
                plan.ranged = False
                self.progress.line(f"{target.name}: {exc.reason}")
                part.reset()
            except RetryableDownloadError as exc:
                if attempt >= self.options.retries:
                    raise DownloadError(
                        f"gave up after {attempt + 1} attempts, last: {exc.reason}",
                        url=model.url,
                        target=target,
                    ) from exc
                delay = self._backoff(attempt, exc)
                self.progress.line(
                    f"{target.name}: {exc.reason}; retrying in {delay:.1f}s "
                    f"(attempt {attempt + 2} of {self.options.retries + 1})"
                )
                self._sleep(delay)
                attempt += 1
            except DownloadError:
                if part.size == 0:
                    _remove(part.path, part.ranges)
                raise
            finally:
                self.progress.finish(target.name)

    def _backoff(self, attempt: int, exc: RetryableDownloadError) -> float:
        retry_after = getattr(exc, "retry_after_s", None)
        if retry_after is not None:
            return float(min(retry_after, self.options.backoff_max_s))
        base = min(self.options.backoff_max_s, self.options.backoff_s * 2.0**attempt)
        return base * (0.5 + random.random() / 2)

    def _ranged_size(self, model: ModelSpec, target: Path, part: _Part, plan: _Plan) -> int | None:
        """The file's size when it is to be fetched in ranges, else None (asks the server once)."""
        if plan.ranged is None:
            small = model.size is not None and model.size < self.options.split_min_bytes
            if self.options.connections > 1 and not small:
                plan.total = self._probe(model, target)  # a transient failure: asked again next attempt
                plan.ranged = plan.total is not None and plan.total >= self.options.split_min_bytes
            else:
                plan.ranged = False
        if not plan.ranged and part.ranges.exists():
            part.reset()  # blocks of an earlier ranged run are not a prefix one stream can resume
        return plan.total if plan.ranged else None

    def _request(self, model: ModelSpec, headers: dict[str, str]) -> tuple[urllib.request.Request, bool]:
        request = urllib.request.Request(
            model.url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers}
        )
        token_sent = bool(self.options.hf_token) and _host(model.url) in self.options.token_hosts
        if token_sent:
            request.add_unredirected_header("Authorization", f"Bearer {self.options.hf_token}")
        return request, token_sent

    def _probe(self, model: ModelSpec, target: Path) -> int | None:
        """Ask for the first byte: a 206 with a total means ranges work; anything else, one stream."""
        request, token_sent = self._request(model, {"Range": "bytes=0-0"})
        try:
            response = self._opener.open(request, timeout=self.options.timeout_s)
        except urllib.error.HTTPError as exc:
            with contextlib.closing(exc):
                raise self._status_error(exc, model, target, token_sent=token_sent) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise _transient(exc, model, target) from exc
        with response:
            total = response.headers.get("Content-Range", "").rpartition("/")[2]
            if response.status != 206 or not total.isdigit():
                return None
        size = int(total)
        if model.size is not None and size != model.size:
            raise SizeMismatch(url=model.url, target=target, expected=model.size, actual=size)
        return size

    def _ranged(self, model: ModelSpec, target: Path, part: _Part, plan: _Plan) -> tuple[str, int]:
        total = plan.total
        assert total is not None
        fd = part.handle.fileno()
        on_disk = part.size if part.ranges.exists() else 0
        free = shutil.disk_usage(target.parent).free
        if total - on_disk > free:
            raise NoSpace(url=model.url, target=target, needed=total - on_disk, free=free)
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        token_sent = bool(self.options.hf_token) and _host(model.url) in self.options.token_hosts
        unredirected = {"Authorization": f"Bearer {self.options.hf_token}"} if token_sent else {}
        job = RangeJob(
            url=model.url,
            total=total,
            name=target.name,
            target=target,
            state_path=part.ranges,
            connections=self.options.connections,
            block_bytes=self.options.block_bytes or block_size_for(total, self.options.connections),
            retries=self.options.retries,
            timeout_s=self.options.timeout_s,
            headers=headers,
            unredirected=unredirected,
        )
        result = fetch_ranges(
            job,
            fd,
            opener=self._opener,
            progress=self.progress,
            backoff=self._backoff,
            sleep=self._sleep,
            map_http_error=lambda exc: self._status_error(exc, model, target, token_sent=token_sent),
            transient=lambda exc, received: _transient(exc, model, target, received=received),
        )
        part.fresh_start = not result.resumed
        return self._finish(model, target, part, received=result.received, sha=result.sha256)

    def _attempt(self, model: ModelSpec, target: Path, part: _Part) -> tuple[str, int]:
        offset = part.catch_up()
        if model.size is not None and offset > model.size:
            part.reset()
            offset = 0
        if model.size is not None and offset == model.size and offset > 0:
            return self._finish(model, target, part, received=0)
        request, token_sent = self._request(model, {"Range": f"bytes={offset}-"} if offset else {})
        try:
            response = self._opener.open(request, timeout=self.options.timeout_s)
        except urllib.error.HTTPError as exc:
            with contextlib.closing(exc):
                return self._http_error(exc, model, target, part, offset=offset, token_sent=token_sent)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise _transient(exc, model, target) from exc
        with response:
            offset = self._accept(response, model, target, part, offset)
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None and length.isdigit() else model.size
            if model.size is not None and total is not None and total != model.size:
                part.reset()
                raise SizeMismatch(url=model.url, target=target, expected=model.size, actual=total)
            if total is not None:
                free = shutil.disk_usage(target.parent).free
                if total - offset > free:
                    raise NoSpace(url=model.url, target=target, needed=total - offset, free=free)
            self.progress.start(target.name, total=total, offset=offset)
            received = self._stream(response, model, target, part)
        if total is not None and offset + received < total:
            raise RetryableDownloadError(
                f"connection closed at {human_bytes(offset + received)} of {human_bytes(total)}",
                url=model.url,
                target=target,
            )
        return self._finish(model, target, part, received=received)

    def _accept(
        self, response: http.client.HTTPResponse, model: ModelSpec, target: Path, part: _Part, offset: int
    ) -> int:
        """Reconcile the response with our resume point; return the offset the body starts at."""
        if offset and response.status == 206:
            content_range = response.headers.get("Content-Range", "")
            start = content_range.removeprefix("bytes ").split("-", 1)[0]
            if start.isdigit() and int(start) == offset:
                return offset
        if offset:
            self.progress.line(f"{target.name}: the server cannot resume; starting over")
            self.progress.restart(target.name)
        part.reset()
        return 0

    def _stream(self, response: http.client.HTTPResponse, model: ModelSpec, target: Path, part: _Part) -> int:
        received = 0
        while True:
            try:
                chunk = response.read(CHUNK_BYTES)
            except (OSError, http.client.HTTPException) as exc:
                part.handle.flush()
                raise _transient(exc, model, target, received=received) from exc
            if not chunk:
                return received
            part.append(chunk)
            received += len(chunk)
            self.progress.advance(target.name, len(chunk))

    def _http_error(
        self,
        exc: urllib.error.HTTPError,
        model: ModelSpec,
        target: Path,
        part: _Part,
        *,
        offset: int,
        token_sent: bool,
    ) -> tuple[str, int]:
        if exc.code == 416 and offset:
            # Our .part is as long as (or longer than) the file: check it, or start over.
            total = exc.headers.get("Content-Range", "").rpartition("/")[2]
            if total.isdigit() and int(total) == offset:
                return self._finish(model, target, part, received=0)
            part.reset()
            raise RetryableDownloadError("the server refused the resume point", url=model.url, target=target)
        raise self._status_error(exc, model, target, token_sent=token_sent)

    @staticmethod
    def _status_error(
        exc: urllib.error.HTTPError, model: ModelSpec, target: Path, *, token_sent: bool
    ) -> DownloadError:
        """The error an HTTP error status means for this file."""
        if exc.code == 404:
            return NotFound(url=model.url, target=target)
        if exc.code in (401, 403):
            return AuthRequired(url=model.url, target=target, status=exc.code, token_sent=token_sent)
        if exc.code == 416:
            return RangesRefused("the server refused a byte range", url=model.url, target=target)
        if exc.code in _RETRY_STATUSES:
            error = RetryableDownloadError(f"the server answered {exc.code}", url=model.url, target=target)
            retry_after = exc.headers.get("Retry-After", "")
            if retry_after.isdigit():
                error.retry_after_s = int(retry_after)  # type: ignore[attr-defined]
            return error
        return DownloadError(f"the server answered {exc.code} {exc.reason}", url=model.url, target=target)

    def _finish(
        self, model: ModelSpec, target: Path, part: _Part, *, received: int, sha: str | None = None
    ) -> tuple[str, int]:
        """Check the complete .part (size, sha256) and give it its final name.

        `sha` comes from a ranged download, which hashed while writing; a single stream's digest
        followed its appends.
        """
        part.handle.flush()
        os.fsync(part.handle.fileno())
        size = part.size
        if sha is None:
            if part.hashed != size:
                part.catch_up()
            sha = part.digest.hexdigest()
        if model.size is not None and size != model.size:
            part.reset()
            raise SizeMismatch(url=model.url, target=target, expected=model.size, actual=size)
        if model.sha256 is not None and sha != model.sha256:
            if not part.fresh_start:
                part.reset()
                # The bytes before the cut may have been another version of the file: once more
                # from zero before blaming the server.
                raise RetryableDownloadError(
                    "sha256 mismatch after a resumed download; downloading from scratch",
                    url=model.url,
                    target=target,
                )
            kept = rejected_path(target)
            _remove(part.ranges)
            os.replace(part.path, kept)  # our lock stays on the moved inode; a waiter starts afresh
            raise ChecksumMismatch(url=model.url, target=target, expected=model.sha256, actual=sha, kept=kept)
        _write_stamp(target, sha256=sha, described=part.path, url=model.url)
        _remove(part.ranges)
        os.replace(part.path, target)
        self.progress.line(f"{target.name}: done ({human_bytes(size)}, sha256 {sha[:12]}...)")
        return sha, received

    def _warn_unverified(self, model: ModelSpec, sha: str) -> None:
        self.progress.line(
            f"WARNING: {model.filename} is NOT verified: manifest.toml has no sha256 for "
            f"{model.name!r} (FILL-ME). Once you trust the file, paste this into its [[models]] entry:"
        )
        self.progress.line(f'    sha256 = "{sha}"')


def _transient(
    exc: BaseException, model: ModelSpec, target: Path, *, received: int = 0
) -> RetryableDownloadError:
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, socket.timeout | TimeoutError):
        reason = "no data within the timeout"
    text = f"connection failed: {reason}" if not received else f"connection lost ({reason})"
    return RetryableDownloadError(text, url=model.url, target=target)
