"""A throw-away S3 bucket on loopback for the local endpoint (``comfy-worker serve --local-s3``).

moto's S3 server runs in this process, one bucket is created with a CORS rule that lets any page
read its objects (the studio app fetches ``.ply`` results from it), and the workers get the
``BUCKET_*`` variables pointing at it. Everything lives in memory and is gone when the endpoint
stops: it is for trying real-size outputs (a 66 MB SHARP splat) on one machine, not for keeping them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["LOCAL_S3_BUCKET", "LocalS3", "LocalS3Unavailable", "start_local_s3"]

LOCAL_S3_BUCKET = "comfy-outputs"
# moto checks no credentials; these only satisfy boto3, which wants some.
_ACCESS_KEY = "local-s3"
_SECRET_KEY = "local-s3-secret"
_REGION = "us-east-1"


class LocalS3Unavailable(RuntimeError):
    """moto (the local S3 server) is not installed, or its port is taken."""


@dataclass
class LocalS3:
    url: str
    bucket: str
    _server: Any

    def worker_env(self) -> dict[str, str]:
        """The BUCKET_* settings that make a worker upload here."""
        return {
            "BUCKET_ENDPOINT_URL": self.url,
            "BUCKET_NAME": self.bucket,
            "BUCKET_ACCESS_KEY_ID": _ACCESS_KEY,
            "BUCKET_SECRET_ACCESS_KEY": _SECRET_KEY,
            "BUCKET_REGION": _REGION,
        }

    def s3_config(self) -> dict[str, str]:
        """The same bucket as a RunPod request's ``s3Config`` (for the app server or the CLI)."""
        return {
            "endpointUrl": self.url,
            "bucketName": self.bucket,
            "accessId": _ACCESS_KEY,
            "accessSecret": _SECRET_KEY,
        }

    def stop(self) -> None:
        self._server.stop()


def start_local_s3(host: str = "127.0.0.1", port: int = 0, bucket: str = LOCAL_S3_BUCKET) -> LocalS3:
    try:
        import boto3
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise LocalS3Unavailable(
            "--local-s3 needs moto's S3 server, which is not installed: "
            "pip install 'comfy-serverless-worker[local-s3]' (or the [test] extra)"
        ) from None
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    try:
        server.start()
    except OSError as exc:
        raise LocalS3Unavailable(
            f"the local S3 server cannot listen on {host}:{port}: {exc.strerror}"
        ) from None
    bound_host, bound_port = server.get_host_and_port()
    url_host = "127.0.0.1" if bound_host in ("0.0.0.0", "") else bound_host
    local = LocalS3(url=f"http://{url_host}:{bound_port}", bucket=bucket, _server=server)
    client = boto3.client(
        "s3",
        endpoint_url=local.url,
        region_name=_REGION,
        aws_access_key_id=_ACCESS_KEY,
        aws_secret_access_key=_SECRET_KEY,
    )
    client.create_bucket(Bucket=bucket)
    # Pages (the studio app on any port) read results straight from the bucket with fetch().
    client.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": ["*"],
                    "AllowedMethods": ["GET", "HEAD"],
                    "AllowedHeaders": ["*"],
                    "ExposeHeaders": ["Content-Length", "Content-Type", "ETag"],
                    "MaxAgeSeconds": 600,
                }
            ]
        },
    )
    return local
