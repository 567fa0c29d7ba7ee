"""Deliver a job's output files: each inline (base64) or to S3, as `plan.plan_delivery` decided."""

from __future__ import annotations

import asyncio
from typing import Any

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
        *((s3 if index in remote and s3 else inline).deliver(item) for index, item in enumerate(files)),
        return_exceptions=True,
    )
    for outcome in results:
        if isinstance(outcome, BaseException):
            raise outcome
    return [r for r in results if isinstance(r, dict)]
