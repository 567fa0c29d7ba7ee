/**
 * Reads untrusted JSON from the endpoint into the typed shapes of `types.ts`. Pure, no I/O.
 *
 * A job state that is not one (no id, unknown status) is a protocol error and throws. Inside a
 * result we are lenient on purpose: an entry this client cannot read is skipped and named in
 * `errors`, so one odd output never hides the others.
 */

import { RunPodProtocolError } from "./errors.js";
import {
  type EndpointHealth,
  type JobError,
  type JobOutcome,
  type JobState,
  type JobStatus,
  JOB_STATUSES,
  type OutputFile,
  type Progress,
  type TextOutput,
  type WorkerResult,
} from "./types.js";

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function numberOrNull(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function stringOrNull(value: unknown): string | null {
  if (typeof value === "string") return value;
  // ComfyUI node ids are strings, but a hand-written workflow may use numbers.
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return null;
}

/** A `/run`, `/runsync`, `/status` or `/cancel` answer; throws when it is not a job state. */
export function parseJobState(body: unknown): JobState {
  if (!isObject(body)) throw new RunPodProtocolError(`expected a job object, got ${describe(body)}`);
  const { id, status } = body;
  if (typeof id !== "string" || id === "") {
    throw new RunPodProtocolError(`the job object has no id: ${preview(body)}`);
  }
  if (typeof status !== "string" || !JOB_STATUSES.includes(status as JobStatus)) {
    throw new RunPodProtocolError(`job ${id} has an unknown status ${JSON.stringify(status)}`);
  }
  const state: JobState = { id, status: status as JobStatus };
  const delay = numberOrNull(body.delayTime);
  const execution = numberOrNull(body.executionTime);
  if (delay !== null) state.delayTime = delay;
  if (execution !== null) state.executionTime = execution;
  if ("output" in body && body.output !== undefined) state.output = body.output;
  if (typeof body.error === "string") state.error = body.error;
  else if (body.error !== undefined && body.error !== null) state.error = JSON.stringify(body.error);
  return state;
}

/** `GET /health`; missing counters read as 0 so a partial answer still renders. */
export function parseHealth(body: unknown): EndpointHealth {
  if (!isObject(body) || !isObject(body.jobs) || !isObject(body.workers)) {
    throw new RunPodProtocolError(`expected {jobs, workers} from /health, got ${preview(body)}`);
  }
  const jobs = body.jobs;
  const workers: EndpointHealth["workers"] = { idle: 0, running: 0 };
  for (const [key, value] of Object.entries(body.workers)) {
    const count = numberOrNull(value);
    if (count !== null) workers[key] = count;
  }
  return {
    jobs: {
      completed: numberOrNull(jobs.completed) ?? 0,
      failed: numberOrNull(jobs.failed) ?? 0,
      inProgress: numberOrNull(jobs.inProgress) ?? 0,
      inQueue: numberOrNull(jobs.inQueue) ?? 0,
      retried: numberOrNull(jobs.retried) ?? 0,
    },
    workers,
  };
}

/** The progress payload of an IN_PROGRESS job, or null when its output is not one. */
export function parseProgress(output: unknown): Progress | null {
  if (!isObject(output) || typeof output.stage !== "string") return null;
  const percent = numberOrNull(output.percent);
  return {
    stage: output.stage,
    node: stringOrNull(output.node),
    nodeClass: stringOrNull(output.node_class),
    step: numberOrNull(output.step),
    maxSteps: numberOrNull(output.max_steps),
    nodesDone: numberOrNull(output.nodes_done),
    nodesTotal: numberOrNull(output.nodes_total),
    percent: percent === null ? null : Math.min(100, Math.max(0, percent)),
    activity: stringOrNull(output.activity),
    elapsedS: numberOrNull(output.elapsed_s),
    nodeElapsedS: numberOrNull(output.node_elapsed_s),
  };
}

/**
 * The job's progress after an update: the new one, keeping the highest percentage seen, so the
 * bar never goes back (polls may answer out of order); a poll without progress keeps the last.
 */
export function mergeProgress(previous: Progress | null, next: Progress | null): Progress | null {
  if (next === null) return previous;
  if (previous?.percent == null) return next;
  return { ...next, percent: Math.max(previous.percent, next.percent ?? previous.percent) };
}

/** A COMPLETED job's output; throws only when it is not an object at all. */
export function parseWorkerResult(output: unknown): WorkerResult {
  if (!isObject(output)) {
    throw new RunPodProtocolError(`expected the worker's result object, got ${describe(output)}`);
  }
  const errors: string[] = [];
  if (Array.isArray(output.errors)) {
    for (const item of output.errors) errors.push(typeof item === "string" ? item : JSON.stringify(item));
  }
  const notes = Array.isArray(output.notes)
    ? output.notes.map((item) => (typeof item === "string" ? item : JSON.stringify(item)))
    : [];
  const timings: Record<string, number> = {};
  if (isObject(output.timings)) {
    for (const [key, value] of Object.entries(output.timings)) {
      const ms = numberOrNull(value);
      if (ms !== null) timings[key] = ms;
    }
  }
  return {
    images: readList(output, "images", readFile, errors),
    files: readList(output, "files", readFile, errors),
    text: readList(output, "text", readText, errors),
    promptId: typeof output.prompt_id === "string" ? output.prompt_id : null,
    timings,
    errors,
    notes,
  };
}

function readList<T>(output: Json, key: string, read: (entry: unknown) => T | string, errors: string[]): T[] {
  const list = output[key];
  if (list === undefined) return [];
  if (!Array.isArray(list)) {
    errors.push(`result.${key} is ${describe(list)}, not a list; skipped`);
    return [];
  }
  const items: T[] = [];
  list.forEach((entry, index) => {
    const item = read(entry);
    if (typeof item === "string") errors.push(`result.${key}[${index}] ${item}; skipped`);
    else items.push(item);
  });
  return items;
}

/** One output entry, or a string saying what is wrong with it. */
function readFile(entry: unknown): OutputFile | string {
  if (!isObject(entry)) return `is ${describe(entry)}, not an object`;
  const { filename, type, data } = entry;
  if (typeof filename !== "string" || filename === "") return "has no filename";
  if (type !== "base64" && type !== "s3_url") return `(${filename}) has unknown type ${JSON.stringify(type)}`;
  if (typeof data !== "string") return `(${filename}) has no data`;
  return {
    filename,
    type,
    data,
    // worker-comfyui 5.x entries carry no mime_type; guess from the name so they still display.
    mimeType: typeof entry.mime_type === "string" ? entry.mime_type : guessMimeType(filename),
    sizeBytes: numberOrNull(entry.size_bytes),
    nodeId: stringOrNull(entry.node_id),
    subfolder: typeof entry.subfolder === "string" ? entry.subfolder : "",
  };
}

function readText(entry: unknown): TextOutput | string {
  if (typeof entry === "string") return { nodeId: null, text: entry };
  if (!isObject(entry) || typeof entry.text !== "string") return "has no text";
  return { nodeId: stringOrNull(entry.node_id), text: entry.text };
}

const MIME_BY_EXTENSION: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  webp: "image/webp",
  gif: "image/gif",
  mp4: "video/mp4",
  webm: "video/webm",
  mov: "video/quicktime",
  flac: "audio/flac",
  mp3: "audio/mpeg",
  wav: "audio/wav",
  ogg: "audio/ogg",
  ply: "application/ply",
  splat: "application/octet-stream",
  glb: "model/gltf-binary",
  txt: "text/plain",
  json: "application/json",
};

