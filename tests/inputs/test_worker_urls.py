"""Inputs by URL end to end: the worker, a file server and the ComfyUI test server, all over sockets."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from comfy_testserver import ComfyTestServer
from handler.worker import Worker

from .. import workflows as wf
from ..conftest import Progress, b64, make_settings, png_bytes, s3_admin
from ..test_worker import files_under
from .conftest import TOKEN, FileServer


def pixel(result: dict[str, Any], index: int = 0) -> tuple[int, int, int]:
    image = Image.open(io.BytesIO(base64.b64decode(result["images"][index]["data"])))
    red, green, blue = image.convert("RGB").getpixel((1, 1))  # type: ignore[misc]  # an RGB pixel
    return (red, green, blue)


def two_inputs_workflow() -> dict[str, Any]:
    flow = wf.invert_upload("a.png", prefix="a")
    flow.update({f"1{k}": v for k, v in wf.invert_upload("b.png", prefix="b").items()})
    flow["12"]["inputs"]["image"] = ["11", 0]
    flow["13"]["inputs"]["images"] = ["12", 0]
    return flow


def url_worker(comfy: ComfyTestServer, progress: Progress | None = None, **env: str) -> Worker:
    # The file server listens on loopback, which only the allow-list opens, as operators would.
    return Worker(make_settings(comfy, INPUT_URL_ALLOWLIST="127.0.0.1/32", **env), progress_sender=progress)


async def test_url_inputs_feed_the_workflow_in_parallel_and_are_cleaned_up(
    comfy: ComfyTestServer, files: FileServer, progress: Progress, tmp_path: Path
) -> None:
    worker = url_worker(comfy, progress)
    job_input = {
        "workflow": two_inputs_workflow(),
        "images": [
            {"name": "a.png", "url": f"{files.url}/photo.png?sig=1"},
            {"name": "b.png", "url": f"{files.url}/auth.png", "headers": {"Authorization": TOKEN}},
        ],
    }
    result = await worker.handle({"id": "url-1", "input": job_input})
    assert "error" not in result, result
    assert sorted(pixel(result, i) for i in range(2)) == [(55, 225, 225), (55, 225, 225)]
    uploads = [r for r in comfy.requests if r.path == "/upload/image"]
    assert len(uploads) == 2
    stages = [u["stage"] for u in progress.updates if u["stage"].startswith("downloading")]
    assert stages[0] == "downloading inputs 0/2" and stages[-1] == "downloading inputs 2/2"
    assert files_under(comfy.root / "input") == []  # per-job names, removed after the job
    assert "tok-5ecret" not in str(result)


async def test_url_and_base64_inputs_share_the_per_job_names(
    comfy: ComfyTestServer, files: FileServer
) -> None:
    own = png_bytes(color=(1, 2, 3))
    (comfy.root / "input" / "a.png").write_bytes(own)  # a user's own file of the same name
    worker = url_worker(comfy)
    job_input = {
        "workflow": two_inputs_workflow(),
        "images": [{"name": "a.png", "url": f"{files.url}/photo.png"}],
        "files": [{"name": "b.png", "data": b64(png_bytes(color=(0, 0, 0)))}],
    }
    result = await worker.handle({"id": "mixed", "input": job_input})
    assert "error" not in result, result
    request = next(r for r in comfy.requests if r.path == "/prompt" and r.method == "POST")
    assert request.json is not None
    prompt = request.json["prompt"]
    stored = [prompt["1"]["inputs"]["image"], prompt["11"]["inputs"]["image"]]
    assert len({name.split("-", 1)[0] for name in stored}) == 1  # one tag for the job
    assert [name.split("-", 1)[1] for name in stored] == ["a.png", "b.png"]
    assert (comfy.root / "input" / "a.png").read_bytes() == own
    assert files_under(comfy.root / "input") == ["a.png"]


async def test_a_refused_url_fails_the_job_before_anything_is_queued(
    comfy: ComfyTestServer, files: FileServer
) -> None:
    worker = Worker(make_settings(comfy))  # no allow-list: loopback is refused
    job_input = {
        "workflow": wf.invert_upload("a.png"),
        "images": [{"name": "a.png", "url": f"{files.url}/photo.png"}],
    }
    result = await worker.handle({"id": "refused", "input": job_input})
    assert result["error"].startswith(
        f"INVALID_INPUT: input.images[0] ('a.png') was refused: {files.url}/photo.png points at 127.0.0.1, "
        "a loopback address"
    )
    assert result["details"]["entry"] == "input.images[0]"
    assert files.seen == []
    assert not [r for r in comfy.requests if r.path in ("/prompt", "/upload/image")]


async def test_one_failed_download_cleans_up_the_others_uploads(
    comfy: ComfyTestServer, files: FileServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    worker = url_worker(comfy)
    job_input = {
        "workflow": two_inputs_workflow(),
        "images": [
            {"name": "a.png", "url": f"{files.url}/photo.png"},
            {
                "name": "b.png",
                "url": f"{files.url}/missing.png?X-Amz-Signature=s1gn",
                "headers": {"X-Key": "k3y-v4lue"},
            },
        ],
    }
    result = await worker.handle({"id": "half", "input": job_input})
    assert result["error"] == (
        f"INPUT_FETCH_FAILED: input.images[1] ('b.png') could not be downloaded from {files.url}/missing.png: "
        "the server answered HTTP 404 (not found: check the URL)"
    )
    assert files_under(comfy.root / "input") == []
    assert not [r for r in comfy.requests if r.path == "/prompt"]
    assert "s1gn" not in caplog.text and "k3y-v4lue" not in caplog.text and "k3y-v4lue" not in str(result)


async def test_s3_urls_are_read_with_the_env_bucket_credentials(
    comfy: ComfyTestServer, moto_url: str, bucket: str
) -> None:
    s3_admin(moto_url).put_object(Bucket=bucket, Key="inputs/photo one.png", Body=png_bytes(color=(0, 0, 0)))
    env = {
        "BUCKET_ENDPOINT_URL": moto_url,
        "BUCKET_NAME": bucket,
        "BUCKET_ACCESS_KEY_ID": "admin",
        "BUCKET_SECRET_ACCESS_KEY": "admin-secret",
    }
    worker = Worker(make_settings(comfy, **env))
    job_input = {
        "workflow": wf.invert_upload("a.png"),
        "images": [{"name": "a.png", "url": f"s3://{bucket}/inputs/photo%20one.png"}],
        "output": "base64",
    }
    result = await worker.handle({"id": "s3-in", "input": job_input})
    assert "error" not in result, result
    assert pixel(result) == (255, 255, 255)
    missing = await worker.handle(
        {
            "id": "s3-miss",
            "input": {**job_input, "images": [{"name": "a.png", "url": f"s3://{bucket}/nope.png"}]},
        }
    )
    assert missing["error"] == (
        f"INPUT_FETCH_FAILED: input.images[0] ('a.png') could not be downloaded from s3://{bucket}/nope.png: "
        "no such object in the bucket (check the key)"
    )
    assert files_under(comfy.root / "input") == []


async def test_s3_urls_with_a_jobs_s3config_pass_the_guard_first(
    comfy: ComfyTestServer, moto_url: str, bucket: str
) -> None:
    s3_admin(moto_url).put_object(Bucket=bucket, Key="in.png", Body=png_bytes())
    job = {
        "input": {
            "workflow": wf.invert_upload("a.png"),
            "images": [{"name": "a.png", "url": f"s3://{bucket}/in.png"}],
        },
        "s3Config": {
            "accessId": "admin",
            "accessSecret": "admin-secret",
            "bucketName": bucket,
            "endpointUrl": moto_url,
        },
    }
    refused = await Worker(make_settings(comfy)).handle({"id": "s3c-1", **job})
    assert refused["error"].startswith(
        "INVALID_INPUT: input.images[0] ('a.png') was refused: s3Config.endpointUrl"
    )
    assert "a loopback address" in refused["error"]
    allowed = await url_worker(comfy).handle({"id": "s3c-2", **job})
    assert "error" not in allowed, allowed
    assert "admin-secret" not in str(refused) + str(allowed)


async def test_s3_url_without_any_bucket_says_what_to_configure(comfy: ComfyTestServer) -> None:
    job_input = {"workflow": wf.invert_upload("a.png"), "images": [{"name": "a.png", "url": "s3://b/k.png"}]}
    result = await Worker(make_settings(comfy)).handle({"id": "s3-none", "input": job_input})
    assert result["error"].startswith(
        "INVALID_INPUT: input.images[0].url for 'a.png' is an s3:// URL but the worker"
    )
    assert "send s3Config" in result["error"]


async def test_the_job_deadline_covers_downloads(comfy: ComfyTestServer, files: FileServer) -> None:
    job_input = {
        "workflow": wf.invert_upload("a.png"),
        "images": [{"name": "a.png", "url": f"{files.url}/slow.png"}],
        "timeout": 0.5,
    }
    result = await url_worker(comfy).handle({"id": "slow", "input": job_input})
    assert result["error"].startswith(
        "TIMEOUT: the job did not finish within 0.5 s (it was downloading inputs)"
    )
    assert files_under(comfy.root / "input") == []


async def test_a_cancelled_job_stops_its_downloads_and_leaves_nothing(
    comfy: ComfyTestServer, files: FileServer
) -> None:
    job_input = {
        "workflow": two_inputs_workflow(),
        "images": [
            {"name": "a.png", "url": f"{files.url}/photo.png"},
            {"name": "b.png", "url": f"{files.url}/slow.png"},
        ],
    }
    task = asyncio.create_task(url_worker(comfy).handle({"id": "cancel", "input": job_input}))
    for _ in range(200):
        if any(s.path == "/slow.png" for s in files.seen) and any(
            r.path == "/upload/image" for r in comfy.requests
        ):
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert files_under(comfy.root / "input") == []
    assert not [r for r in comfy.requests if r.path == "/prompt"]
