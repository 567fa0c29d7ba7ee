"""Fault injection: kill, freeze, resume ComfyUI, kill its prompt runner, let a node ignore the
deadline and silence the WebSocket while the worker runs a job, end to end over real sockets.

Today's behaviour is asserted plainly, with bounds generous enough only to catch a hang. What
issue 14 asks for and the worker cannot do yet (noticing a dead runner or a frozen process within
seconds, keeping deadlines within a second, saying a prompt still runs) is written as tests too,
marked xfail(strict=True): they turn green, and must then be unmarked, when liveness lands.
`python -m bench.faults_bench` prints the times.
"""

from __future__ import annotations

import json

import pytest

from handler.worker import Worker
from testkit.comfy_process import ComfyProcess
from testkit.faults import FAULTS, fault_workflow, run_fault, worker_settings

# Short HTTP and interrupt waits keep a frozen ComfyUI from stretching each test to minutes; the
# shape of what happens is the same as with the defaults (the bench uses those).
QUICK = {"COMFY_HTTP_TIMEOUT_S": "3", "COMFY_INTERRUPT_SETTLE_S": "3", "COMFY_WS_IDLE_S": "1"}

pytestmark = pytest.mark.timeout(300)  # a real ComfyUI boots in each test


async def test_kill_9_mid_job_fails_at_once_with_comfy_crashed(comfy_process: ComfyProcess) -> None:
    report = await run_fault(FAULTS["kill -9 mid-job"], comfy_process, deadline_s=60, env=QUICK)
    assert report.code == "COMFY_CRASHED", report
    assert "exited while running the prompt" in report.message
    assert report.refresh_worker is True
    assert report.fault_to_result_s < 30  # not the 60 s deadline
    # Nothing restarts ComfyUI outside start.sh: the next job says so instead of waiting.
    assert report.next_job == "COMFY_CRASHED"


async def test_sigstop_mid_job_ends_at_the_deadline(comfy_process: ComfyProcess) -> None:
    report = await run_fault(FAULTS["SIGSTOP mid-job"], comfy_process, deadline_s=3, env=QUICK)
    assert report.code == "TIMEOUT", report
    assert report.truth.startswith("unknown")  # still frozen: nobody can tell
    assert report.fault_to_result_s < 60  # bounded, not 1800 s


async def test_sigstop_then_sigcont_job_finishes(comfy_process: ComfyProcess) -> None:
    report = await run_fault(FAULTS["SIGSTOP 3 s, SIGCONT"], comfy_process, deadline_s=60, env=QUICK)
    assert report.code == "OK", report
    assert report.truth == "gone"


async def test_dead_prompt_runner_today_waits_out_the_deadline(comfy_process: ComfyProcess) -> None:
    report = await run_fault(
        FAULTS["prompt runner dead"], comfy_process, deadline_s=3, env=QUICK, next_deadline_s=2
    )
    assert report.code == "TIMEOUT", report
    assert "waiting in ComfyUI's queue" in report.message
    assert report.truth == "gone"  # the stop removed the pending prompt (and its key) from /queue
    assert report.next_job == "TIMEOUT"  # and every later job waits out its own
    assert report.fault_to_result_s < 30


async def test_node_that_ignores_interrupt_ends_in_timeout(comfy_process: ComfyProcess) -> None:
    report = await run_fault(
        FAULTS["node ignores interrupt past deadline"], comfy_process, deadline_s=3, env=QUICK
    )
    assert report.code == "TIMEOUT", report
    assert report.fault_to_result_s < 30  # the interrupt wait is bounded (COMFY_INTERRUPT_SETTLE_S)


async def test_silent_websocket_with_http_answering_still_finishes(comfy_process: ComfyProcess) -> None:
    report = await run_fault(
        FAULTS["WebSocket silent, HTTP answers"], comfy_process, deadline_s=60, env=QUICK
    )
    assert report.code == "OK", report
    assert report.fault_to_result_s < 30


async def test_out_of_memory_fails_the_job_and_the_next_one_runs(comfy_process: ComfyProcess) -> None:
    report = await run_fault(FAULTS["CUDA out of memory"], comfy_process, deadline_s=60, env=QUICK)
    assert report.code == "OUT_OF_MEMORY", report
    assert "freed" in report.message and "lower" in report.message.lower()
    assert report.refresh_worker is False
    assert report.next_job == "OK"


