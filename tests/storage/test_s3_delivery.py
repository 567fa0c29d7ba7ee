"""S3 delivery against real S3 APIs on loopback (moto's server), driven through boto3 as in production.

Every returned URL is downloaded over HTTP and compared byte for byte, with its Content-Type.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.retries.standard import ExponentialBackoff
from PIL import Image

from comfy_testserver import ComfyTestServer
from handler.destination import Destination, build_destination
from handler.errors import StorageMisconfigured
from handler.storage.base import OutputFile
from handler.storage.plan import serialized_size
from handler.storage.s3 import S3Delivery, check_destination
from handler.worker import Worker

from .. import workflows as wf
from ..conftest import b64, free_port, make_settings, s3_admin
from .throttling_proxy import ThrottlingProxy

SECRET = "test-secret-value-123"


def download(url: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read(), response.headers["Content-Type"]


def bucket_env(url: str, bucket: str, **extra: str) -> dict[str, str]:
    return {
        "BUCKET_ENDPOINT_URL": url,
        "BUCKET_NAME": bucket,
        "BUCKET_ACCESS_KEY_ID": "AKIATESTKEY0001",
        "BUCKET_SECRET_ACCESS_KEY": SECRET,
        **extra,
    }


def local_file(comfy: ComfyTestServer, entry: dict[str, Any]) -> Path:
    return comfy.root / "output" / entry["subfolder"] / entry["filename"]


async def test_env_bucket_gets_every_output_with_name_bytes_and_type(
    comfy: ComfyTestServer, moto_url: str, bucket: str
) -> None:
    settings = make_settings(
        comfy, COMFY_CLEANUP="false", BUCKET_PREFIX="renders", **bucket_env(moto_url, bucket)
    )
    result = await Worker(settings).handle({"id": "job-s3", "input": {"workflow": wf.every_output_kind()}})
    assert "error" not in result, result
    entries = result["images"] + result["files"]
    assert entries and all(e["type"] == "s3_url" for e in entries)
    for entry in entries:
        body, content_type = download(entry["data"])
        assert content_type == entry["mime_type"]
        assert len(body) == entry["size_bytes"]
        if entry["node_id"] != "12":  # streamed over the WebSocket: never on ComfyUI's disk
            assert body == local_file(comfy, entry).read_bytes()
    keys = {o["Key"] for o in s3_admin(moto_url).list_objects_v2(Bucket=bucket)["Contents"]}
    assert (
        "renders/job-s3/video/" + next(f["filename"] for f in result["files"] if f["node_id"] == "6") in keys
    )
    assert all(key.startswith("renders/job-s3/") for key in keys) and len(keys) == len(entries)
    assert SECRET not in str(result)


async def test_s3_config_overrides_the_env_bucket_for_one_job(
    comfy: ComfyTestServer, moto_url: str, bucket: str
) -> None:
    other = f"{bucket}-job"
    s3_admin(moto_url).create_bucket(Bucket=other)
    worker = Worker(make_settings(comfy, **bucket_env(moto_url, bucket)))
    s3_config = {
        "accessId": "AKIAJOB",
        "accessSecret": "job-secret-456",
        "bucketName": other,
        "endpointUrl": moto_url,
    }
    result = await worker.handle(
        {"id": "j1", "input": {"workflow": wf.save_image("per-job")}, "s3Config": s3_config}
    )
    assert "error" not in result, result
    assert f"/{other}/j1/" in result["images"][0]["data"]
    assert "Contents" not in s3_admin(moto_url).list_objects_v2(Bucket=bucket)
    assert "job-secret-456" not in str(result)


async def test_public_url_mode_returns_cdn_urls(comfy: ComfyTestServer, moto_url: str, bucket: str) -> None:
    public = f"{moto_url}/{bucket}"  # a publicly readable bucket stands in for the CDN
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }
    s3_admin(moto_url).put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    settings = make_settings(
        comfy, BUCKET_PUBLIC_URL=public, BUCKET_PREFIX="cdn", **bucket_env(moto_url, bucket)
    )
    result = await Worker(settings).handle({"id": "pub", "input": {"workflow": wf.save_image("public")}})
    url = result["images"][0]["data"]
    assert url.startswith(f"{public}/cdn/pub/public_") and "X-Amz-Signature" not in url
    body, content_type = download(url)
    assert body.startswith(b"\x89PNG") and content_type == "image/png"


async def test_presigned_urls_carry_the_configured_lifetime(
    comfy: ComfyTestServer, moto_url: str, bucket: str
) -> None:
    settings = make_settings(comfy, BUCKET_URL_EXPIRY_S="600", **bucket_env(moto_url, bucket))
    result = await Worker(settings).handle({"id": "exp", "input": {"workflow": wf.save_image()}})
    assert "X-Amz-Expires=600" in result["images"][0]["data"]


async def test_auto_mode_keeps_results_under_the_limit(
    comfy: ComfyTestServer, moto_url: str, bucket: str
) -> None:
    # Noise does not compress: three outputs of clearly different sizes.
    images, workflow = [], {}
    for index, side in enumerate((60, 90, 120)):
        noise = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
        buffer = io.BytesIO()
        noise.save(buffer, format="PNG")
        images.append({"name": f"noise{index}.png", "image": b64(buffer.getvalue())})
        workflow[f"{index}0"] = {"class_type": "LoadImage", "inputs": {"image": f"noise{index}.png"}}
        workflow[f"{index}1"] = {
            "class_type": "SaveImage",
            "inputs": {"images": [f"{index}0", 0], "filename_prefix": f"guard{index}"},
        }
    workflow["9"] = {"class_type": "PreviewAny", "inputs": {"source": "x" * 300}}
    job = {"workflow": workflow, "images": images}
    env = bucket_env(moto_url, bucket)
    probe = await Worker(make_settings(comfy, **env)).handle(
        {"id": "probe", "input": {**job, "output": "base64"}}
    )
    size = serialized_size(probe)
    just_under = await Worker(make_settings(comfy, RESULT_MAX_BYTES=str(size + 64), **env)).handle(
        {"id": "under", "input": {**job, "output": "auto"}}
    )
    assert [e["type"] for e in just_under["images"]] == ["base64"] * 3
    assert serialized_size(just_under) <= size + 64
    just_over = await Worker(make_settings(comfy, RESULT_MAX_BYTES=str(size - 64), **env)).handle(
        {"id": "over", "input": {**job, "output": "auto"}}
    )
    assert "error" not in just_over, just_over
    assert sorted(e["type"] for e in just_over["images"]) == ["base64", "base64", "s3_url"]
    assert serialized_size(just_over) <= size - 64
    moved = next(e for e in just_over["images"] if e["type"] == "s3_url")
    assert moved["size_bytes"] == max(e["size_bytes"] for e in just_over["images"])  # the largest moved
    assert download(moved["data"])[0][:4] == b"\x89PNG"


async def test_too_large_without_a_bucket_fails_clearly(comfy: ComfyTestServer) -> None:
    result = await Worker(make_settings(comfy, RESULT_MAX_BYTES="2048")).handle(
        {"id": "big", "input": {"workflow": wf.every_output_kind()}}
    )
    assert result["error"].startswith("OUTPUT_TOO_LARGE: the result would be ")
    assert "BUCKET_ENDPOINT_URL" in result["error"] and "RESULT_MAX_BYTES" in result["error"]
    assert not any((comfy.root / "output").rglob("*.*"))


async def test_s3_mode_without_a_bucket_is_invalid_input(comfy: ComfyTestServer) -> None:
    result = await Worker(make_settings(comfy)).handle(
        {"id": "s", "input": {"workflow": wf.save_image(), "output": "s3"}}
    )
    assert result["error"].startswith('INVALID_INPUT: input.output is "s3" but no bucket is configured')


async def test_200_mb_output_streams_to_the_bucket(tmp_path: Path, destination: Destination) -> None:
    path = tmp_path / "splat_big.ply"
    digest = hashlib.sha256()
    with path.open("wb") as sink:
        for _ in range(200):
            chunk = os.urandom(1024 * 1024)
            digest.update(chunk)
            sink.write(chunk)
    item = OutputFile(
        node_id="9",
        filename=path.name,
        subfolder="splats",
        path=path,
        mime_type="application/ply",
        size_bytes=path.stat().st_size,
    )
    entry = await S3Delivery(destination, job_id="big-job", concurrency=2).deliver(item)
    assert entry["type"] == "s3_url" and entry["size_bytes"] == 200 * 1024 * 1024
    fetched = hashlib.sha256()
    with urllib.request.urlopen(entry["data"], timeout=120) as response:
        assert response.headers["Content-Type"] == "application/ply"
        while chunk := response.read(4 * 1024 * 1024):
            fetched.update(chunk)
    assert fetched.hexdigest() == digest.hexdigest()


def test_endpoint_down_is_a_clear_misconfiguration() -> None:
    dead = build_destination(
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        bucket="outputs",
        access_key_id="AKIA1",
        secret_access_key=SECRET,
    )
    with pytest.raises(StorageMisconfigured) as info:
        check_destination(dead)
    assert "the endpoint does not answer" in info.value.message and "'outputs'" in info.value.message


def test_missing_bucket_is_named(moto_url: str) -> None:
    missing = build_destination(
        endpoint_url=moto_url, bucket="no-such-bucket-here", access_key_id="AKIA1", secret_access_key=SECRET
    )
    with pytest.raises(StorageMisconfigured, match="'no-such-bucket-here' .* the bucket does not exist"):
        check_destination(missing)


def test_wrong_credentials_are_access_denied_without_leaking_them(authed_moto: dict[str, str]) -> None:
    good = build_destination(
        endpoint_url=authed_moto["url"],
        bucket="authed-outputs",
        access_key_id=authed_moto["access_key_id"],
        secret_access_key=authed_moto["secret_access_key"],
    )
    check_destination(good)
    wrong = build_destination(
        endpoint_url=authed_moto["url"],
        bucket="authed-outputs",
        access_key_id=authed_moto["access_key_id"],
        secret_access_key="wrong-secret-999",
    )
    with pytest.raises(StorageMisconfigured) as info:
        check_destination(wrong)
    assert "access denied" in info.value.message and "BUCKET_SECRET_ACCESS_KEY" in info.value.message
    assert "wrong-secret-999" not in str(info.value.details) + info.value.message
    assert authed_moto["access_key_id"] not in info.value.message


async def test_bad_s3_config_fails_before_the_workflow_runs(
    comfy: ComfyTestServer, authed_moto: dict[str, str]
) -> None:
    s3_config = {
        "accessId": "AKIANOBODY",
        "accessSecret": "nope-secret-42",
        "bucketName": "authed-outputs",
        "endpointUrl": authed_moto["url"],
    }
    result = await Worker(make_settings(comfy)).handle(
        {"id": "bad", "input": {"workflow": wf.save_image()}, "s3Config": s3_config}
    )
    assert result["error"].startswith("STORAGE_MISCONFIGURED: bucket 'authed-outputs' at ")
    assert "(from s3Config) cannot be used: access denied" in result["error"]
    assert "s3Config.accessId / s3Config.accessSecret" in result["error"]
    assert not [r for r in comfy.requests if r.path == "/prompt"]
    assert "nope-secret-42" not in str(result)


@pytest.fixture
def short_throttling_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's backoff after a throttling answer: rand(0, 1) * 2**i s (up to 15 s over 5 attempts,
    random); here 50 ms * 2**i, still exponential, so these tests do not wait for nothing."""
    monkeypatch.setitem(ExponentialBackoff._DEFAULT_BACKOFF_CONFIG, "throttling_base_scale", 0.05)


