"""Warm-up: one workflow run at boot, before the handler takes jobs, so the first job finds its
models already loaded (WARMUP_WORKFLOW, docs/models.md).

The file holds what a job would send: a RunPod request body (``{"input": {...}}``), a job input
(``{"workflow": {...}, "images": [...]}``) or a bare API-format workflow. It runs through the same
pipeline as a job (readiness wait, input upload, queue, follow, collect, cleanup), with delivery
kept local: no bucket upload, no result size limit, no progress updates, and WARMUP_TIMEOUT_S
as its deadline. Its outputs are discarded. Any failure raises `WarmupFailed`, and
``python -m handler`` exits with it instead of starting the RunPod loop.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

from .config import Settings
from .errors import WarmupFailed
from .worker import Worker

__all__ = ["load_warmup_input", "run_warmup", "warmup_settings"]

logger = logging.getLogger(__name__)
_NO_LIMIT = 1 << 62


def load_warmup_input(path: Path) -> dict[str, Any]:
    """The job input the warm-up file describes."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WarmupFailed(
            str(path), "no such file; put it in the image or on the network volume, or fix the path"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WarmupFailed(str(path), f"cannot be read ({exc})") from None
    except ValueError as exc:
        raise WarmupFailed(str(path), f"is not valid JSON ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("input"), dict):
        return dict(data["input"])
    if isinstance(data, dict) and "workflow" in data:
        return dict(data)
    nodes = data.values() if isinstance(data, dict) else ()
    if nodes and all(isinstance(v, dict) and "class_type" in v for v in nodes):
        return {"workflow": data}
    if isinstance(data, dict) and "nodes" in data and "links" in data:
        raise WarmupFailed(
            str(path), "this is ComfyUI's UI format; save it with 'Export (API)' and use that file"
        )
    raise WarmupFailed(
        str(path), 'expected an API-format workflow, {"workflow": ...} or {"input": {"workflow": ...}}'
    )


def warmup_settings(settings: Settings) -> Settings:
    """The job settings with delivery kept local and the warm-up's own deadline."""
    return dataclasses.replace(
        settings,
        storage=None,
        result_max_bytes=_NO_LIMIT,
        refresh_worker=False,
        progress_enabled=False,
        timeouts=dataclasses.replace(settings.timeouts, job_s=settings.warmup_timeout_s),
    )


async def run_warmup(settings: Settings, path: Path) -> float:
    """Run the warm-up once; return its duration in seconds or raise WarmupFailed."""
    job_input = load_warmup_input(path)
    job_input.pop("timeout", None)  # WARMUP_TIMEOUT_S decides
    job_input["output"] = "base64"  # never the bucket
    logger.info("warm-up: running %s before taking jobs", path)
    started = time.monotonic()
    result = await Worker(warmup_settings(settings)).handle({"id": "warmup", "input": job_input})
    elapsed = time.monotonic() - started
    if "error" in result:
        raise WarmupFailed(str(path), str(result["error"]), details=result.get("details"))
    timings = result.get("timings", {})
    logger.info(
        "warm-up: done in %.1f s (execution %s ms); the first job starts warm",
        elapsed,
        timings.get("execution_ms"),
    )
    return elapsed
