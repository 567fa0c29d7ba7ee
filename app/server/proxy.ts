/**
 * The browser's only way to the endpoint: `/api/runpod/<call>` becomes the same call on
 * `${RUNPOD_ENDPOINT_BASE_URL}/${RUNPOD_ENDPOINT_ID}/<call>` with the API key added here, so the key never
 * reaches the page. Only the five calls the app needs pass, and a job request passes only its
 * `input` and `policy`: `webhook` and `s3Config` are the server's decisions (a page that could set
 * them could make RunPod call any URL, or send outputs to any bucket). The server's own bucket
 * (APP_S3_CONFIG_FILE) and default output mode (APP_OUTPUT) are added here.
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { AppConfig, StorageConfig } from "./config.js";
import { refuseNonJson } from "./guard.js";
import { BodyTooLarge, readBody, sendJson } from "./http.js";

type Route = { method: "GET" | "POST"; upstreamPath: string; hasBody: boolean };

const JOB_ID = /^[A-Za-z0-9_-]{1,128}$/;
const MB = 1024 * 1024;
const RUN_LIMIT = 10 * MB;
const RUNSYNC_LIMIT = 20 * MB;

/** The upstream call for `/api/runpod/<rest>`, or null when the app does not offer it. */
export function routeFor(method: string, rest: string, search: URLSearchParams): Route | null {
  const [call, id, extra] = rest.split("/");
  if (extra !== undefined) return null;
  if (method === "POST" && call === "run" && id === undefined)
    return { method, upstreamPath: "run", hasBody: true };
  if (method === "POST" && call === "runsync" && id === undefined) {
    const wait = search.get("wait");
    if (wait === null) return { method, upstreamPath: "runsync", hasBody: true };
    return /^\d{1,6}$/.test(wait) ? { method, upstreamPath: `runsync?wait=${wait}`, hasBody: true } : null;
  }
  if (method === "GET" && call === "health" && id === undefined)
    return { method, upstreamPath: "health", hasBody: false };
  if (id === undefined || !JOB_ID.test(id)) return null;
  if (method === "GET" && call === "status") return { method, upstreamPath: `status/${id}`, hasBody: false };
  if (method === "POST" && call === "cancel") return { method, upstreamPath: `cancel/${id}`, hasBody: false };
  return null;
}

export interface ProxyDeps {
  fetch: typeof globalThis.fetch;
  log: (line: string) => void;
}

export async function proxyRunPod(
  request: IncomingMessage,
  response: ServerResponse,
  rest: string,
  search: URLSearchParams,
  config: AppConfig,
  deps: ProxyDeps,
): Promise<void> {
  const route = routeFor(request.method ?? "GET", rest, search);
  if (route === null) {
    sendJson(response, 404, { error: `the app does not proxy ${request.method} /api/runpod/${rest}` });
    return;
  }
  let body: string | null = null;
  if (route.hasBody) {
    const refusal = refuseNonJson(request);
    if (refusal !== null) {
      sendJson(response, refusal.status, { error: refusal.error });
      return;
    }
    // RunPod's own limit for the route (10 MB /run, 20 MB /runsync), or APP_MAX_BODY_MB if lower.
    const limit = Math.min(config.maxBodyBytes, route.upstreamPath === "run" ? RUN_LIMIT : RUNSYNC_LIMIT);
    const built = await jobRequestBody(request, limit, config.maxBodyBytes, config.storage);
    if ("error" in built) {
      sendJson(response, built.status, { error: built.error });
      return;
    }
    body = built.body;
  }
  // A browser that goes away (tab closed, request aborted) should not leave a runsync hanging here.
  const abort = new AbortController();
  response.on("close", () => abort.abort());
  const started = Date.now();
  let upstream: Response;
  try {
    upstream = await deps.fetch(`${config.baseUrl}/${config.endpointId}/${route.upstreamPath}`, {
      method: route.method,
      headers: {
        Authorization: `Bearer ${config.apiKey}`,
        Accept: "application/json",
        ...(body === null ? {} : { "Content-Type": "application/json" }),
      },
      body,
      signal: abort.signal,
    });
  } catch (error) {
    if (abort.signal.aborted) return;
    deps.log(`${route.method} ${route.upstreamPath} -> unreachable: ${(error as Error).message}`);
    sendJson(response, 502, { error: `the RunPod endpoint could not be reached: ${causeOf(error)}` });
    return;
  }
  deps.log(`${route.method} ${route.upstreamPath} -> ${upstream.status} in ${Date.now() - started} ms`);
  const headers: Record<string, string> = {
    "Content-Type": upstream.headers.get("Content-Type") ?? "application/json",
    "Cache-Control": "no-store",
  };
  const retryAfter = upstream.headers.get("Retry-After");
  if (retryAfter !== null) headers["Retry-After"] = retryAfter;
  response.writeHead(upstream.status, headers);
  if (upstream.body === null) {
    response.end();
    return;
  }
  // Streamed: a finished job's result can be tens of megabytes of base64.
  Readable.fromWeb(upstream.body as import("node:stream/web").ReadableStream)
    .on("error", () => response.destroy())
    .pipe(response);
}

/** `{input, policy?}` from the page's body, or the status and reason to refuse it with. */
async function jobRequestBody(
  request: IncomingMessage,
  maxBytes: number,
  configuredBytes: number,
  storage: StorageConfig,
): Promise<{ body: string } | { status: number; error: string }> {
  let text: string;
  try {
    text = await readBody(request, maxBytes);
  } catch (error) {
    if (error instanceof BodyTooLarge) {
      const mb = (maxBytes / MB).toFixed(0);
      const why = maxBytes === configuredBytes ? " (APP_MAX_BODY_MB)" : "";
      return {
        status: 413,
        error: `the job request is larger than ${mb} MB${why}; RunPod takes at most 10 MB on /run and 20 MB on /runsync, so send smaller input images`,
      };
    }
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { status: 400, error: "the job request is not JSON" };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return { status: 400, error: "the job request must be a JSON object {input: {...}}" };
  }
  const { input, policy } = parsed as { input?: unknown; policy?: unknown };
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return { status: 400, error: "the job request has no input object" };
  }
  const job: Record<string, unknown> = { input };
  if (storage.output !== null && (input as Record<string, unknown>).output === undefined) {
    job.input = { ...input, output: storage.output };
  }
  if (policy !== undefined) job.policy = policy;
  if (storage.s3Config !== null) job.s3Config = storage.s3Config;
  return { body: JSON.stringify(job) };
}

function causeOf(error: unknown): string {
  // undici reports "fetch failed" and keeps the useful part (ECONNREFUSED, ...) in `cause`.
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}
