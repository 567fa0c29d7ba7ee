/**
 * Submits jobs and follows each one to its end through the API module, writing what it learns to
 * the store. One poller per job, so several jobs can run while the page shows any one of them.
 */

import {
  type JobInput,
  type RunPodClient,
  isFinalStatus,
  jobOutcome,
  mergeProgress,
  parseProgress,
} from "../api/index.js";
import type { JobStore } from "./job-store.js";

export class JobController {
  private readonly _api: RunPodClient;
  private readonly _store: JobStore;
  private readonly _watching = new Map<string, AbortController>();

  constructor(api: RunPodClient, store: JobStore) {
    this._api = api;
    this._store = store;
  }

  /** Queue the job and start following it; resolves with its id once RunPod has it. */
  async submit(input: JobInput, workflowName: string): Promise<string> {
    const queued = await this._api.run(input);
    this._store.add({
      id: queued.id,
      workflowName,
      submittedAt: Date.now(),
      status: queued.status,
      state: queued,
      progress: null,
      outcome: null,
      clientError: null,
      finishedAt: null,
    });
    this.follow(queued.id);
    return queued.id;
  }

  /** Poll the job until it is final (no-op if already following it or it already has its outcome). */
  follow(id: string): void {
    const record = this._store.get(id);
    if (record === undefined || record.outcome !== null || this._watching.has(id)) return;
    const abort = new AbortController();
    this._watching.set(id, abort);
    this._store.update(id, { clientError: null });
    this._api
      .waitUntilDone(id, {
        signal: abort.signal,
        onUpdate: (state) => {
          const patch: Parameters<JobStore["update"]>[1] = { status: state.status, state };
          if (state.status === "IN_PROGRESS") {
            const previous = this._store.get(id)?.progress ?? null;
            patch.progress = mergeProgress(previous, parseProgress(state.output));
          }
          if (isFinalStatus(state.status)) {
            patch.outcome = jobOutcome(state);
            patch.finishedAt = record.finishedAt ?? Date.now();
          }
          this._store.update(id, patch);
        },
      })
      .catch((error: unknown) => {
        if (abort.signal.aborted) return;
        this._store.update(id, { clientError: error instanceof Error ? error.message : String(error) });
      })
      .finally(() => this._watching.delete(id));
  }

  /**
   * Ask RunPod to cancel; the poller then sees CANCELLED (or the job's real end, if it won the
   * race). Never throws: a refused cancel is recorded on the job, and the answer says whether
   * RunPod took the request, so the page can offer Cancel again.
   */
  async cancel(id: string): Promise<boolean> {
    let accepted = true;
    try {
      await this._api.cancel(id);
    } catch (error) {
      accepted = false;
      const reason = error instanceof Error ? error.message : String(error);
      this._store.update(id, { clientError: `cancel failed: ${reason}` });
    }
    this.follow(id);
    return accepted;
  }

  /** Stop polling (the page is going away); jobs keep running on the endpoint. */
  stopAll(): void {
    for (const abort of this._watching.values()) abort.abort();
    this._watching.clear();
  }
}
