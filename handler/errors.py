"""Every error the worker reports: the tree, each class wording its own message.

    WorkerError (code)
    ├── JobInputError        INVALID_INPUT      the job input is malformed
    │   ├── InputRefused     INVALID_INPUT      an input URL the guard will not fetch (entry, reason)
    │   └── UploadRefused    INVALID_INPUT      ComfyUI refused an input file with a 4xx (name, status)
    ├── InputFetchFailed     INPUT_FETCH_FAILED an input URL could not be downloaded
    ├── ModelMissing         MODEL_MISSING      the workflow needs a model the boot could not provide
    ├── ComfyUnavailable     COMFY_UNAVAILABLE  ComfyUI did not answer (start-up, network)
    │   ├── ComfyUnreachable COMFY_UNAVAILABLE  no connection to COMFY_HOST (refused, reset)
    │   ├── ComfyNoAnswer    COMFY_UNAVAILABLE  connected, but no answer within COMFY_HTTP_TIMEOUT_S
    │   ├── ComfyHTTPError   COMFY_UNAVAILABLE  an HTTP error status where ComfyUI never sends one
    │   ├── ComfyBadReply    COMFY_UNAVAILABLE  a reply that is not the JSON ComfyUI sends
    │   ├── ComfyNotReady    COMFY_UNAVAILABLE  no answer within COMFY_READY_TIMEOUT_S at start
    │   └── HistoryMissing   COMFY_UNAVAILABLE  "finished", but /history never had the entry
    ├── ComfyCrashed         COMFY_CRASHED      ComfyUI's process died (worker is refreshed)
    │   └── ComfyRestarting  COMFY_CRASHED      ... and start.sh restarts it in place (no refresh)
    ├── ComfyFrozen          COMFY_FROZEN       ComfyUI's process is stopped or answers nothing at all
    ├── ComfyStalled         COMFY_STALLED      ComfyUI answers, but its prompt runner takes no prompt
    ├── ComfyStuck           COMFY_STUCK        ComfyUI kept a stopped prompt and could not be restarted
    ├── WorkflowInvalid      WORKFLOW_INVALID   ComfyUI rejected the workflow (node_errors)
    │   └── NodesMissing     NODES_MISSING      node classes this ComfyUI does not have
    ├── ExecutionFailed      EXECUTION_FAILED   a node raised while running
    │   └── OutOfMemory      OUT_OF_MEMORY      it ran out of GPU/CPU memory (ComfyUI was told to /free)
    ├── Interrupted          INTERRUPTED        someone interrupted the prompt in ComfyUI
    ├── JobTimeout           TIMEOUT            the job's deadline passed
    │   └── QueueWaitTimeout TIMEOUT            its prompt waited too long behind another one
    ├── NoOutputs            NO_OUTPUTS         the workflow ran and produced nothing
    ├── OutputFailed         OUTPUT_FAILED      outputs exist but none could be fetched
    ├── FetchFailed          OUTPUT_FAILED      one output could not be fetched (non-fatal alone)
    ├── OutputTooLarge       OUTPUT_TOO_LARGE   the result would not fit RunPod's limit, no bucket
    ├── WarmupFailed         WARMUP_FAILED      WARMUP_WORKFLOW failed: the boot stops (no job result)
    ├── WorkdirUnavailable   WORKDIR_UNAVAILABLE the worker cannot create the job's temp folder
    └── StorageError                            object storage failed
        ├── StorageMisconfigured STORAGE_MISCONFIGURED  missing key, endpoint down, no bucket, denied
        └── UploadFailed     UPLOAD_FAILED      one output could not be uploaded

Each class writes its own message, so callers pass facts, not prose. `error_result.error_result`
turns any exception into the job result, ``{"error": "<CODE>: <one line>", "details": {...}}``;
`validation_errors` reads ComfyUI's 400 body for `WorkflowInvalid`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from .validation_errors import describe_validation_errors

__all__ = [
    "ComfyBadReply",
    "ComfyCrashed",
    "ComfyFrozen",
    "ComfyHTTPError",
    "ComfyNoAnswer",
    "ComfyNotReady",
    "ComfyRestarting",
    "ComfyStalled",
    "ComfyStuck",
    "ComfyUnavailable",
    "ComfyUnreachable",
    "ExecutionFailed",
    "FetchFailed",
    "HistoryMissing",
    "InputFetchFailed",
    "InputRefused",
    "Interrupted",
    "JobInputError",
    "JobTimeout",
    "ModelMissing",
    "NoOutputs",
    "NodesMissing",
    "OutOfMemory",
    "OutputFailed",
    "OutputTooLarge",
    "QueueWaitTimeout",
    "StorageError",
    "StorageMisconfigured",
    "UploadFailed",
    "UploadRefused",
    "WarmupFailed",
    "WorkdirUnavailable",
    "WorkerError",
    "WorkflowInvalid",
    "execution_failure",
    "is_out_of_memory",
]

logger = logging.getLogger(__name__)

MAX_TRACEBACK_FRAMES = 12
MAX_DETAIL_CHARS = 4000


class WorkerError(Exception):
    """Base of every reported failure: a stable ``code``, a one-line message and details."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    refresh_worker: ClassVar[bool] = False

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = " ".join(message.split())  # one line, whatever the source text held
        self.details: dict[str, Any] = dict(details or {})


