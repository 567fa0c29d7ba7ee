"""Job records of today's `/api/jobs` (`current` profile), built from queue items and history entries.

Pure functions following comfy_execution/jobs.py of ComfyUI 0.38.1 (PROFILES.md "/api/jobs"):
a queue item becomes `{id, status: pending|in_progress, priority, create_time, outputs_count: 0,
previewable_outputs_count: 0, workflow_id}`; a history entry becomes `{id, status:
completed|failed|cancelled, priority, create_time, execution_start_time, execution_end_time,
execution_error, outputs_count, previewable_outputs_count, preview_output, workflow_id}`. Keys whose
value is None are left out. The one-job form adds `workflow: {prompt, extra_data}` and, for
finished jobs, `outputs` and `execution_status` (the history entry's `status`).
"""

from __future__ import annotations

import uuid
from typing import Any

__all__ = [
    "CANCEL_PENDING",
    "CANCEL_RUNNING",
    "CANCEL_TERMINAL",
    "CANCEL_UNKNOWN",
    "JOB_STATUSES",
    "canonical_uuid",
    "classify_for_cancel",
    "history_job",
    "list_jobs",
    "queue_job",
]

JOB_STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled")
CANCEL_RUNNING, CANCEL_PENDING, CANCEL_TERMINAL, CANCEL_UNKNOWN = "running", "pending", "terminal", "unknown"

_PREVIEWABLE_KINDS = frozenset({"images", "video", "audio", "3d", "text"})
_THREE_D_SUFFIXES = (".obj", ".fbx", ".gltf", ".glb", ".usdz")
_TEXT_SUFFIXES = (".txt", ".md", ".json")
_TEXT_PREVIEW_LIMIT = 1024
_FINISHED_EVENTS = ("execution_success", "execution_error", "execution_interrupted")

QueueTuple = list[Any]
"""`[number, prompt_id, prompt, extra_data, outputs_to_execute]`, as /queue shows an item."""


