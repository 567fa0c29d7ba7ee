"""S3 delivery with boto3: the original bytes and name, the right Content-Type, a URL back.

Uploads stream from disk (``upload_file``: multipart above 8 MiB, parts in parallel) in worker
threads, so the event loop stays free for cancellation, with several files at once. botocore's
"standard" retry mode retries throttling (503 SlowDown) and 5xx with backoff. botocore's errors
become ours here and nowhere else; messages name the bucket, never a key or secret.

Checksums: boto3 >= 1.36 adds CRC32 checksum headers (and trailers) to every upload by default,
which Cloudflare R2, Google Cloud Storage and other S3-compatible stores reject or mis-verify.
``request_checksum_calculation="when_required"`` restores the old behaviour (checksums only where
the API demands them), which every provider accepts. Over plain HTTP (a local MinIO) SigV4 then
hashes each payload; over HTTPS it is sent unsigned, with TLS guarding it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from ..destination import Destination
from ..errors import StorageMisconfigured, UploadFailed
from .base import OutputFile

__all__ = ["S3Clients", "S3Delivery", "check_destination", "make_client"]

logger = logging.getLogger(__name__)

MULTIPART_THRESHOLD_BYTES = 8 * 1024 * 1024
MULTIPART_CHUNK_BYTES = 8 * 1024 * 1024
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden"}
_NO_BUCKET = {"NoSuchBucket", "404", "NotFound"}


def make_client(destination: Destination, *, max_attempts: int = 5, connect_timeout_s: float = 5.0) -> Any:
    """A boto3 S3 client configured to work with AWS, R2, B2, MinIO, GCS and RunPod's S3 API."""
    config = Config(
        signature_version="s3v4",
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=connect_timeout_s,
        read_timeout=60,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        # Path style works on every provider, and bucket names with dots break virtual hosts on TLS.
        # Without a checksum header botocore would SHA-256 every byte to sign it; over HTTPS, TLS
        # already guarantees integrity, so send UNSIGNED-PAYLOAD (every provider accepts it).
        s3={"addressing_style": "path", "payload_signing_enabled": False},
        max_pool_connections=32,
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=destination.endpoint_url,
        region_name=destination.region or "us-east-1",
        aws_access_key_id=destination.access_key_id,
        aws_secret_access_key=destination.secret_access_key,
        config=config,
    )


def check_destination(destination: Destination, client: Any | None = None) -> None:
    """HEAD the bucket; raise StorageMisconfigured saying what is wrong and what to set."""
    client = client or make_client(destination, max_attempts=2)
    with _mapped(destination, "checking the bucket", misconfigured=True):
        client.head_bucket(Bucket=destination.bucket)


class S3Delivery:
    """Uploads outputs of one job to ``{prefix}/{job_id}/{subfolder}/{filename}``."""

    def __init__(
        self, destination: Destination, *, job_id: str, concurrency: int, client: Any | None = None
    ) -> None:
        self.destination = destination
        self.job_id = job_id
        self._client = client or make_client(destination)
        self._slots = asyncio.Semaphore(concurrency)
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD_BYTES,
            multipart_chunksize=MULTIPART_CHUNK_BYTES,
            max_concurrency=10,
            use_threads=True,
        )

    async def check(self) -> None:
        await asyncio.to_thread(check_destination, self.destination, self._client)

    async def deliver(self, item: OutputFile) -> dict[str, Any]:
        key = self.destination.object_key(self.job_id, item.subfolder, item.filename)
        async with self._slots:
            await asyncio.to_thread(self._upload, item, key)
        return item.entry("s3_url", self._url(key))

    def _upload(self, item: OutputFile, key: str) -> None:
        with _mapped(self.destination, f"uploading {item.filename!r}", filename=item.filename):
            self._client.upload_file(
                str(item.path),
                self.destination.bucket,
                key,
                ExtraArgs={"ContentType": item.mime_type},
                Config=self._transfer,
            )
        logger.info("uploaded %s (%d bytes) to %s", item.filename, item.size_bytes, self.destination.label)

    def _url(self, key: str) -> str:
        if self.destination.public_url:
            return f"{self.destination.public_url}/{quote(key)}"
        with _mapped(self.destination, "signing the download URL"):
            url: str = self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.destination.bucket, "Key": key},
                ExpiresIn=self.destination.url_expiry_s,
            )
        return url


@contextlib.contextmanager
def _mapped(
    destination: Destination, action: str, *, filename: str | None = None, misconfigured: bool = False
) -> Iterator[None]:
    """Turn botocore/boto3 failures into StorageMisconfigured or UploadFailed, once, here."""
    try:
        yield
    except (ClientError, BotoCoreError, Boto3Error, OSError) as exc:
        reason, is_config = _reason(exc, destination)
        logger.warning("S3 %s failed for %s: %s", action, destination.label, type(exc).__name__)
        details = {
            "bucket": destination.bucket,
            "endpoint": destination.endpoint_url,
            "source": destination.source,
        }
        if misconfigured or (is_config and filename is None):
            raise StorageMisconfigured(label=destination.label, reason=reason, details=details) from exc
        raise UploadFailed(
            label=destination.label, reason=reason, filename=filename, details=details
        ) from exc


def _reason(exc: BaseException, destination: Destination) -> tuple[str, bool]:
    """A short, safe explanation of a storage failure, and whether it is a configuration problem."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, (ClientError, EndpointConnectionError)):
        cause = cause.__cause__ or cause.__context__
    keys = (
        "BUCKET_ACCESS_KEY_ID / BUCKET_SECRET_ACCESS_KEY"
        if destination.source == "env"
        else ("s3Config.accessId / s3Config.accessSecret")
    )
    if isinstance(cause, EndpointConnectionError):
        return "the endpoint does not answer (check the endpoint URL and the network)", True
    if isinstance(cause, ClientError):
        error = cause.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _DENIED or status == 403:
            return f"access denied ({code or status}): check {keys} and the key's permissions", True
        if code in _NO_BUCKET or status == 404:
            return "the bucket does not exist (create it, or fix the bucket name)", True
        if code in ("SlowDown", "ServiceUnavailable", "InternalError") or (status or 0) >= 500:
            return f"the storage service kept failing after retries ({code or status})", False
        return f"{code or status}: {error.get('Message', '')}".strip(), False
    return f"{type(exc).__name__}: {exc}"[:300], False


class S3Clients:
    """Builds each job's `S3Delivery`. boto3 clients are thread-safe and slow to build, so the
    environment's bucket keeps one client for the worker's life; a job's s3Config gets its own."""

    def __init__(self, env_destination: Destination | None) -> None:
        self._env_destination = env_destination
        self._env_client: Any = None

    def delivery(self, destination: Destination, *, job_id: str, concurrency: int) -> S3Delivery:
        if destination == self._env_destination:
            if self._env_client is None:
                self._env_client = make_client(destination)
            client = self._env_client
        else:
            client = make_client(destination)
        return S3Delivery(destination, job_id=job_id, concurrency=concurrency, client=client)
