/** The live state of a running job: a progress bar, its stage, and the node that is running. */

import type { JobStatus, Progress } from "../api/index.js";
import { h } from "./dom.js";

const STAGE_TEXT: Record<string, string> = {
  starting: "Starting",
  uploading: "Uploading input images",
  queued: "Queued in ComfyUI",
  waiting: "Waiting in the worker",
  running: "Running",
  collecting: "Collecting outputs",
};

/**
 * A one-line description, e.g. "Running KSampler (node 3), step 7 of 20, 2 of 4 nodes done",
 * "Running CheckpointLoaderSimple (node 1), loading model sd15.safetensors for 37 s, 0 of 7 nodes done"
 * or, for a job its worker holds behind another, "Waiting in the worker, queued behind another job
 * in this worker".
 */
export function describeProgress(status: JobStatus, progress: Progress | null): string {
  if (status === "IN_QUEUE") return "Waiting for a worker";
  if (progress === null) return "Running";
  const parts = [STAGE_TEXT[progress.stage] ?? progress.stage];
  if (progress.nodeClass !== null || progress.node !== null) {
    parts[0] += ` ${progress.nodeClass ?? "node"}${progress.node !== null ? ` (node ${progress.node})` : ""}`;
  }
  if (progress.step !== null && progress.maxSteps !== null)
    parts.push(`step ${progress.step} of ${progress.maxSteps}`);
  if (progress.activity !== null) {
    const seconds = progress.nodeElapsedS !== null ? ` for ${Math.round(progress.nodeElapsedS)} s` : "";
    parts.push(`${progress.activity}${seconds}`);
  }
  if (progress.nodesDone !== null && progress.nodesTotal !== null && progress.stage !== "waiting") {
    parts.push(`${progress.nodesDone} of ${progress.nodesTotal} nodes done`);
  }
  return parts.join(", ");
}

export function progressView(status: JobStatus, progress: Progress | null): HTMLElement {
  const percent = status === "IN_QUEUE" ? 0 : (progress?.percent ?? null);
  const text = describeProgress(status, progress);
  const bar = h("div", {
    class: "progress-bar",
    role: "progressbar",
    "aria-label": "Job progress",
    "aria-valuemin": 0,
    "aria-valuemax": 100,
    "aria-valuenow": percent === null ? null : Math.round(percent),
    "aria-valuetext": percent === null ? text : `${Math.round(percent)}%: ${text}`,
    "data-testid": "progress-bar",
  });
  const fill = h("div", { class: percent === null ? "progress-fill indeterminate" : "progress-fill" });
  // A width set through CSSOM, which the CSP allows (unlike a style attribute in markup).
  fill.style.width = `${percent ?? 100}%`;
  bar.append(fill);
  return h(
    "div",
    { class: "progress" },
    bar,
    h(
      "p",
      { class: "progress-text", "data-testid": "progress-text" },
      percent === null ? text : `${Math.round(percent)}% · ${text}`,
    ),
  );
}
