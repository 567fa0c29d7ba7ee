"""What the ComfyUI the worker talks to supports, decided once per connection. Pure.

ComfyUI's protocol grew since 0.3.64 (the recorded transcripts); the worker uses a newer mechanism
only where this ComfyUI has it and otherwise does exactly what it does against 0.3.64
(docs/comfyui-versions.md). Detection asks the routes themselves rather than trusting a version
number, since forks and development builds carry features their version string does not tell:

- ``GET /api/jobs/{id}`` for an id nobody uses: ComfyUI's jobs route answers 404 with a JSON
  ``{"error": ...}``; a ComfyUI without it answers aiohttp's plain-text 404. With the route, one
  call tells pending, running, finished and unknown apart (/history says ``{}`` until the end).
- ``POST /api/jobs/{id}/cancel`` for the same unused id: 200 ``{"cancelled": false}`` where the
  route exists (a no-op, by ComfyUI's contract), anything else where it does not.
- The sensitive slot for Comfy.org keys (``api_key_comfy_org`` and ``auth_token_comfy_org`` leave
  ``extra_data`` for a sixth queue-item slot that /queue never shows) came with or before the jobs
  API, whose queue items are the five-tuple after that slot is cut off: it is assumed exactly where
  the jobs route exists.

``comfyui_version`` (GET /system_stats) is kept for logs and for the result's messages only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["LEGACY", "PROBE_JOB_ID", "Capabilities", "RouteAnswer", "detect_capabilities", "version_of"]

# The nil UUID: canonical (newer ComfyUI refuses other spellings) and never a real prompt's id.
PROBE_JOB_ID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class RouteAnswer:
    """What a probed route answered: its HTTP status and its body if that was JSON."""

    status: int
    body: Any = None  # parsed JSON, or None when the body was not JSON


@dataclass(frozen=True)
class Capabilities:
    """The newer mechanisms one ComfyUI has; `LEGACY` (all False) is 0.3.64's behaviour."""

    comfyui_version: str | None = None
    jobs_api: bool = False  # GET /api/jobs/{id}: one call for a prompt's state
    jobs_cancel: bool = False  # POST /api/jobs/{id}/cancel: atomic cancel, pending or running
    sensitive_slot: bool = False  # Comfy.org keys never appear in GET /queue

    def describe(self) -> str:
        """One line for the log, e.g. ``ComfyUI 0.38.1: jobs API, jobs cancel, sensitive key slot``."""
        names = [
            name
            for name, present in (
                ("jobs API", self.jobs_api),
                ("jobs cancel", self.jobs_cancel),
                ("sensitive key slot", self.sensitive_slot),
            )
            if present
        ]
        version = self.comfyui_version or "of unknown version"
        return f"ComfyUI {version}: " + (", ".join(names) if names else "the 0.3.64 protocol")

    def key_warning(self) -> str | None:
        """What to log when a job's Comfy.org key goes to a ComfyUI without the sensitive slot."""
        if self.sensitive_slot:
            return None
        version = self.comfyui_version or "this version"
        return (
            f"ComfyUI {version} shows the job's Comfy.org key (extra_data.api_key_comfy_org) to "
            "anyone who reads GET /queue while its prompt waits or runs (newer ComfyUI keeps it out "
            "of /queue); keep ComfyUI's port private (COMFY_HOST on 127.0.0.1)"
        )


LEGACY = Capabilities()


def version_of(system_stats: Any) -> str | None:
    """``system.comfyui_version`` of a /system_stats answer, if it has one."""
    system = system_stats.get("system") if isinstance(system_stats, dict) else None
    version = system.get("comfyui_version") if isinstance(system, dict) else None
    return version if isinstance(version, str) and version else None


def detect_capabilities(
    system_stats: Any, *, job_probe: RouteAnswer | None, cancel_probe: RouteAnswer | None
) -> Capabilities:
    """Decide from the answers to the probes (None: the probe itself failed, so: absent)."""
    jobs_api = job_probe is not None and _is_jobs_answer(job_probe)
    jobs_cancel = (
        cancel_probe is not None
        and cancel_probe.status == 200
        and isinstance(cancel_probe.body, dict)
        and isinstance(cancel_probe.body.get("cancelled"), bool)
    )
    return Capabilities(
        comfyui_version=version_of(system_stats),
        jobs_api=jobs_api,
        jobs_cancel=jobs_cancel,
        sensitive_slot=jobs_api,
    )


def _is_jobs_answer(answer: RouteAnswer) -> bool:
    if not isinstance(answer.body, dict):
        return False
    if answer.status == 404:
        return "error" in answer.body  # {"error": "Job not found"}
    return answer.status == 200 and "status" in answer.body