/** A media type from a file name, for entries that do not carry one. */
export function guessMimeType(filename: string): string {
  const extension = filename.toLowerCase().split(".").pop() ?? "";
  return MIME_BY_EXTENSION[extension] ?? "application/octet-stream";
}

/** Splits `CODE: message` where the worker put the colon; other texts keep a null code. */
export function parseJobError(text: string): JobError {
  const match = /^([A-Z][A-Z0-9_]*): ([\s\S]*)$/.exec(text);
  if (match?.[1] !== undefined && match[2] !== undefined) {
    return { code: match[1], message: match[2], text };
  }
  return { code: null, message: text, text };
}

/** How a final job ended. Throws for a job that is not final, or a COMPLETED one without a result. */
export function jobOutcome(state: JobState): JobOutcome {
  switch (state.status) {
    case "COMPLETED":
      return { kind: "completed", result: parseWorkerResult(state.output) };
    case "FAILED": {
      const details = isObject(state.output) && isObject(state.output.details) ? state.output.details : null;
      const text = state.error ?? "the job failed without an error message";
      return { kind: "failed", error: parseJobError(text), details };
    }
    case "CANCELLED":
      return { kind: "cancelled" };
    case "TIMED_OUT":
      return { kind: "timed_out", error: state.error === undefined ? null : parseJobError(state.error) };
    case "IN_QUEUE":
    case "IN_PROGRESS":
      throw new RunPodProtocolError(`job ${state.id} is still ${state.status}; it has no outcome yet`);
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}
