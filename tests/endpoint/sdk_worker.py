"""A worker process for the endpoint's concurrency tests: the unmodified runpod SDK loop, asked for
``SDK_WORKER_CONCURRENCY`` jobs at once (``concurrency_modifier``), around a stand-in handler.

Run by the local endpoint in place of ``python -m handler``. The handler holds each job until the
test writes ``release-<name>`` into the job's ``dir``; it writes ``started-<name>`` when it gets
the job and ``cancelled-<name>`` when the SDK stops it (a cancel from the endpoint), so a test sees
what the worker really did, and reports ``{"stage": "held"}`` as progress while it holds the job.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import runpod

CONCURRENCY = int(os.environ.get("SDK_WORKER_CONCURRENCY", "1"))


async def handle(job: dict[str, Any]) -> dict[str, Any]:
    folder, name = Path(job["input"]["dir"]), job["input"]["name"]
    (folder / f"started-{name}").write_text(job["id"])
    runpod.serverless.progress_update(job, {"stage": "held", "name": name})
    try:
        while not (folder / f"release-{name}").exists():
            await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        (folder / f"cancelled-{name}").write_text(job["id"])
        raise
    return {"name": name, "pid": os.getpid()}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handle, "concurrency_modifier": lambda current: CONCURRENCY})
