"""Fault scenarios: run one worker job against a ComfyUI process and break ComfyUI on purpose.

Shared by tests/faults/ (which assert today's behaviour, and mark the missing parts xfail) and
`python -m bench.faults_bench` (which prints time-to-error per fault). Each scenario starts its own
ComfyUI (`testkit.comfy_process`), drives the handler end to end (`Worker.handle`, as RunPod does),
injects its fault at the right moment and reports what the job's result said and what was true.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from handler.config import Settings
from handler.worker import Worker

from .comfy_process import ComfyProcess
from .stall_proxy import StallProxy

__all__ = [
    "DEEP_NESTING",
    "FAULTS",
    "FaultReport",
    "FaultSpec",
    "deep_prompt",
    "fault_workflow",
    "report_table",
    "run_fault",
    "worker_settings",
]

DEEP_NESTING = 600  # ComfyUI's prompt runner dies from about 495 levels (copy.deepcopy in PromptQueue.get)


def fault_workflow(node: str = "FaultSleep", seconds: float = 5.0, prefix: str = "fault") -> dict[str, Any]:
    """EmptyImage -> `node` -> SaveImage; `node` is one of the fault nodes (FaultSleep,
    FaultSleepUninterruptible, FaultOutOfMemory, FaultApiLog)."""
    inputs: dict[str, Any] = {"image": ["1", 0]}
    if node.startswith("FaultSleep"):
        inputs["seconds"] = seconds
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": 0x336699},
        },
        "2": {"class_type": node, "inputs": inputs},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


def deep_prompt(depth: int = DEEP_NESTING) -> dict[str, Any]:
    """A prompt ComfyUI accepts whose `_meta` is nested `depth` levels deep: taking it off the queue
    kills ComfyUI's prompt runner (issue 14). Sent straight to ComfyUI: the worker refuses it."""
    meta: dict[str, Any] = {"title": "deep"}
    for _ in range(depth):
        meta = {"a": meta}
    workflow = fault_workflow(seconds=0.1, prefix="deep")
    workflow["1"]["_meta"] = meta
    return {"prompt": workflow}


def worker_settings(comfy: ComfyProcess, address: str | None = None, **env: str) -> Settings:
    """The worker's settings for `comfy` (its PID file included), product defaults unless given."""
    base = {
        "COMFY_HOST": address or comfy.address,
        "COMFYUI_PATH": str(comfy.root),
        "COMFY_PID_FILE": str(comfy.pid_file),
        "COMFY_READY_TIMEOUT_S": "10",
    }
    return Settings.from_env({**base, **env})


@dataclass(frozen=True)
class FaultReport:
    """What one fault did to one job."""

    fault: str
    comfy: str  # "test server" or "real ComfyUI"
    code: str  # the result's error code, or "OK"
    message: str
    claim: str  # what the result says about the prompt: "stopped", "still running", "-"
    truth: str  # where the prompt really was just after the result (from GET /queue)
    refresh_worker: bool
    deadline_s: float  # the job's timeout
    fault_to_result_s: float  # from the fault (for a stuck node: the deadline) to the result
    next_job: str  # code of a job submitted right after, "OK", or "-" when not tried

    def row(self) -> list[str]:
        return [
            self.fault,
            self.code,
            self.claim,
            self.truth,
            "yes" if self.refresh_worker else "no",
            f"{self.fault_to_result_s:.1f}",
            f"{self.deadline_s:g}",
            self.next_job,
        ]


