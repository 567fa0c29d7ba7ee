"""Turn any exception into the job result RunPod receives, and keep secrets out of results.

The one place errors become results: a `WorkerError` gives ``"<CODE>: <message>"`` and its
details; anything else is INTERNAL_ERROR with a generic message, its traceback in the log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from .errors import ExecutionFailed, WorkerError, WorkflowInvalid
from .server_paths import hide_server_paths

__all__ = ["MIN_EMBEDDED_SECRET", "REDACTED", "error_result", "redact", "redact_result"]

logger = logging.getLogger(__name__)

REDACTED = "***"
MIN_EMBEDDED_SECRET = 8  # shorter secrets are redacted only as a whole value


def error_result(
    exc: BaseException, *, secrets: Iterable[str | None] = (), comfy_root: str | None = None
) -> dict[str, Any]:
    """Turn any exception into the job result RunPod receives; unexpected ones are logged.

    With ``comfy_root`` (COMFYUI_PATH), the texts ComfyUI wrote (an execution error's message and
    traceback, its 400 body) show no server path outside that folder (server_paths.py).
    """
    if isinstance(exc, WorkerError):
        result: dict[str, Any] = {"error": f"{exc.code}: {exc.message}", "details": exc.details}
        if exc.refresh_worker:
            result["refresh_worker"] = True
        if comfy_root is not None and isinstance(exc, ExecutionFailed | WorkflowInvalid):
            result = hide_server_paths(result, keep=(comfy_root,))
    else:
        logger.error("unexpected error in the worker", exc_info=exc)
        result = {
            "error": f"INTERNAL_ERROR: the worker hit an unexpected {type(exc).__name__}; "
            "see the worker log and report it",
            "details": {"exception_type": type(exc).__name__},
        }
    redacted: dict[str, Any] = redact(result, secrets)
    return redacted


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
