/**
 * How a finished job looks: each output in the right player (image, video, audio, 3D splat view,
 * text) with a download button, the timings, and failures with the worker's code and message
 * exactly as it wrote them.
 */

import type { JobError, JobOutcome, JobState, OutputFile, WorkerResult } from "../api/index.js";
import { h } from "./dom.js";
import { formatBytes, formatMs, outputBytes, outputUrl } from "./files.js";
import { isSplatName, mountSplat } from "./splat-view.js";

/** Everything a rendered result holds on to (object URLs, WebGL views), released on `dispose`. */
export interface Rendered {
  element: HTMLElement;
  dispose(): void;
}

export function resultsView(outcome: JobOutcome, state: JobState | null): Rendered {
  const cleanups: Array<() => void> = [];
  const element = h("div", { class: "results" });
  switch (outcome.kind) {
    case "completed":
      element.append(...completedView(outcome.result, state, cleanups));
      break;
    case "failed":
      element.append(errorView("Failed", outcome.error, outcome.details));
      break;
    case "cancelled":
      element.append(
        h(
          "p",
          { class: "status-note", role: "status", "data-testid": "job-cancelled" },
          "Cancelled: RunPod will not run or return this job. If it had started, the worker asked ComfyUI to stop; a node that cannot be interrupted (a model load, a SHARP prediction) may keep ComfyUI busy until it finishes, and the next job waits until then.",
        ),
      );
      break;
    case "timed_out":
      element.append(
        outcome.error === null
          ? h(
              "p",
              { class: "status-note", role: "alert" },
              "Timed out: RunPod stopped the job at the endpoint's execution timeout. The worker asked ComfyUI to stop; a node that cannot be interrupted may keep it busy a while longer.",
            )
          : errorView("Timed out", outcome.error, null),
      );
      break;
  }
  return {
    element,
    dispose: () => {
      for (const cleanup of cleanups.splice(0)) cleanup();
    },
  };
}

/** The worker's error: its code as a badge, and the whole text verbatim. */
export function errorView(
  title: string,
  error: JobError,
  details: Record<string, unknown> | null,
): HTMLElement {
  // The problems are shown above (in the text, or listed), not again in the details.
  const rest =
    details === null ? null : Object.fromEntries(Object.entries(details).filter(([k]) => k !== "problems"));
  // Problems the text already spells out are not listed a second time.
  const problems = Array.isArray(details?.problems)
    ? details.problems.filter((p): p is string => typeof p === "string" && !error.text.includes(p))
    : [];
  return h(
    "div",
    { class: "job-error", role: "alert", "data-testid": "job-error" },
    h(
      "p",
      { class: "job-error-title" },
      `${title} `,
      error.code === null
        ? null
        : h("code", { class: "error-code", "data-testid": "error-code" }, error.code),
    ),
    h("pre", { class: "error-text", "data-testid": "error-text" }, error.text),
    problems.length > 0
      ? h(
          "ul",
          { class: "problems" },
          problems.map((p) => h("li", {}, p)),
        )
      : null,
    rest === null || Object.keys(rest).length === 0
      ? null
      : h(
          "details",
          {},
          h("summary", {}, "Details from the worker"),
          h("pre", { class: "details-json" }, JSON.stringify(rest, null, 2)),
        ),
  );
}

function completedView(
  result: WorkerResult,
  state: JobState | null,
  cleanups: Array<() => void>,
): HTMLElement[] {
  const parts: HTMLElement[] = [];
  // The worker's warnings first: they say what is missing or odd about what follows.
  if (result.errors.length > 0) {
    parts.push(
      h(
        "div",
        { class: "warnings", role: "status" },
        h("p", {}, "The worker reported:"),
        h(
          "ul",
          {},
          result.errors.map((e) => h("li", {}, e)),
        ),
      ),
    );
  }
  if (result.notes.length > 0) {
    parts.push(
      h(
        "div",
        { class: "notes", "data-testid": "worker-notes" },
        h("p", {}, "The worker changed:"),
        h(
          "ul",
          {},
          result.notes.map((note) => h("li", {}, note)),
        ),
      ),
    );
  }
  const files = [...result.images, ...result.files];
  if (files.length > 0) {
    parts.push(
      h(
        "div",
        { class: "outputs" },
        files.map((file) => outputCard(file, cleanups)),
      ),
    );
  }
  for (const item of result.text) {
    parts.push(
      h(
        "figure",
        { class: "output-card output-text", "data-testid": "output-text" },
        h("pre", {}, item.text),
        h("figcaption", {}, item.nodeId === null ? "text" : `text from node ${item.nodeId}`),
      ),
    );
  }
  parts.push(timingsView(result.timings, state));
  return parts;
}

function outputCard(file: OutputFile, cleanups: Array<() => void>): HTMLElement {
  const { url, revoke } = outputUrl(file);
  cleanups.push(revoke);
  const kind = outputKind(file);
  const media = h("div", { class: "output-media" });
  if (kind === "image")
    media.append(h("img", { src: url, alt: file.filename, "data-testid": "output-image" }));
  else if (kind === "video")
    media.append(
      h("video", {
        src: url,
        controls: true,
        loop: true,
        muted: true,
        "aria-label": file.filename,
        "data-testid": "output-video",
      }),
    );
  else if (kind === "audio")
    media.append(h("audio", { src: url, controls: true, "aria-label": file.filename }));
  else if (kind === "splat")
    cleanups.push(mountSplat(media, file.filename, (onBytes) => outputBytes(file, onBytes)));
  else media.append(h("p", { class: "muted" }, `${file.mimeType}: no preview, download it to open`));
  return h(
    "figure",
    { class: `output-card output-${kind}`, "data-filename": file.filename },
    media,
    h(
      "figcaption",
      {},
      h("span", { class: "filename" }, file.filename),
      h(
        "span",
        { class: "muted" },
        [file.mimeType, formatBytes(file.sizeBytes), file.nodeId === null ? "" : `node ${file.nodeId}`]
          .filter(Boolean)
          .join(" · "),
      ),
      h(
        "a",
        { class: "button secondary", href: url, download: file.filename, "data-testid": "download" },
        "Download",
      ),
    ),
  );
}

type OutputKind = "image" | "video" | "audio" | "splat" | "other";

function outputKind(file: OutputFile): OutputKind {
  if (isSplatName(file.filename)) return "splat";
  if (file.mimeType.startsWith("image/")) return "image";
  if (file.mimeType.startsWith("video/")) return "video";
  if (file.mimeType.startsWith("audio/")) return "audio";
  return "other";
}

function timingsView(timings: Record<string, number>, state: JobState | null): HTMLElement {
  const rows: Array<[string, number]> = [];
  if (state?.delayTime !== undefined) rows.push(["queue (RunPod delayTime)", state.delayTime]);
  if (state?.executionTime !== undefined) rows.push(["run (RunPod executionTime)", state.executionTime]);
  for (const [name, ms] of Object.entries(timings)) rows.push([name.replace(/_ms$/, ""), ms]);
  return h(
    "details",
    { class: "timings", open: true, "data-testid": "timings" },
    h("summary", {}, "Timings"),
    h(
      "table",
      {},
      h(
        "tbody",
        {},
        rows.map(([name, ms]) => h("tr", {}, h("th", { scope: "row" }, name), h("td", {}, formatMs(ms)))),
      ),
    ),
  );
}
