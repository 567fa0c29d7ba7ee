"""Every error the worker reports, and the one function that turns an error into a job result.

    WorkerError (code)
    ├── JobInputError        INVALID_INPUT      the job input is malformed
    │   └── InputRefused     INVALID_INPUT      an input URL the guard will not fetch (entry, reason)
    ├── InputFetchFailed     INPUT_FETCH_FAILED an input URL could not be downloaded
    ├── ModelMissing         MODEL_MISSING      the workflow needs a model the boot could not provide
    ├── ComfyUnavailable     COMFY_UNAVAILABLE  ComfyUI did not answer (start-up, network)
    ├── ComfyCrashed         COMFY_CRASHED      ComfyUI's process died (worker is refreshed)
    ├── WorkflowInvalid      WORKFLOW_INVALID   ComfyUI rejected the workflow (node_errors)
    │   └── NodesMissing     NODES_MISSING      node classes this ComfyUI does not have
    ├── ExecutionFailed      EXECUTION_FAILED   a node raised while running
    ├── Interrupted          INTERRUPTED        someone interrupted the prompt in ComfyUI
    ├── JobTimeout           TIMEOUT            the job's deadline passed
    ├── NoOutputs            NO_OUTPUTS         the workflow ran and produced nothing
    ├── OutputFailed         OUTPUT_FAILED      outputs exist but none could be fetched
    │   └── FetchFailed      OUTPUT_FAILED      one output could not be fetched (non-fatal alone)
    ├── OutputTooLarge       OUTPUT_TOO_LARGE   the result would not fit RunPod's limit, no bucket
    ├── WarmupFailed         WARMUP_FAILED      WARMUP_WORKFLOW failed: the boot stops (no job result)
    └── StorageError                            object storage failed
        ├── StorageMisconfigured STORAGE_MISCONFIGURED  missing key, endpoint down, no bucket, denied
        └── UploadFailed     UPLOAD_FAILED      one output could not be uploaded

Each class writes its own message, so callers pass facts, not prose. A result error is always
``{"error": "<CODE>: <one line>", "details": {...}}``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

__all__ = [
    "ComfyCrashed",
    "ComfyUnavailable",
    "ExecutionFailed",
    "FetchFailed",
    "InputFetchFailed",
    "InputRefused",
    "Interrupted",
    "JobInputError",
    "JobTimeout",
    "ModelMissing",
    "NoOutputs",
    "NodesMissing",
    "OutputFailed",
    "OutputTooLarge",
    "StorageError",
    "StorageMisconfigured",
    "UploadFailed",
    "WarmupFailed",
    "WorkerError",
    "WorkflowInvalid",
    "error_result",
    "redact",
    "redact_result",
]

logger = logging.getLogger(__name__)

MAX_TRACEBACK_FRAMES = 12
MAX_DETAIL_CHARS = 4000
REDACTED = "***"
MIN_EMBEDDED_SECRET = 8  # shorter secrets are redacted only as a whole value


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

    def __init__(self, models: list[Mapping[str, Any]]) -> None:
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


class ComfyCrashed(WorkerError):
    """ComfyUI's process is gone; RunPod should replace this worker."""

    code = "COMFY_CRASHED"
    refresh_worker = True


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
    """The job ran past its deadline; the prompt was interrupted and removed."""

    code = "TIMEOUT"

    def __init__(self, timeout_s: float, *, stage: str, prompt_id: str | None) -> None:
        super().__init__(
            f"the job did not finish within {timeout_s:g} s (it was {stage}); the prompt was "
            "interrupted. Raise input.timeout or COMFY_JOB_TIMEOUT_S if the workflow needs longer",
            details={"timeout_s": timeout_s, "stage": stage, "prompt_id": prompt_id},
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


class FetchFailed(OutputFailed):
    """One output could not be fetched; reported in ``errors`` unless every output failed."""

    def __init__(self, filename: str, reason: str) -> None:
        WorkerError.__init__(self, f"output {filename!r} could not be fetched: {reason}")
        self.filename = filename


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


class StorageError(WorkerError):
    """Object storage failed; the message names the bucket, never a key."""

    code = "STORAGE_ERROR"


class StorageMisconfigured(StorageError):
    """The destination cannot be used: unreachable, missing bucket, wrong credentials."""

    code = "STORAGE_MISCONFIGURED"


class UploadFailed(StorageError):
    """An output could not be uploaded after retries."""

    code = "UPLOAD_FAILED"


def error_result(exc: BaseException, *, secrets: Iterable[str | None] = ()) -> dict[str, Any]:
    """Turn any exception into the job result RunPod receives; unexpected ones are logged."""
    if isinstance(exc, WorkerError):
        result: dict[str, Any] = {"error": f"{exc.code}: {exc.message}", "details": exc.details}
        if exc.refresh_worker:
            result["refresh_worker"] = True
    else:
        logger.error("unexpected error in the worker", exc_info=exc)
        result = {
            "error": f"INTERNAL_ERROR: the worker hit an unexpected {type(exc).__name__}; "
            "see the worker log and report it",
            "details": {"exception_type": type(exc).__name__},
        }
    return redact(result, secrets)


def redact(value: Any, secrets: Iterable[str | None]) -> Any:
    """Return ``value`` with every secret in its string values replaced, recursively.

    Only values change, never keys. A secret of at least ``MIN_EMBEDDED_SECRET`` characters is
    replaced wherever it stands as a whole token (not inside a longer run of letters and digits);
    a shorter one only when it is the whole value: a Comfy.org key "image" must not turn a
    ``mime_type`` of "image/png" into "***/png" (issue 14).
    """
    keys = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
    if not keys:
        return value
    long_keys = [key for key in keys if len(key) >= MIN_EMBEDDED_SECRET]
    pattern = (
        re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(map(re.escape, long_keys)) + r")(?![A-Za-z0-9])")
        if long_keys
        else None
    )
    return _redact(value, frozenset(keys), pattern)


