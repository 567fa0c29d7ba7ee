/** The API client against a scripted RunPod on loopback: requests, retries, polling, aborts. */

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type JobState,
  RunPodClient,
  RunPodHttpError,
  RunPodNetworkError,
  RunPodProtocolError,
} from "../../src/api/index.js";
import { MockServer, closedPort } from "./support/mock-server.js";

let mock: MockServer;
let sleeps: number[];

beforeAll(async () => {
  mock = await MockServer.start();
});
afterAll(async () => {
  await mock.stop();
});
beforeEach(() => {
  mock.reset();
  sleeps = [];
});

/** A client whose waits are recorded instead of slept, so backoff is checked exactly and fast. */
function client(options: Partial<ConstructorParameters<typeof RunPodClient>[0]> = {}): RunPodClient {
  return new RunPodClient({
    endpointUrl: `${mock.url}/v2/ep1/`,
    apiKey: "secret-key",
    sleep: async (ms, signal) => {
      signal?.throwIfAborted();
      sleeps.push(ms);
    },
    random: () => 1,
    ...options,
  });
}

const workflow = { "1": { class_type: "EmptyImage", inputs: { width: 8 } } };

describe("requests", () => {
  it("run posts {input} with the bearer key and returns the queued job", async () => {
    mock.reply({ body: { id: "job-1", status: "IN_QUEUE" } });
    const state = await client().run({ workflow });
    expect(state).toEqual({ id: "job-1", status: "IN_QUEUE" });
    const [sent] = mock.requests;
    expect(sent?.method).toBe("POST");
    expect(sent?.path).toBe("/v2/ep1/run");
    expect(sent?.headers.authorization).toBe("Bearer secret-key");
    expect(sent?.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(sent?.body ?? "")).toEqual({ input: { workflow } });
  });

  it("sends the policy next to the input, and no Authorization header without a key", async () => {
    mock.reply({ body: { id: "j", status: "IN_QUEUE" } });
    await client({ apiKey: undefined }).run({ workflow }, { policy: { executionTimeout: 60_000 } });
    expect(mock.requests[0]?.headers.authorization).toBeUndefined();
    expect(JSON.parse(mock.requests[0]?.body ?? "")).toEqual({
      input: { workflow },
      policy: { executionTimeout: 60_000 },
    });
  });

  it("runSync passes wait and returns the final state with its output and timings", async () => {
    mock.reply({
      body: { id: "j", status: "COMPLETED", delayTime: 12, executionTime: 345, output: { images: [] } },
    });
    const state = await client().runSync({ workflow }, { waitMs: 90_000 });
    expect(mock.requests[0]?.path).toBe("/v2/ep1/runsync?wait=90000");
    expect(state).toEqual({
      id: "j",
      status: "COMPLETED",
      delayTime: 12,
      executionTime: 345,
      output: { images: [] },
    });
  });

  it("refuses a runsync wait outside RunPod's 1 s to 5 min", async () => {
    await expect(client().runSync({ workflow }, { waitMs: 400_000 })).rejects.toThrow(RangeError);
    await expect(client().runSync({ workflow }, { waitMs: 10 })).rejects.toThrow(RangeError);
    expect(mock.requests).toHaveLength(0);
  });

  it("status, cancel and health use RunPod's paths and methods", async () => {
    mock.reply(
      { body: { id: "a/b", status: "IN_PROGRESS", output: { stage: "running" } } },
      { body: { id: "a/b", status: "CANCELLED" } },
      {
        body: {
          jobs: { completed: 3, failed: 1, inProgress: 0, inQueue: 2, retried: 0 },
          workers: { idle: 1, running: 0, throttled: 0 },
        },
      },
    );
    const api = client();
    expect((await api.status("a/b")).output).toEqual({ stage: "running" });
    expect((await api.cancel("a/b")).status).toBe("CANCELLED");
    const health = await api.health();
    expect(health.jobs.inQueue).toBe(2);
    expect(health.workers).toEqual({ idle: 1, running: 0, throttled: 0 });
    expect(mock.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      "GET /v2/ep1/status/a%2Fb",
      "POST /v2/ep1/cancel/a%2Fb",
      "GET /v2/ep1/health",
    ]);
  });

  it("refuses an empty job id before calling", async () => {
    await expect(client().status("")).rejects.toThrow(TypeError);
    await expect(client().cancel("  ")).rejects.toThrow(TypeError);
    expect(mock.requests).toHaveLength(0);
  });

  it("needs an endpoint URL and at least one attempt", () => {
    expect(() => new RunPodClient({ endpointUrl: "" })).toThrow(TypeError);
    expect(() => client({ retry: { attempts: 0 } })).toThrow(RangeError);
  });
});

