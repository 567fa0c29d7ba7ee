"""RunPod's request size limits, as the local endpoint, the client and the CLI apply them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import requests

from .conftest import KEY, REPO, Endpoint
from .test_cli import cli, local

MB = 1024 * 1024


def post(endpoint: Endpoint, route: str, size: int) -> requests.Response:
    """A job request of about ``size`` bytes (a workflow plus a padded input image)."""
    padding = "A" * (size - 200)
    body = {"input": {"workflow": {}, "images": [{"name": "pad.png", "image": padding}]}}
    return requests.post(
        f"{endpoint.base}/local/{route}",
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        params={"wait": 0} if route == "runsync" else None,
        timeout=60,
    )


def test_the_endpoint_refuses_bodies_over_runpods_limits(endpoint: Endpoint) -> None:
    before = endpoint.client().health()["jobs"]
    too_big = post(endpoint, "run", 10 * MB + 1000)
    assert too_big.status_code == 413
    error = too_big.json()["error"]
    assert "over RunPod's 10 MB limit for /run" in error and "/runsync (20 MB)" in error
    assert "20 MB limit for /runsync" in post(endpoint, "runsync", 20 * MB + 1000).json()["error"]
    assert endpoint.client().health()["jobs"] == before  # nothing was queued
    # /runsync takes what /run refuses.
    accepted = post(endpoint, "runsync", 10 * MB + 1000)
    assert accepted.status_code == 200, accepted.text
    endpoint.client().cancel(accepted.json()["id"])


def test_the_cli_refuses_an_oversized_request_before_sending_it(endpoint: Endpoint, tmp_path: Path) -> None:
    image = tmp_path / "big.png"
    image.write_bytes(os.urandom(8 * MB))  # 10.7 MB as base64
    before = endpoint.client().health()["jobs"]
    done = cli(
        "run", str(REPO / "workflows" / "simple_test.json"), "--image", str(image), env=local(endpoint)
    )
    assert done.returncode == 1
    assert "over RunPod's 10 MB limit for /run" in done.stderr and "nothing was sent" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert endpoint.client().health()["jobs"] == before