@pytest.mark.usefixtures("short_throttling_backoff")
async def test_throttling_is_retried_until_the_upload_succeeds(
    tmp_path: Path, moto_url: str, bucket: str
) -> None:
    proxy = ThrottlingProxy(moto_url, throttle_puts=2).start()
    try:
        destination = build_destination(
            endpoint_url=proxy.url, bucket=bucket, access_key_id="AKIA1", secret_access_key=SECRET
        )
        path = tmp_path / "a.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
        item = OutputFile(
            node_id="2", filename="a.png", subfolder="", path=path, mime_type="image/png", size_bytes=108
        )
        entry = await S3Delivery(destination, job_id="t", concurrency=1).deliver(item)
        assert proxy.throttled == 2
        assert s3_admin(moto_url).get_object(Bucket=bucket, Key="t/a.png")["Body"].read() == path.read_bytes()
        assert entry["type"] == "s3_url"
    finally:
        proxy.stop()


@pytest.mark.usefixtures("short_throttling_backoff")
async def test_persistent_throttling_is_upload_failed_naming_the_file(
    comfy: ComfyTestServer, moto_url: str, bucket: str
) -> None:
    proxy = ThrottlingProxy(moto_url, throttle_puts=1000).start()
    try:
        worker = Worker(make_settings(comfy, **bucket_env(proxy.url, bucket)))
        result = await worker.handle({"id": "t", "input": {"workflow": wf.save_image("throttled")}})
    finally:
        proxy.stop()
    assert result["error"].startswith("UPLOAD_FAILED: output 'throttled_")
    assert "kept failing after retries (SlowDown)" in result["error"]
    assert proxy.throttled >= 3  # retried with backoff, not given up at once
    assert not any((comfy.root / "output").rglob("*.png"))
    assert SECRET not in str(result)


