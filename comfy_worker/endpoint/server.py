"""RunPod's serverless API for one endpoint, served locally, with real SDK workers behind it.

Public routes (``/v2/<endpoint_id>/...``, Bearer auth): run, runsync, status, stream, cancel,
retry, purge-queue, health. Internal routes (``/internal/...``, the workers' token): job-take,
job-take-batch (a worker whose concurrency leaves room for several jobs), job-stop, job-done and
ping, the protocol the SDK speaks to RunPod in production (shared/notes/runpod-worker-protocol.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from handler.inputs.netguard import AllowList

from .jobs import FINAL, Job, JobStore, Policy
from .webhooks import WebhookSender, webhook_problem
from .workers import WorkerPool, WorkerProcess

__all__ = ["EndpointConfig", "LocalEndpoint"]

logger = logging.getLogger(__name__)

TAKE_HOLD_S = 5.0  # job-take long-poll: answer 204 after this long without work
STOP_HOLD_S = 10.0
RUNSYNC_DEFAULT_WAIT_MS = 90_000  # RunPod's /runsync waits about this long
RUNSYNC_MAX_WAIT_MS = 300_000
# RunPod's policy bounds, in ms: executionTimeout 5 s..7 days, ttl 10 s..7 days. Tests go lower.
MAX_POLICY_MS = 7 * 24 * 3600 * 1000
# RunPod's request size limits (docs: "Endpoint operations"): bigger bodies are refused with 413.
MB = 1024 * 1024
REQUEST_LIMITS = {"run": 10 * MB, "runsync": 20 * MB}


@dataclass(frozen=True)
class EndpointConfig:
    endpoint_id: str = "local"
    api_key: str | None = None  # None: no auth (say so at start)
    workers: int = 1
    comfy_hosts: tuple[str, ...] = ("127.0.0.1:8188",)
    retention_s: float = 1800.0  # RunPod keeps /run results 30 min
    worker_env: Mapping[str, str] | None = None
    echo_worker_logs: bool = True
    webhook_allow: AllowList = field(
        default_factory=AllowList
    )  # --webhook-allow: non-public webhook hosts allowed
    client_idle_s: float = 30.0  # a connection that sends no complete request this long is closed
    body_read_s: float = 120.0  # a request body must arrive within this
    # What each worker process runs (after the Python interpreter): our handler inside the SDK loop.
    worker_python_args: tuple[str, ...] = ("-m", "handler")


class LocalEndpoint:
    def __init__(self, config: EndpointConfig) -> None:
        self.config = config
        self.store = JobStore(retention_s=config.retention_s)
        self.token = secrets.token_urlsafe(24)  # what workers authenticate with (RUNPOD_AI_API_KEY)
        self.pool: WorkerPool | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.webhooks = WebhookSender(config.webhook_allow)
        self.closing = False

    async def close_workers(self) -> None:
        """Stop the workers while their URLs still answer; release their long-polls at once."""
        self.closing = True
        self.store.changed.set()
        if self.pool is not None:
            for worker in self.pool.workers.values():
                worker.stop_event.set()
            await self.pool.close()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._errors])
        prefix = f"/v2/{self.config.endpoint_id}"
        app.router.add_post(f"{prefix}/run", self.run)
        app.router.add_post(f"{prefix}/runsync", self.runsync)
        app.router.add_route("*", f"{prefix}/status/{{job_id}}", self.status)
        app.router.add_route("*", f"{prefix}/stream/{{job_id}}", self.stream)
        app.router.add_post(f"{prefix}/cancel/{{job_id}}", self.cancel)
        app.router.add_post(f"{prefix}/retry/{{job_id}}", self.retry)
        app.router.add_post(f"{prefix}/purge-queue", self.purge_queue)
        app.router.add_get(f"{prefix}/health", self.health)
        app.router.add_get("/internal/job-take/{worker}", self.job_take)
        app.router.add_get("/internal/job-take-batch/{worker}", self.job_take_batch)
        app.router.add_get("/internal/job-stop/{worker}", self.job_stop)
        app.router.add_post("/internal/job-done/{worker}", self.job_done)
        app.router.add_get("/internal/ping/{worker}", self.ping)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    # --- lifecycle ---------------------------------------------------------------------------

    async def _start(self, app: web.Application) -> None:
        await self.webhooks.start()
        self._spawn(self._watch_deadlines())
        internal_url = app["internal_url"]
        self.pool = WorkerPool(
            count=self.config.workers,
            comfy_hosts=list(self.config.comfy_hosts),
            internal_url=internal_url,
            token=self.token,
            env=self.config.worker_env or {},
            on_exit=self._worker_exited,
            echo_logs=self.config.echo_worker_logs,
            python_args=self.config.worker_python_args,
        )
        await self.pool.start()

    async def _stop(self, app: web.Application) -> None:
        if self.pool is not None:
            await self.pool.close()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.webhooks.close()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- public API ----------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every answer is JSON, whatever went wrong: RunPod's clients parse the body."""
        try:
            return await self._checked(request, handler)
        except web.HTTPException as exc:
            if exc.content_type == "application/json" or exc.status < 400:
                raise
            return web.json_response({"error": f"{exc.status} {exc.reason}"}, status=exc.status)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:
            logger.exception("unexpected error answering %s %s", request.method, request.path)
            return web.json_response(
                {"error": "the local endpoint hit an unexpected error; see its log"}, status=500
            )

    async def _checked(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/v2/"):
            if not self._authorized(request.headers.get("Authorization", ""), self.config.api_key):
                return web.json_response({"error": "Unauthorized: wrong or missing API key"}, status=401)
        elif request.path.startswith("/internal/") and not self._authorized(
            request.headers.get("Authorization", ""), self.token
        ):
            return web.json_response({"error": "Unauthorized"}, status=401)
        return await handler(request)

    @staticmethod
    def _authorized(header: str, key: str | None) -> bool:
        if key is None:
            return True
        given = header.removeprefix("Bearer ").strip()
        try:
            return hmac.compare_digest(given.encode("ascii"), key.encode("utf-8"))
        except UnicodeError:  # a non-ASCII header can never be the key; it is just wrong
            return False

    async def run(self, request: web.Request) -> web.Response:
        body, policy, size = await self._parse_request(request, "run")
        job = self.store.submit(body, policy, size_bytes=size)
        return web.json_response({"id": job.id, "status": job.status})

    async def runsync(self, request: web.Request) -> web.Response:
        body, policy, size = await self._parse_request(request, "runsync")
        job = self.store.submit(body, policy, size_bytes=size)
        wait_ms = _int_param(request, "wait", RUNSYNC_DEFAULT_WAIT_MS, maximum=RUNSYNC_MAX_WAIT_MS)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(job.done.wait(), wait_ms / 1000)
        return web.json_response(job.status_body(self.store.clock()))

    async def status(self, request: web.Request) -> web.Response:
        job = self._job(request)
        wait_ms = _int_param(request, "wait", 0, maximum=RUNSYNC_MAX_WAIT_MS)
        if wait_ms and job.status not in FINAL:  # long-poll, like RunPod's ?wait= on /status
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.done.wait(), wait_ms / 1000)
        return web.json_response(job.status_body(self.store.clock()))

    async def stream(self, request: web.Request) -> web.Response:
        """Progress outputs since the last call (our handler streams progress, not partial results)."""
        job = self._job(request)
        items, job.stream = job.stream, []
        return web.json_response(
            {"id": job.id, "status": job.status, "stream": [{"output": i} for i in items]}
        )

    async def cancel(self, request: web.Request) -> web.Response:
        job = self._job(request)
        worker_id = job.worker_id if job.status == "IN_PROGRESS" else None
        if self.store.cancel(job):
            if worker_id:
                self._stop_on_worker(worker_id, job.id)
            self._spawn(self._webhook(job))
        return web.json_response({"id": job.id, "status": job.status})

    async def retry(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if job.status in ("FAILED", "TIMED_OUT", "CANCELLED") and not job.has_input:
            raise _json_error(
                400,
                f"job {job.id} can no longer be retried: its input was dropped to keep the endpoint's "
                "memory bounded (older failed jobs' inputs go first); submit it again with /run",
            )
        if not self.store.retry(job):
            raise _json_error(
                400, f"job {job.id} is {job.status}; only FAILED, TIMED_OUT or CANCELLED jobs can be retried"
            )
        return web.json_response({"id": job.id, "status": job.status})

    async def purge_queue(self, request: web.Request) -> web.Response:
        return web.json_response({"removed": self.store.purge_queue(), "status": "completed"})

    async def health(self, request: web.Request) -> web.Response:
        workers = self.pool.counts() if self.pool else {}
        return web.json_response({"jobs": self.store.counts(), "workers": workers})

    async def _parse_request(self, request: web.Request, route: str) -> tuple[dict[str, Any], Policy, int]:
        limit = REQUEST_LIMITS[route]
        if request.content_length is not None and request.content_length > limit:
            raise _too_large(route, request.content_length, limit)
        try:
            async with asyncio.timeout(self.config.body_read_s):
                raw = await request.read()
        except TimeoutError:
            raise _json_error(
                408, f"the request body did not arrive within {self.config.body_read_s:g} s"
            ) from None
        if len(raw) > limit:
            raise _too_large(route, len(raw), limit)
        body = _json_body(raw)
        if not isinstance(body, dict) or "input" not in body:
            raise _json_error(400, 'the request body must be an object with an "input" field')
        if "webhook" in body:
            problem = webhook_problem(body["webhook"], self.config.webhook_allow)
            if problem is not None:
                raise _json_error(400, problem)
        policy = body.get("policy") or {}
        if not isinstance(policy, dict):
            raise _json_error(400, "policy must be an object")
        return (
            body,
            Policy(
                execution_timeout_s=_ms_to_s(policy.get("executionTimeout"), "policy.executionTimeout"),
                ttl_s=_ms_to_s(policy.get("ttl"), "policy.ttl"),
            ),
            len(raw),
        )

    def _job(self, request: web.Request) -> Job:
        job = self.store.get(request.match_info["job_id"])
        if job is None:
            raise _json_error(
                404, f"job {request.match_info['job_id']} not found (unknown, or past its retention)"
            )
        return job

    # --- worker protocol -----------------------------------------------------------------------

    def _worker(self, request: web.Request) -> WorkerProcess:
        worker = self.pool.workers.get(request.match_info["worker"]) if self.pool else None
        if worker is None:
            raise _json_error(404, "unknown worker")
        return worker

    async def job_take(self, request: web.Request) -> web.Response:
        """One job as an object, or 204: the SDK asks here while it wants a single job."""
        return await self._take(request, batch_size=None)

    async def job_take_batch(self, request: web.Request) -> web.Response:
        """Up to ``batch_size`` jobs as a list, or 204: the SDK asks here when its concurrency
        (``concurrency_modifier``) leaves room for more than one job."""
        raw = request.query.get("batch_size", "")
        try:
            batch_size = int(raw)
        except ValueError:
            batch_size = 0
        if batch_size < 1:
            raise _json_error(400, f"batch_size must be a whole number of jobs, 1 or more (got {raw!r})")
        return await self._take(request, batch_size=batch_size)

    async def _take(self, request: web.Request, *, batch_size: int | None) -> web.Response:
        """Long-poll for work; hand out whatever is queued, up to the batch size, as soon as any is."""
        worker = self._worker(request)
        worker.ready.set()
        logger.debug(
            "%s asks for %s job(s) (job_in_progress=%s)",
            worker.id,
            batch_size or 1,
            request.query.get("job_in_progress"),
        )
        if request.query.get("job_in_progress") == "0":
            # The SDK says it holds no job: those we think it holds never reached it. Run them again,
            # at the head of the queue in their order (each goes in front of the one before it).
            for lost in reversed(self.store.running_on(worker.id)):
                logger.warning("job %s never reached %s; queueing it again", lost.id, worker.id)
                self.store.requeue(lost)
            self._update_state(worker)
        deadline = self.store.clock() + TAKE_HOLD_S
        while not self.closing:
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=204)  # the worker went away while we held its request
            jobs = self.store.take_many(worker.id, batch_size or 1)
            if jobs:
                self._update_state(worker)
                logger.debug("%s took %s", worker.id, ", ".join(job.id for job in jobs))
                if batch_size is None:
                    return web.json_response(jobs[0].for_worker())
                return web.json_response([job.for_worker() for job in jobs])
            remaining = deadline - self.store.clock()
            if remaining <= 0:
                return web.Response(status=204)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.store.changed.wait(), remaining)
        return web.Response(status=204)

    def _update_state(self, worker: WorkerProcess) -> None:
        """A worker is running while it holds any job (one executing, others held behind it)."""
        if worker.state in ("idle", "running", "initializing"):
            worker.state = "running" if self.store.running_on(worker.id) else "idle"

    async def job_stop(self, request: web.Request) -> web.Response:
        worker = self._worker(request)
        if not worker.stops and not self.closing:
            worker.stop_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.stop_event.wait(), STOP_HOLD_S)
        if not worker.stops:
            return web.Response(status=204)
        ids, worker.stops = list(worker.stops), []
        return web.json_response({"jobsToStop": ids})

    async def job_done(self, request: web.Request) -> web.Response:
        worker = self._worker(request)
        body = _json_body(await request.read())  # the SDK sends JSON as form-urlencoded
        if not isinstance(body, dict):
            raise _json_error(400, "job-done needs a JSON object")
        job = self.store.get(request.query.get("id", ""))
        if job is None or job.worker_id != worker.id:
            return web.json_response({"ignored": True})
        if body.get("status") == "IN_PROGRESS":
            self.store.progress(job, body.get("output"))
            return web.json_response({})
        logger.debug("%s finished %s (%s)", worker.id, job.id, "error" if body.get("error") else "ok")
        if self.store.finish(job, body):
            self._spawn(self._webhook(job))
        self._update_state(worker)
        if body.get("stopPod") and self.pool is not None:
            # The handler asked for a fresh worker (refresh_worker): replace it, as RunPod does.
            self._spawn(self.pool.restart(worker))
        return web.json_response({})

    async def ping(self, request: web.Request) -> web.Response:
        self._worker(request)  # a worker's heartbeat; liveness comes from its process, watched directly
        return web.json_response({})

    # --- background ----------------------------------------------------------------------------

    def _stop_on_worker(self, worker_id: str, job_id: str) -> None:
        if self.pool is not None and worker_id in self.pool.workers:
            self.pool.workers[worker_id].request_stop(job_id)

    async def _worker_exited(self, worker: WorkerProcess, code: int) -> None:
        tail = " | ".join(list(worker.log_tail)[-3:])
        for job in self.store.running_on(worker.id):
            message = (
                f"WORKER_LOST: the worker process ({worker.id}) exited with code {code} while running this "
                f"job; the endpoint started a new one. Last log lines: {tail}"
            )
            if self.store.fail(job, message[:1000]):
                self._spawn(self._webhook(job))

    async def _watch_deadlines(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(0.1)
            for job, reason in self.store.overdue():
                worker_id = job.worker_id if job.status == "IN_PROGRESS" else None
                if self.store.fail(job, reason, status="TIMED_OUT"):
                    if worker_id:
                        self._stop_on_worker(worker_id, job.id)
                    self._spawn(self._webhook(job))
            ticks += 1
            if ticks % 50 == 0:
                self.store.expire()

    async def _webhook(self, job: Job) -> None:
        url = job.webhook
        if url is not None:
            await self.webhooks.deliver(url, job.status_body(self.store.clock()))


def _too_large(route: str, size: int, limit: int) -> web.HTTPException:
    other = ", or use /runsync (20 MB)" if route == "run" else ""
    message = (
        f"the request is {size / MB:.1f} MB, over RunPod's {limit // MB} MB limit for /{route}: "
        f"make the input images smaller{other}"
    )
    return web.HTTPRequestEntityTooLarge(
        max_size=limit, actual_size=size, text=json.dumps({"error": message}), content_type="application/json"
    )


def _json_error(status: int, message: str) -> web.HTTPException:
    kinds = {
        400: web.HTTPBadRequest,
        401: web.HTTPUnauthorized,
        404: web.HTTPNotFound,
        408: web.HTTPRequestTimeout,
    }
    return kinds[status](text=json.dumps({"error": message}), content_type="application/json")


def _int_param(request: web.Request, name: str, default: int, *, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return max(0, min(int(raw), maximum))
    except ValueError:
        raise _json_error(400, f"?{name}= must be a whole number of milliseconds") from None


def _json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise _json_error(400, "the request body is JSON nested too deeply; flatten it") from None
    except ValueError as exc:  # not JSON, NaN/Infinity, an integer of over 4300 digits
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)[:120]
        raise _json_error(400, f"the request body is not valid JSON ({detail})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _ms_to_s(value: Any, name: str) -> float | None:
    if value is None:
        return None
    # Compare before converting: a 400-digit integer does not fit a float.
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < value <= MAX_POLICY_MS
        or not math.isfinite(value)
    ):
        raise _json_error(
            400, f"{name} must be a number of milliseconds between 1 and {MAX_POLICY_MS} (7 days)"
        )
    return float(value) / 1000.0
