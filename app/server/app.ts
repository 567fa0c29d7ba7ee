/**
 * The app server's routes, wired to their modules:
 *
 *   /api/runpod/*          proxy to the endpoint, key added here (proxy.ts)
 *   /api/workflows         the workflow picker's list; /api/workflows/<path> one file (workflows.ts);
 *                          PUT /api/workflows/<name>.inputs.json saves a workflow's exposed inputs
 *   /api/config            what the page may know about the endpoint: its id and URL, never the key
 *   /api/models            model file names by folder, from the image's manifest.toml (models.ts)
 *   everything else (GET)  the built front end (static.ts)
 */

import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import { type AppConfig, isLoopback } from "./config.js";
import { allowedHostNames, refuse, refuseNonJson } from "./guard.js";
import { BodyTooLarge, readBody, sendJson } from "./http.js";
import { readModelLists } from "./models.js";
import { proxyRunPod } from "./proxy.js";
import { serveStatic } from "./static.js";
import {
  MAX_SIDECAR_BYTES,
  isSidecar,
  listWorkflows,
  readWorkflow,
  workflowOf,
  writeSidecar,
} from "./workflows.js";

export interface AppDeps {
  fetch?: typeof globalThis.fetch;
  log?: (line: string) => void;
}

/**
 * The page loads nothing from elsewhere. gsplat sorts splats in a blob: worker running
 * WebAssembly; results are blob:/data: URLs, or https: URLs when outputs went to a bucket, or URLs
 * on the configured storage origins (a local bucket on http://127.0.0.1:PORT).
 */
export function contentSecurityPolicy(storageOrigins: readonly string[]): string {
  const outputs = ["'self'", "blob:", "data:", "https:", ...storageOrigins].join(" ");
  return [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "worker-src 'self' blob: data:",
    `img-src ${outputs}`,
    `media-src ${outputs}`,
    `connect-src ${outputs}`,
    "style-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

export function createApp(config: AppConfig, deps: AppDeps = {}): Server {
  const fetchImpl = deps.fetch ?? globalThis.fetch;
  const log = deps.log ?? ((line: string) => console.log(line));
  const allowedHosts = allowedHostNames(config.host, config.allowedHosts);
  const csp = contentSecurityPolicy(config.storage.origins);
  return createServer((request, response) => {
    response.setHeader("Content-Security-Policy", csp);
    response.setHeader("X-Content-Type-Options", "nosniff");
    response.setHeader("Referrer-Policy", "no-referrer");
    const refusal = refuse(request, allowedHosts);
    if (refusal !== null) {
      log(`refused ${request.method} ${request.url}: ${refusal.error}`);
      sendJson(response, refusal.status, { error: refusal.error });
      return;
    }
    handle(request, response, config, fetchImpl, log).catch((error: unknown) => {
      log(`error on ${request.method} ${request.url}: ${(error as Error).stack ?? String(error)}`);
      if (!response.headersSent) sendJson(response, 500, { error: "the app server failed; see its log" });
      else response.destroy();
    });
  });
}

async function handle(
  request: IncomingMessage,
  response: ServerResponse,
  config: AppConfig,
  fetchImpl: typeof globalThis.fetch,
  log: (line: string) => void,
): Promise<void> {
  const url = new URL(request.url ?? "/", "http://app.invalid");
  const method = request.method ?? "GET";
  if (url.pathname.startsWith("/api/runpod/")) {
    await proxyRunPod(
      request,
      response,
      url.pathname.slice("/api/runpod/".length),
      url.searchParams,
      config,
      {
        fetch: fetchImpl,
        log,
      },
    );
    return;
  }
  if (method === "PUT" && url.pathname.startsWith("/api/workflows/")) {
    await saveSidecar(
      request,
      response,
      config,
      decodeURIComponent(url.pathname.slice("/api/workflows/".length)),
    );
    return;
  }
  if (method !== "GET" && method !== "HEAD") {
    sendJson(response, 405, { error: `${method} is not allowed on ${url.pathname}` });
    return;
  }
  if (url.pathname === "/api/config") {
    const endpointUrl = `${config.baseUrl}/${config.endpointId}`;
    sendJson(response, 200, {
      endpointId: config.endpointId,
      endpointUrl,
      local: isLoopback(new URL(endpointUrl).hostname),
      maxBodyBytes: config.maxBodyBytes,
      // Whether the server adds a bucket and which output mode it sends by default; never the bucket's keys.
      storage: { bucket: config.storage.s3Config !== null, output: config.storage.output },
    });
    return;
  }
  if (url.pathname === "/api/models") {
    sendJson(response, 200, await readModelLists(config.modelsManifest));
    return;
  }
  if (url.pathname === "/api/workflows") {
    sendJson(response, 200, { workflows: await listWorkflows(config.workflowsDir) });
    return;
  }
  if (url.pathname.startsWith("/api/workflows/")) {
    const wanted = decodeURIComponent(url.pathname.slice("/api/workflows/".length));
    const text = await readWorkflow(config.workflowsDir, wanted);
    if (
      text === null &&
      isSidecar(wanted) &&
      (await readWorkflow(config.workflowsDir, workflowOf(wanted))) !== null
    ) {
      // A listed workflow without exposed inputs: a normal state, not an error (204, not 404).
      response.writeHead(204, { "Cache-Control": "no-store" });
      response.end();
    } else if (text === null)
      sendJson(response, 404, { error: `no workflow ${JSON.stringify(wanted)} in workflows/` });
    else {
      response.writeHead(200, {
        "Content-Type": "application/json; charset=utf-8",
        "Cache-Control": "no-store",
      });
      response.end(text);
    }
    return;
  }
  if (url.pathname.startsWith("/api/")) {
    sendJson(response, 404, { error: `no such API route: ${url.pathname}` });
    return;
  }
  await serveStatic(config.staticDir, url.pathname, response);
}

/** PUT /api/workflows/<name>.inputs.json: the exposed-inputs sidecar, saved beside its workflow. */
async function saveSidecar(
  request: IncomingMessage,
  response: ServerResponse,
  config: AppConfig,
  wanted: string,
): Promise<void> {
  if (!isSidecar(wanted)) {
    sendJson(response, 405, { error: "only exposed-inputs files (<workflow>.inputs.json) can be saved" });
    return;
  }
  const refusal = refuseNonJson(request);
  if (refusal !== null) {
    sendJson(response, refusal.status, { error: refusal.error });
    return;
  }
  let text: string;
  try {
    text = await readBody(request, MAX_SIDECAR_BYTES);
  } catch (error) {
    if (!(error instanceof BodyTooLarge)) throw error;
    sendJson(response, 413, { error: `an exposed-inputs file is at most ${MAX_SIDECAR_BYTES / 1024} KB` });
    return;
  }
  const problem = await writeSidecar(config.workflowsDir, wanted, text);
  if (problem === null) sendJson(response, 200, { saved: wanted });
  else sendJson(response, 400, { error: problem });
}
