"""Progress updates are throttled, but stage changes always go out."""

from __future__ import annotations

from typing import Any

from handler.comfy.connection import ComfyConnection, ConnectionOptions
from handler.comfy.session import waiting_activity
from handler.progress import ProgressReporter
from handler.values import RunProgress


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_throttle_and_stage_changes() -> None:
    sent: list[dict[str, Any]] = []
    clock = FakeClock()
    reporter = ProgressReporter(sent.append, interval_s=1.0, clock=clock)
    reporter.stage("uploading")
    reporter.update(
        RunProgress(
            "running", node="3", node_class="KSampler", step=1, max_steps=4, nodes_done=2, nodes_total=4
        )
    )
    for step in range(2, 5):
        clock.now += 0.2
        reporter.update(
            RunProgress(
                "running",
                node="3",
                node_class="KSampler",
                step=step,
                max_steps=4,
                nodes_done=2,
                nodes_total=4,
            )
        )
    clock.now += 0.5
    reporter.update(RunProgress("running", node="4", node_class="SaveImage", nodes_done=3, nodes_total=4))
    assert [p["stage"] for p in sent] == ["uploading", "running", "running"]
    assert sent[1] == {
        "stage": "running",
        "node": "3",
        "node_class": "KSampler",
        "step": 1,
        "max_steps": 4,
        "nodes_done": 2,
        "nodes_total": 4,
        "percent": 56.2,
    }
    assert sent[2]["node"] == "4" and sent[2]["percent"] == 75.0


def test_no_sender_means_no_updates() -> None:
    reporter = ProgressReporter(None, interval_s=0.0)
    reporter.stage("running")
    assert reporter.sent == 0


def test_percent_never_goes_backwards_and_carries_into_later_stages() -> None:
    sent: list[dict[str, Any]] = []
    reporter = ProgressReporter(sent.append, interval_s=0.0)
    reporter.update(RunProgress("queued", percent=0.0))
    reporter.update(RunProgress("running", node="1", percent=40.0, activity="loading model a.safetensors"))
    # A step count that starts below the time estimate must not pull the bar back.
    reporter.update(RunProgress("running", node="5", step=1, max_steps=20, percent=31.5))
    reporter.stage("collecting")
    assert [p["percent"] for p in sent] == [0.0, 40.0, 40.0, 40.0]
    assert sent[1]["activity"] == "loading model a.safetensors" and "activity" not in sent[2]


def test_a_queued_prompt_counts_the_jobs_of_its_worker_ahead_of_it_and_says_so() -> None:
    connection = ComfyConnection("127.0.0.1:9", ConnectionOptions(1.0, 1, 0.1, None))
    for prompt_id in ("running", "second", "third"):
        connection.subscribe(prompt_id)
    assert [connection.prompts_ahead(p) for p in ("running", "second", "third")] == [0, 1, 2]
    connection.unsubscribe("running")  # the first prompt ended: the others move up
    assert [connection.prompts_ahead(p) for p in ("second", "third")] == [0, 1]
    assert connection.prompts_ahead("never-queued") == 0
    assert waiting_activity(1) == "queued behind another job in this worker"
    assert waiting_activity(2) == "queued behind 2 other jobs in this worker"
