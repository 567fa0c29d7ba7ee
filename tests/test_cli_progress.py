"""The CLI's progress bar says what the running node does and for how long, and never goes back."""

from __future__ import annotations

import io

from comfy_worker.cli import _ProgressBar, progress_text
from comfy_worker.client import JobStatus


def test_the_bar_names_the_model_being_loaded_and_the_time_spent_on_it() -> None:
    loading = {
        "stage": "running",
        "node": "1",
        "node_class": "CheckpointLoaderSimple",
        "activity": "loading model sd15.safetensors",
        "node_elapsed_s": 37.4,
        "percent": 12.5,
    }
    assert progress_text(loading) == (
        "running CheckpointLoaderSimple (node 1): loading model sd15.safetensors, 37 s"
    )
    sampling = {"stage": "running", "node": "5", "node_class": "KSampler", "step": 7, "max_steps": 20}
    assert progress_text(sampling) == "running KSampler (node 5) step 7/20"


def test_the_bar_keeps_its_highest_percentage() -> None:
    stream = io.StringIO()  # not a terminal: one line per update
    bar = _ProgressBar(stream)
    try:
        bar.update(JobStatus("j", "IN_PROGRESS", output={"stage": "running", "percent": 40.0}))
        bar.update(JobStatus("j", "IN_PROGRESS", output={"stage": "running", "percent": 31.0}))
    finally:
        bar.close()
    lines = stream.getvalue().splitlines()
    assert " 40.0% " in lines[0] and " 40.0% " in lines[1]


def test_a_job_held_behind_another_in_its_worker_reads_in_progress_and_waiting() -> None:
    stream = io.StringIO()
    bar = _ProgressBar(stream)
    waiting = {"stage": "waiting", "activity": "queued behind another job in this worker", "percent": 0.0}
    try:
        bar.update(JobStatus("j", "IN_QUEUE"))
        bar.update(JobStatus("j", "IN_PROGRESS", output=waiting))
        bar.update(JobStatus("j", "IN_PROGRESS", output={"stage": "running", "percent": 5.0}))
    finally:
        bar.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith(" IN_QUEUE")
    assert lines[1].endswith(" IN_PROGRESS, waiting: queued behind another job in this worker")
    assert lines[2].endswith(" running")
