"""Today's job routes (`current` profile; 0.3.64 has none of them: 404).

ComfyUI registers them with the `/api` already in their path and then adds `/api` to every route
again, so they answer at `/api/jobs...` and `/api/api/jobs...`, never at `/jobs` (server.py
PromptServer.__init__ and add_routes). Bodies and errors as in server.py get_jobs, get_job_by_id,
cancel_job_by_id and cancel_jobs_batch (PROFILES.md "/api/jobs"):

- `GET /api/jobs?status=&workflow_id=&sort_by=&sort_order=&limit=&offset=`: `{"jobs": [...],
  "pagination": {"offset", "limit", "total", "has_more"}}`; bad parameters get 400 `{"error": ...}`.
- `GET /api/jobs/{id}`: one job with its workflow (and outputs once finished), or 404
  `{"error": "Job not found"}`. The id is not validated here.
- `POST /api/jobs/{id}/cancel`: `{"cancelled": true}` when a running job was interrupted or a
  pending one dequeued; `{"cancelled": false}` (still 200) for finished or unknown ids.
- `POST /api/jobs/cancel` `{"job_ids": [...]}`: the same per id; 400 when the body is not JSON,
  `job_ids` is not a list, or an id is not a canonical UUID.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .executor import Executor
from .jobs import (
    CANCEL_PENDING,
    CANCEL_RUNNING,
    JOB_STATUSES,
    canonical_uuid,
    classify_for_cancel,
    history_job,
    list_jobs,
    queue_job,
)

__all__ = ["JobRoutes"]


class JobRoutes:
    """Handlers of the job routes; `routes()` lists them for `ComfyApp` (which adds `/api` again)."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", "/api/jobs", self.get_jobs),
            ("GET", "/api/jobs/{job_id}", self.get_job),
            ("POST", "/api/jobs/{job_id}/cancel", self.cancel_job),
            ("POST", "/api/jobs/cancel", self.cancel_jobs),
        ]

    def _queue(self) -> tuple[list[list[Any]], list[list[Any]]]:
        running, pending = self.executor.queue.snapshot()
        return [item.public() for item in running], [item.public() for item in pending]

    async def get_jobs(self, request: web.Request) -> web.Response:
        query = request.query
        statuses = None
        if query.get("status"):
            statuses = [part.strip().lower() for part in query["status"].split(",") if part.strip()]
            invalid = [status for status in statuses if status not in JOB_STATUSES]
            if invalid:
                message = (
                    f"Invalid status value(s): {', '.join(invalid)}. Valid values: {', '.join(JOB_STATUSES)}"
                )
                return _error(message)
        sort_by = query.get("sort_by", "created_at").lower()
        sort_order = query.get("sort_order", "desc").lower()
        if sort_by not in ("created_at", "execution_duration"):
            return _error("sort_by must be 'created_at' or 'execution_duration'")
        if sort_order not in ("asc", "desc"):
            return _error("sort_order must be 'asc' or 'desc'")
        limit = None
        if "limit" in query:
            try:
                limit = int(query["limit"])
            except ValueError:
                return _error("limit must be an integer")
            if limit <= 0:
                return _error("limit must be a positive integer")
        offset = 0
        if "offset" in query:
            try:
                offset = max(int(query["offset"]), 0)
            except ValueError:
                return _error("offset must be an integer")
        running, pending = self._queue()
        jobs, total = list_jobs(
            running,
            pending,
            self.executor.queue.history(),
            statuses=statuses,
            workflow_id=query.get("workflow_id"),
            sort_by=sort_by,
            descending=sort_order == "desc",
            limit=limit,
            offset=offset,
        )
        has_more = offset + len(jobs) < total
        pagination = {"offset": offset, "limit": limit, "total": total, "has_more": has_more}
        return web.json_response({"jobs": jobs, "pagination": pagination})

    async def get_job(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        history = self.executor.queue.history(job_id)
        if job_id in history:
            return web.json_response(history_job(job_id, history[job_id], detail=True))
        running, pending = self._queue()
        for items, status in ((running, "in_progress"), (pending, "pending")):
            for item in items:
                if item[1] == job_id:
                    return web.json_response(queue_job(item, status, detail=True))
        return web.json_response({"error": "Job not found"}, status=404)

    async def cancel_job(self, request: web.Request) -> web.Response:
        return web.json_response({"cancelled": self._cancel(request.match_info["job_id"])})

    async def cancel_jobs(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error("Request body must be valid JSON")
        job_ids = body.get("job_ids") if isinstance(body, dict) else None
        if not isinstance(job_ids, list):
            return _error("job_ids must be a list")
        invalid = [_shown_id(job_id) for job_id in job_ids if not canonical_uuid(job_id)]
        if invalid:
            body = {"error": "job_ids contains invalid id(s)", "invalid_ids": invalid}
            return web.json_response(body, status=400)
        cancelled = [self._cancel(job_id) for job_id in job_ids]
        return web.json_response({"cancelled": any(cancelled)})

    def _cancel(self, job_id: str) -> bool:
        """Interrupt it if running, dequeue it if pending; True if either happened."""
        queue = self.executor.queue
        running, pending = self._queue()
        kind = classify_for_cancel(job_id, running, pending, queue.history(job_id))
        if kind == CANCEL_PENDING and queue.delete_pending(job_id):
            return True
        if kind in (CANCEL_RUNNING, CANCEL_PENDING):
            # Atomic in ComfyUI (PromptQueue.interrupt_if_running), trivially so in this one event loop.
            running_ids = [item.prompt_id for item in queue.snapshot()[0]]
            if job_id in running_ids:
                self.executor.interrupt()
                return True
        return False


def _error(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


def _shown_id(job_id: Any) -> str:
    return job_id if isinstance(job_id, str) else repr(job_id)
