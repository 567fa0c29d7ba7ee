"""Jobs of the local endpoint and their lifecycle, as RunPod reports them. No I/O.

    IN_QUEUE -> IN_PROGRESS (taken by a worker, running or held behind its other jobs) -> COMPLETED | FAILED
    IN_QUEUE | IN_PROGRESS -> CANCELLED (POST /cancel) | TIMED_OUT (policy.executionTimeout, ttl)
    FAILED | TIMED_OUT | CANCELLED -> IN_QUEUE (POST /retry)

`delayTime` is the time in the queue and `executionTime` the time on a worker, in ms, as in
RunPod's /status. Finished jobs are kept for `retention_s`, then forgotten (404).

A job's input (up to 20 MB of base64 each) is dropped as soon as it cannot be needed again: when
the job completes, and for jobs that may still be retried once the inputs kept for retries pass
`retry_input_bytes` (oldest dropped first; /retry then says the input is gone).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FINAL", "Job", "JobStore", "Policy"]

FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})
# Request fields RunPod hands to the worker next to input (s3Config for per-job storage).
_PASSED_TO_WORKER = ("s3Config", "webhook")


@dataclass(frozen=True)
class Policy:
    execution_timeout_s: float | None = None  # policy.executionTimeout (ms in the request)
    ttl_s: float | None = None  # policy.ttl (ms): whole life of the job, queue included


@dataclass
class Job:
    id: str
    request: dict[str, Any]
    policy: Policy
    submitted_at: float
    status: str = "IN_QUEUE"
    started_at: float | None = None
    finished_at: float | None = None
    worker_id: str | None = None
    output: Any = None
    error: str | None = None
    stream: list[Any] = field(default_factory=list)
    retries: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    input_bytes: int = 0  # size of the request body; 0 once the input was dropped

    @property
    def has_input(self) -> bool:
        return "input" in self.request

    def drop_input(self) -> int:
        """Forget the input (the worker has it or it cannot run again); return the bytes freed."""
        freed, self.input_bytes = self.input_bytes, 0
        self.request = {key: value for key, value in self.request.items() if key != "input"}
        return freed

    @property
    def webhook(self) -> str | None:
        hook = self.request.get("webhook")
        return hook if isinstance(hook, str) and hook else None

    def for_worker(self) -> dict[str, Any]:
        """The job as the SDK's job-take receives it."""
        job = {"id": self.id, "input": self.request.get("input")}
        for key in _PASSED_TO_WORKER:
            if key in self.request:
                job[key] = self.request[key]
        return job

    def status_body(self, now: float) -> dict[str, Any]:
        """The body of GET /status, in RunPod's shape."""
        body: dict[str, Any] = {"id": self.id, "status": self.status}
        started = self.started_at or (None if self.status == "IN_QUEUE" else self.finished_at)
        body["delayTime"] = int(((started or now) - self.submitted_at) * 1000)
        if self.started_at is not None:
            body["executionTime"] = int(((self.finished_at or now) - self.started_at) * 1000)
        if self.output is not None:
            body["output"] = self.output
        if self.error is not None:
            body["error"] = self.error
        if self.worker_id is not None:
            body["workerId"] = self.worker_id
        if self.retries:
            body["retries"] = self.retries
        return body


