/** This session's jobs, newest first; choosing one shows it in the job panel. */

import { isFinalStatus } from "../api/index.js";
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

export function statusBadge(status: string): HTMLElement {
  return h("span", { class: `badge status-${status.toLowerCase()}` }, STATUS_TEXT[status] ?? status);
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
            statusBadge(record.status),
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
