/**
 * A typed client for one RunPod serverless endpoint: run, runsync, status, cancel, health, and
 * waiting for a job with polling backoff. It runs unchanged in the browser (pointed at the app
 * server's proxy, no key) and in Node (pointed at RunPod with a key).
 *
 *   const api = new RunPodClient({ endpointUrl: "/api/runpod" });
 *   const job = await api.run({ workflow });
 *   const done = await api.waitUntilDone(job.id, { signal, onUpdate: (s) => show(parseProgress(s.output)) });
 *   const outcome = jobOutcome(done);   // completed | failed | cancelled | timed_out
 *
 * 429 and 5xx answers are retried with exponential backoff (honouring Retry-After); connection
 * failures are retried only for calls that are safe to repeat (see `_request`).
 */

import { RunPodHttpError, RunPodNetworkError, RunPodProtocolError } from "./errors.js";
import { parseHealth, parseJobState } from "./results.js";
import { type EndpointHealth, type JobInput, type JobPolicy, type JobState, isFinalStatus } from "./types.js";

/** How often a failed call is tried, and how long to wait between tries. */
export interface RetryPolicy {
  /** Total tries, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** How `waitUntilDone` spaces its status calls: from `initialMs`, times `factor` while nothing changes. */
export interface PollPolicy {
  initialMs: number;
  factor: number;
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 500, maxDelayMs: 8_000 };
// A progress bar wants fast polls while things move; a long queue should not cost a call every 250 ms.
export const DEFAULT_POLL: PollPolicy = { initialMs: 250, factor: 1.5, maxMs: 3_000 };
/** RunPod's longest `/runsync?wait=`: 5 minutes. */
export const MAX_RUNSYNC_WAIT_MS = 300_000;

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export interface RunPodClientOptions {
  /** `https://api.runpod.ai/v2/<endpoint id>`, or a proxy that adds the key (`/api/runpod`). */
  endpointUrl: string;
  /** Sent as `Authorization: Bearer <key>`. Server-side only: never give a browser the key. */
  apiKey?: string;
  fetch?: typeof globalThis.fetch;
  retry?: Partial<RetryPolicy>;
  poll?: Partial<PollPolicy>;
  /** Told before each retry, so a page can say "trying again" instead of going quiet. */
  onRetry?: (event: RetryEvent) => void;
  /** Tests replace the clock and the jitter. */
  sleep?: Sleep;
  random?: () => number;
}

export interface RetryEvent {
  /** `/run`, `/status`, ... */
  path: string;
  /** The attempt that failed (1-based) and how many there will be at most. */
  attempt: number;
  attempts: number;
  delayMs: number;
  /** "HTTP 502: ..." or "network error". */
  reason: string;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface RunOptions extends CallOptions {
  policy?: JobPolicy;
}

export interface RunSyncOptions extends RunOptions {
  /** How long RunPod holds the request open before answering with a job that is still running. */
  waitMs?: number;
}

export interface WaitOptions extends CallOptions {
  /** Called with the first state and then each time the status or progress output changes. */
  onUpdate?: (state: JobState) => void;
  poll?: Partial<PollPolicy>;
}

type Method = "GET" | "POST";

export class RunPodClient {
  private readonly _endpointUrl: string;
  private readonly _apiKey: string | undefined;
  private readonly _fetch: typeof globalThis.fetch;
  private readonly _retry: RetryPolicy;
  private readonly _poll: PollPolicy;
  private readonly _sleep: Sleep;
  private readonly _random: () => number;
  private readonly _onRetry: (event: RetryEvent) => void;

  constructor(options: RunPodClientOptions) {
    if (!options.endpointUrl) throw new TypeError("RunPodClient needs an endpointUrl");
    this._endpointUrl = options.endpointUrl.replace(/\/+$/, "");
    this._apiKey = options.apiKey;
    // Bound, because calling an unbound window.fetch throws "Illegal invocation" in browsers.
    this._fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this._retry = { ...DEFAULT_RETRY, ...options.retry };
    this._poll = { ...DEFAULT_POLL, ...options.poll };
    this._sleep = options.sleep ?? abortableSleep;
    this._random = options.random ?? Math.random;
    this._onRetry = options.onRetry ?? (() => undefined);
    if (this._retry.attempts < 1) throw new RangeError("retry.attempts must be at least 1");
  }

  /** Queue a job (`POST /run`); answers at once with its id and IN_QUEUE. */
  async run(input: JobInput, options: RunOptions = {}): Promise<JobState> {
    const body = await this._request(
      "POST",
      "run",
      requestBody(input, options.policy),
      options.signal,
      false,
    );
    return parseJobState(body);
  }

  /** Run a job and hold the request open until it ends or `waitMs` passes (`POST /runsync`). */
  async runSync(input: JobInput, options: RunSyncOptions = {}): Promise<JobState> {
    let path = "runsync";
    if (options.waitMs !== undefined) {
      const wait = Math.round(options.waitMs);
      if (!(wait >= 1000 && wait <= MAX_RUNSYNC_WAIT_MS)) {
        throw new RangeError(`waitMs must be between 1000 and ${MAX_RUNSYNC_WAIT_MS}, got ${options.waitMs}`);
      }
      path += `?wait=${wait}`;
    }
    const body = await this._request("POST", path, requestBody(input, options.policy), options.signal, false);
    return parseJobState(body);
  }

  /** The job's current state (`GET /status/{id}`); while running, `output` is its latest progress. */
  async status(jobId: string, options: CallOptions = {}): Promise<JobState> {
    return parseJobState(
      await this._request("GET", `status/${jobPath(jobId)}`, undefined, options.signal, true),
    );
  }