def test_worker_refuses_to_start_with_an_unusable_bucket(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUCKET_", "COMFY", "RUNPOD_"))}
    env.update(bucket_env(f"http://127.0.0.1:{free_port()}", "outputs"))
    done = subprocess.run(
        [sys.executable, "-m", "handler"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 2
    assert "storage check failed: bucket 'outputs' at http://127.0.0.1:" in done.stderr
    assert "the endpoint does not answer" in done.stderr and SECRET not in done.stderr + done.stdout


def test_urls_are_not_reachable_without_their_signature_on_auth_servers(authed_moto: dict[str, str]) -> None:
    # Sanity of the fixture itself: with IAM auth on, an unsigned GET is refused.
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{authed_moto['url']}/authed-outputs/anything", timeout=10)


async def test_minio_default_credentials_do_not_break_the_urls(
    comfy: ComfyTestServer, moto_url: str, bucket: str
) -> None:
    # MinIO's default secret equals its key id, which every presigned URL carries: the result's
    # redaction of secrets must not touch the URLs.
    env = {
        **bucket_env(moto_url, bucket),
        "BUCKET_ACCESS_KEY_ID": "minioadmin",
        "BUCKET_SECRET_ACCESS_KEY": "minioadmin",
    }
    result = await Worker(make_settings(comfy, **env)).handle(
        {"id": "minio", "input": {"workflow": wf.save_image()}}
    )
    url = result["images"][0]["data"]
    assert "X-Amz-Credential=minioadmin" in url
    assert download(url)[0].startswith(b"\x89PNG")
