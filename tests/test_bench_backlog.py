"""The backlog benchmark: its busy-share arithmetic, and one tiny run end to end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.busy_share import JobSpan, busy_seconds, execution_window, span_of

REPO = Path(__file__).resolve().parents[1]


def entry(*messages: tuple[str, int]) -> dict[str, Any]:
    """A history entry in ComfyUI 0.3.64's shape (transcript 05: status.messages [name, data])."""
    return {
        "outputs": {},
        "status": {
            "status_str": "success",
            "completed": True,
            "messages": [[name, {"prompt_id": "p", "timestamp": stamp}] for name, stamp in messages],
        },
    }


def test_execution_window_runs_from_start_to_the_end_message() -> None:
    success = entry(
        ("execution_start", 1_795_752_347_213),
        ("execution_cached", 1_795_752_347_215),
        ("execution_success", 1_795_752_347_226),
    )
    assert execution_window(success) == pytest.approx((1_795_752_347.213, 1_795_752_347.226))
    failed = entry(("execution_start", 1000), ("execution_error", 3500))
    assert execution_window(failed) == (1.0, 3.5)
    interrupted = entry(("execution_start", 1000), ("execution_interrupted", 1250))
    assert execution_window(interrupted) == (1.0, 1.25)


def test_execution_window_says_what_is_missing() -> None:
    with pytest.raises(ValueError, match="no execution_start"):
        execution_window({"status": {"messages": []}})
    with pytest.raises(ValueError, match="no execution_success/error/interrupted"):
        execution_window(entry(("execution_start", 1000), ("execution_cached", 1001)))


def test_busy_seconds_counts_each_moment_once_and_only_inside_the_span() -> None:
    assert busy_seconds([(1.0, 2.0), (3.0, 3.5)], 0.0, 10.0) == pytest.approx(1.5)
    assert busy_seconds([(1.0, 3.0), (2.0, 4.0), (2.5, 2.7)], 0.0, 10.0) == pytest.approx(3.0)
    # Clipped at both ends; a window wholly outside counts nothing; unsorted input is fine.
    assert busy_seconds([(9.0, 12.0), (-2.0, 0.5), (20.0, 21.0)], 0.0, 10.0) == pytest.approx(1.5)
    assert busy_seconds([], 0.0, 10.0) == 0.0


def test_span_runs_from_the_first_take_to_the_last_result() -> None:
    # Submitted at 100 s: in the queue 250 ms, then 1.5 s from the take to the result.
    first = JobSpan.from_status(
        100.0, {"id": "a", "status": "COMPLETED", "delayTime": 250, "executionTime": 1500}
    )
    assert (first.taken, first.finished) == pytest.approx((100.25, 101.75))
    second = JobSpan.from_status(100.01, {"delayTime": 1700, "executionTime": 900})
    assert span_of([second, first]) == pytest.approx((100.25, 102.61))
    with pytest.raises(ValueError, match="at least one"):
        span_of([])


def test_the_backlog_bench_runs_end_to_end_on_a_tiny_backlog() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "COMFY"))}
    done = subprocess.run(
        [sys.executable, "-m", "bench.backlog_bench", "--jobs", "2", "--kinds", "short", "--depths", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    row = re.search(r"short\s+1\s+(\d+) ms\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)s", done.stdout)
    assert row, done.stdout
    execution_ms, jobs_per_s, share, span_s = (float(v) for v in row.groups())
    # Two 2-step jobs of 50 ms steps: each executes for ~0.1 s, and ComfyUI is busy part of the span.
    assert 90 <= execution_ms < 1000
    assert jobs_per_s == pytest.approx(2 / span_s, rel=0.05)
    assert 0.0 < share < 1.0