Inject = Callable[["_Run"], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class FaultSpec:
    """One fault: the workflow node it runs, the deadline, and how and when it breaks ComfyUI."""

    name: str
    node: str
    node_seconds: float
    inject: Inject
    next_job: bool = False  # also submit a plain job after it, and report its code
    proxy: bool = False  # put the stall proxy between worker and ComfyUI
    past_deadline: bool = False  # the node runs `node_seconds` longer than the job's deadline


class _Run:
    """The state one scenario's injector sees."""

    def __init__(self, comfy: ComfyProcess, proxy: StallProxy | None, deadline_s: float) -> None:
        self.comfy = comfy
        self.proxy = proxy
        self.deadline_s = deadline_s
        self.job_started = 0.0
        self.fault_at: float | None = None

    async def wait_running(self, timeout_s: float = 60.0) -> None:
        """Until ComfyUI runs a prompt, then a moment more so the fault node has started."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            running, _ = await asyncio.to_thread(self.comfy.queue_ids)
            if running:
                await asyncio.sleep(0.5)
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"no prompt started running on the {self.comfy.kind} within {timeout_s} s")

    def mark(self) -> None:
        self.fault_at = time.monotonic()


async def _kill(run: _Run) -> None:
    await run.wait_running()
    run.mark()
    run.comfy.kill()


async def _freeze(run: _Run) -> None:
    await run.wait_running()
    run.mark()
    run.comfy.freeze()


async def _freeze_thaw(run: _Run) -> None:
    await run.wait_running()
    run.mark()
    run.comfy.freeze()
    await asyncio.sleep(3.0)
    run.comfy.thaw()


async def _runner_dies(run: _Run) -> None:
    # Before the job: the deep prompt is taken off the queue, the runner dies, nothing runs again.
    run.mark()
    status, body = await asyncio.to_thread(run.comfy.post_json, "/prompt", deep_prompt())
    if status != 200:
        raise RuntimeError(f"ComfyUI refused the deep prompt ({status}): {body}")
    await asyncio.sleep(1.0)


async def _deadline(run: _Run) -> None:
    # The fault is the job's own deadline passing while a node ComfyUI cannot interrupt runs.
    await asyncio.sleep(max(0.0, run.job_started + run.deadline_s - time.monotonic()))
    run.mark()


async def _ws_stall(run: _Run) -> None:
    await run.wait_running()
    run.mark()
    assert run.proxy is not None
    run.proxy.stall_websockets()


async def _none(run: _Run) -> None:
    run.mark()


FAULTS: dict[str, FaultSpec] = {
    spec.name: spec
    for spec in (
        FaultSpec("no fault (baseline)", "FaultSleep", 2.0, _none),
        FaultSpec("kill -9 mid-job", "FaultSleep", 5.0, _kill, next_job=True),
        FaultSpec("SIGSTOP mid-job", "FaultSleep", 5.0, _freeze),
        FaultSpec("SIGSTOP 3 s, SIGCONT", "FaultSleep", 5.0, _freeze_thaw),
        FaultSpec("prompt runner dead", "FaultSleep", 1.0, _runner_dies, next_job=True),
        FaultSpec(
            "node ignores interrupt past deadline",
            "FaultSleepUninterruptible",
            6.0,
            _deadline,
            past_deadline=True,
        ),
        FaultSpec("WebSocket silent, HTTP answers", "FaultSleep", 3.0, _ws_stall, proxy=True),
        FaultSpec("CUDA out of memory", "FaultOutOfMemory", 0.0, _none, next_job=True),
    )
}


async def run_fault(
    spec: FaultSpec,
    comfy: ComfyProcess,
    *,
    deadline_s: float,
    env: Mapping[str, str] | None = None,
    next_deadline_s: float = 5.0,
) -> FaultReport:
    """Run one job on a started `comfy` with `spec`'s fault; ComfyUI is left as the fault left it."""
    proxy = await StallProxy(comfy.port).start() if spec.proxy else None
    run = _Run(comfy, proxy, deadline_s)
    try:
        worker = Worker(worker_settings(comfy, proxy.address if proxy else None, **dict(env or {})))
        seconds = spec.node_seconds + (deadline_s if spec.past_deadline else 0.0)
        workflow = fault_workflow(spec.node, seconds)
        run.job_started = time.monotonic()
        injector = asyncio.create_task(spec.inject(run))
        if spec.inject is _runner_dies:
            await injector  # the runner must be dead before the job is queued
        result = await worker.handle(
            {"id": f"fault-{spec.node}", "input": {"workflow": workflow, "timeout": deadline_s}}
        )
        ended = time.monotonic()
        if not injector.done():
            injector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await injector
        elif injector.exception() is not None:
            raise RuntimeError(f"fault {spec.name!r} could not be injected") from injector.exception()
        truth = await _prompt_truth(comfy, result)
        next_code = "-"
        if spec.next_job:
            follow = await worker.handle(
                {
                    "id": "after",
                    "input": {"workflow": fault_workflow(seconds=0.1), "timeout": next_deadline_s},
                }
            )
            next_code = _code(follow)
    finally:
        if proxy is not None:
            await proxy.close()
    fault_at = run.fault_at if run.fault_at is not None else run.job_started
    return FaultReport(
        fault=spec.name,
        comfy=comfy.kind,
        code=_code(result),
        message=str(result.get("error", "")),
        claim=_claim(result),
        truth=truth,
        refresh_worker=bool(result.get("refresh_worker")),
        deadline_s=deadline_s,
        fault_to_result_s=ended - fault_at,
        next_job=next_code,
    )


def _code(result: Mapping[str, Any]) -> str:
    error = result.get("error")
    return str(error).split(":", 1)[0] if error else "OK"


def _claim(result: Mapping[str, Any]) -> str:
    """What the error message says happened to the prompt."""
    text = str(result.get("error", "")).lower()
    if not text:
        return "-"
    if "still running" in text or "still runs" in text:
        return "still running"
    if "interrupted" in text or "stopped" in text or "exited" in text or "crashed" in text:
        return "stopped"
    return "-"


async def _prompt_truth(comfy: ComfyProcess, result: Mapping[str, Any]) -> str:
    """Where the job's prompt is in ComfyUI right after the result: gone, running, pending, or
    unknown when ComfyUI does not answer (dead or frozen)."""
    details = result.get("details") or {}
    prompt_id = details.get("prompt_id") if isinstance(details, Mapping) else None
    if not isinstance(prompt_id, str):
        prompt_id = str(result.get("prompt_id") or "")
    try:
        running, pending = await asyncio.to_thread(comfy.queue_ids, 1.0)
    except (OSError, ValueError):
        return "unknown (ComfyUI not answering)"
    if prompt_id and prompt_id in running:
        return "running"
    if prompt_id and prompt_id in pending:
        return "pending"
    if not prompt_id and (running or pending):
        return "queue not empty"
    return "gone"


def report_table(reports: list[FaultReport]) -> str:
    """A plain-text table of reports, one line each."""
    header = [
        "fault",
        "code",
        "result says",
        "prompt really",
        "refresh",
        "fault->result s",
        "deadline s",
        "next job",
    ]
    rows = [header, *[r.row() for r in reports]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)
