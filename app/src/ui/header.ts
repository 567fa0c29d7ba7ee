/** The top bar: which endpoint the app server talks to, and its queue and workers, kept fresh. */

import type { RetryEvent, RunPodClient } from "../api/index.js";
import { type AppInfo, fetchAppInfo } from "./app-server.js";
import { h, replaceChildren } from "./dom.js";

const HEALTH_INTERVAL_MS = 5_000;
/** At most one extra check this often when jobs change (a submit, a job ending). */
const HEALTH_NUDGE_MS = 1_000;

/** Show the endpoint (resolves with the app server's settings, or null when it did not answer). */
export async function showEndpoint(target: HTMLElement): Promise<AppInfo | null> {
  try {
    const info = await fetchAppInfo();
    replaceChildren(
      target,
      "Endpoint ",
      h("code", {}, info.endpointId),
      ` at ${info.endpointUrl}`,
      info.local ? " (this machine)" : "",
    );
    return info;
  } catch (error) {
    replaceChildren(target, h("span", { class: "error-inline" }, `App server: ${(error as Error).message}`));
    return null;
  }
}

/**
 * Show `/health` now, every 5 s, and soon after `nudge()` (a job was submitted or ended), with the
 * time of the answer: a quiet way to see a queue building up or workers gone.
 */
export function watchHealth(target: HTMLElement, api: RunPodClient): { nudge(): void } {
  const refresh = async (): Promise<void> => {
    try {
      const health = await api.health();
      const { idle, running } = health.workers;
      const { inQueue, inProgress } = health.jobs;
      const at = new Date().toLocaleTimeString("en-GB");
      replaceChildren(
        target,
        `Workers: ${idle} idle, ${running} running · Jobs: ${inQueue} in queue, ${inProgress} in workers`,
        h("span", { class: "health-time" }, ` (at ${at})`),
      );
      target.dataset.state = "ok";
      target.dataset.checkedAt = String(Date.now());
    } catch (error) {
      const message = `Health check failed: ${(error as Error).message}`;
      replaceChildren(target, h("span", { class: "error-inline" }, message));
      target.dataset.state = "error";
      target.dataset.checkedAt = String(Date.now());
    }
  };
  void refresh();
  window.setInterval(() => void refresh(), HEALTH_INTERVAL_MS);
  let pending = 0;
  return {
    nudge: () => {
      if (pending !== 0) return;
      pending = window.setTimeout(() => {
        pending = 0;
        void refresh();
      }, HEALTH_NUDGE_MS);
    },
  };
}

/** Says, while the client retries, that the endpoint is not answering and what happens next. */
export function connectionNotice(target: HTMLElement): (event: RetryEvent) => void {
  let hide = 0;
  return (event) => {
    target.hidden = false;
    target.textContent = `The endpoint did not answer ${event.path} (${event.reason}); trying again in ${(event.delayMs / 1000).toFixed(1)} s (attempt ${event.attempt + 1} of ${event.attempts}).`;
    window.clearTimeout(hide);
    hide = window.setTimeout(() => {
      target.hidden = true;
    }, event.delayMs + 4000);
  };
}
