"""The whole round trip over real sockets: client -> local endpoint -> 2 SDK worker processes -> ComfyUI."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import requests

from comfy_testserver import ComfyTestServer
from comfy_worker.client import EndpointError

from .. import workflows as wf
from .conftest import KEY, Endpoint, wait_for


def test_async_and_sync_submission(endpoint: Endpoint) -> None:
    client = endpoint.client()
    job_id = client.run({"workflow": wf.save_image("async")})
    final = client.wait(job_id, timeout_s=30)
    assert final.ok, final
    assert final.output["images"][0]["filename"].startswith("async_")
    assert (
        final.delay_ms is not None
        and final.execution_ms is not None
        and final.raw["workerId"].startswith("worker-")
    )
    sync = client.runsync({"workflow": wf.save_image("sync")})
    assert sync.status == "COMPLETED" and sync.output["images"][0]["filename"].startswith("sync_")


def test_runsync_returns_the_job_as_it_stands_after_wait(endpoint: Endpoint, comfy: ComfyTestServer) -> None:
    comfy.behaviour.step_delay_s = 0.2
    client = endpoint.client()
    early = client.runsync({"workflow": wf.sampler(steps=10, seed=11)}, wait_ms=300)
    assert early.status in ("IN_QUEUE", "IN_PROGRESS")
    assert client.wait(early.id, timeout_s=30).ok


def test_progress_is_visible_in_status_while_running(endpoint: Endpoint, comfy: ComfyTestServer) -> None:
    comfy.behaviour.step_delay_s = 0.15
    client = endpoint.client()
    job_id = client.run({"workflow": wf.sampler(steps=12, seed=21)})
    seen: list[dict[str, Any]] = []
    final = client.wait(
        job_id,
        timeout_s=30,
        poll_s=0.1,
        max_poll_s=0.2,
        on_progress=lambda s: seen.append(s.progress) if s.progress else None,
    )
    assert final.ok
    steps = [p for p in seen if p.get("node_class") == "KSampler" and p.get("max_steps") == 12]
    assert len(steps) >= 2 and steps[0]["step"] < steps[-1]["step"]
    stream = requests.get(
        f"{endpoint.base}/local/stream/{job_id}", headers={"Authorization": f"Bearer {KEY}"}, timeout=10
    ).json()
    # The stream keeps every update in order. (The last stage, collecting, takes about a
    # millisecond here: its update may reach the endpoint after the result, which drops it, as
    # RunPod does; the SDK sends each update from its own thread.)
    streamed = [i["output"].get("step") for i in stream["stream"] if i["output"].get("max_steps") == 12]
    assert stream["status"] == "COMPLETED" and len(streamed) >= 2 and streamed == sorted(streamed)


def test_cancel_running_and_queued_jobs(endpoint: Endpoint, comfy: ComfyTestServer) -> None:
    comfy.behaviour.step_delay_s = 0.3
    client = endpoint.client()
    executions_before = len(comfy.executions)
    running = [client.run({"workflow": wf.sampler(steps=200, seed=31 + i)}) for i in range(2)]
    queued = client.run({"workflow": wf.sampler(steps=200, seed=40)})
    wait_for(lambda: all(client.status(j).status == "IN_PROGRESS" for j in running), what="both running")
    # Both prompts reached ComfyUI: one runs, the other waits in ComfyUI's own queue.
    wait_for(lambda: sum(map(len, comfy.queue_state())) == 2, what="both prompts in ComfyUI")
    assert client.status(queued).status == "IN_QUEUE"
    assert client.cancel(queued).status == "CANCELLED"
    for job_id in running:
        assert client.cancel(job_id).status == "CANCELLED"
    wait_for(lambda: comfy.queue_state() == ([], []), what="ComfyUI idle after cancel")
    # One prompt ran and was interrupted; the other was still pending in ComfyUI and was removed.
    assert {e.outcome for e in comfy.executions[executions_before:]} == {"interrupted"}
    comfy.behaviour.step_delay_s = 0.0
    after = client.wait(client.run({"workflow": wf.save_image("after-cancel")}), timeout_s=30)
    assert after.ok and client.status(queued).status == "CANCELLED"


def test_execution_timeout_interrupts_comfy(endpoint: Endpoint, comfy: ComfyTestServer) -> None:
    comfy.behaviour.step_delay_s = 0.3
    client = endpoint.client()
    job_id = client.run({"workflow": wf.sampler(steps=200, seed=51)}, policy={"executionTimeout": 1500})
    final = client.wait(job_id, timeout_s=30)
    assert final.status == "TIMED_OUT"
    assert (final.error or "").startswith("TIMED_OUT: the job exceeded its policy.executionTimeout of 1.5 s")
    wait_for(lambda: comfy.queue_state() == ([], []), what="ComfyUI idle after timeout")
    assert comfy.executions[-1].outcome == "interrupted"


def test_twenty_concurrent_jobs_complete_with_their_own_outputs(endpoint: Endpoint) -> None:
    client = endpoint.client()

    def one(index: int) -> tuple[int, Any]:
        job_id = client.run({"workflow": wf.save_image(f"many{index:02d}")})
        return index, client.wait(job_id, timeout_s=120, max_poll_s=0.25)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    for index, final in results:
        assert final.ok, final
        assert final.output["images"][0]["filename"].startswith(f"many{index:02d}_")
    workers = {final.raw["workerId"] for _, final in results}
    assert workers == {"worker-1", "worker-2"}


def test_concurrent_jobs_on_one_comfy_get_only_their_own_files(
    endpoint: Endpoint, comfy: ComfyTestServer
) -> None:
    # Two workers share one ComfyUI and its output folder; SharpPredict's unreported .ply files must
    # go to the job that wrote them, and no job may clean up another's files.
    comfy.behaviour.node_delay_s = 0.05
    client = endpoint.client()

    def job(index: int) -> tuple[int, Any]:
        workflow = {"1": wf.empty_image(color=index)}
        if index % 2:
            workflow["2"] = {
                "class_type": "SharpPredict",
                "inputs": {"model": ["3", 0], "image": ["1", 0], "output_prefix": f"splat{index}"},
            }
            workflow["3"] = wf.sharp_model()
        else:
            workflow["2"] = {
                "class_type": "SaveImage",
                "inputs": {"images": ["1", 0], "filename_prefix": f"img{index}"},
            }
        return index, client.wait(client.run({"workflow": workflow}), timeout_s=60)

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(job, range(8)))
    finally:
        comfy.behaviour.node_delay_s = 0.0
    for index, final in results:
        assert final.ok, final
        entries = final.output["images"] + final.output["files"]
        prefix = f"splat{index}_" if index % 2 else f"img{index}_"
        assert [e["filename"][: len(prefix)] for e in entries] == [prefix], entries
        assert entries[0]["node_id"] == "2"


def test_health_counts(endpoint: Endpoint, comfy: ComfyTestServer) -> None:
    client = endpoint.client()
    before = client.health()
    assert before["workers"]["ready"] == 2
    comfy.behaviour.step_delay_s = 0.3
    jobs = [client.run({"workflow": wf.sampler(steps=100, seed=60 + i)}) for i in range(3)]
    health = wait_for(lambda: (h := client.health())["jobs"]["inProgress"] == 2 and h, what="2 in progress")
    assert (
        health["jobs"]["inQueue"] == 1
        and health["workers"]["running"] == 2
        and health["workers"]["idle"] == 0
    )
    for job_id in jobs:
        client.cancel(job_id)
    comfy.behaviour.step_delay_s = 0.0
    assert client.wait(client.run({"workflow": wf.save_image("counted")}), timeout_s=30).ok
    after = client.health()
    assert after["jobs"]["completed"] == before["jobs"]["completed"] + 1


def test_killed_worker_fails_its_job_and_the_endpoint_keeps_serving(
    endpoint: Endpoint, comfy: ComfyTestServer
) -> None:
    comfy.behaviour.step_delay_s = 0.3
    client = endpoint.client()
    job_id = client.run({"workflow": wf.sampler(steps=200, seed=71)})
    worker_id = wait_for(lambda: client.status(job_id).raw.get("workerId"), what="job on a worker")
    pid = wait_for(lambda: endpoint.worker_pids().get(worker_id), what="worker pid")
    os.kill(pid, signal.SIGKILL)
    final = client.wait(job_id, timeout_s=30)
    assert final.status == "FAILED"
    assert (final.error or "").startswith(
        f"WORKER_LOST: the worker process ({worker_id}) exited with code -9"
    )
    comfy.behaviour.step_delay_s = 0.0
    wait_for(lambda: client.health()["workers"]["ready"] == 2, timeout_s=30, what="worker restarted")
    results = [
        client.wait(client.run({"workflow": wf.save_image(f"after-kill{i}")}), timeout_s=30) for i in range(3)
    ]
    assert all(r.ok for r in results)
    wait_for(lambda: comfy.queue_state() == ([], []), what="orphaned prompt finished")


def test_webhook_is_posted_on_completion(endpoint: Endpoint) -> None:
    received: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = endpoint.client()
        job_id = client.run(
            {"workflow": wf.save_image("hooked")}, webhook=f"http://127.0.0.1:{server.server_address[1]}/done"
        )
        assert client.wait(job_id, timeout_s=30).ok
        body = wait_for(lambda: received and received[0], what="webhook")
        assert body["id"] == job_id and body["status"] == "COMPLETED"
        assert body["output"]["images"][0]["filename"].startswith("hooked_")
        assert client.cancel(job_id).status == "COMPLETED"  # cancelling a finished job changes nothing
        time.sleep(0.5)
        assert len(received) == 1  # and sends no second webhook
    finally:
        server.shutdown()
        server.server_close()


def test_wrong_api_key_and_unknown_job(endpoint: Endpoint) -> None:
    with pytest.raises(EndpointError, match="HTTP 401"):
        endpoint.client(api_key="wrong").run({"workflow": wf.save_image()})
    response = requests.post(f"{endpoint.base}/local/run", json={"input": {}}, timeout=10)
    assert response.status_code == 401
    with pytest.raises(EndpointError, match="job nope not found"):
        endpoint.client().status("nope")


def test_worker_errors_arrive_with_code_and_details(endpoint: Endpoint) -> None:
    client = endpoint.client()
    final = client.wait(client.run({"workflow": wf.sampler(ckpt="missing.safetensors")}), timeout_s=30)
    assert final.status == "FAILED" and (final.error or "").startswith("WORKFLOW_INVALID: ")
    assert final.output["details"]["problems"]
    retried = requests.post(
        f"{endpoint.base}/local/retry/{final.id}", headers={"Authorization": f"Bearer {KEY}"}, timeout=10
    ).json()
    assert retried["status"] == "IN_QUEUE"
    again = client.wait(final.id, timeout_s=30)
    assert again.status == "FAILED" and again.raw["retries"] == 1


def test_purge_queue_and_ttl(endpoint: Endpoint, comfy: ComfyTestServer) -> None:
    comfy.behaviour.step_delay_s = 0.3
    client = endpoint.client()
    busy = [client.run({"workflow": wf.sampler(steps=100, seed=80 + i)}) for i in range(2)]
    wait_for(lambda: all(client.status(j).status == "IN_PROGRESS" for j in busy), what="workers busy")
    short = client.run({"workflow": wf.save_image("ttl")}, policy={"ttl": 500})
    purged = [client.run({"workflow": wf.save_image(f"purged{i}")}) for i in range(2)]
    final = client.wait(short, timeout_s=10)
    assert final.status == "TIMED_OUT" and "policy.ttl" in (final.error or "")
    body = requests.post(
        f"{endpoint.base}/local/purge-queue", headers={"Authorization": f"Bearer {KEY}"}, timeout=10
    ).json()
    assert body["removed"] == 2
    for job_id in purged:
        with pytest.raises(EndpointError, match="not found"):
            client.status(job_id)
    for job_id in busy:
        client.cancel(job_id)


def test_s3_config_reaches_the_worker(endpoint: Endpoint, moto_url: str, bucket: str) -> None:
    client = endpoint.client()
    s3_config = {
        "accessId": "AKIALOCAL",
        "accessSecret": "local-secret",
        "bucketName": bucket,
        "endpointUrl": moto_url,
    }
    final = client.wait(
        client.run({"workflow": wf.save_image("to-bucket")}, s3Config=s3_config), timeout_s=30
    )
    assert final.ok, final
    entry = final.output["images"][0]
    assert entry["type"] == "s3_url" and f"/{bucket}/{final.id}/" in entry["data"]
    assert requests.get(entry["data"], timeout=10).content.startswith(b"\x89PNG")
