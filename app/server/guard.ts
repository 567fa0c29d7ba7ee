/**
 * Who may use the app server. It spends the RunPod key on behalf of whoever reaches it, so two
 * browser attacks on a server listening on 127.0.0.1 are refused here:
 *
 * - DNS rebinding: a page at evil.example whose name is made to resolve to 127.0.0.1 reaches us
 *   as "same origin", but its requests carry `Host: evil.example`. Only the names in
 *   `allowedHosts` (loopback, APP_HOST, APP_ALLOWED_HOSTS) are answered.
 * - Cross-site requests: any page can send a simple POST to 127.0.0.1 (a form, or fetch in
 *   no-cors mode) without reading the answer, which would be enough to run jobs. A POST whose
 *   `Origin` is not this server's is refused, and a job request must be `application/json`, which
 *   no cross-site request can send without a CORS preflight that this server never grants.
 */

import type { IncomingMessage } from "node:http";

export interface Refusal {
  status: number;
  error: string;
}

const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]", "::1"];

/** The host names the server answers to: loopback, its listen address, and the configured ones. */
export function allowedHostNames(listenHost: string, extra: readonly string[]): Set<string> {
  const names = new Set(LOOPBACK_NAMES);
  if (listenHost !== "0.0.0.0" && listenHost !== "::") names.add(listenHost.toLowerCase());
  for (const name of extra) names.add(name.toLowerCase());
  return names;
}

/** Null when the request may go on, else the status and reason to refuse it with. */
export function refuse(request: IncomingMessage, allowedHosts: ReadonlySet<string>): Refusal | null {
  const host = request.headers.host ?? "";
  const hostname = hostnameOf(host);
  if (!allowedHosts.has(hostname) && !/^127\.\d+\.\d+\.\d+$/.test(hostname)) {
    return {
      status: 403,
      error: `this app server does not answer to the host name ${JSON.stringify(hostname)}; add it to APP_ALLOWED_HOSTS`,
    };
  }
  const method = request.method ?? "GET";
  if (method === "GET" || method === "HEAD") return null;
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== "null" && originHost(origin) !== host.toLowerCase()) {
    return { status: 403, error: `requests from ${origin} are not allowed` };
  }
  if (origin === "null") return { status: 403, error: "requests from an opaque origin are not allowed" };
  return null;
}

/** A request body must be declared JSON (see the module docstring for why). */
export function refuseNonJson(request: IncomingMessage): Refusal | null {
  const type = (request.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
  return type === "application/json"
    ? null
    : { status: 415, error: "a job request must be sent as Content-Type: application/json" };
}

function hostnameOf(host: string): string {
  const lower = host.toLowerCase();
  if (lower.startsWith("[")) return lower.slice(0, lower.indexOf("]") + 1);
  return lower.split(":")[0] ?? "";
}

function originHost(origin: string): string | null {
  try {
    return new URL(origin).host.toLowerCase();
  } catch {
    return null;
  }
}
