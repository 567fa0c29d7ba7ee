/**
 * This session's jobs: what was submitted, where each one is, and how it ended. Views subscribe
 * and redraw; only the controller writes. Ids, names and statuses also go to sessionStorage so a
 * reload still lists them (results are re-read from RunPod, which keeps them for 30 minutes).
 */

import type { JobOutcome, JobState, JobStatus, Progress } from "../api/index.js";

export interface JobRecord {
  id: string;
  workflowName: string;
  submittedAt: number;
  status: JobStatus;
  /** The latest answer from the endpoint, null for a record restored after a reload. */
  state: JobState | null;
  progress: Progress | null;
  outcome: JobOutcome | null;
  /** Why this page could not follow the job (network, HTTP error); the job itself may be fine. */
  clientError: string | null;
  finishedAt: number | null;
}

const STORAGE_KEY = "comfy-studio-test-app.jobs";
const MAX_REMEMBERED = 50;

type Listener = (changedId: string | null) => void;

export class JobStore {
  private readonly _records = new Map<string, JobRecord>();
  private readonly _listeners = new Set<Listener>();
  private readonly _storage: Storage | null;

  constructor(storage: Storage | null) {
    this._storage = storage;
    for (const saved of this._load()) this._records.set(saved.id, saved);
  }

  /** Newest first. */
  list(): JobRecord[] {
    return [...this._records.values()].sort((a, b) => b.submittedAt - a.submittedAt);
  }

  get(id: string): JobRecord | undefined {
    return this._records.get(id);
  }

  add(record: JobRecord): void {
    this._records.set(record.id, record);
    this._changed(record.id);
  }

  update(id: string, patch: Partial<Omit<JobRecord, "id">>): void {
    const record = this._records.get(id);
    if (record === undefined) return;
    Object.assign(record, patch);
    this._changed(id);
  }

  subscribe(listener: Listener): () => void {
    this._listeners.add(listener);
    return () => this._listeners.delete(listener);
  }

  private _changed(id: string): void {
    this._save();
    for (const listener of this._listeners) listener(id);
  }

  private _save(): void {
    if (this._storage === null) return;
    const saved = this.list()
      .slice(0, MAX_REMEMBERED)
      .map(({ id, workflowName, submittedAt, status, finishedAt }) => ({
        id,
        workflowName,
        submittedAt,
        status,
        finishedAt,
      }));
    try {
      this._storage.setItem(STORAGE_KEY, JSON.stringify(saved));
    } catch {
      // Storage full or disabled (private windows): the list simply does not survive a reload.
    }
  }

  private _load(): JobRecord[] {
    if (this._storage === null) return [];
    try {
      const saved: unknown = JSON.parse(this._storage.getItem(STORAGE_KEY) ?? "[]");
      if (!Array.isArray(saved)) return [];
      return saved.flatMap((item: Record<string, unknown>) =>
        typeof item?.id === "string" && typeof item.status === "string"
          ? [
              {
                id: item.id,
                workflowName: typeof item.workflowName === "string" ? item.workflowName : "workflow",
                submittedAt: typeof item.submittedAt === "number" ? item.submittedAt : 0,
                status: item.status as JobStatus,
                state: null,
                progress: null,
                outcome: null,
                clientError: null,
                finishedAt: typeof item.finishedAt === "number" ? item.finishedAt : null,
              },
            ]
          : [],
      );
    } catch {
      return [];
    }
  }
}
