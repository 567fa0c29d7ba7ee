"""The worker's ComfyUI client id, and whose prompts in ComfyUI's queue a dead worker left behind.

A worker process queues every prompt under one client id, ``comfy-worker-<pid>-<random>``. At start
a new worker removes prompts of earlier worker processes from ComfyUI's queue (COMFY_CLEAR_LEFTOVERS)
only when the id says they came from a worker process that no longer exists on this machine:
prompts a person queued from the UI (another id), and those of worker processes still alive (the
local endpoint runs several against one ComfyUI), are never touched.

Each prompt also names, in its ``extra_data`` (which ComfyUI keeps with it in /queue and /history),
the files its job uploaded to input/ (`uploads_extra`), so the worker that clears a dead worker's
prompt also removes that job's inputs (`uploads_of`): nothing else ties a file in input/ to a job.
"""

from __future__ import annotations

import os
import re
import uuid

from .process import process_exists

__all__ = ["UPLOADS_KEY", "is_leftover", "is_local_host", "uploads_extra", "uploads_of", "worker_client_id"]

_WORKER_ID = re.compile(r"^comfy-worker-(\d+)-[0-9a-f]{12}$")
UPLOADS_KEY = "comfy_worker_inputs"  # extra_data: the names a job stored in input/
# A job's stored names carry its 8-hex tag (inputs/staging.py); a plain file name, never a path.
_UPLOAD_NAME = re.compile(r"^[0-9a-f]{8}-[^/\\]+$")


def worker_client_id() -> str:
    """A client id naming this process: ``comfy-worker-<pid>-<12 hex>``."""
    return f"comfy-worker-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def is_leftover(client_id: str | None, *, own_client_id: str) -> bool:
    """True for a worker client id other than ours whose process is gone from this machine."""
    if client_id is None or client_id == own_client_id:
        return False
    match = _WORKER_ID.match(client_id)
    if match is None:
        return False
    pid = int(match.group(1))
    if pid == os.getpid():
        return False  # this process, an earlier connection of it: its jobs are its own business
    return not process_exists(pid)


def is_local_host(host: str) -> bool:
    """Whether COMFY_HOST is this machine: only then do process ids in client ids mean anything."""
    name = host.rsplit(":", 1)[0].strip("[]").lower()
    return name in ("localhost", "::1") or name.startswith("127.")


def uploads_extra(names: list[str]) -> dict[str, list[str]]:
    """The ``extra_data`` entry naming the files a job stored in input/ (none: nothing)."""
    return {UPLOADS_KEY: list(names)} if names else {}


def uploads_of(extra_data: object) -> tuple[str, ...]:
    """The input files a prompt's ``extra_data`` says its job uploaded: only names shaped like a
    job's stored names (``<8 hex>-<name>``), so nothing else in input/ can be named for removal."""
    names = extra_data.get(UPLOADS_KEY) if isinstance(extra_data, dict) else None
    if not isinstance(names, list):
        return ()
    return tuple(name for name in names if isinstance(name, str) and _UPLOAD_NAME.match(name))
