"""Where S3 uploads go: one validated `Destination`, from the environment or a job's s3Config. Pure.

Users of worker-comfyui set ``BUCKET_ENDPOINT_URL`` to a URL that often names the bucket:
virtual-hosted (``https://my-bucket.s3.eu-west-1.amazonaws.com``) or path-style
(``https://<account>.r2.cloudflarestorage.com/my-bucket``). Both are understood; ``BUCKET_NAME``
names it explicitly and wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

__all__ = ["MAX_URL_EXPIRY_S", "Destination", "DestinationError", "build_destination"]

MAX_URL_EXPIRY_S = 7 * 24 * 3600  # SigV4 presigned URLs cannot live longer
_AWS_VIRTUAL_HOST = re.compile(
    r"^(?P<bucket>[a-z0-9][a-z0-9.-]+)\.s3[.-](?:(?P<region>[a-z0-9-]+)\.)?amazonaws\.com$"
)
_AWS_REGION_HOST = re.compile(r"^s3[.-](?P<region>[a-z0-9-]+)\.amazonaws\.com$")
_BUCKET_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,254}$")


class DestinationError(ValueError):
    """A storage setting is missing or malformed; the message names the setting."""


@dataclass(frozen=True)
class Destination:
    """An S3-compatible bucket the worker can write to."""

    bucket: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    endpoint_url: str | None = None  # None: AWS S3 itself
    region: str | None = None
    prefix: str = ""
    url_expiry_s: int = 24 * 3600
    public_url: str | None = None  # public base URL (CDN); replaces presigning
    source: str = "env"  # "env" or "s3Config", for messages

    @property
    def label(self) -> str:
        """How messages name this destination, without any secret."""
        where = self.endpoint_url or "AWS S3"
        return f"bucket {self.bucket!r} at {where} (from {self.source})"

    def object_key(self, job_id: str, subfolder: str, filename: str) -> str:
        """``{prefix}/{job_id}/{subfolder}/{filename}``, empty parts left out."""
        parts = [self.prefix.strip("/"), job_id, subfolder.strip("/"), filename]
        return "/".join(part for part in parts if part)


def build_destination(
    *,
    endpoint_url: str | None,
    bucket: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    region: str | None = None,
    prefix: str = "",
    url_expiry_s: int = 24 * 3600,
    public_url: str | None = None,
    source: str = "env",
    names: dict[str, str] | None = None,
) -> Destination:
    """Validate the parts of a destination; ``names`` maps each part to the setting users see."""
    label = {
        "endpoint_url": "BUCKET_ENDPOINT_URL",
        "bucket": "BUCKET_NAME",
        "access_key_id": "BUCKET_ACCESS_KEY_ID",
        "secret_access_key": "BUCKET_SECRET_ACCESS_KEY",
        **(names or {}),
    }
    endpoint = (endpoint_url or "").strip() or None
    url_bucket = url_region = None
    if endpoint:
        endpoint, url_bucket, url_region = _split_endpoint(endpoint, label["endpoint_url"])
    name = (bucket or "").strip() or url_bucket
    if not name:
        raise DestinationError(
            f"no bucket name: set {label['bucket']}, or put the bucket in {label['endpoint_url']} "
            "(https://<bucket>.s3.<region>.amazonaws.com or https://<host>/<bucket>)"
        )
    if not _BUCKET_NAME.match(name):
        raise DestinationError(f"{label['bucket']} {name!r} is not a valid bucket name")
    missing = [
        label[k]
        for k, v in (("access_key_id", access_key_id), ("secret_access_key", secret_access_key))
        if not v
    ]
    if missing:
        raise DestinationError(f"{' and '.join(missing)} must be set to upload to bucket {name!r}")
    if not 1 <= url_expiry_s <= MAX_URL_EXPIRY_S:
        raise DestinationError(f"BUCKET_URL_EXPIRY_S must be between 1 and {MAX_URL_EXPIRY_S} (7 days)")
    if public_url and not public_url.startswith(("http://", "https://")):
        raise DestinationError(f"BUCKET_PUBLIC_URL={public_url!r} must start with http:// or https://")
    return Destination(
        bucket=name,
        access_key_id=str(access_key_id).strip(),
        secret_access_key=str(secret_access_key).strip(),
        endpoint_url=endpoint,
        region=(region or "").strip() or url_region,
        prefix=prefix.strip("/"),
        url_expiry_s=url_expiry_s,
        public_url=public_url.rstrip("/") if public_url else None,
        source=source,
    )


def _split_endpoint(url: str, setting: str) -> tuple[str | None, str | None, str | None]:
    """Return (endpoint for boto3, bucket named in the URL, region named in the URL)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # The value is not echoed: a pasted secret or user:password would land in the job's result.
        raise DestinationError(
            f"{setting} is not an http(s) URL with a host (its value is not shown, as it may hold a "
            "secret); e.g. https://s3.us-east-1.amazonaws.com"
        )
    host = parts.hostname.lower()
    netloc = parts.netloc.rsplit("@", 1)[-1]
    virtual = _AWS_VIRTUAL_HOST.match(host)
    if virtual and virtual.group("bucket") != "s3":
        region = virtual.group("region")
        aws_host = f"s3.{region}.amazonaws.com" if region else "s3.amazonaws.com"
        return urlunsplit((parts.scheme, aws_host, "", "", "")), virtual.group("bucket"), region
    path_bucket = parts.path.strip("/").split("/")[0] or None
    regional = _AWS_REGION_HOST.match(host)
    region = regional.group("region") if regional else None
    return urlunsplit((parts.scheme, netloc, "", "", "")), path_bucket, region