  /** Ask RunPod to cancel the job (`POST /cancel/{id}`). The job turns CANCELLED soon after. */
  async cancel(jobId: string, options: CallOptions = {}): Promise<JobState> {
    return parseJobState(
      await this._request("POST", `cancel/${jobPath(jobId)}`, undefined, options.signal, true),
    );
  }

  /** Queue and worker counts (`GET /health`). */
  async health(options: CallOptions = {}): Promise<EndpointHealth> {
    return parseHealth(await this._request("GET", "health", undefined, options.signal, true));
  }

  /**
   * Poll `/status` until the job is final (COMPLETED, FAILED, CANCELLED or TIMED_OUT) and return
   * that state. Aborting the signal stops waiting; it does not cancel the job (call `cancel`).
   */
  async waitUntilDone(jobId: string, options: WaitOptions = {}): Promise<JobState> {
    const poll = { ...this._poll, ...options.poll };
    let delayMs = poll.initialMs;
    let seen = "";
    for (;;) {
      const state = await this.status(jobId, options);
      if (isFinalStatus(state.status)) {
        options.onUpdate?.(state);
        return state;
      }
      const fingerprint = `${state.status} ${JSON.stringify(state.output ?? null)}`;
      if (fingerprint !== seen) {
        seen = fingerprint;
        delayMs = poll.initialMs;
        options.onUpdate?.(state);
      } else {
        delayMs = Math.min(poll.maxMs, delayMs * poll.factor);
      }
      await this._sleep(delayMs, options.signal);
    }
  }

  /** `run`, then `waitUntilDone`; `onUpdate` also sees the IN_QUEUE answer of `/run`. */
  async runAndWait(input: JobInput, options: RunOptions & WaitOptions = {}): Promise<JobState> {
    const queued = await this.run(input, options);
    options.onUpdate?.(queued);
    return this.waitUntilDone(queued.id, options);
  }

  /**
   * One call with retries. 429 and 5xx mean the request was not (or may be retried without harm
   * when it was not) acted on, so every call retries them, as RunPod advises. A connection that
   * fails mid-request is ambiguous: a `/run` may have queued a job whose id we never saw, so
   * only `retryOnNetworkError` calls (status, cancel, health: safe to repeat) retry those.
   */
  private async _request(
    method: Method,
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
    retryOnNetworkError: boolean,
  ): Promise<unknown> {
    const url = `${this._endpointUrl}/${path}`;
    const shownPath = `/${path.split("?")[0]}`;
    const headers: Record<string, string> = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (this._apiKey) headers.Authorization = `Bearer ${this._apiKey}`;
    const payload = body === undefined ? null : JSON.stringify(body);
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      let response: Response;
      try {
        response = await this._fetch(url, { method, headers, body: payload, signal: signal ?? null });
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (retryOnNetworkError && attempt < this._retry.attempts) {
          const delayMs = this._backoffMs(attempt);
          this._onRetry({
            path: shownPath,
            attempt,
            attempts: this._retry.attempts,
            delayMs,
            reason: "network error",
          });
          await this._sleep(delayMs, signal);
          continue;
        }
        throw new RunPodNetworkError(shownPath, error);
      }
      const text = await readText(response, signal, shownPath);
      if (response.ok) return parseJson(text, shownPath);
      if (isRetryable(response.status) && attempt < this._retry.attempts) {
        const delayMs = this._retryAfterMs(response) ?? this._backoffMs(attempt);
        const reason = `HTTP ${response.status}: ${errorDetail(text)}`;
        this._onRetry({ path: shownPath, attempt, attempts: this._retry.attempts, delayMs, reason });
        await this._sleep(delayMs, signal);
        continue;
      }
      throw new RunPodHttpError(response.status, errorDetail(text), shownPath);
    }
  }

  /** Exponential backoff with jitter, so many clients that failed together do not retry together. */
  private _backoffMs(attempt: number): number {
    const ceiling = Math.min(this._retry.maxDelayMs, this._retry.baseDelayMs * 2 ** (attempt - 1));
    return Math.round(ceiling * (0.5 + this._random() * 0.5));
  }

  private _retryAfterMs(response: Response): number | null {
    const header = response.headers.get("Retry-After");
    if (header === null) return null;
    const seconds = Number(header);
    const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
    if (!Number.isFinite(ms)) return null;
    return Math.min(this._retry.maxDelayMs, Math.max(0, ms));
  }
}

function isRetryable(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599);
}

function requestBody(input: JobInput, policy: JobPolicy | undefined): Record<string, unknown> {
  return policy === undefined ? { input } : { input, policy };
}

function jobPath(jobId: string): string {
  if (typeof jobId !== "string" || jobId.trim() === "") throw new TypeError("a job id is required");
  return encodeURIComponent(jobId);
}

async function readText(response: Response, signal: AbortSignal | undefined, path: string): Promise<string> {
  try {
    return await response.text();
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw new RunPodNetworkError(path, error);
  }
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    const shown = text.length > 200 ? `${text.slice(0, 200)}...` : text;
    throw new RunPodProtocolError(`${path} answered with something that is not JSON: ${shown}`);
  }
}

/** The endpoint's reason for an error status: its JSON `error`/`message`, else the body text. */
function errorDetail(text: string): string {
  let detail = text.trim();
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null) {
      const { error, message } = parsed as { error?: unknown; message?: unknown };
      if (typeof error === "string") detail = error;
      else if (typeof message === "string") detail = message;
    }
  } catch {
    // Not JSON (a gateway's HTML page, say): the trimmed text is the best we have.
  }
  return detail.length > 500 ? `${detail.slice(0, 500)}...` : detail;
}

/** setTimeout as a promise that rejects with the signal's reason when aborted. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