class JobStore:
    """Every job of the endpoint, the queue, and the counters /health reports."""

    def __init__(
        self,
        *,
        retention_s: float,
        clock: Callable[[], float] = time.monotonic,
        retry_input_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self.retention_s = retention_s
        self.retry_input_bytes = retry_input_bytes
        self.clock = clock
        self.jobs: dict[str, Job] = {}
        self.queue: deque[str] = deque()
        self.counters = {"completed": 0, "failed": 0, "retried": 0}
        self.changed = asyncio.Event()  # set whenever a job enters the queue
        # Jobs each worker holds, in take order: what a take or a result looks up, whatever the
        # number of finished jobs kept for retention.
        self._held: dict[str, dict[str, None]] = {}
        self._ids = itertools.count(1)

    def submit(self, request: dict[str, Any], policy: Policy, *, size_bytes: int = 0) -> Job:
        job_id = f"{uuid.uuid4()}-{next(self._ids)}"
        job = Job(
            id=job_id, request=request, policy=policy, submitted_at=self.clock(), input_bytes=size_bytes
        )
        self.jobs[job_id] = job
        self.queue.append(job_id)
        self.changed.set()
        return job

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def take(self, worker_id: str) -> Job | None:
        """Hand the oldest queued job to a worker."""
        taken = self.take_many(worker_id, 1)
        return taken[0] if taken else None

    def take_many(self, worker_id: str, count: int) -> list[Job]:
        """Hand up to ``count`` of the oldest queued jobs to a worker (RunPod's batch job-take).

        Every job handed out is IN_PROGRESS from this moment, whether the worker runs it at once or
        holds it behind another: RunPod's executionTimeout and executionTime count from the take.
        """
        taken: list[Job] = []
        while self.queue and len(taken) < count:
            job = self.jobs.get(self.queue.popleft())
            if job is None or job.status != "IN_QUEUE":
                continue
            job.status, job.started_at, job.worker_id = "IN_PROGRESS", self.clock(), worker_id
            job.output = None
            self._held.setdefault(worker_id, {})[job.id] = None
            taken.append(job)
        if not self.queue:
            self.changed.clear()
        return taken

    def progress(self, job: Job, value: Any) -> None:
        if job.status == "IN_PROGRESS":
            job.output = value
            job.stream.append(value)

    def finish(self, job: Job, body: dict[str, Any]) -> bool:
        """Record a worker's final result; False if the job already ended (cancelled, timed out)."""
        if job.status != "IN_PROGRESS":
            return False
        error = body.get("error")
        output = body.get("output")
        if error:
            job.status, job.error = "FAILED", str(error)
            job.output = output if output not in (None, {}) else None
            self.counters["failed"] += 1
        else:
            job.status, job.output = "COMPLETED", output
            self.counters["completed"] += 1
            job.drop_input()  # a completed job cannot be retried: its input is dead weight
        self._end(job)
        return True

    def fail(self, job: Job, error: str, *, status: str = "FAILED") -> bool:
        """End a job from the endpoint's side: a lost worker, a timeout."""
        if job.status in FINAL:
            return False
        job.status, job.error, job.output = status, error, None
        self.counters["failed"] += 1
        self._end(job)
        return True

    def cancel(self, job: Job) -> bool:
        if job.status in FINAL:
            return False
        job.status = "CANCELLED"
        self._end(job)
        return True

    def requeue(self, job: Job) -> None:
        """Put an IN_PROGRESS job back at the head of the queue (its worker never got it)."""
        self._release(job)
        job.status, job.started_at, job.worker_id, job.output = "IN_QUEUE", None, None, None
        self.queue.appendleft(job.id)
        self.changed.set()

    def retry(self, job: Job) -> bool:
        if job.status not in ("FAILED", "TIMED_OUT", "CANCELLED") or not job.has_input:
            return False
        job.status, job.error, job.output = "IN_QUEUE", None, None
        job.started_at = job.finished_at = None
        job.worker_id, job.stream = None, []
        job.submitted_at = self.clock()
        job.retries += 1
        job.done = asyncio.Event()
        self.counters["retried"] += 1
        self.queue.append(job.id)
        self.changed.set()
        return True

    def purge_queue(self) -> int:
        removed = 0
        for job_id in list(self.queue):
            job = self.jobs.get(job_id)
            if job is not None and job.status == "IN_QUEUE":
                del self.jobs[job_id]
                removed += 1
        self.queue.clear()
        self.changed.clear()
        return removed

    def overdue(self) -> list[tuple[Job, str]]:
        """Jobs past their execution timeout or ttl, with the reason."""
        now = self.clock()
        late = []
        for job in self.jobs.values():
            if job.status in FINAL:
                continue
            ttl = job.policy.ttl_s
            if ttl is not None and now - job.submitted_at > ttl:
                late.append((job, f"TIMED_OUT: the job exceeded its policy.ttl of {ttl:g} s"))
            limit = job.policy.execution_timeout_s
            if limit is not None and job.started_at is not None and now - job.started_at > limit:
                late.append((job, f"TIMED_OUT: the job exceeded its policy.executionTimeout of {limit:g} s"))
        return late

    def expire(self) -> None:
        """Forget finished jobs older than the retention period."""
        cutoff = self.clock() - self.retention_s
        for job_id in [
            j.id for j in self.jobs.values() if j.finished_at is not None and j.finished_at < cutoff
        ]:
            del self.jobs[job_id]

    def counts(self) -> dict[str, int]:
        in_queue = sum(1 for j in self.jobs.values() if j.status == "IN_QUEUE")
        in_progress = sum(1 for j in self.jobs.values() if j.status == "IN_PROGRESS")
        return {**self.counters, "inProgress": in_progress, "inQueue": in_queue}

    def running_on(self, worker_id: str) -> list[Job]:
        """The jobs a worker holds (running, or waiting behind its others), in the order it took them."""
        return [self.jobs[job_id] for job_id in self._held.get(worker_id, {}) if job_id in self.jobs]

    def _release(self, job: Job) -> None:
        if job.worker_id is not None:
            self._held.get(job.worker_id, {}).pop(job.id, None)

    def _end(self, job: Job) -> None:
        self._release(job)
        job.finished_at = self.clock()
        job.done.set()
        self._trim_retry_inputs()

    def _trim_retry_inputs(self) -> None:
        """Keep the inputs of retryable jobs under ``retry_input_bytes``, newest first."""
        ended = sorted(
            (j for j in self.jobs.values() if j.status in FINAL and j.input_bytes),
            key=lambda j: j.finished_at or 0.0,
            reverse=True,
        )
        kept = 0
        for job in ended:
            kept += job.input_bytes
            if kept > self.retry_input_bytes:
                job.drop_input()
