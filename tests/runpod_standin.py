"""A stand-in for RunPod's control plane, so the unmodified SDK worker loop runs our handler.

It speaks the job-take / job-stop / job-done protocol recorded in
shared/notes/runpod-worker-protocol.md: the worker polls GET job-take (we hold the request up to
a second, then 204), long-polls GET job-stop for ``{"jobsToStop": [...]}``, and POSTs progress
(``{"status": "IN_PROGRESS", "output": ...}``) and the final result to job-done.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .loopback import ThreadedApp

POLL_HOLD_S = 1.0


@dataclass
class JobRecord:
    job: dict[str, Any]
    taken: bool = False
    progress: list[Any] = field(default_factory=list)
    result: dict[str, Any] | None = None
    done: threading.Event = field(default_factory=threading.Event)


class ControlPlane:
    """Run on loopback in a thread; tests submit jobs and read what the worker sent back."""

    def __init__(self) -> None:
        self.jobs: dict[str, JobRecord] = {}
        self._pending: list[str] = []
        self._to_stop: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadedApp("runpod-standin")
        self.url = ""

    def worker_env(self, worker_id: str = "worker-1") -> dict[str, str]:
        return {
            "RUNPOD_WEBHOOK_GET_JOB": f"{self.url}/job-take/{worker_id}?gpu=none",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{self.url}/job-done/{worker_id}?id=$ID",
            "RUNPOD_POD_ID": worker_id,
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
            "RUNPOD_SKIP_GPU_CHECK": "true",
        }

    def submit(self, job_input: Any, **fields: Any) -> str:
        job_id = f"job-{uuid.uuid4().hex[:12]}"
        with self._lock:
            self.jobs[job_id] = JobRecord({"id": job_id, "input": job_input, **fields})
            self._pending.append(job_id)
        return job_id

    def stop(self, job_id: str) -> None:
        """Ask the worker to stop a job, as RunPod does on /cancel or executionTimeout."""
        with self._lock:
            self._to_stop.append(job_id)

    def wait_taken(self, job_id: str, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.jobs[job_id].taken:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{job_id} was not taken by a worker")
            time.sleep(0.02)

    def wait_result(self, job_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
        record = self.jobs[job_id]
        if not record.done.wait(timeout_s):
            raise TimeoutError(f"no result for {job_id} within {timeout_s} s")
        assert record.result is not None
        return record.result

    async def _job_take(self, request: web.Request) -> web.Response:
        jobs = await self._take(1)
        return web.json_response(jobs[0]) if jobs else web.Response(status=204)

    async def _job_take_batch(self, request: web.Request) -> web.Response:
        """The SDK asks here when it wants more than one job (COMFY_PIPELINE_DEPTH > 1): a list."""
        jobs = await self._take(int(request.query.get("batch_size", "1")))
        return web.json_response(jobs) if jobs else web.Response(status=204)

    async def _take(self, wanted: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + POLL_HOLD_S
        while time.monotonic() < deadline:
            with self._lock:
                if self._pending:
                    taken, self._pending = self._pending[:wanted], self._pending[wanted:]
                    for job_id in taken:
                        self.jobs[job_id].taken = True
                    return [self.jobs[job_id].job for job_id in taken]
            await asyncio.sleep(0.02)
        return []

    async def _job_stop(self, request: web.Request) -> web.Response:
        deadline = time.monotonic() + POLL_HOLD_S
        while time.monotonic() < deadline:
            with self._lock:
                if self._to_stop:
                    ids, self._to_stop = self._to_stop, []
                    return web.json_response({"jobsToStop": ids})
            await asyncio.sleep(0.02)
        return web.Response(status=204)

    async def _job_done(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())  # JSON sent as x-www-form-urlencoded by the SDK
        record = self.jobs[request.query["id"]]
        if body.get("status") == "IN_PROGRESS":
            record.progress.append(body.get("output"))
        else:
            record.result = body
            record.done.set()
        return web.json_response({})

    def start(self) -> ControlPlane:
        app = web.Application()
        app.router.add_get("/job-take/{worker}", self._job_take)
        app.router.add_get("/job-take-batch/{worker}", self._job_take_batch)
        app.router.add_get("/job-stop/{worker}", self._job_stop)
        app.router.add_post("/job-done/{worker}", self._job_done)
        self.url = self._server.start(app)
        return self

    def close(self) -> None:
        self._server.stop()
