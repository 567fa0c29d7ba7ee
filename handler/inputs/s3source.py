"""Read an ``s3://bucket/key`` input with the job's s3Config or the environment's bucket credentials.

The object streams to disk in a worker thread (boto3 is blocking), under the same per-file and
per-job caps as an http download. botocore's errors become ours here, naming the bucket and key
but never a credential. A job's own s3Config endpoint is checked against the address guard first:
otherwise a job could point it at the worker's private network.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from ..destination import Destination
from ..errors import InputFetchFailed, InputRefused, JobInputError
from ..media import SNIFF_BYTES, sniff_mime
from ..storage.s3 import make_client
from ..values import RemoteInput
from .fetch import CHUNK_BYTES, FetchedFile, FetchLimits, JobBudget, media_refusal
from .netguard import AddressPolicy, parse_ip

__all__ = ["S3Source"]

logger = logging.getLogger(__name__)


class S3Source:
    """Downloads s3:// inputs of one job with one boto3 client."""

    def __init__(
        self, destination: Destination | None, policy: AddressPolicy, limits: FetchLimits, budget: JobBudget
    ) -> None:
        self._destination = destination
        self._policy = policy
        self._limits = limits
        self._budget = budget
        self._client: Any = None
        self._checked = False

    async def fetch(self, entry: RemoteInput, dest: Path) -> FetchedFile:
        destination = self._usable(entry)
        if not self._checked:
            await asyncio.to_thread(self._check_endpoint, entry, destination)
            self._checked = True
        if self._client is None:
            self._client = make_client(destination, max_attempts=3)
        stop = threading.Event()
        try:
            size, head = await asyncio.to_thread(self._download, entry, destination, dest, stop)
        finally:
            stop.set()  # a cancelled job: the thread stops at its next chunk
        return FetchedFile(path=dest, size_bytes=size, mime_type=sniff_mime(head, entry.name))

    def _usable(self, entry: RemoteInput) -> Destination:
        if self._destination is None:
            raise JobInputError(
                f"{entry.where}.url for {entry.name!r} is an s3:// URL but the worker has no bucket "
                "credentials: send s3Config with the request or set BUCKET_ENDPOINT_URL, "
                "BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY on the endpoint"
            )
        return self._destination

    def _check_endpoint(self, entry: RemoteInput, destination: Destination) -> None:
        """A job-supplied endpoint must pass the guard; the operator's own one is trusted."""
        if destination.source == "env" or not destination.endpoint_url:
            return
        host = urlsplit(destination.endpoint_url).hostname or ""
        literal = parse_ip(host)
        try:
            addresses = (
                [literal] if literal else [parse_ip(str(i[4][0])) for i in socket.getaddrinfo(host, 443)]
            )
        except OSError:
            raise InputFetchFailed(
                entry.where,
                entry.name,
                entry.shown_url,
                f"the s3Config endpoint host {host} does not resolve",
            ) from None
        for address in addresses:
            reason = self._policy.refusal(address, host=host) if address else "not an IP address"
            if reason:
                raise InputRefused(
                    entry.where,
                    entry.name,
                    f"s3Config.endpointUrl host {host} resolves to {address}, {reason}; the operator can "
                    "add it to INPUT_URL_ALLOWLIST",
                    url=entry.shown_url,
                )

    def _download(
        self, entry: RemoteInput, destination: Destination, dest: Path, stop: threading.Event
    ) -> tuple[int, bytes]:
        parts = urlsplit(entry.url)
        bucket, key = parts.netloc, unquote(parts.path.lstrip("/"))
        size = 0
        head = b""
        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
            body = response["Body"]
            length = int(response.get("ContentLength") or 0)
            if length > self._limits.max_file_bytes:
                body.close()
                raise self._too_big(entry, length)
            with dest.open("wb") as sink:
                for chunk in body.iter_chunks(CHUNK_BYTES):
                    if stop.is_set():
                        break  # the job was cancelled; nobody reads this file any more
                    if len(head) < SNIFF_BYTES:
                        head += chunk[: SNIFF_BYTES - len(head)]
                    size += len(chunk)
                    if size > self._limits.max_file_bytes:
                        raise self._too_big(entry, size)
                    if not self._budget.take(len(chunk)):
                        raise InputRefused(
                            entry.where,
                            entry.name,
                            f"the job's URL inputs together pass {self._budget.limit} bytes "
                            "(INPUT_URL_MAX_JOB_BYTES)",
                            url=entry.shown_url,
                        )
                    sink.write(chunk)
            body.close()
        except (ClientError, BotoCoreError) as exc:
            raise InputFetchFailed(
                entry.where, entry.name, entry.shown_url, _reason(exc, destination)
            ) from exc
        reason = media_refusal(head, entry.kind) if size else "the object is empty"
        if reason:
            raise InputRefused(entry.where, entry.name, reason, url=entry.shown_url)
        logger.info("%s: read %s (%d bytes) with %s", entry.where, entry.shown_url, size, destination.label)
        return size, head

    def _too_big(self, entry: RemoteInput, size: int) -> InputRefused:
        return InputRefused(
            entry.where,
            entry.name,
            f"the object has {size} bytes or more, over the per-file limit of "
            f"{self._limits.max_file_bytes} bytes (COMFY_MAX_INPUT_BYTES)",
            url=entry.shown_url,
        )


def _reason(exc: BaseException, destination: Destination) -> str:
    keys = (
        "BUCKET_ACCESS_KEY_ID / BUCKET_SECRET_ACCESS_KEY"
        if destination.source == "env"
        else "s3Config.accessId / s3Config.accessSecret"
    )
    if isinstance(exc, EndpointConnectionError):
        return f"the storage endpoint does not answer ({destination.endpoint_url or 'AWS S3'})"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchKey", "404", "NotFound"):
            return "no such object in the bucket (check the key)"
        if code == "NoSuchBucket":
            return "no such bucket"
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403") or status == 403:
            return f"access denied with the credentials from {destination.source} ({keys})"
        return f"the storage service answered {code or status}"
    return f"the read failed ({type(exc).__name__})"
