"""A worker that holds several jobs at once, as RunPod serves it: the batch job-take route.

The runpod SDK asks ``/job-take-batch/...&batch_size=N`` whenever its ``concurrency_modifier``
leaves room for N > 1 jobs (rp_scale.py ``JobScaler.get_jobs``, rp_job.py ``get_job``). Every job
handed out is IN_PROGRESS from the take, whether the worker runs it or holds it behind another.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from comfy_worker.endpoint import server as endpoint_server
from comfy_worker.endpoint.serve import app_runner
from comfy_worker.endpoint.server import EndpointConfig, LocalEndpoint

from .conftest import KEY, REPO

SDK_WORKER = Path(__file__).with_name("sdk_worker.py")
AUTH = {"Authorization": f"Bearer {KEY}"}


class Running:
    def __init__(self, endpoint: LocalEndpoint, url: str, http: aiohttp.ClientSession) -> None:
        self.endpoint = endpoint
        self.url = url
        self.api = f"{url}/v2/local"
        self.http = http

    async def run(self, job_input: dict[str, Any]) -> str:
        async with self.http.post(f"{self.api}/run", json={"input": job_input}, headers=AUTH) as response:
            assert response.status == 200, await response.text()
            return str((await response.json())["id"])

    async def status(self, job_id: str) -> dict[str, Any]:
        async with self.http.get(f"{self.api}/status/{job_id}", headers=AUTH) as response:
            body: dict[str, Any] = await response.json()
            return body

    async def health(self) -> dict[str, Any]:
        async with self.http.get(f"{self.api}/health", headers=AUTH) as response:
            body: dict[str, Any] = await response.json()
            return body

    async def take(self, route: str, query: str) -> tuple[int, Any]:
        """Ask for work as worker-1 does (its token, its URL)."""
        url = f"{self.url}/internal/{route}/worker-1?gpu=local&{query}"
        async with self.http.get(url, headers={"Authorization": self.endpoint.token}) as response:
            return response.status, await response.json(content_type=None) if response.status != 204 else None

    async def done(self, job_id: str, body: dict[str, Any]) -> None:
        url = f"{self.url}/internal/job-done/worker-1?id={job_id}&isStream=false"
        headers = {"Authorization": self.endpoint.token, "Content-Type": "application/x-www-form-urlencoded"}
        async with self.http.post(url, data=json.dumps(body), headers=headers) as response:
            assert response.status == 200


async def start(python_args: tuple[str, ...], env: dict[str, str]) -> tuple[Running, web.AppRunner]:
    config = EndpointConfig(
        api_key=KEY,
        workers=1,
        worker_env=env,
        echo_worker_logs=False,
        worker_python_args=python_args,
    )
    endpoint = LocalEndpoint(config)
    app = endpoint.app()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with warnings.catch_warnings():  # serve.py sets this str key the same way
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        app["internal_url"] = url
    runner = app_runner(app, config)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return Running(endpoint, url, aiohttp.ClientSession()), runner


async def wait_until(condition: Callable[[], Any], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def protocol(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    """The endpoint with one worker process that never asks for work: the test speaks for it."""
    monkeypatch.setattr(endpoint_server, "TAKE_HOLD_S", 0.3)
    running, runner = await start(("-c", "import time; time.sleep(300)"), {})
    yield running
    await running.http.close()
    await running.endpoint.close_workers()  # as serve does: workers first, while their URLs answer
    await runner.cleanup()


async def test_batch_take_hands_out_up_to_batch_size_as_a_list(protocol: Running) -> None:
    ids = [await protocol.run({"n": n}) for n in range(3)]

    status, jobs = await protocol.take("job-take-batch", "batch_size=2&job_in_progress=0")
    assert status == 200
    assert jobs == [{"id": ids[0], "input": {"n": 0}}, {"id": ids[1], "input": {"n": 1}}]
    for job_id in ids[:2]:  # both taken jobs are IN_PROGRESS on this worker, held or running
        body = await protocol.status(job_id)
        assert body["status"] == "IN_PROGRESS" and body["workerId"] == "worker-1"
    assert (await protocol.status(ids[2]))["status"] == "IN_QUEUE"
    health = await protocol.health()
    assert health["jobs"]["inProgress"] == 2 and health["jobs"]["inQueue"] == 1
    assert health["workers"]["running"] == 1

    # Fewer queued than asked for: what there is, at once, still as a list.
    status, jobs = await protocol.take("job-take-batch", "batch_size=2&job_in_progress=1")
    assert status == 200 and jobs == [{"id": ids[2], "input": {"n": 2}}]
    # Nothing queued: 204 after the long-poll, as from RunPod.
    started = time.monotonic()
    status, jobs = await protocol.take("job-take-batch", "batch_size=2&job_in_progress=1")
    assert status == 204 and jobs is None and time.monotonic() - started >= 0.25

    # One of three finished: the worker still holds two, so it is still running.
    await protocol.done(ids[0], {"output": {"ok": 0}})
    assert (await protocol.status(ids[0]))["status"] == "COMPLETED"
    assert (await protocol.health())["workers"]["running"] == 1
    for n in (1, 2):
        await protocol.done(ids[n], {"output": {"ok": n}})
    assert (await protocol.health())["workers"] == {
        "idle": 1,
        "initializing": 0,
        "ready": 1,
        "running": 0,
        "throttled": 0,
        "unhealthy": 0,
    }


async def test_a_held_job_times_out_from_its_take_and_only_it_is_stopped(protocol: Running) -> None:
    # As on RunPod, policy.executionTimeout counts from the take, also for a job the worker holds
    # behind another: it ends TIMED_OUT and the worker is told to stop that job alone.
    async with protocol.http.post(
        f"{protocol.api}/run", json={"input": {"n": 0}, "policy": {"executionTimeout": 300}}, headers=AUTH
    ) as response:
        held = str((await response.json())["id"])
    other = await protocol.run({"n": 1})
    status, jobs = await protocol.take("job-take-batch", "batch_size=2&job_in_progress=0")
    assert status == 200 and [job["id"] for job in jobs] == [held, other]

    async def timed_out() -> bool:
        return (await protocol.status(held))["status"] == "TIMED_OUT"

    await wait_until(timed_out, "the held job's execution timeout", timeout_s=5)
    url = f"{protocol.url}/internal/job-stop/worker-1?gpu=local"
    async with protocol.http.get(url, headers={"Authorization": protocol.endpoint.token}) as response:
        assert await response.json() == {"jobsToStop": [held]}
    assert (await protocol.status(other))["status"] == "IN_PROGRESS"


async def test_single_take_still_answers_one_object(protocol: Running) -> None:
    job_id = await protocol.run({"n": 1})
    status, job = await protocol.take("job-take", "job_in_progress=0")
    assert status == 200 and job == {"id": job_id, "input": {"n": 1}}


async def test_a_batch_the_worker_says_it_never_got_is_queued_again(protocol: Running) -> None:
    ids = [await protocol.run({"n": n}) for n in range(2)]
    status, jobs = await protocol.take("job-take-batch", "batch_size=2&job_in_progress=0")
    assert status == 200 and len(jobs) == 2
    # The answer was lost on the way: the SDK next asks holding nothing, and gets both again, in order.
    status, jobs = await protocol.take("job-take-batch", "batch_size=2&job_in_progress=0")
    assert status == 200 and [job["id"] for job in jobs] == ids


@pytest.mark.parametrize("query", ["batch_size=0", "batch_size=two", "job_in_progress=0"])
async def test_a_malformed_batch_size_is_a_json_400(protocol: Running, query: str) -> None:
    await protocol.run({"n": 1})
    status, body = await protocol.take("job-take-batch", query)
    assert status == 400 and "batch_size must be a whole number of jobs, 1 or more" in body["error"]
    assert (await protocol.health())["jobs"]["inQueue"] == 1  # nothing was handed out


@pytest.fixture
async def sdk_endpoint(caplog: pytest.LogCaptureFixture) -> AsyncIterator[Running]:
    """The endpoint with one real runpod SDK worker loop asking for 2 jobs at once."""
    caplog.set_level(logging.DEBUG, logger="comfy_worker.endpoint.server")
    env = {"SDK_WORKER_CONCURRENCY": "2", "PYTHONPATH": str(REPO)}
    running, runner = await start((str(SDK_WORKER),), env)
    yield running
    await running.http.close()
    await running.endpoint.close_workers()  # as serve does: workers first, while their URLs answer
    await runner.cleanup()


async def test_sdk_worker_with_concurrency_two_holds_two_jobs_and_a_cancel_stops_only_its_own(
    sdk_endpoint: Running, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api = sdk_endpoint
    a, b, c = [await api.run({"dir": str(tmp_path), "name": name}) for name in "abc"]
    started = tmp_path / "started-a", tmp_path / "started-b"

    async def both_started() -> bool:
        return all(path.exists() for path in started)

    await wait_until(both_started, "the worker to hold jobs a and b at once")
    assert "asks for 2 job(s)" in caplog.text  # the SDK used the batch route
    for job_id, name in ((a, "a"), (b, "b")):
        body = await api.status(job_id)
        assert body["status"] == "IN_PROGRESS" and body["workerId"] == "worker-1"

        async def progressed(job_id: str = job_id) -> bool:
            return (await api.status(job_id)).get("output") is not None

        await wait_until(progressed, f"job {name}'s progress")
        assert (await api.status(job_id))["output"] == {"stage": "held", "name": name}
    assert (await api.status(c))["status"] == "IN_QUEUE"  # the worker's concurrency is full
    assert not (tmp_path / "started-c").exists()

    # The CLI shows a job a worker holds as IN_PROGRESS.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}
    env.update(
        {"RUNPOD_ENDPOINT_BASE_URL": f"{api.url}/v2", "RUNPOD_ENDPOINT_ID": "local", "RUNPOD_API_KEY": KEY}
    )
    shown = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "comfy_worker", "status", b],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "IN_PROGRESS"

    # Cancel b: the SDK stops b's task only; a goes on, and c takes b's place in the worker.
    async with api.http.post(f"{api.api}/cancel/{b}", headers=AUTH) as response:
        assert (await response.json())["status"] == "CANCELLED"

    async def b_stopped() -> bool:
        return (tmp_path / "cancelled-b").exists()

    await wait_until(b_stopped, "the worker to stop job b")

    async def c_started() -> bool:
        return (tmp_path / "started-c").exists()

    await wait_until(c_started, "the worker to take job c into b's place")
    assert not (tmp_path / "cancelled-a").exists()
    assert (await api.status(a))["status"] == "IN_PROGRESS"
    assert (await api.status(c))["status"] == "IN_PROGRESS"

    for name in "ac":
        (tmp_path / f"release-{name}").write_text("")
    for job_id, name in ((a, "a"), (c, "c")):

        async def finished(job_id: str = job_id) -> bool:
            return (await api.status(job_id))["status"] == "COMPLETED"

        await wait_until(finished, f"job {name} to complete")
        assert (await api.status(job_id))["output"]["name"] == name
    assert (await api.status(b))["status"] == "CANCELLED"
    assert (await api.health())["jobs"] == {
        "completed": 2,
        "failed": 0,
        "retried": 0,
        "inProgress": 0,
        "inQueue": 0,
    }
