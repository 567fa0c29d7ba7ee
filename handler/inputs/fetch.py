"""Download one http(s) input to disk through the guard, and the one place aiohttp's errors become ours.

Redirects are followed by hand (at most `MAX_REDIRECTS`) so that every hop is checked like the
first: scheme, IP literal, and (in the connector) every resolved address. The entry's headers
go only to the URL's own origin; a redirect elsewhere drops them. Sizes are checked twice: the
Content-Length before a byte is read, then the bytes as they stream (a server may lie or omit
it). The media type comes from the first bytes, never from the server's Content-Type.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import SplitResult, urljoin, urlsplit

import aiohttp

from ..errors import InputFetchFailed, InputRefused
from ..media import SNIFF_BYTES, sniff_mime
from ..values import RemoteInput
from .connector import AddressRefused, Lookup, guarded_connector, system_lookup
from .netguard import AddressPolicy, display_url, parse_ip

__all__ = ["MAX_REDIRECTS", "FetchLimits", "FetchedFile", "JobBudget", "UrlFetcher", "media_refusal"]

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 5
CHUNK_BYTES = 1024 * 1024
_REDIRECTS = {301, 302, 303, 307, 308}
_HTTP_HINTS = {
    401: "the server wants credentials: send them in the entry's headers",
    403: "access denied: check the entry's headers, or whether a presigned URL has expired",
    404: "not found: check the URL",
    410: "gone: the file was removed",
}


@dataclass(frozen=True)
class FetchLimits:
    """Per-file limits of one download."""

    max_file_bytes: int  # COMFY_MAX_INPUT_BYTES
    connect_timeout_s: float  # INPUT_URL_CONNECT_TIMEOUT_S
    timeout_s: float  # INPUT_URL_TIMEOUT_S


@dataclass
class JobBudget:
    """Bytes all URL inputs of one job may bring together (INPUT_URL_MAX_JOB_BYTES)."""

    limit: int
    used: int = 0

    def fits(self, more: int) -> bool:
        return self.used + more <= self.limit

    def take(self, more: int) -> bool:
        self.used += more
        return self.used <= self.limit


@dataclass(frozen=True)
class FetchedFile:
    path: Path
    size_bytes: int
    mime_type: str


@dataclass
class _Hop:
    url: str
    parts: SplitResult = field(init=False)

    def __post_init__(self) -> None:
        self.parts = urlsplit(self.url)

    @property
    def origin(self) -> tuple[str, str, int | None]:
        return (self.parts.scheme.lower(), (self.parts.hostname or "").lower(), self.parts.port)


class UrlFetcher:
    """One job's HTTP session for inputs: ``async with UrlFetcher(...) as f: await f.fetch(...)``."""

    def __init__(
        self,
        policy: AddressPolicy,
        limits: FetchLimits,
        budget: JobBudget,
        *,
        lookup: Lookup = system_lookup,
        ssl_context: ssl.SSLContext | None = None,
        concurrency: int = 4,
    ) -> None:
        self._policy = policy
        self._limits = limits
        self._budget = budget
        self._lookup = lookup
        self._ssl_context = ssl_context
        self._concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> UrlFetcher:
        self._session = aiohttp.ClientSession(
            connector=guarded_connector(
                self._policy, lookup=self._lookup, ssl_context=self._ssl_context, limit=self._concurrency
            ),
            trust_env=False,  # never a proxy from the environment: it would bypass the guard
            auto_decompress=False,  # sizes are the bytes on the wire and on disk
            cookie_jar=aiohttp.DummyCookieJar(),  # nothing carries over between entries
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, entry: RemoteInput, dest: Path) -> FetchedFile:
        """Download ``entry.url`` to ``dest``; raise InputRefused or InputFetchFailed."""
        assert self._session is not None, "UrlFetcher used outside 'async with'"
        hop = _Hop(entry.url)
        headers = dict(entry.headers)
        first_origin = hop.origin
        try:
            async with asyncio.timeout(self._limits.timeout_s):
                for _ in range(MAX_REDIRECTS + 1):
                    self._check_hop(entry, hop)
                    with self._mapped(entry, hop):
                        location = await self._get(
                            entry, hop, headers if hop.origin == first_origin else {}, dest
                        )
                    if location is None:
                        return self._finish(entry, dest)
                    hop = _Hop(urljoin(hop.url, location))
                    logger.info("%s: redirected to %s", entry.where, display_url(hop.parts))
        except TimeoutError:
            raise InputFetchFailed(
                entry.where,
                entry.name,
                entry.shown_url,
                f"the download took longer than {self._limits.timeout_s:g} s (INPUT_URL_TIMEOUT_S); "
                "use a faster host or raise the limit",
            ) from None
        raise InputFetchFailed(
            entry.where, entry.name, entry.shown_url, f"more than {MAX_REDIRECTS} redirects"
        )

    def _check_hop(self, entry: RemoteInput, hop: _Hop) -> None:
        scheme = hop.parts.scheme.lower()
        shown = display_url(hop.parts)
        if scheme not in ("http", "https"):
            raise InputRefused(
                entry.where,
                entry.name,
                f"a redirect leads to {shown}; only http:// and https:// URLs are followed",
                url=shown,
            )
        host = hop.parts.hostname or ""
        address = parse_ip(host)
        if address is not None:
            reason = self._policy.refusal(address)
            if reason is not None:
                raise InputRefused(
                    entry.where, entry.name, f"{shown} points at {address}, {reason}{_ALLOW_HINT}", url=shown
                )

    async def _get(self, entry: RemoteInput, hop: _Hop, headers: dict[str, str], dest: Path) -> str | None:
        """One request; return the redirect target, or None once the body is on disk."""
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self._limits.connect_timeout_s, sock_connect=self._limits.connect_timeout_s
        )
        async with self._session.get(
            hop.url,
            headers={**headers, "Accept-Encoding": "identity"},
            allow_redirects=False,
            timeout=timeout,
        ) as response:
            if response.status in _REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise self._failed(entry, f"HTTP {response.status} redirect without a Location")
                return location
            if response.status != 200:
                hint = _HTTP_HINTS.get(response.status, "the server refused the request")
                raise self._failed(entry, f"the server answered HTTP {response.status} ({hint})")
            length = response.content_length
            if length is not None:
                self._check_size(entry, length, declared=True)
            await self._stream(entry, response, dest)
        return None

    async def _stream(self, entry: RemoteInput, response: aiohttp.ClientResponse, dest: Path) -> None:
        size = 0
        head = b""
        with dest.open("wb") as sink:
            async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                    if len(head) >= SNIFF_BYTES:
                        self._check_type(entry, head)
                size += len(chunk)
                self._check_size(entry, size, declared=False)
                if not self._budget.take(len(chunk)):
                    raise self._too_big_for_job(entry)
                sink.write(chunk)
        if size == 0:
            raise InputRefused(
                entry.where, entry.name, "the URL answered with an empty file", url=entry.shown_url
            )
        if len(head) < SNIFF_BYTES:
            self._check_type(entry, head)

    def _finish(self, entry: RemoteInput, dest: Path) -> FetchedFile:
        with dest.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
        return FetchedFile(path=dest, size_bytes=dest.stat().st_size, mime_type=sniff_mime(head, entry.name))

    def _check_size(self, entry: RemoteInput, size: int, *, declared: bool) -> None:
        limit = self._limits.max_file_bytes
        said = "its Content-Length says" if declared else "the download passed"
        if size > limit:
            raise InputRefused(
                entry.where,
                entry.name,
                f"{said} {size} bytes, over the per-file limit of {limit} bytes (COMFY_MAX_INPUT_BYTES)",
                url=entry.shown_url,
            )
        if declared and not self._budget.fits(size):
            raise self._too_big_for_job(entry)

    def _too_big_for_job(self, entry: RemoteInput) -> InputRefused:
        return InputRefused(
            entry.where,
            entry.name,
            f"the job's URL inputs together pass {self._budget.limit} bytes (INPUT_URL_MAX_JOB_BYTES)",
            url=entry.shown_url,
        )

    def _check_type(self, entry: RemoteInput, head: bytes) -> None:
        reason = media_refusal(head, entry.kind)
        if reason:
            raise InputRefused(entry.where, entry.name, reason, url=entry.shown_url)

    def _failed(self, entry: RemoteInput, reason: str) -> InputFetchFailed:
        return InputFetchFailed(entry.where, entry.name, entry.shown_url, reason)

    @contextlib.contextmanager
    def _mapped(self, entry: RemoteInput, hop: _Hop) -> Iterator[None]:
        """aiohttp's failures (and the resolver's refusal) as InputRefused / InputFetchFailed."""
        shown = display_url(hop.parts)
        connect_s = self._limits.connect_timeout_s
        try:
            yield
        except AddressRefused as exc:
            raise InputRefused(entry.where, entry.name, f"{shown}: {exc}{_ALLOW_HINT}", url=shown) from None
        except aiohttp.ConnectionTimeoutError:
            raise self._failed(
                entry, f"no connection to {shown} within {connect_s:g} s (INPUT_URL_CONNECT_TIMEOUT_S)"
            ) from None
        except aiohttp.ClientConnectorDNSError:
            raise self._failed(entry, f"the host of {shown} does not resolve (check the host name)") from None
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as exc:
            logger.info("%s: TLS failure: %s", entry.where, type(exc).__name__)
            raise self._failed(entry, f"the TLS certificate of {shown} could not be verified") from None
        except aiohttp.ClientConnectorError:
            raise self._failed(entry, f"{shown} refused the connection") from None
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.SocketTimeoutError):
            raise self._failed(entry, f"the download from {shown} broke off") from None
        except aiohttp.InvalidURL:
            raise InputRefused(entry.where, entry.name, f"{shown} is not a valid URL", url=shown) from None
        except aiohttp.ClientError as exc:
            raise self._failed(entry, f"the request failed ({type(exc).__name__})") from None


_ALLOW_HINT = (
    "; if the worker should reach it, the operator can add the host or network to INPUT_URL_ALLOWLIST"
)


def media_refusal(head: bytes, kind: str) -> str | None:
    """Why the first bytes of a download are not an acceptable input of ``kind``, or None."""
    sniffed = sniff_mime(head)
    if kind == "image":
        if sniffed.startswith("image/"):
            return None
        what = "an HTML or XML page (an error or login page?)" if _looks_like_markup(head) else sniffed
        return (
            f"the bytes are {what}, not an image; send images as PNG, JPEG, WebP, GIF, ... or other "
            "media under input.files"
        )
    if _looks_like_markup(head):
        return "the bytes are an HTML or XML page (an error or login page?), not a media file"
    return None


def _looks_like_markup(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body", b"<error"))