class JobInputError(WorkerError):
    """The job input is malformed; the message names the field and how to fix it."""

    code = "INVALID_INPUT"


class InputRefused(JobInputError):
    """An input URL the worker will not fetch: a refused address, scheme, type or size."""

    def __init__(self, where: str, name: str, reason: str, *, url: str | None = None) -> None:
        super().__init__(
            f"{where} ({name!r}) was refused: {reason}",
            details={"entry": where, "name": name, "url": url, "reason": reason},
        )


class InputFetchFailed(WorkerError):
    """An input URL could not be downloaded; the message shows the URL without its query string."""

    code = "INPUT_FETCH_FAILED"

    def __init__(self, where: str, name: str, url: str, reason: str) -> None:
        super().__init__(
            f"{where} ({name!r}) could not be downloaded from {url}: {reason}",
            details={"entry": where, "name": name, "url": url, "reason": reason},
        )


class ModelMissing(WorkerError):
    """The workflow needs a model the boot's download could not provide (the models status file)."""

    code = "MODEL_MISSING"

    def __init__(self, models: Sequence[Mapping[str, Any]]) -> None:
        first = models[0]
        names = ", ".join(
            f"{m.get('name')!r} (models/{m.get('folder')}/{m.get('filename')}, group {m.get('group')})"
            for m in models
        )
        super().__init__(
            f"this workflow needs {names}, which this worker does not have: {first.get('reason')}. "
            "Fix the model (manifest.toml, HF_TOKEN, disk space or the network volume) and restart "
            "the workers; docs/models.md, 'When a model is missing'",
            details={"models": [dict(m) for m in models]},
        )


