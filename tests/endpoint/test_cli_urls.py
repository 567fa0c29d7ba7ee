"""``comfy-worker run --image-url``: the URL goes through the local endpoint to the worker, which fetches it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from comfy_worker.client import url_input

from ..inputs.conftest import FileServer
from .conftest import Endpoint
from .test_cli import cli, local


@pytest.fixture
def files() -> Iterator[FileServer]:
    server = FileServer().start()
    yield server
    server.stop()


def invert_workflow(path: Path) -> Path:
    path.write_text(
        json.dumps(
            {
                "1": {"class_type": "LoadImage", "inputs": {"image": "photo.png"}},
                "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
                "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "byurl"}},
            }
        )
    )
    return path


def test_run_with_an_image_url_downloads_it_in_the_worker(
    endpoint: Endpoint, files: FileServer, tmp_path: Path
) -> None:
    out = tmp_path / "outputs"
    done = cli(
        "run",
        str(invert_workflow(tmp_path / "flow.json")),
        "--image-url",
        f"photo.png={files.url}/photo.png?sig=x",
        "--out",
        str(out),
        env=local(endpoint),
    )
    assert done.returncode == 0, done.stderr
    assert [p.name for p in out.iterdir()] == ["byurl_00001_.png"]
    assert [s.path for s in files.seen] == ["/photo.png"]  # fetched by the worker, not the CLI


def test_a_refused_or_failed_url_is_the_workers_error_line(
    endpoint: Endpoint, files: FileServer, tmp_path: Path
) -> None:
    flow = str(invert_workflow(tmp_path / "flow.json"))
    refused = cli("run", flow, "--image-url", "photo.png=http://169.254.169.254/latest/", env=local(endpoint))
    assert refused.returncode == 1
    assert "INVALID_INPUT: input.images[0] ('photo.png') was refused" in refused.stderr
    assert "a cloud metadata service" in refused.stderr
    missing = cli("run", flow, "--image-url", f"photo.png={files.url}/missing.png", env=local(endpoint))
    assert missing.returncode == 1 and "INPUT_FETCH_FAILED" in missing.stderr and "HTTP 404" in missing.stderr


def test_bad_image_url_flags_fail_before_anything_is_sent(tmp_path: Path) -> None:
    flow = str(invert_workflow(tmp_path / "flow.json"))
    env = {
        "RUNPOD_ENDPOINT_BASE_URL": "http://127.0.0.1:9/v2",
        "RUNPOD_ENDPOINT_ID": "x",
        "RUNPOD_API_KEY": "k",
    }
    no_name = cli("run", flow, "--image-url", "https://example.com/p.png", env=env)
    assert no_name.returncode == 2 and "must look like NAME=URL" in no_name.stderr
    ftp = cli("run", flow, "--image-url", "photo.png=ftp://example.com/p.png", env=env)
    assert ftp.returncode == 2 and "uses ftp:; only http://, https:// and s3://" in ftp.stderr


def test_url_input_builds_the_entry_the_worker_reads() -> None:
    assert url_input("a.png", "s3://b/k.png") == {"name": "a.png", "url": "s3://b/k.png"}
    assert url_input("a.png", "https://x/a", headers={"Authorization": "Bearer t"})["headers"] == {
        "Authorization": "Bearer t"
    }