describe("retries", () => {
  it("retries 429, waiting as long as Retry-After says", async () => {
    mock.reply(
      { status: 429, body: { error: "slow down" }, headers: { "Retry-After": "2" } },
      { body: { id: "j", status: "IN_QUEUE" } },
    );
    await client().run({ workflow });
    expect(mock.requests).toHaveLength(2);
    expect(sleeps).toEqual([2000]);
  });

  it("retries 5xx with exponential backoff, then reports the endpoint's own reason", async () => {
    mock.otherwise(() => ({ status: 503, body: { error: "no workers available" } }));
    const error = await client({ retry: { attempts: 4, baseDelayMs: 100, maxDelayMs: 250 } })
      .status("j")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunPodHttpError);
    expect((error as RunPodHttpError).status).toBe(503);
    expect((error as RunPodHttpError).detail).toBe("no workers available");
    expect((error as Error).message).toBe("/status/j answered HTTP 503: no workers available");
    expect(mock.requests).toHaveLength(4);
    expect(sleeps).toEqual([100, 200, 250]);
  });

  it("tells onRetry what failed and when it tries again, so a page is never silent", async () => {
    mock.reply(
      { status: 502, body: { error: "the RunPod endpoint could not be reached: ECONNREFUSED" } },
      {
        body: { id: "j", status: "IN_QUEUE" },
      },
    );
    const events: unknown[] = [];
    await client({
      retry: { baseDelayMs: 100, maxDelayMs: 100 },
      onRetry: (event) => events.push(event),
    }).status("j");
    expect(events).toEqual([
      {
        path: "/status/j",
        attempt: 1,
        attempts: 5,
        delayMs: 100,
        reason: "HTTP 502: the RunPod endpoint could not be reached: ECONNREFUSED",
      },
    ]);
  });

  it("jitters backoff between half and all of the delay", async () => {
    mock.reply({ status: 502, raw: "<html>bad gateway</html>" }, { body: { id: "j", status: "IN_QUEUE" } });
    await client({ random: () => 0, retry: { baseDelayMs: 1000 } }).status("j");
    expect(sleeps).toEqual([500]);
  });

  it("does not retry other 4xx, and says what to check for 401", async () => {
    mock.otherwise(() => ({ status: 401, raw: "Unauthorized" }));
    const error = await client()
      .health()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunPodHttpError);
    expect((error as Error).message).toBe(
      "/health answered HTTP 401: Unauthorized (check RUNPOD_API_KEY on the app server)",
    );
    expect(mock.requests).toHaveLength(1);
  });

  it("retries a dropped connection for status, which is safe to repeat", async () => {
    mock.reply({ hangUp: true }, { body: { id: "j", status: "IN_PROGRESS" } });
    expect((await client().status("j")).status).toBe("IN_PROGRESS");
    expect(mock.requests).toHaveLength(2);
  });

  it("does not retry a dropped /run, which may have queued a job", async () => {
    mock.otherwise(() => ({ hangUp: true }));
    await expect(client().run({ workflow })).rejects.toBeInstanceOf(RunPodNetworkError);
    expect(mock.requests).toHaveLength(1);
  });

  it("reports an endpoint that is not listening as a network error naming the call", async () => {
    const api = new RunPodClient({
      endpointUrl: `http://127.0.0.1:${await closedPort()}/v2/x`,
      retry: { attempts: 2 },
      sleep: async () => undefined,
    });
    const error = await api.health().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunPodNetworkError);
    expect((error as Error).message).toMatch(/^\/health could not be reached/);
  });
});

