"""S3 upload benchmark (run: ``python -m bench.s3_bench [--mb 500]``).

Uploads one large output to a local S3 server (moto's server mode, in its own process) through our
path (``S3Delivery``: the client config R2/GCS need, multipart, a worker thread) and through plain
``boto3 upload_file`` with default settings, in the same run. Prints both times, their ratio, and
the peak extra RSS of each uploader process (the goal: ratio near 1.0, memory flat in file size).

Over HTTPS, as every real provider is, both sides send the payload unhashed. Over plain HTTP SigV4
must hash every byte when checksums are "when_required" (the setting R2 and GCS need), while
boto3's default streams a CRC32 trailer instead: the HTTP line shows that cost, which only local
MinIO-over-HTTP users pay.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testkit.certificates import self_signed_certificate

from ._common import free_port, peak_rss_mb, wait_for_port

REPO = Path(__file__).resolve().parents[1]


def child(mode: str, url: str, path: str) -> None:
    """One upload in a fresh process, so the RSS high-water mark is this upload's alone."""
    import boto3

    from handler.destination import build_destination
    from handler.storage.base import OutputFile
    from handler.storage.s3 import S3Delivery

    destination = build_destination(
        endpoint_url=url, bucket="bench", access_key_id="bench", secret_access_key="bench-secret"
    )
    file = Path(path)
    before = peak_rss_mb()
    started = time.perf_counter()
    if mode == "ours":
        item = OutputFile(
            node_id="1",
            filename=file.name,
            subfolder="",
            path=file,
            mime_type="application/octet-stream",
            size_bytes=file.stat().st_size,
        )
        asyncio.run(S3Delivery(destination, job_id="ours", concurrency=4).deliver(item))
    else:
        client = boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench-secret",
        )
        client.upload_file(path, "bench", f"plain/{file.name}")
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_extra_mb": peak_rss_mb() - before}))


def run_child(mode: str, url: str, path: Path, ca_bundle: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.s3_bench", "--child", mode, url, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AWS_CA_BUNDLE": str(ca_bundle)},  # botocore trusts our local certificate
    )
    numbers: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return numbers


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=int, default=500)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="s3-bench-") as tmp:
        path = Path(tmp) / "output.bin"
        with path.open("wb") as sink:
            for _ in range(args.mb):
                sink.write(os.urandom(1024 * 1024))
        cert, key = self_signed_certificate(Path(tmp))
        for scheme in ("https", "http"):
            # moto keeps every object in memory and slows down as it fills: a fresh server per
            # upload, and alternate the order so neither side always goes first.
            runs: dict[str, list[dict[str, float]]] = {"ours": [], "plain": []}
            for mode in ("plain", "ours", "plain", "ours"):
                with MotoServer(cert if scheme == "https" else None, key) as url:
                    runs[mode].append(run_child(mode, url, path, cert))
            report(scheme, args.mb, runs)


def report(scheme: str, mb: int, runs: dict[str, list[dict[str, float]]]) -> None:
    ours_s = min(run["seconds"] for run in runs["ours"])
    plain_s = min(run["seconds"] for run in runs["plain"])
    print(f"upload of {mb} MB to a local S3 server (moto) over {scheme.upper()}, best of 2 each:")
    for name, mode, best in (
        ("ours (S3Delivery)", "ours", ours_s),
        ("plain boto3 upload_file", "plain", plain_s),
    ):
        peak = max(run["peak_extra_mb"] for run in runs[mode])
        print(f"  {name:25} {best:7.2f} s   peak extra RSS {peak:7.1f} MB")
    print(f"  ratio ours / plain        {ours_s / plain_s:7.2f}")


class MotoServer:
    """moto's S3 server in its own process (HTTPS when given a certificate), with the bench bucket."""

    def __init__(self, cert: Path | None, key: Path) -> None:
        self.cert, self.key = cert, key

    def __enter__(self) -> str:
        port = free_port()
        moto_server = str(Path(sys.executable).with_name("moto_server"))
        tls = ["-c", str(self.cert), "-k", str(self.key)] if self.cert else []
        self.process = subprocess.Popen(
            [moto_server, "-H", "127.0.0.1", "-p", str(port), *tls],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port)
        except OSError:
            self.process.kill()
            raise
        import boto3

        url = f"{'https' if self.cert else 'http'}://127.0.0.1:{port}"
        boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench-secret",
            verify=str(self.cert) if self.cert else None,
        ).create_bucket(Bucket="bench")
        return url

    def __exit__(self, *exc_info: object) -> None:
        self.process.terminate()
        self.process.wait(10)


if __name__ == "__main__":
    main()