def canonical_uuid(value: Any) -> bool:
    """validate_job_id: a job (prompt) id must be a str that round-trips through uuid.UUID unchanged."""
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _pruned(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _metadata(extra_data: dict[str, Any]) -> tuple[Any, Any]:
    """(create_time, workflow_id): the id is the UI workflow's, from extra_pnginfo."""
    pnginfo = extra_data.get("extra_pnginfo") or {}
    workflow = pnginfo.get("workflow") if isinstance(pnginfo, dict) else None
    workflow_id = workflow.get("id") if isinstance(workflow, dict) else None
    return extra_data.get("create_time"), workflow_id


def queue_job(item: QueueTuple, status: str, *, detail: bool = False) -> dict[str, Any]:
    number, prompt_id, prompt, extra_data, _ = item
    create_time, workflow_id = _metadata(extra_data)
    job = _pruned(
        {
            "id": prompt_id,
            "status": status,
            "priority": number,
            "create_time": create_time,
            "outputs_count": 0,
            "previewable_outputs_count": 0,
            "workflow_id": workflow_id,
        }
    )
    if detail:
        job["workflow"] = {"prompt": prompt, "extra_data": extra_data}
    return job


def history_job(prompt_id: str, entry: dict[str, Any], *, detail: bool = False) -> dict[str, Any]:
    number, _, prompt, extra_data, _ = entry["prompt"]
    create_time, workflow_id = _metadata(extra_data)
    status_info = entry.get("status") or {}
    started = ended = error = None
    interrupted = False
    for message in status_info.get("messages", []):
        if not (isinstance(message, (list, tuple)) and len(message) >= 2 and isinstance(message[1], dict)):
            continue
        event, data = message[0], message[1]
        if event == "execution_start":
            started = data.get("timestamp")
        elif event in _FINISHED_EVENTS:
            ended = data.get("timestamp")
            error = data if event == "execution_error" else error
            interrupted = interrupted or event == "execution_interrupted"
    status = "completed"
    if status_info.get("status_str") == "error":
        status = "cancelled" if interrupted else "failed"
    outputs = entry.get("outputs", {})
    count, preview = _outputs_summary(outputs)
    job = _pruned(
        {
            "id": prompt_id,
            "status": status,
            "priority": number,
            "create_time": create_time,
            "execution_start_time": started,
            "execution_end_time": ended,
            "execution_error": error,
            "outputs_count": count,
            "previewable_outputs_count": _previewable_count(outputs),
            "preview_output": preview,
            "workflow_id": workflow_id,
        }
    )
    if detail:
        job["outputs"] = _normalized_outputs(outputs)
        job["execution_status"] = entry.get("status")
        job["workflow"] = {"prompt": prompt, "extra_data": extra_data}
    return job


def list_jobs(
    running: list[QueueTuple],
    pending: list[QueueTuple],
    history: dict[str, dict[str, Any]],
    *,
    statuses: list[str] | None,
    workflow_id: str | None,
    sort_by: str,
    descending: bool,
    limit: int | None,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """(the page of jobs, how many matched): GET /api/jobs."""
    wanted = set(statuses or JOB_STATUSES)
    jobs: list[dict[str, Any]] = []
    if "in_progress" in wanted:
        jobs += [queue_job(item, "in_progress") for item in running]
    if "pending" in wanted:
        jobs += [queue_job(item, "pending") for item in pending]
    if wanted & {"completed", "failed", "cancelled"}:
        finished = (history_job(prompt_id, entry) for prompt_id, entry in history.items())
        jobs += [job for job in finished if job["status"] in wanted]
    if workflow_id:
        jobs = [job for job in jobs if job.get("workflow_id") == workflow_id]
    jobs.sort(key=_duration if sort_by == "execution_duration" else _created, reverse=descending)
    total = len(jobs)
    page = jobs[offset:] if offset > 0 else jobs
    return (page[:limit] if limit is not None else page), total


def _created(job: dict[str, Any]) -> Any:
    return job.get("create_time", 0)


def _duration(job: dict[str, Any]) -> Any:
    start, end = job.get("execution_start_time", 0), job.get("execution_end_time", 0)
    return end - start if start and end else 0


def classify_for_cancel(
    prompt_id: str, running: list[QueueTuple], pending: list[QueueTuple], history: dict[str, Any]
) -> str:
    if any(item[1] == prompt_id for item in running):
        return CANCEL_RUNNING
    if any(item[1] == prompt_id for item in pending):
        return CANCEL_PENDING
    return CANCEL_TERMINAL if prompt_id in history else CANCEL_UNKNOWN


# --- outputs ---------------------------------------------------------------------------------------


def _file_item(item: Any) -> dict[str, Any] | None:
    """A dict item as it is; a string naming a 3D file as a file entry; anything else None."""
    if isinstance(item, dict):
        return item
    if isinstance(item, str) and item.lower().endswith(_THREE_D_SUFFIXES):
        return {"filename": item, "type": "output", "subfolder": "", "mediaType": "3d"}
    return None


def _normalized_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    normalized: dict[str, Any] = {}
    for node_id, node_outputs in outputs.items():
        if not isinstance(node_outputs, dict):
            normalized[node_id] = node_outputs
            continue
        node: dict[str, Any] = {}
        for kind, items in node_outputs.items():
            if kind == "animated" or not isinstance(items, list):
                node[kind] = items
            else:
                node[kind] = [_file_item(item) or item for item in items if item is not None]
        normalized[node_id] = node
    return normalized


def _previewable(kind: str, item: dict[str, Any]) -> bool:
    media_format = str(item.get("format", ""))
    filename = str(item.get("filename", "")).lower()
    return (
        kind in _PREVIEWABLE_KINDS
        or media_format.startswith(("video/", "audio/"))
        or filename.endswith(_THREE_D_SUFFIXES + _TEXT_SUFFIXES)
    )


def _is_text(kind: str, item: dict[str, Any]) -> bool:
    return kind == "text" or str(item.get("filename", "")).lower().endswith(_TEXT_SUFFIXES)


def _file_lists(outputs: dict[str, Any]) -> list[tuple[str, str, list[Any]]]:
    return [
        (node_id, kind, items)
        for node_id, node_outputs in outputs.items()
        if isinstance(node_outputs, dict)
        for kind, items in node_outputs.items()
        if kind != "animated" and isinstance(items, list)
    ]


def _outputs_summary(outputs: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    """(outputs_count, preview_output): saved visual media first, then temp media, text files, raw text."""
    count = 0
    saved = other = text_file = raw_text = None
    for node_id, kind, items in _file_lists(outputs):
        for raw in items:
            item = _file_item(raw)
            if item is None:
                if kind == "text" and saved is None and raw_text is None:
                    text = (raw[0] if raw else "") if isinstance(raw, tuple) else str(raw)
                    raw_text = {**_text_preview(text), "nodeId": node_id, "mediaType": kind}
                continue
            count += 1
            if saved is not None or not _previewable(kind, item):
                continue
            enriched = {**item, "nodeId": node_id}
            enriched.setdefault("mediaType", kind)
            if _is_text(kind, item):
                text_file = text_file or enriched
            elif item.get("type") == "output":
                saved = enriched
            elif other is None:
                other = enriched
    return count, saved or other or text_file or raw_text


def _text_preview(text: str) -> dict[str, Any]:
    if len(text) <= _TEXT_PREVIEW_LIMIT:
        return {"content": text}
    return {"content": text[:_TEXT_PREVIEW_LIMIT], "truncated": True}


def _previewable_count(outputs: dict[str, Any]) -> int:
    count = 0
    for _, kind, items in _file_lists(outputs):
        for raw in items:
            item = _file_item(raw)
            if item is not None and _previewable(kind, item):
                count += 1
    return count
