"""The local endpoint's job lifecycle, with a fake clock."""

from __future__ import annotations

import pytest

from comfy_worker.endpoint.jobs import JobStore, Policy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> JobStore:
    return JobStore(retention_s=60, clock=clock)


async def test_lifecycle_and_status_body(store: JobStore, clock: Clock) -> None:
    job = store.submit({"input": {"x": 1}, "s3Config": {"bucketName": "b"}, "webhook": "http://h/"}, Policy())
    assert job.status_body(clock.now) == {"id": job.id, "status": "IN_QUEUE", "delayTime": 0}
    clock.now += 2
    taken = store.take("worker-1")
    assert taken is job and job.status == "IN_PROGRESS"
    assert job.for_worker() == {
        "id": job.id,
        "input": {"x": 1},
        "s3Config": {"bucketName": "b"},
        "webhook": "http://h/",
    }
    store.progress(job, {"stage": "running"})
    clock.now += 3
    body = job.status_body(clock.now)
    assert body["status"] == "IN_PROGRESS" and body["output"] == {"stage": "running"}
    assert body["delayTime"] == 2000 and body["executionTime"] == 3000 and body["workerId"] == "worker-1"
    assert store.finish(job, {"output": {"images": []}})
    assert job.done.is_set() and job.status_body(clock.now + 10)["executionTime"] == 3000
    assert store.counts() == {"completed": 1, "failed": 0, "retried": 0, "inProgress": 0, "inQueue": 0}


async def test_error_result_keeps_details(store: JobStore) -> None:
    job = store.submit({"input": {}}, Policy())
    store.take("w")
    store.finish(job, {"error": "WORKFLOW_INVALID: x", "output": {"details": {"problems": ["x"]}}})
    assert job.status == "FAILED" and job.error == "WORKFLOW_INVALID: x"
    assert job.output == {"details": {"problems": ["x"]}}


async def test_late_result_after_cancel_is_ignored(store: JobStore) -> None:
    job = store.submit({"input": {}}, Policy())
    store.take("w")
    assert store.cancel(job)
    assert not store.finish(job, {"output": {"images": []}})
    assert job.status == "CANCELLED"


async def test_cancelled_queued_job_is_never_handed_out(store: JobStore) -> None:
    first = store.submit({"input": 1}, Policy())
    second = store.submit({"input": 2}, Policy())
    store.cancel(first)
    assert store.take("w") is second
    assert store.take("w") is None


async def test_timeouts_and_ttl(store: JobStore, clock: Clock) -> None:
    run = store.submit({"input": 1}, Policy(execution_timeout_s=5))
    queued = store.submit({"input": 2}, Policy(ttl_s=3))
    store.take("w")
    clock.now += 4
    assert [(j.id, r.split(":")[0]) for j, r in store.overdue()] == [(queued.id, "TIMED_OUT")]
    clock.now += 2
    reasons = dict((j.id, r) for j, r in store.overdue())
    assert "policy.executionTimeout of 5 s" in reasons[run.id]


async def test_retry_purge_and_retention(store: JobStore, clock: Clock) -> None:
    job = store.submit({"input": 1}, Policy())
    store.take("w")
    store.fail(job, "WORKER_LOST: x")
    assert store.retry(job) and job.status == "IN_QUEUE" and job.retries == 1
    assert not store.retry(job)
    store.submit({"input": 2}, Policy())
    assert store.purge_queue() == 2 and store.counts()["inQueue"] == 0
    done = store.submit({"input": 3}, Policy())
    store.take("w")
    store.finish(done, {"output": {}})
    clock.now += 61
    store.expire()
    assert store.get(done.id) is None


async def test_requeue_puts_a_lost_job_first(store: JobStore) -> None:
    lost = store.submit({"input": 1}, Policy())
    later = store.submit({"input": 2}, Policy())
    store.take("w")
    store.requeue(lost)
    assert lost.status == "IN_QUEUE" and lost.worker_id is None
    assert store.take("w2") is lost and store.take("w3") is later


async def test_completed_job_drops_its_input(store: JobStore) -> None:
    # Issue 14: ten 60 MB jobs kept 810 MB for the 30-minute retention.
    job = store.submit({"input": {"images": ["x" * 1000]}, "webhook": "http://h/"}, Policy(), size_bytes=1000)
    store.take("w")
    assert job.for_worker()["input"] == {"images": ["x" * 1000]}  # the worker still gets it
    store.finish(job, {"output": {"images": []}})
    assert "input" not in job.request and job.request["webhook"] == "http://h/"
    assert job.status_body(0.0)["status"] == "COMPLETED"


async def test_retryable_inputs_are_kept_within_a_budget_newest_first(clock: Clock) -> None:
    store = JobStore(retention_s=600, clock=clock, retry_input_bytes=2500)
    jobs = []
    for index in range(3):
        job = store.submit({"input": {"n": index}}, Policy(), size_bytes=1000)
        store.take("w")
        clock.now += 1
        store.finish(job, {"error": "EXECUTION_FAILED: x"})
        jobs.append(job)
    assert [job.has_input for job in jobs] == [False, True, True]
    assert not store.retry(jobs[0])  # its input is gone: the endpoint says so (server.retry)
    assert store.retry(jobs[2]) and store.take("w") is jobs[2]
    assert jobs[2].for_worker()["input"] == {"n": 2}


async def test_jobs_a_worker_holds_follow_takes_results_cancels_and_requeues(store: JobStore) -> None:
    a, b, c, d = (store.submit({"input": {"n": n}}, Policy()) for n in range(4))
    assert store.take_many("w1", 2) == [a, b]
    assert store.take_many("w2", 5) == [c, d]  # fewer queued than asked for: what there is
    assert store.take_many("w2", 5) == [] and not store.changed.is_set()
    assert store.running_on("w1") == [a, b] and store.running_on("w2") == [c, d]
    store.finish(b, {"output": {}})
    store.cancel(c)
    assert store.running_on("w1") == [a] and store.running_on("w2") == [d]
    store.requeue(a)
    assert store.running_on("w1") == [] and store.take_many("w3", 1) == [a]
    assert store.running_on("w3") == [a]
    store.fail(d, "WORKER_LOST")
    assert store.running_on("w2") == []
