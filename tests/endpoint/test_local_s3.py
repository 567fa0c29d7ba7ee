"""Real-size outputs on one machine: ``comfy-worker serve --local-s3`` and ``run --s3-config``.

Everything runs for real: the endpoint and its worker processes, moto's S3 server on loopback,
the ComfyUI test server, and the CLI as a user runs it.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from comfy_testserver import ComfyTestServer

from ..conftest import s3_admin
from .conftest import REPO, Endpoint
from .test_cli import cli, local

MB = 1024 * 1024


@pytest.fixture(scope="module")
def s3_endpoint(comfy: ComfyTestServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    server = Endpoint(comfy, tmp_path_factory.mktemp("endpoint-s3") / "serve.log", "--local-s3")
    try:
        yield server
    finally:
        server.close()


def local_s3_url(endpoint: Endpoint) -> str:
    found = re.search(r"local S3 at (http://127\.0\.0\.1:\d+), bucket (\S+)", endpoint.log.read_text())
    assert found, endpoint.log.read_text()
    return found.group(1)


def noise_png(path: Path, side: int) -> bytes:
    """A PNG of random pixels: it does not compress, so its size is close to side*side*3."""
    import random

    rng = random.Random(7)
    image = Image.frombytes("RGB", (side, side), bytes(rng.getrandbits(8) for _ in range(side * side * 3)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def test_outputs_too_big_to_return_inline_come_back_through_the_local_bucket(
    s3_endpoint: Endpoint, tmp_path: Path
) -> None:
    # 16 copies of a 1400x1400 noise image: about 94 MB of PNGs, 125 MB as base64, five times
    # what RunPod returns inline. With --local-s3 and output "auto" they arrive as s3_url.
    source = noise_png(tmp_path / "noise.png", 1400)
    workflow = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "noise.png"}},
        "2": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["1", 0]}},
        "3": {"class_type": "ImageBatch", "inputs": {"image1": ["2", 0], "image2": ["2", 0]}},
        "4": {"class_type": "ImageBatch", "inputs": {"image1": ["3", 0], "image2": ["3", 0]}},
        "5": {"class_type": "ImageBatch", "inputs": {"image1": ["4", 0], "image2": ["4", 0]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "big"}},
    }
    (tmp_path / "big.json").write_text(json.dumps(workflow))
    out = tmp_path / "outputs"
    done = cli(
        "run",
        str(tmp_path / "big.json"),
        "--image",
        str(tmp_path / "noise.png"),
        "--output",
        "auto",
        "--out",
        str(out),
        env=local(s3_endpoint),
        timeout=240,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    saved = sorted(out.iterdir())
    assert len(saved) == 16
    total = sum(p.stat().st_size for p in saved)
    assert 60 * MB < total < 110 * MB
    with Image.open(saved[-1]) as first, Image.open(io.BytesIO(source)) as original:
        assert first.tobytes() == original.tobytes()
    # "auto": the largest went through the bucket until the rest fit in RunPod's result limit.
    job_id = re.search(r"submitted job (\S+)", done.stderr).group(1)  # type: ignore[union-attr]
    status = s3_endpoint.client().status(job_id)
    entries = status.output["images"]
    bucket_url = local_s3_url(s3_endpoint)
    remote = [e for e in entries if e["type"] == "s3_url"]
    assert len(remote) >= 12
    assert all(e["data"].startswith(f"{bucket_url}/comfy-outputs/") for e in remote)
    assert len(json.dumps(status.raw)) < 20 * MB


def test_a_page_may_read_the_local_bucket(s3_endpoint: Endpoint) -> None:
    """The studio app fetches .ply results from the bucket: the CORS answer must let it."""
    client = s3_endpoint.client()
    workflow = json.loads((REPO / "workflows" / "simple_test.json").read_text())
    final = client.wait(client.run({"workflow": workflow, "output": "s3"}), timeout_s=60)
    assert final.ok, final
    url = final.output["images"][0]["data"]
    origin = "http://127.0.0.1:3000"
    preflight = requests.options(
        url, headers={"Origin": origin, "Access-Control-Request-Method": "GET"}, timeout=10
    )
    assert preflight.headers.get("Access-Control-Allow-Origin") in (origin, "*")
    got = requests.get(url, headers={"Origin": origin}, timeout=10)
    assert got.status_code == 200 and got.content.startswith(b"\x89PNG")
    assert got.headers.get("Access-Control-Allow-Origin") in (origin, "*")


def test_run_sends_an_s3_config_file(endpoint: Endpoint, moto_url: str, bucket: str, tmp_path: Path) -> None:
    config = tmp_path / "s3.json"
    config.write_text(
        json.dumps(
            {
                "accessId": "AKIALOCAL",
                "accessSecret": "cli-secret",
                "bucketName": bucket,
                "endpointUrl": moto_url,
            }
        )
    )
    out = tmp_path / "outputs"
    done = cli(
        "run",
        str(REPO / "workflows" / "simple_test.json"),
        "--output",
        "s3",
        "--s3-config",
        str(config),
        "--out",
        str(out),
        env=local(endpoint),
    )
    assert done.returncode == 0, done.stderr
    assert [p.read_bytes()[:4] for p in out.iterdir()] == [b"\x89PNG"]
    keys = [o["Key"] for o in s3_admin(moto_url).list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(keys) == 1 and keys[0].endswith(".png")
    assert "cli-secret" not in done.stdout + done.stderr
    # The same file from the environment.
    out_env = tmp_path / "outputs-env"
    by_env = cli(
        "run",
        str(REPO / "workflows" / "simple_test.json"),
        "--output",
        "s3",
        "--out",
        str(out_env),
        env={**local(endpoint), "COMFY_WORKER_S3_CONFIG": str(config)},
    )
    assert by_env.returncode == 0, by_env.stderr
    assert len(s3_admin(moto_url).list_objects_v2(Bucket=bucket)["Contents"]) == 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "not found"),
        ("{not json", "is not valid JSON"),
        ('["a"]', "s3Config must be an object"),
        ('{"bucketName": "b", "accessId": 5}', "s3Config.accessId must be a string"),
    ],
)
def test_a_bad_s3_config_file_is_one_line_and_nothing_is_sent(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    config = tmp_path / "s3.json"
    if content is not None:
        config.write_text(content)
    done = cli(
        "run",
        str(REPO / "workflows" / "simple_test.json"),
        "--s3-config",
        str(config),
        # Nothing listens here: reaching the network would be a different error.
        env={"RUNPOD_ENDPOINT_BASE_URL": "http://127.0.0.1:9/v2", "RUNPOD_ENDPOINT_ID": "local"},
    )
    assert done.returncode == 2
    assert expected in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
