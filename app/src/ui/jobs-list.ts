/** This session's jobs, newest first; choosing one shows it in the job panel. */

import { type Progress, isFinalStatus } from "../api/index.js";
import { h, replaceChildren } from "./dom.js";
import type { JobRecord } from "./job-store.js";

export const STATUS_TEXT: Record<string, string> = {
  IN_QUEUE: "in queue",
  IN_PROGRESS: "running",
  COMPLETED: "completed",
  FAILED: "failed",
  CANCELLED: "cancelled",
  TIMED_OUT: "timed out",
};

/**
 * The status in words. A job a worker holds while another of its jobs runs is IN_PROGRESS (the
 * worker took it) but not running yet: its prompt waits in ComfyUI's queue (progress stage "waiting").
 */
export function statusText(status: string, progress: Progress | null = null): string {
  if (status === "IN_PROGRESS" && progress?.stage === "waiting") return "waiting in worker";
  return STATUS_TEXT[status] ?? status;
}

export function statusBadge(status: string, progress: Progress | null = null): HTMLElement {
  return h(
    "span",
    { class: `badge status-${status.toLowerCase()}`, title: status, "data-testid": "status-badge" },
    statusText(status, progress),
  );
}

export function renderJobsList(
  root: HTMLElement,
  records: JobRecord[],
  selectedId: string | null,
  onSelect: (id: string) => void,
): void {
  if (records.length === 0) {
    replaceChildren(root, h("p", { class: "muted" }, "No jobs yet in this session."));
    return;
  }
  replaceChildren(
    root,
    h(
      "ol",
      { class: "jobs-list" },
      records.map((record) =>
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: "job-item",
              "aria-current": record.id === selectedId ? "true" : null,
              "data-job-id": record.id,
              "data-status": record.status,
              onclick: () => onSelect(record.id),
            },
            statusBadge(record.status, record.progress),
            h("span", { class: "job-name" }, record.workflowName),
            h(
              "span",
              { class: "muted job-meta" },
              new Date(record.submittedAt).toLocaleTimeString(),
              record.finishedAt !== null && isFinalStatus(record.status)
                ? ` · ${((record.finishedAt - record.submittedAt) / 1000).toFixed(1)} s`
                : "",
            ),
          ),
        ),
      ),
    ),
  );
}