class WarmupFailed(WorkerError):
    """WARMUP_WORKFLOW could not be read or did not run; the worker refuses to take jobs."""

    code = "WARMUP_FAILED"

    def __init__(self, path: str, problem: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(
            f"the warm-up workflow WARMUP_WORKFLOW={path} failed: {problem}. The worker takes no jobs "
            "until it works: fix the workflow (it must run on this worker as a job would) or unset "
            "WARMUP_WORKFLOW; docs/models.md, 'Warm-up'",
            details=details,
        )


class ComfyUnavailable(WorkerError):
    """ComfyUI does not answer (still starting, wrong COMFY_HOST, network)."""

    code = "COMFY_UNAVAILABLE"


class ComfyUnreachable(ComfyUnavailable):
    """No connection to ComfyUI at all: refused, reset, or the host does not resolve."""

    def __init__(self, *, host: str, action: str, reason: str) -> None:
        super().__init__(
            f"cannot reach ComfyUI at {host} while {action} ({reason}); check COMFY_HOST and that "
            "ComfyUI is running",
            details={"comfy_host": host, "action": action},
        )


class ComfyNoAnswer(ComfyUnavailable):
    """ComfyUI took the connection but did not answer in time."""

    def __init__(self, *, host: str, action: str, timeout_s: float) -> None:
        super().__init__(
            f"ComfyUI at {host} did not answer within {timeout_s:g} s while {action}; it may be stuck "
            "or overloaded (raise COMFY_HTTP_TIMEOUT_S if it is only slow)",
            details={"comfy_host": host, "action": action, "timeout_s": timeout_s},
        )


class ComfyHTTPError(ComfyUnavailable):
    """ComfyUI answered an HTTP error status where it never should."""

    def __init__(self, *, host: str, action: str, status: int, body: str = "") -> None:
        shown = " ".join(body.split())[:200]
        super().__init__(
            f"ComfyUI at {host} answered HTTP {status} while {action}" + (f": {shown}" if shown else ""),
            details={"comfy_host": host, "action": action, "status": status},
        )


class ComfyBadReply(ComfyUnavailable):
    """ComfyUI answered, but not with the JSON it always sends: COMFY_HOST may be another server."""

    def __init__(self, *, host: str, action: str, body: str) -> None:
        shown = " ".join(body.split())[:120]
        super().__init__(
            f"the server at {host} answered with something that is not ComfyUI's JSON while {action} "
            f"({shown!r}); check that COMFY_HOST points at ComfyUI and not at another server",
            details={"comfy_host": host, "action": action},
        )


class UploadRefused(JobInputError):
    """ComfyUI refused an input file with a 4xx: too big for it, or not a file it accepts."""

    def __init__(self, *, name: str, status: int, body: str = "") -> None:
        if status == 413:
            hint = "it is over ComfyUI's upload limit: raise it with COMFY_ARGS=--max-upload-size <MB>"
        else:
            hint = "check that the file is a valid image or media file"
        shown = " ".join(body.split())[:200]
        super().__init__(
            f"ComfyUI refused the input {name!r} with HTTP {status}: {hint}"
            + (f" (ComfyUI said: {shown})" if shown else ""),
            details={"name": name, "status": status},
        )


class ComfyNotReady(ComfyUnavailable):
    """ComfyUI did not answer GET /system_stats within COMFY_READY_TIMEOUT_S."""

    def __init__(self, *, host: str, timeout_s: float, last_error: str) -> None:
        super().__init__(
            f"ComfyUI at {host} did not answer within {timeout_s:g} s; check that it is running and "
            "that COMFY_HOST points at it, or raise COMFY_READY_TIMEOUT_S if its start-up takes longer",
            details={"comfy_host": host, "last_error": last_error},
        )


class HistoryMissing(ComfyUnavailable):
    """ComfyUI said the prompt finished, but /history never got its entry."""

    def __init__(self, *, prompt_id: str) -> None:
        super().__init__(
            f"ComfyUI reported prompt {prompt_id} finished but /history has no entry for it",
            details={"prompt_id": prompt_id},
        )


class ComfyCrashed(WorkerError):
    """ComfyUI's process is gone; RunPod should replace this worker.

    Without a ``stage`` it was found dead before the job started (its PID file names a dead
    process: it died at start-up or during an earlier job); with one, while running the prompt:
    its process exited, or (``host`` given) it stopped answering HTTP.
    """

    code = "COMFY_CRASHED"
    refresh_worker = True

    def __init__(
        self,
        *,
        stage: str | None = None,
        prompt_id: str | None = None,
        host: str | None = None,
        pid_file: str | None = None,
    ) -> None:
        if stage is None:
            super().__init__(
                f"ComfyUI is not running (the process in {pid_file} exited, at start-up or during an "
                "earlier job); see its log (common causes: a custom node that fails to import, a "
                "CUDA/driver mismatch, out of memory). This worker will be replaced",
                details={"pid_file": pid_file},
            )
        elif host is not None:
            super().__init__(
                f"ComfyUI stopped answering at {host} while running the prompt ({stage}); it probably "
                "crashed (out of memory?). See its log; this worker will be replaced",
                details={"prompt_id": prompt_id, "stage": stage},
            )
        else:
            super().__init__(
                f"ComfyUI's process exited while running the prompt ({stage}); see its log (often out "
                "of memory). This worker will be replaced",
                details={"prompt_id": prompt_id, "stage": stage},
            )


def _recovery_note(restartable: bool) -> str:
    if restartable:
        return (
            "The worker restarts ComfyUI in place (it kills the process named by COMFY_PID_FILE; "
            "start.sh starts a new one) and takes the next job once it answers: submit this job again"
        )
    return (
        "This worker will be replaced (it can restart ComfyUI in place only under start.sh's "
        "supervision, with COMFY_PID_FILE): submit this job again"
    )


class ComfyFrozen(WorkerError):
    """ComfyUI's process is stopped (SIGSTOP), or neither HTTP nor the WebSocket gave a sign of life
    for COMFY_UNRESPONSIVE_S: it is frozen, not crashed (its port still takes connections)."""

    code = "COMFY_FROZEN"
    summary: ClassVar[str] = "ComfyUI froze (it answered nothing and sent no event)"

    def __init__(
        self,
        *,
        stage: str,
        prompt_id: str | None,
        host: str,
        silent_s: float,
        stopped_pid: int | None,
        restartable: bool,
    ) -> None:
        if stopped_pid is not None:
            what = (
                f"ComfyUI's process (pid {stopped_pid}) is stopped (SIGSTOP or a debugger) and can "
                "answer nothing"
            )
        else:
            what = (
                f"ComfyUI at {host} has given no sign of life for {silent_s:.0f} s (no HTTP answer, no "
                "WebSocket event) although its port takes connections: it is frozen (a hung process, "
                "or the machine out of memory and swapping)"
            )
        super().__init__(
            f"{what}; the job was {stage}. {_recovery_note(restartable)}",
            details={
                "prompt_id": prompt_id,
                "stage": stage,
                "silent_s": round(silent_s, 1),
                "stopped_pid": stopped_pid,
                "restarting": restartable,
            },
        )
        self.refresh_worker = not restartable  # type: ignore[misc]


class ComfyStalled(WorkerError):
    """ComfyUI answers HTTP but its prompt runner takes no prompt: a pending prompt with nothing
    running for COMFY_RUNNER_STALL_S (its ``prompt_worker`` thread died)."""

    code = "COMFY_STALLED"
    summary: ClassVar[str] = "ComfyUI's prompt runner died (prompts waited with nothing running)"

    def __init__(self, *, prompt_id: str, waited_s: float, restartable: bool) -> None:
        super().__init__(
            f"ComfyUI stopped executing prompts: the job's prompt waited {waited_s:.0f} s in its queue "
            "while nothing ran, although ComfyUI still answers HTTP (its prompt runner died; a prompt "
            f"nested ~500 levels deep kills it, issue 14). {_recovery_note(restartable)}",
            details={"prompt_id": prompt_id, "waited_s": round(waited_s, 1), "restarting": restartable},
        )
        self.refresh_worker = not restartable  # type: ignore[misc]


class ComfyStuck(WorkerError):
    """A stopped prompt (or a frozen or stalled ComfyUI) could not be cleared: no restart was
    possible or the restart failed. Jobs fail at once and RunPod replaces the worker."""

    code = "COMFY_STUCK"
    refresh_worker = True

    def __init__(self, *, why: str, prompt_id: str | None = None) -> None:
        super().__init__(
            f"ComfyUI on this worker is unusable: {why}. This worker will be replaced; submit the job "
            "again (it runs on another worker). See ComfyUI's log for the node that would not stop",
            details={"prompt_id": prompt_id, "why": why},
        )


class ComfyRestarting(ComfyCrashed):
    """ComfyUI's process died during the job and start.sh (COMFY_SUPERVISED) restarts it in place:
    this job fails, the worker stays and takes the next one once ComfyUI answers again."""

    refresh_worker = False

    def __init__(self, *, stage: str | None, prompt_id: str | None) -> None:
        WorkerError.__init__(
            self,
            f"ComfyUI's process died while this job was {stage or 'running'}; start.sh is restarting it "
            "and this worker takes the next job once it answers again. Submit the job again; if it "
            "keeps happening, see ComfyUI's log (often out of memory: lower the resolution or batch size)",
            details={"prompt_id": prompt_id, "stage": stage, "restarting": True},
        )


class WorkflowInvalid(WorkerError):
    """ComfyUI answered POST /prompt with 400: one readable line per problem."""

    code = "WORKFLOW_INVALID"

    def __init__(self, body: Any, *, workflow: Mapping[str, Any] | None = None) -> None:
        problems = describe_validation_errors(body, workflow or {})
        shown = " | ".join(problems[:5])
        more = f" | (+{len(problems) - 5} more, see details.problems)" if len(problems) > 5 else ""
        super().__init__(
            f"ComfyUI rejected the workflow: {shown}{more}",
            details={"problems": problems, "comfy_response": body},
        )


class NodesMissing(WorkflowInvalid):
    """The workflow uses node classes the running ComfyUI does not have (its /object_info)."""

    code = "NODES_MISSING"

    def __init__(self, missing: Mapping[str, list[str]]) -> None:
        shown = ", ".join(f"{cls} (node {', '.join(ids)})" for cls, ids in missing.items())
        WorkerError.__init__(
            self,
            f"this ComfyUI has no node class {shown}. Install the custom node that provides it in the "
            "image (manifest.toml [[nodes]]; `comfy-worker check WORKFLOW` lists what is missing "
            "before you deploy), or fix the class name",
            details={"missing_classes": sorted(missing), "nodes": dict(missing)},
        )


class ExecutionFailed(WorkerError):
    """A node raised while the prompt ran (ComfyUI's ``execution_error``)."""

    code = "EXECUTION_FAILED"

    def __init__(self, data: Mapping[str, Any], *, prompt_id: str) -> None:
        node_id = str(data.get("node_id", "?"))
        node_type = str(data.get("node_type", "?"))
        exc_type = str(data.get("exception_type", "Exception"))
        exc_message = str(data.get("exception_message", "")).strip()
        traceback = [str(line) for line in data.get("traceback") or []]
        super().__init__(
            f"node {node_id} ({node_type}) raised {exc_type}: {exc_message or '(no message)'}",
            details={
                "prompt_id": prompt_id,
                "node_id": node_id,
                "node_type": node_type,
                "exception_type": exc_type,
                "exception_message": exc_message[:MAX_DETAIL_CHARS],
                "traceback": _truncate_traceback(traceback),
                "executed": list(data.get("executed") or []),
            },
        )


class OutOfMemory(ExecutionFailed):
    """A node ran out of memory (torch's OutOfMemoryError, "CUDA out of memory" and the like).

    ComfyUI has already unloaded its models; the worker also POSTs /free, so the next job starts
    with free memory. The message says how to make this workflow fit.
    """

    code = "OUT_OF_MEMORY"

    def __init__(self, data: Mapping[str, Any], *, prompt_id: str) -> None:
        super().__init__(data, prompt_id=prompt_id)
        first_line = (str(data.get("exception_message", "")).strip().splitlines() or ["out of memory"])[0]
        node = f"node {self.details['node_id']} ({self.details['node_type']})"
        self.message = (
            f"{node} ran out of memory ({self.details['exception_type']}: {first_line[:300]}). "
            "The worker freed ComfyUI's memory (POST /free: models unloaded) and takes the next job. "
            "To make this one fit: lower the resolution, batch size or frame count, use a smaller or "
            "quantized model, or run the endpoint on a GPU with more memory"
        )
        self.args = (self.message,)


# How torch, ComfyUI and the CUDA libraries word running out of memory (comfy/model_management.py
# OOM_EXCEPTION is torch.cuda.OutOfMemoryError, reported as "torch.OutOfMemoryError").
_OOM_TYPES = ("OutOfMemoryError",)
_OOM_TEXTS = (
    "out of memory",  # "CUDA out of memory", "HIP out of memory", "MPS backend out of memory"
    "cublas_status_alloc_failed",
    "allocation on device",  # torch's "Allocation on device would exceed allowed memory"
    "this error means you ran out of memory",  # ComfyUI's tips line
)


def is_out_of_memory(data: Mapping[str, Any]) -> bool:
    """Whether an ``execution_error`` is ComfyUI running out of (GPU or CPU) memory."""
    exc_type = str(data.get("exception_type", ""))
    message = str(data.get("exception_message", "")).lower()
    return exc_type.endswith(_OOM_TYPES) or any(text in message for text in _OOM_TEXTS)


def execution_failure(data: Mapping[str, Any], *, prompt_id: str) -> ExecutionFailed:
    """The error for ComfyUI's ``execution_error``: OutOfMemory when it says so, else ExecutionFailed."""
    if is_out_of_memory(data):
        return OutOfMemory(data, prompt_id=prompt_id)
    return ExecutionFailed(data, prompt_id=prompt_id)


class Interrupted(WorkerError):
    """The prompt was interrupted in ComfyUI by someone other than this worker."""

    code = "INTERRUPTED"

    def __init__(self, data: Mapping[str, Any], *, prompt_id: str, reason: str = "") -> None:
        node_id = data.get("node_id")
        where = f" at node {node_id} ({data.get('node_type', '?')})" if node_id else ""
        why = reason or "an interrupt from the ComfyUI UI or API, not from this job"
        super().__init__(
            f"the prompt was interrupted in ComfyUI{where} ({why}); submit the job again",
            details={"prompt_id": prompt_id, "node_id": node_id, "node_type": data.get("node_type")},
        )


class JobTimeout(WorkerError):
    """The job ran past its deadline; ``prompt_state`` says what became of its prompt.

    ``stopped`` (interrupted), ``removed`` (it was still queued), ``not_queued``, or
    ``still_running``: ComfyUI did not let go of it within COMFY_STOP_WAIT_S (a node that ignores
    interrupts, a frozen ComfyUI); the worker then takes no new job until it does, and restarts
    ComfyUI if it does not within COMFY_INTERRUPT_SETTLE_S (docs/throughput.md, "Deadlines").
    """

    code = "TIMEOUT"

    def __init__(
        self, timeout_s: float, *, stage: str, prompt_id: str | None, prompt_state: str = "stopped"
    ) -> None:
        super().__init__(
            f"the job did not finish within {timeout_s:g} s (it was {stage}); "
            f"{_PROMPT_STATES[prompt_state]}. Raise input.timeout or COMFY_JOB_TIMEOUT_S if the workflow "
            "needs longer",
            details={
                "timeout_s": timeout_s,
                "stage": stage,
                "prompt_id": prompt_id,
                "prompt_state": prompt_state,
            },
        )


_PROMPT_STATES = {
    "stopped": "the prompt was interrupted and ComfyUI has let go of it",
    "removed": "the prompt was removed from ComfyUI's queue before it started",
    "not_queued": "nothing had been queued in ComfyUI yet",
    "still_running": (
        "the prompt was interrupted but ComfyUI has NOT let go of it (a node that ignores interrupts, "
        "or a frozen ComfyUI): it is still running. This worker takes no new job until ComfyUI lets go "
        "of it, and restarts ComfyUI if it does not within COMFY_INTERRUPT_SETTLE_S"
    ),
}


class QueueWaitTimeout(JobTimeout):
    """The prompt waited too long behind another prompt in ComfyUI's queue, before it started."""

    def __init__(self, wait_s: float, *, prompt_id: str | None, prompt_state: str = "removed") -> None:
        WorkerError.__init__(
            self,
            f"the job's prompt waited {wait_s:g} s in ComfyUI's queue behind another prompt and never "
            f"started; {_PROMPT_STATES[prompt_state]}. Another job is holding ComfyUI: retry the job, "
            "and raise COMFY_QUEUE_WAIT_TIMEOUT_S or lower COMFY_PIPELINE_DEPTH if this repeats",
            details={
                "timeout_s": wait_s,
                "stage": "waiting in ComfyUI's queue",
                "prompt_id": prompt_id,
                "prompt_state": prompt_state,
            },
        )


class NoOutputs(WorkerError):
    """The workflow finished but no node saved a file, streamed an image or returned text."""

    code = "NO_OUTPUTS"

    def __init__(self, *, prompt_id: str, skipped_temp: int) -> None:
        hint = (
            f" ({skipped_temp} preview image(s) were skipped: send input.include_temp=true to get them)"
            if skipped_temp
            else ""
        )
        super().__init__(
            "the workflow ran but produced no outputs: no node saved a file, streamed an image or "
            f"returned text{hint}. Add a save node such as SaveImage or SaveVideo",
            details={"prompt_id": prompt_id},
        )


class OutputFailed(WorkerError):
    """Outputs were reported but none of them could be fetched from ComfyUI."""

    code = "OUTPUT_FAILED"

    def __init__(self, problems: list[str], *, prompt_id: str) -> None:
        super().__init__(
            f"the workflow ran but none of its {len(problems)} output(s) could be fetched: {problems[0]}",
            details={"prompt_id": prompt_id, "problems": problems},
        )


class FetchFailed(WorkerError):
    """One output could not be fetched; reported in ``errors`` unless every output failed
    (then the job fails with `OutputFailed`, which lists them all)."""

    code = "OUTPUT_FAILED"

    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(
            f"output {filename!r} could not be fetched: {reason}", details={"filename": filename}
        )
        self.filename = filename


class OutputRewritten(FetchFailed):
    """An output read in place on ComfyUI's disk was written again by a later prompt before this
    job had read all of it (a node saving under a fixed file name): never returned as this job's."""

    def __init__(self, filename: str, where: str) -> None:
        super().__init__(
            filename,
            f"a later prompt (this worker's next job, or anyone's on this ComfyUI) wrote ComfyUI's {where} "
            "again before this job had read it, so this job's file is gone (a node that saves under a "
            "fixed file name); give the node a file name that changes with every run (a counter, the "
            "seed), or set COMFY_PIPELINE_DEPTH=1 if this worker's own next job is what overwrites it",
        )


class OutputTooLarge(WorkerError):
    """The result would exceed RESULT_MAX_BYTES and there is nowhere else to put the outputs."""

    code = "OUTPUT_TOO_LARGE"

    def __init__(self, *, size_bytes: int, limit_bytes: int, mode: str, has_destination: bool) -> None:
        if has_destination:
            fix = 'send input.output = "auto" or "s3" so large outputs go to your bucket'
        else:
            fix = (
                "configure object storage (BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID, "
                "BUCKET_SECRET_ACCESS_KEY, and BUCKET_NAME if the URL does not name the bucket) or send "
                "s3Config with the request"
            )
        super().__init__(
            f"the result would be {size_bytes / 1e6:.1f} MB, over the {limit_bytes / 1e6:.1f} MB that "
            f"RunPod accepts (RESULT_MAX_BYTES), with output mode {mode!r}: {fix}",
            details={"size_bytes": size_bytes, "limit_bytes": limit_bytes, "output_mode": mode},
        )


class WorkdirUnavailable(WorkerError):
    """The job's temp folder cannot be created (a full or read-only disk); a fresh worker may have room."""

    code = "WORKDIR_UNAVAILABLE"
    refresh_worker = True

    def __init__(self, *, parent: str, reason: str) -> None:
        super().__init__(
            f"the worker could not create the job's temp folder in {parent} ({reason}); free space on "
            "the container disk (a bigger Container Disk in the endpoint's template) or set TMPDIR to a "
            "writable folder",
            details={"temp_dir": parent},
        )


class StorageError(WorkerError):
    """Object storage failed; the message names the bucket, never a key."""

    code = "STORAGE_ERROR"


class StorageMisconfigured(StorageError):
    """The destination cannot be used: unreachable, missing bucket, wrong credentials."""

    code = "STORAGE_MISCONFIGURED"

    def __init__(self, *, label: str, reason: str, details: Mapping[str, Any]) -> None:
        super().__init__(f"{label} cannot be used: {reason}", details=details)


class UploadFailed(StorageError):
    """An output could not be uploaded after retries."""

    code = "UPLOAD_FAILED"

    def __init__(self, *, label: str, reason: str, filename: str | None, details: Mapping[str, Any]) -> None:
        what = f"output {filename!r}" if filename else "an output"
        super().__init__(
            f"{what} could not be uploaded to {label}: {reason}", details={**details, "filename": filename}
        )


def _truncate_traceback(frames: list[str]) -> list[str]:
    kept = frames[-MAX_TRACEBACK_FRAMES:]
    text = [line[:MAX_DETAIL_CHARS] for line in kept]
    if len(frames) > len(kept):
        text.insert(0, f"... {len(frames) - len(kept)} earlier frame(s) omitted\n")
    return text


def __getattr__(name: str) -> Any:
    # error_result, redact and redact_result moved to handler/error_result.py; old imports still work.
    if name in ("error_result", "redact", "redact_result"):
        from . import error_result as module

        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