def redact_result(result: dict[str, Any], secrets: Iterable[str | None]) -> dict[str, Any]:
    """``redact`` for a job result, leaving output ``data`` alone.

    Base64 data and presigned URLs must reach the client byte for byte: a short secret can occur
    inside base64 by chance, and MinIO's default secret equals its key id, which every presigned
    URL carries (X-Amz-Credential). Secrets never go into those fields in the first place.
    """
    protected = {key: result[key] for key in ("images", "files") if key in result}
    rest = redact({k: v for k, v in result.items() if k not in protected}, secrets)
    for key, entries in protected.items():
        rest[key] = [
            {**redact({k: v for k, v in entry.items() if k != "data"}, secrets), "data": entry.get("data")}
            for entry in entries
        ]
    return {key: rest[key] for key in result}


def _redact(value: Any, exact: frozenset[str], pattern: re.Pattern[str] | None) -> Any:
    if isinstance(value, str):
        if value in exact:
            return REDACTED
        return pattern.sub(REDACTED, value) if pattern is not None else value
    if isinstance(value, dict):
        return {k: _redact(v, exact, pattern) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, exact, pattern) for v in value]
    return value


def _truncate_traceback(frames: list[str]) -> list[str]:
    kept = frames[-MAX_TRACEBACK_FRAMES:]
    text = [line[:MAX_DETAIL_CHARS] for line in kept]
    if len(frames) > len(kept):
        text.insert(0, f"... {len(frames) - len(kept)} earlier frame(s) omitted\n")
    return text


def describe_validation_errors(body: Any, workflow: Mapping[str, Any]) -> list[str]:
    """One readable line per problem in ComfyUI's 400 body from POST /prompt."""
    if not isinstance(body, Mapping):
        return [f"ComfyUI answered 400 without a JSON error body: {str(body)[:300]!r}"]
    problems: list[str] = []
    node_errors = body.get("node_errors")
    if isinstance(node_errors, Mapping):
        for node_id, entry in node_errors.items():
            problems.extend(_describe_node(str(node_id), entry, workflow))
    if not problems:
        problems.append(_describe_top_level(body.get("error")))
    return problems


def _describe_top_level(error: Any) -> str:
    if not isinstance(error, Mapping):
        return "ComfyUI rejected the prompt without saying why"
    kind = str(error.get("type", ""))
    message = str(error.get("message", "")).strip().rstrip(".")
    details = str(error.get("details", "")).strip()
    line = f"{message} ({details})" if details and details != message else message
    hints = {
        "invalid_prompt": "install the custom node pack that provides it, or fix the class_type",
        "prompt_no_outputs": "add an output node such as SaveImage",
    }
    if "missing the class_type" in message:
        return f"{line}: every node needs a class_type; export with 'Save (API Format)'"
    if kind in hints:
        return f"{line}: {hints[kind]}"
    return line or kind or "ComfyUI rejected the prompt"


def _describe_node(node_id: str, entry: Any, workflow: Mapping[str, Any]) -> list[str]:
    if not isinstance(entry, Mapping):
        return [f"node {node_id}: {entry!r}"]
    class_type = entry.get("class_type")
    if not class_type and isinstance(workflow.get(node_id), Mapping):
        class_type = workflow[node_id].get("class_type")
    where = f"node {node_id} ({class_type or '?'})"
    lines = []
    for error in entry.get("errors") or []:
        if not isinstance(error, Mapping):
            continue
        lines.append(f"{where} {_describe_input_error(error)}")
    return lines or [f"{where}: rejected by ComfyUI"]


def _describe_input_error(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    message = str(error.get("message", "")).strip()
    details = str(error.get("details", "")).strip()
    extra = error.get("extra_info") if isinstance(error.get("extra_info"), Mapping) else {}
    input_name = extra.get("input_name")
    prefix = f"input '{input_name}': " if input_name else ""
    if kind == "required_input_missing":
        return f"input '{details or input_name}': required input is missing"
    if kind == "value_not_in_list":
        # details look like "ckpt_name: 'x.safetensors' not in ['a', 'b']"
        name, _, rest = details.partition(": ")
        value, _, options = rest.partition(" not in ")
        available = options if options and options != "[]" else "none (the folder is empty)"
        hint = "; the file is missing from ComfyUI's models folder" if _looks_like_file(value) else ""
        return f"input '{name}': value {value} is not available{hint}. Available: {available}"
    if kind == "custom_validation_failed":
        text = details.split(" - ", 1)[1] if " - " in details else details or message
        hint = ""
        if "Invalid image file" in text:
            hint = "; send the file in input.images under that name, or fix the name in the node"
        return f"{prefix}{text}{hint}"
    if kind == "exception_during_validation":
        exc_type = extra.get("exception_type", "error")
        return f"{prefix}validation raised {exc_type}: {details} (a link points at a missing node or output?)"
    if details == input_name:
        details = ""  # ComfyUI repeats the input name here; the prefix already says it
    text = f"{message}: {details}" if details and details not in message else message
    return f"{prefix}{text}" if text else f"{prefix}{kind}"


def _looks_like_file(value: str) -> bool:
    return any(
        value.strip("'\"").lower().endswith(ext)
        for ext in (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx")
    )