describe("answers that are not RunPod's", () => {
  it.each([
    ["a body that is not JSON", { raw: "<html>hello</html>" }, /is not JSON/],
    ["a job without an id", { body: { status: "IN_QUEUE" } }, /has no id/],
    ["an unknown status", { body: { id: "j", status: "DONE" } }, /unknown status "DONE"/],
    ["a list", { body: [1, 2] }, /expected a job object, got a list/],
  ])("throws a protocol error for %s", async (_name, reply, message) => {
    mock.reply(reply);
    const error = await client()
      .status("j")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunPodProtocolError);
    expect((error as Error).message).toMatch(message);
  });

  it("throws for a health answer without counters", async () => {
    mock.reply({ body: { ok: true } });
    await expect(client().health()).rejects.toBeInstanceOf(RunPodProtocolError);
  });
});

describe("waitUntilDone", () => {
  function statuses(...states: Array<Partial<JobState>>): void {
    mock.reply(...states.map((state) => ({ body: { id: "j", ...state } })));
  }

  it("polls until final, reporting each change once and backing off while nothing changes", async () => {
    const p1 = { stage: "running", percent: 10 };
    const p2 = { stage: "running", percent: 60 };
    statuses(
      { status: "IN_QUEUE" },
      { status: "IN_QUEUE" },
      { status: "IN_QUEUE" },
      { status: "IN_PROGRESS", output: p1 },
      { status: "IN_PROGRESS", output: p1 },
      { status: "IN_PROGRESS", output: p2 },
      { status: "COMPLETED", output: { images: [] }, executionTime: 900 },
    );
    const seen: JobState[] = [];
    const final = await client({ poll: { initialMs: 100, factor: 2, maxMs: 300 } }).waitUntilDone("j", {
      onUpdate: (state) => seen.push(state),
    });
    expect(final).toEqual({ id: "j", status: "COMPLETED", output: { images: [] }, executionTime: 900 });
    expect(seen.map((s) => `${s.status} ${JSON.stringify(s.output ?? null)}`)).toEqual([
      "IN_QUEUE null",
      `IN_PROGRESS ${JSON.stringify(p1)}`,
      `IN_PROGRESS ${JSON.stringify(p2)}`,
      `COMPLETED {"images":[]}`,
    ]);
    // 100 after a change, doubling to the 300 cap while the same, back to 100 on each change.
    expect(sleeps).toEqual([100, 200, 300, 100, 200, 100]);
  });

  it.each(["CANCELLED", "TIMED_OUT", "FAILED"] as const)("treats %s as final", async (status) => {
    statuses({ status: "IN_PROGRESS", output: { stage: "running" } }, { status, error: "TIMEOUT: x" });
    const final = await client().waitUntilDone("j");
    expect(final.status).toBe(status);
    expect(mock.requests).toHaveLength(2);
  });

  it("keeps polling through a 5xx blip", async () => {
    mock.reply({ status: 500, body: {} }, { body: { id: "j", status: "COMPLETED", output: {} } });
    expect((await client().waitUntilDone("j")).status).toBe("COMPLETED");
  });

  it("stops at once when aborted, with the signal's reason, and polls no more", async () => {
    mock.otherwise(() => ({ body: { id: "j", status: "IN_QUEUE" } }));
    const abort = new AbortController();
    const api = new RunPodClient({ endpointUrl: `${mock.url}/v2/ep1`, poll: { initialMs: 5_000 } });
    const waiting = api.waitUntilDone("j", { signal: abort.signal });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    abort.abort();
    const error = await waiting.catch((e: unknown) => e);
    expect((error as DOMException).name).toBe("AbortError");
    expect(Date.now() - started).toBeLessThan(1000);
    const polls = mock.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(mock.requests.length).toBe(polls);
  });

  it("runAndWait reports the queued job first", async () => {
    statuses({ status: "IN_QUEUE" }, { status: "COMPLETED", output: {} });
    const seen: string[] = [];
    await client().runAndWait({ workflow }, { onUpdate: (s) => seen.push(s.status) });
    expect(seen).toEqual(["IN_QUEUE", "COMPLETED"]);
    expect(mock.requests.map((r) => r.method)).toEqual(["POST", "GET"]);
  });
});
