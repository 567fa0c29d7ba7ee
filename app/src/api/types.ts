/**
 * The shapes on the wire: RunPod's serverless API (run, runsync, status, cancel, health) and what
 * our worker puts in a job's `output` (progress while running, the result when done, details when
 * failed). Types only, plus the status helpers every caller needs; parsing lives in `results.ts`.
 */

/** A job's state in RunPod's API. The last four are final: the job will never change again. */
export type JobStatus = "IN_QUEUE" | "IN_PROGRESS" | "COMPLETED" | "FAILED" | "CANCELLED" | "TIMED_OUT";

export const JOB_STATUSES: readonly JobStatus[] = [
  "IN_QUEUE",
  "IN_PROGRESS",
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMED_OUT",
];

const FINAL: ReadonlySet<JobStatus> = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]);

/** True once the job can no longer change (CANCELLED and TIMED_OUT count, not only COMPLETED/FAILED). */
export function isFinalStatus(status: JobStatus): boolean {
  return FINAL.has(status);
}

/** What `/run`, `/runsync`, `/status/{id}` and `/cancel/{id}` answer. */
export interface JobState {
  id: string;
  status: JobStatus;
  /** Milliseconds the job waited in the queue (RunPod's name). */
  delayTime?: number;
  /** Milliseconds the job ran on a worker (RunPod's name). */
  executionTime?: number;
  /** IN_PROGRESS: the latest progress payload. COMPLETED: the worker's result. FAILED: `{details}`. */
  output?: unknown;
  /** FAILED: the worker's one-line `CODE: message`, exactly as it wrote it. */
  error?: string;
}

/** `GET /health`. Counters RunPod may add later are kept but not typed. */
export interface EndpointHealth {
  jobs: { completed: number; failed: number; inProgress: number; inQueue: number; retried: number };
  workers: { idle: number; running: number; [other: string]: number };
}

/** A base64 input file the worker uploads to ComfyUI's input folder before queueing. */
/** An input the job carries inline (base64 or a `data:` URI) or names by URL for the worker to fetch. */
export type InputImage =
  | {
      /** Plain file name (no `/`, `\`, `..`), unique in the job; LoadImage nodes refer to it. */
      name: string;
      /** Base64 or a `data:` URI. */
      image: string;
    }
  | {
      name: string;
      /** http(s) (a presigned URL works as is) or s3://bucket/key; the worker downloads it. */
      url: string;
    };

/** An API-format ComfyUI graph: node id -> node. */
export type ApiWorkflow = Record<string, ApiNode>;

export interface ApiNode {
  class_type: string;
  inputs: Record<string, unknown>;
  _meta?: { title?: string };
}

/** `job.input` as README.md "Job input" defines it. */
/** RunPod's request size limits: larger bodies are refused (HTTP 413) after they have been sent. */
export const REQUEST_LIMIT_BYTES = { run: 10 * 1024 * 1024, runsync: 20 * 1024 * 1024 } as const;

export interface JobInput {
  workflow: ApiWorkflow;
  images?: InputImage[];
  timeout?: number;
  include_temp?: boolean;
  output?: "base64" | "s3" | "auto";
  /** Convert Gaussian-splat `.ply` outputs on delivery (docs/gaussian-splats.md "Conversion"). */
  convert?: { ply: "spz" | "splat"; keep_original?: boolean };
  /** A secret: set it server-side only, never from a browser. */
  comfy_org_api_key?: string;
}

/** RunPod's per-request execution policy (milliseconds). */
export interface JobPolicy {
  executionTimeout?: number;
  ttl?: number;
}

/** Stages of the worker's progress payload (README.md "Progress, timeouts and cancel"). */
export type ProgressStage = "starting" | "uploading" | "queued" | "waiting" | "running" | "collecting";

/** The worker's progress payload, seen as a job's `output` while it is IN_PROGRESS. */
export interface Progress {
  stage: string;
  node: string | null;
  nodeClass: string | null;
  step: number | null;
  maxSteps: number | null;
  nodesDone: number | null;
  nodesTotal: number | null;
  /** 0..100, or null when the worker has not said. Moves with time while a node runs; never decreases. */
  percent: number | null;
  /** What the running node does, e.g. "loading model sd15.safetensors", or null. */
  activity: string | null;
  /** Seconds since ComfyUI started the prompt, or null. */
  elapsedS: number | null;
  /** Seconds the running node has been at it, or null. */
  nodeElapsedS: number | null;
}

/** One output file: inline base64, or a URL when the worker sent it to object storage. */
export interface OutputFile {
  filename: string;
  type: "base64" | "s3_url";
  /** Base64 bytes, or the download URL for `s3_url`. */
  data: string;
  mimeType: string;
  sizeBytes: number | null;
  nodeId: string | null;
  subfolder: string;
}

export interface TextOutput {
  nodeId: string | null;
  text: string;
}

/** The worker's result (README.md "Result"), with field names in this codebase's case. */
export interface WorkerResult {
  images: OutputFile[];
  files: OutputFile[];
  text: TextOutput[];
  promptId: string | null;
  /** Named durations in milliseconds (`validate_ms`, `execution_ms`, `total_ms`, ...). */
  timings: Record<string, number>;
  /** Non-fatal problems the worker reported, plus any entries this client could not read. */
  errors: string[];
  /** What the worker changed on purpose (a splat converted, a browser-only node left out). */
  notes: string[];
}

/** Error codes the worker writes before the colon (README.md "Errors"). Others may appear. */
export const WORKER_ERROR_CODES = [
  "INVALID_INPUT",
  "WORKFLOW_INVALID",
  "EXECUTION_FAILED",
  "INTERRUPTED",
  "TIMEOUT",
  "COMFY_UNAVAILABLE",
  "COMFY_CRASHED",
  "NO_OUTPUTS",
  "OUTPUT_FAILED",
  "OUTPUT_TOO_LARGE",
  "STORAGE_MISCONFIGURED",
  "UPLOAD_FAILED",
  "INTERNAL_ERROR",
] as const;

export type WorkerErrorCode = (typeof WORKER_ERROR_CODES)[number];

/** A job's error text, split where the worker put the colon. `text` is always the original. */
export interface JobError {
  /** The leading `CODE`, or null when the text has none (RunPod's own errors, older workers). */
  code: string | null;
  message: string;
  text: string;
}

/** How a final job ended, ready to show. */
export type JobOutcome =
  | { kind: "completed"; result: WorkerResult }
  | { kind: "failed"; error: JobError; details: Record<string, unknown> | null }
  | { kind: "cancelled" }
  | { kind: "timed_out"; error: JobError | null };
