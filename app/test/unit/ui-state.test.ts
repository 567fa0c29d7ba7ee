/** The page's state without a page: the job store, the controller that feeds it, progress text. */

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { RunPodClient } from "../../src/api/index.js";
import { JobController } from "../../src/ui/job-controller.js";
import { type JobRecord, JobStore } from "../../src/ui/job-store.js";
import { statusText } from "../../src/ui/jobs-list.js";
import { describeProgress } from "../../src/ui/progress-view.js";
import { MockServer } from "./support/mock-server.js";

/** sessionStorage's interface over a Map; `full` makes setItem throw like a full quota. */
class MemoryStorage implements Storage {
  readonly items = new Map<string, string>();
  full = false;
  get length(): number {
    return this.items.size;
  }
  clear(): void {
    this.items.clear();
  }
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  key(index: number): string | null {
    return [...this.items.keys()][index] ?? null;
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
  setItem(key: string, value: string): void {
    if (this.full) throw new DOMException("quota", "QuotaExceededError");
    this.items.set(key, value);
  }
}

function record(id: string, submittedAt: number, patch: Partial<JobRecord> = {}): JobRecord {
  return {
    id,
    workflowName: "wf",
    submittedAt,
    status: "IN_QUEUE",
    state: null,
    progress: null,
    outcome: null,
    clientError: null,
    finishedAt: null,
    ...patch,
  };
}

describe("JobStore", () => {
  it("lists newest first, tells subscribers which job changed, and forgets unsubscribers", () => {
    const store = new JobStore(null);
    const changes: Array<string | null> = [];
    const unsubscribe = store.subscribe((id) => changes.push(id));
    store.add(record("a", 1));
    store.add(record("b", 2));
    store.update("a", { status: "COMPLETED" });
    store.update("missing", { status: "FAILED" });
    unsubscribe();
    store.update("b", { status: "FAILED" });
    expect(store.list().map((r) => r.id)).toEqual(["b", "a"]);
    expect(changes).toEqual(["a", "b", "a"]);
  });

  it("keeps ids, names and statuses (not results) across a reload", () => {
    const storage = new MemoryStorage();
    const store = new JobStore(storage);
    store.add(
      record("a", 1, {
        workflowName: "txt2img",
        status: "COMPLETED",
        finishedAt: 5,
        state: { id: "a", status: "COMPLETED", output: { big: "x" } },
      }),
    );
    const restored = new JobStore(storage).get("a");
    expect(restored).toEqual(record("a", 1, { workflowName: "txt2img", status: "COMPLETED", finishedAt: 5 }));
    expect(storage.getItem("comfy-studio-test-app.jobs")).not.toContain("big");
  });

  it("starts empty from corrupt storage, and carries on when storage is full", () => {
    const storage = new MemoryStorage();
    storage.setItem("comfy-studio-test-app.jobs", "{not json");
    expect(new JobStore(storage).list()).toEqual([]);
    storage.setItem(
      "comfy-studio-test-app.jobs",
      JSON.stringify([{ id: 3 }, null, { id: "ok", status: "FAILED" }]),
    );
    expect(new JobStore(storage).list().map((r) => r.id)).toEqual(["ok"]);
    storage.full = true;
    const store = new JobStore(storage);
    expect(() => store.add(record("x", 9))).not.toThrow();
    expect(store.get("x")?.id).toBe("x");
  });
});

describe("JobController against a scripted endpoint", () => {
  let mock: MockServer;
  beforeAll(async () => {
    mock = await MockServer.start();
  });
  afterAll(async () => {
    await mock.stop();
  });
  beforeEach(() => mock.reset());

  function controller(): { store: JobStore; jobs: JobController } {
    const api = new RunPodClient({
      endpointUrl: `${mock.url}/v2/e`,
      poll: { initialMs: 5, maxMs: 5 },
      retry: { attempts: 1 },
    });
    const store = new JobStore(null);
    return { store, jobs: new JobController(api, store) };
  }

  async function settled(store: JobStore, id: string): Promise<JobRecord> {
    for (let i = 0; i < 200; i++) {
      const found = store.get(id);
      if (found?.outcome !== null || found?.clientError !== null) return found as JobRecord;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Error("the job never settled");
  }

  it("submits, records progress, and ends with the outcome", async () => {
    mock.reply(
      { body: { id: "j1", status: "IN_QUEUE" } },
      {
        body: {
          id: "j1",
          status: "IN_PROGRESS",
          output: { stage: "running", node: "3", node_class: "KSampler", step: 2, max_steps: 4, percent: 50 },
        },
      },
      {
        body: { id: "j1", status: "COMPLETED", output: { images: [], text: [{ node_id: "1", text: "hi" }] } },
      },
    );
    const { store, jobs } = controller();
    const progress: Array<number | null> = [];
    store.subscribe((id) => progress.push(store.get(id ?? "")?.progress?.percent ?? null));
    expect(await jobs.submit({ workflow: {} }, "wf")).toBe("j1");
    const done = await settled(store, "j1");
    expect(done.status).toBe("COMPLETED");
    expect(done.outcome).toMatchObject({
      kind: "completed",
      result: { text: [{ nodeId: "1", text: "hi" }] },
    });
    expect(done.finishedAt).not.toBeNull();
    expect(progress).toContain(50);
  });

  it("records a failed poll on the job, and follows again on request", async () => {
    mock.reply({ body: { id: "j2", status: "IN_QUEUE" } }, { status: 404, body: { error: "job not found" } });
    const { store, jobs } = controller();
    await jobs.submit({ workflow: {} }, "wf");
    const lost = await settled(store, "j2");
    expect(lost.clientError).toBe(
      "/status/j2 answered HTTP 404: job not found (unknown endpoint id, or a job id RunPod no longer keeps)",
    );
    mock.reply({ body: { id: "j2", status: "CANCELLED" } });
    jobs.follow("j2");
    expect(store.get("j2")?.clientError).toBeNull();
    expect((await settled(store, "j2")).outcome).toEqual({ kind: "cancelled" });
  });

  it("records a refused cancel instead of throwing", async () => {
    mock.reply({ body: { id: "j3", status: "IN_QUEUE" } });
    mock.otherwise((request) =>
      request.path.includes("cancel")
        ? { status: 401, raw: "Unauthorized" }
        : { body: { id: "j3", status: "IN_QUEUE" } },
    );
    const { store, jobs } = controller();
    await jobs.submit({ workflow: {} }, "wf");
    expect(await jobs.cancel("j3")).toBe(false);
    expect(store.get("j3")?.clientError).toMatch(/^cancel failed: \/cancel\/j3 answered HTTP 401/);
    jobs.stopAll();
  });
});

describe("describeProgress", () => {
  const base = {
    stage: "running",
    node: null,
    nodeClass: null,
    step: null,
    maxSteps: null,
    nodesDone: null,
    nodesTotal: null,
    percent: null,
    activity: null,
    elapsedS: null,
    nodeElapsedS: null,
  };

  it.each([
    ["IN_QUEUE", null, "Waiting for a worker"],
    ["IN_PROGRESS", null, "Running"],
    ["IN_PROGRESS", { ...base, stage: "uploading" }, "Uploading input images"],
    [
      "IN_PROGRESS",
      { ...base, node: "3", nodeClass: "KSampler", step: 7, maxSteps: 20, nodesDone: 2, nodesTotal: 4 },
      "Running KSampler (node 3), step 7 of 20, 2 of 4 nodes done",
    ],
    ["IN_PROGRESS", { ...base, node: "9" }, "Running node (node 9)"],
    [
      "IN_PROGRESS",
      {
        ...base,
        node: "1",
        nodeClass: "CheckpointLoaderSimple",
        activity: "loading model sd15.safetensors",
        nodeElapsedS: 37.4,
        nodesDone: 0,
        nodesTotal: 7,
      },
      "Running CheckpointLoaderSimple (node 1), loading model sd15.safetensors for 37 s, 0 of 7 nodes done",
    ],
    ["IN_PROGRESS", { ...base, stage: "warming_up" }, "warming_up"],
    [
      "IN_PROGRESS",
      {
        ...base,
        stage: "waiting",
        activity: "queued behind another job in this worker",
        nodesDone: 0,
        nodesTotal: 7,
        percent: 0,
      },
      "Waiting in the worker, queued behind another job in this worker",
    ],
  ] as const)("%s %j reads %j", (status, progress, text) => {
    expect(describeProgress(status, progress)).toBe(text);
  });

  it("names a job its worker holds behind another 'waiting in worker', not 'in queue' nor 'running'", () => {
    const waiting = { ...base, stage: "waiting", activity: "queued behind another job in this worker" };
    expect(statusText("IN_PROGRESS", waiting)).toBe("waiting in worker");
    expect(statusText("IN_PROGRESS", base)).toBe("running");
    expect(statusText("IN_PROGRESS", null)).toBe("running");
    expect(statusText("IN_QUEUE", null)).toBe("in queue");
    expect(statusText("COMPLETED", waiting)).toBe("completed"); // the last progress outlives the run
  });
});
