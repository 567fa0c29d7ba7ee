/** The top bar: which endpoint the app server talks to, and its queue and workers, kept fresh. */

import type { RunPodClient } from "../api/index.js";
import { type AppInfo, fetchAppInfo } from "./app-server.js";
import { h, replaceChildren } from "./dom.js";

const HEALTH_INTERVAL_MS = 15_000;

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

/** Show `/health` now and every 15 s: a quiet way to see a queue building up or workers gone. */
export function watchHealth(target: HTMLElement, api: RunPodClient): void {
  const refresh = async (): Promise<void> => {
    try {
      const health = await api.health();
      const { idle, running } = health.workers;
      const { inQueue, inProgress } = health.jobs;
      replaceChildren(
        target,
        `Workers: ${idle} idle, ${running} running · Jobs: ${inQueue} in queue, ${inProgress} running`,
      );
      target.dataset.state = "ok";
    } catch (error) {
      const message = `Health check failed: ${(error as Error).message}`;
      replaceChildren(target, h("span", { class: "error-inline" }, message));
      target.dataset.state = "error";
    }
  };
  void refresh();
  window.setInterval(() => void refresh(), HEALTH_INTERVAL_MS);
}