# --- what liveness (issue 14, "Liveness" and "A stop is a real stop") will add ---------------------


@pytest.mark.xfail(
    strict=True,
    reason="missing: liveness from queue evidence; a dead prompt runner is only seen at the deadline",
)
async def test_dead_prompt_runner_is_detected_within_seconds(comfy_process: ComfyProcess) -> None:
    report = await run_fault(
        FAULTS["prompt runner dead"], comfy_process, deadline_s=8, env=QUICK, next_deadline_s=2
    )
    assert report.code != "TIMEOUT" and report.code.startswith("COMFY_"), report
    assert report.fault_to_result_s < 5
    assert report.refresh_worker is True or report.next_job == "OK"


@pytest.mark.xfail(
    strict=True, reason="missing: liveness for a frozen (SIGSTOP) ComfyUI; only the deadline ends the job"
)
async def test_frozen_comfy_is_detected_within_seconds(comfy_process: ComfyProcess) -> None:
    report = await run_fault(FAULTS["SIGSTOP mid-job"], comfy_process, deadline_s=8, env=QUICK)
    assert report.code != "TIMEOUT" and report.code.startswith("COMFY_"), report
    assert report.fault_to_result_s < 4


@pytest.mark.xfail(
    strict=True,
    reason="missing: deadlines kept within 1 s whatever ComfyUI does, and a result that says the "
    "prompt may still run (today: HTTP timeouts after the deadline, and 'the prompt was interrupted')",
)
async def test_frozen_comfy_deadline_is_kept_within_a_second(comfy_process: ComfyProcess) -> None:
    report = await run_fault(FAULTS["SIGSTOP mid-job"], comfy_process, deadline_s=3, env=QUICK)
    assert report.code == "TIMEOUT", report
    assert report.fault_to_result_s < 3 - 0.5 + 1  # the freeze comes ~0.5 s into the job
    assert report.claim != "stopped"


@pytest.mark.xfail(
    strict=True,
    reason="missing: a deadline kept within 1 s when a node ignores the interrupt, with a result that "
    "says the prompt still runs (today: the interrupt settle wait, and 'the prompt was interrupted')",
)
async def test_uninterruptible_node_deadline_is_kept_within_a_second(comfy_process: ComfyProcess) -> None:
    report = await run_fault(
        FAULTS["node ignores interrupt past deadline"], comfy_process, deadline_s=3, env=QUICK
    )
    assert report.code == "TIMEOUT", report
    assert report.fault_to_result_s < 1
    assert report.claim == "still running" and report.truth == "running"


# --- hygiene against the process (a real ComfyUI's own request logger and /queue when present) ----


async def test_api_node_log_holding_the_key_is_removed(comfy_process: ComfyProcess) -> None:
    key = "comfy-org-key-7d1e9b3f52"
    worker = Worker(worker_settings(comfy_process))
    workflow = fault_workflow("FaultApiLog")
    result = await worker.handle({"id": "log", "input": {"workflow": workflow, "comfy_org_api_key": key}})
    assert "error" not in result, result
    logs = comfy_process.root / "temp" / "api_logs"
    assert logs.is_dir()  # the node did write its log there
    assert list(logs.iterdir()) == []
    leaked = [p for p in comfy_process.root.rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
    assert leaked == []
    assert key not in json.dumps(comfy_process.get_json("/queue"))
    assert result["prompt_id"] not in comfy_process.get_json("/history")


async def test_key_of_a_pending_prompt_leaves_the_queue_when_its_job_times_out(
    comfy_process: ComfyProcess,
) -> None:
    # ComfyUI 0.3.64 shows extra_data.api_key_comfy_org of every queued prompt in GET /queue.
    key = "comfy-org-key-a41c07d2e8"
    status, _ = comfy_process.post_json("/prompt", {"prompt": fault_workflow(seconds=4, prefix="other")})
    assert status == 200
    worker = Worker(worker_settings(comfy_process, COMFY_HTTP_TIMEOUT_S="5"))
    workflow = fault_workflow(seconds=0)
    job = {"id": "pending", "input": {"workflow": workflow, "comfy_org_api_key": key, "timeout": 1.5}}
    result = await worker.handle(job)
    assert result["error"].startswith("TIMEOUT"), result
    assert "waiting in ComfyUI's queue" in result["error"]
    queue = json.dumps(comfy_process.get_json("/queue"))
    assert key not in queue and result["details"]["prompt_id"] not in queue
