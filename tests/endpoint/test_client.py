"""Client edge cases at the HTTP level (``responses``); the end-to-end tests use real sockets."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from comfy_worker.client import EndpointClient, EndpointError

BASE = "https://api.example.test/v2"


def client(**kwargs: Any) -> tuple[EndpointClient, list[float]]:
    sleeps: list[float] = []
    return EndpointClient("ep1", "key-1", base_url=BASE, sleep=sleeps.append, **kwargs), sleeps


@responses.activate
def test_retries_429_and_5xx_honouring_retry_after() -> None:
    responses.post(f"{BASE}/ep1/run", status=429, headers={"Retry-After": "2"})
    responses.post(f"{BASE}/ep1/run", status=503)
    responses.post(f"{BASE}/ep1/run", json={"id": "j1", "status": "IN_QUEUE"})
    c, sleeps = client()
    assert c.run({"workflow": {}}) == "j1"
    assert sleeps == [2.0, 1.0]
    assert responses.calls[0].request.headers["Authorization"] == "Bearer key-1"


@responses.activate
def test_gives_up_after_retries_with_the_status() -> None:
    for _ in range(3):
        responses.get(f"{BASE}/ep1/health", status=500, json={"error": "boom"})
    c, _ = client(retries=2)
    with pytest.raises(EndpointError, match="the endpoint answered HTTP 500: boom"):
        c.health()


@responses.activate
def test_wrong_key_and_wrong_endpoint_say_what_to_check() -> None:
    responses.get(f"{BASE}/ep1/status/x", status=401)
    c, _ = client()
    with pytest.raises(EndpointError, match="the API key was refused \\(HTTP 401\\): check RUNPOD_API_KEY"):
        c.status("x")
    responses.get(f"{BASE}/ep1/health", status=404, body="Not Found")
    with pytest.raises(EndpointError, match="not found \\(HTTP 404\\) at endpoint 'ep1'"):
        c.health()


@responses.activate
def test_wait_surfaces_error_text_and_treats_cancelled_and_timed_out_as_final() -> None:
    responses.get(f"{BASE}/ep1/status/a", json={"id": "a", "status": "IN_QUEUE"})
    responses.get(
        f"{BASE}/ep1/status/a",
        json={"id": "a", "status": "IN_PROGRESS", "output": {"stage": "running", "percent": 50}},
    )
    responses.get(
        f"{BASE}/ep1/status/a", json={"id": "a", "status": "FAILED", "error": "EXECUTION_FAILED: node 3"}
    )
    c, sleeps = client()
    seen = []
    final = c.wait("a", on_progress=lambda s: seen.append(s.progress))
    assert final.status == "FAILED" and final.error == "EXECUTION_FAILED: node 3" and not final.ok
    assert {"stage": "running", "percent": 50} in seen and len(sleeps) == 2
    for status in ("CANCELLED", "TIMED_OUT"):
        responses.get(f"{BASE}/ep1/status/{status}", json={"id": status, "status": status})
        assert c.wait(status).final


@responses.activate
def test_wait_backs_off_while_nothing_changes() -> None:
    for _ in range(5):
        responses.get(f"{BASE}/ep1/status/b", json={"id": "b", "status": "IN_QUEUE"})
    responses.get(f"{BASE}/ep1/status/b", json={"id": "b", "status": "COMPLETED", "output": {}})
    c, sleeps = client()
    c.wait("b", poll_s=0.25, max_poll_s=1.0)
    assert sleeps[0] == 0.25 and sleeps == sorted(sleeps) and max(sleeps) == 1.0


def test_save_outputs_keeps_names_and_never_overwrites(tmp_path: Path) -> None:
    c, _ = client()
    data = base64.b64encode(b"png-bytes").decode()
    output = {
        "images": [
            {"filename": "a.png", "type": "base64", "data": data},
            {"filename": "../../evil/a.png", "type": "base64", "data": data},
        ],
        "files": [],
    }
    saved = c.save_outputs(output, tmp_path)
    assert [p.name for p in saved] == ["a.png", "a (1).png"]
    assert all(p.parent == tmp_path and p.read_bytes() == b"png-bytes" for p in saved)


def test_missing_endpoint_id_is_explained() -> None:
    with pytest.raises(EndpointError, match="no endpoint id: pass --endpoint or set RUNPOD_ENDPOINT_ID"):
        EndpointClient.from_env({})


@responses.activate
def test_a_broken_connection_does_not_resubmit_a_job_but_a_refused_one_does() -> None:
    from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

    responses.post(f"{BASE}/ep1/run", body=requests.ConnectionError(ProtocolError("Connection aborted.")))
    c, sleeps = client()
    with pytest.raises(EndpointError, match="cannot reach"):
        c.run({"workflow": {}})
    assert len(responses.calls) == 1 and sleeps == []  # the job may exist: never submit it twice
    refused = MaxRetryError(
        None,  # type: ignore[arg-type]  # urllib3 wants the pool; requests only reads the reason
        f"{BASE}/ep1/run",
        reason=NewConnectionError(None, "Connection refused"),  # type: ignore[arg-type]
    )
    responses.replace(responses.POST, f"{BASE}/ep1/run", body=requests.ConnectionError(refused))
    responses.add(responses.POST, f"{BASE}/ep1/run", json={"id": "j2", "status": "IN_QUEUE"})
    assert c.run({"workflow": {}}) == "j2"
    responses.get(f"{BASE}/ep1/health", body=requests.ConnectionError(ProtocolError("reset")))
    responses.get(f"{BASE}/ep1/health", json={"jobs": {}})
    assert c.health() == {"jobs": {}}  # reading twice is harmless


@responses.activate
def test_a_slow_status_poll_is_retried_but_a_slow_run_is_not() -> None:
    responses.get(f"{BASE}/ep1/status/s", body=requests.ReadTimeout("slow"))
    responses.get(f"{BASE}/ep1/status/s", json={"id": "s", "status": "COMPLETED", "output": {}})
    c, sleeps = client()
    assert c.status("s").ok and len(sleeps) == 1
    responses.post(f"{BASE}/ep1/run", body=requests.ReadTimeout("slow"))
    with pytest.raises(EndpointError, match="POST /run got no answer within 30 s"):
        c.run({"workflow": {}})


def test_a_bad_output_is_one_error_and_leaves_no_partial_file(tmp_path: Path) -> None:
    c, _ = client()
    output = {
        "images": [
            {"filename": "ok.png", "type": "base64", "data": base64.b64encode(b"fine").decode()},
            {"filename": "bad.png", "type": "base64", "data": "not base64!"},
        ]
    }
    with pytest.raises(EndpointError, match="could not save bad.png"):
        c.save_outputs(output, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.png"]
