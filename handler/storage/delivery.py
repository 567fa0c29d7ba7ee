"""Deliver a job's output files: each inline (base64) or to S3, as `plan.plan_delivery` decided."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from ..errors import OutputRewritten
from .base import Delivery, OutputFile
from .inline import InlineDelivery

__all__ = ["deliver_outputs"]


async def deliver_outputs(
    files: list[OutputFile], *, remote: set[int], s3: Delivery | None
) -> list[dict[str, Any]]:
    """One result entry per file, in order; files whose index is in ``remote`` go to ``s3``."""
    inline = InlineDelivery()
    # Every upload is awaited before a failure is raised: none may still be reading the job's
    # temp files (or landing in the bucket) after the job has reported.
    results = await asyncio.gather(
        *(
            _deliver_unchanged(s3 if index in remote and s3 else inline, item)
            for index, item in enumerate(files)
        ),
        return_exceptions=True,
    )
    for outcome in results:
        if isinstance(outcome, BaseException):
            raise outcome
    return [r for r in results if isinstance(r, dict)]


async def _deliver_unchanged(delivery: Delivery, item: OutputFile) -> dict[str, Any]:
    """Deliver ``item``; a file read in place that ComfyUI wrote again meanwhile (a later prompt
    saving under the same fixed file name) is another prompt's now: an error, not this job's output."""
    entry = await delivery.deliver(item)
    if item.written_ns is not None and _rewritten(item.path, item.written_ns, item.size_bytes):
        raise OutputRewritten(item.filename, f"file {item.filename!r}")
    return entry


def _rewritten(path: Path, written_ns: int, size: int) -> bool:
    try:
        stat = os.stat(path)
    except OSError:
        return True  # gone: removed or being replaced by whoever rewrote it
    return stat.st_mtime_ns != written_ns or stat.st_size != size
