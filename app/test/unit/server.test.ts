/**
 * The app server: settings from the environment, and the proxy, workflow and static routes,
 * against a scripted upstream on loopback. The key must reach the upstream and nothing else.
 */

import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { type Server, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../../server/app.js";
import { type AppConfig, ConfigError, loadConfig } from "../../server/config.js";
import { modelsFromManifest } from "../../server/models.js";
import { MockServer, closedPort } from "./support/mock-server.js";

const KEY = "rp_test_key_0123456789";

describe("loadConfig", () => {
  const base = { RUNPOD_API_KEY: KEY, RUNPOD_ENDPOINT_ID: "abc123" };

  it("applies the documented defaults", () => {
    expect(loadConfig(base, "/srv/app")).toEqual({
      apiKey: KEY,
      endpointId: "abc123",
      baseUrl: "https://api.runpod.ai/v2",
      host: "127.0.0.1",
      port: 3000,
      allowedHosts: [],
      workflowsDir: "/srv/workflows",
      staticDir: "/srv/app/dist/web",
      maxBodyBytes: 20 * 1024 * 1024,
      storage: { s3Config: null, output: null, origins: [] },
      modelsManifest: "/srv/manifest.toml",
    });
    expect(loadConfig({ ...base, APP_MODELS_MANIFEST: "" }, "/srv/app").modelsManifest).toBeNull();
  });

  it("reads the local endpoint's settings", () => {
    const config = loadConfig(
      {
        ...base,
        RUNPOD_BASE_URL: "http://127.0.0.1:8000/v2/",
        APP_PORT: "0",
        APP_MAX_BODY_MB: "5",
        APP_WORKFLOWS_DIR: "/w",
        APP_ALLOWED_HOSTS: " studio.internal, ,app.example ",
      },
      "/srv/app",
    );
    expect(config).toMatchObject({
      baseUrl: "http://127.0.0.1:8000/v2",
      port: 0,
      maxBodyBytes: 5 * 1024 * 1024,
      workflowsDir: "/w",
      allowedHosts: ["studio.internal", "app.example"],
    });
  });

  it("names every wrong variable at once", () => {
    expect(() => loadConfig({ RUNPOD_BASE_URL: "ftp://x", APP_PORT: "http" }, "/a")).toThrow(ConfigError);
    try {
      loadConfig({ RUNPOD_BASE_URL: "ftp://x", APP_PORT: "99999" }, "/a");
    } catch (error) {
      expect((error as Error).message.split("\n")).toEqual([
        "RUNPOD_API_KEY is not set (RunPod console > Settings > API Keys; it never leaves this server)",
        "RUNPOD_ENDPOINT_ID is not set (the id in your endpoint's URL, e.g. RUNPOD_ENDPOINT_ID=abc123xyz)",
        "RUNPOD_ENDPOINT_BASE_URL must be http(s), got ftp:",
        'APP_PORT must be a whole number from 0 to 65535, got "99999"',
      ]);
    }
  });

  it.each([
    [
      { RUNPOD_BASE_URL: "http://api.example.com/v2" },
      "RUNPOD_ENDPOINT_BASE_URL must use https for api.example.com; plain http is allowed for loopback only",
    ],
    [
      { RUNPOD_BASE_URL: "not a url" },
      'RUNPOD_ENDPOINT_BASE_URL is not a URL: "not a url" (e.g. https://api.runpod.ai/v2)',
    ],
    [{ RUNPOD_ENDPOINT_ID: "../x" }, 'RUNPOD_ENDPOINT_ID must be letters, digits, - or _, got "../x"'],
    [{ APP_MAX_BODY_MB: "0" }, 'APP_MAX_BODY_MB must be a whole number from 1 to 1024, got "0"'],
  ])("refuses %j", (override, message) => {
    expect(() => loadConfig({ ...base, ...override }, "/a")).toThrow(message);
  });

  it("reads RUNPOD_ENDPOINT_BASE_URL, the CLI's name, with RUNPOD_BASE_URL as an alias", () => {
    const url = "http://127.0.0.1:8000/v2";
    expect(loadConfig({ ...base, RUNPOD_ENDPOINT_BASE_URL: url }, "/a").baseUrl).toBe(url);
    expect(loadConfig({ ...base, RUNPOD_BASE_URL: url }, "/a").baseUrl).toBe(url);
    expect(
      loadConfig({ ...base, RUNPOD_BASE_URL: url, RUNPOD_ENDPOINT_BASE_URL: `${url}/` }, "/a").baseUrl,
    ).toBe(url);
    expect(() =>
      loadConfig(
        { ...base, RUNPOD_BASE_URL: url, RUNPOD_ENDPOINT_BASE_URL: "https://api.runpod.ai/v2" },
        "/a",
      ),
    ).toThrow(
      "RUNPOD_ENDPOINT_BASE_URL (https://api.runpod.ai/v2) and RUNPOD_BASE_URL (http://127.0.0.1:8000/v2) disagree",
    );
  });

  it("allows plain http to any loopback name", () => {
    for (const url of ["http://localhost:8000/v2", "http://127.0.0.2:1/v2", "http://[::1]:8000/v2"]) {
      expect(loadConfig({ ...base, RUNPOD_BASE_URL: url }, "/a").baseUrl).toBe(url);
    }
  });

  it("reads the key from RUNPOD_API_KEY_FILE, and refuses both forms at once", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "app-config-"));
    const file = path.join(dir, "key");
    await writeFile(file, `${KEY}\n`);
    expect(loadConfig({ RUNPOD_ENDPOINT_ID: "e", RUNPOD_API_KEY_FILE: file }, "/a").apiKey).toBe(KEY);
    expect(() => loadConfig({ ...base, RUNPOD_API_KEY_FILE: file }, "/a")).toThrow(
      "RUNPOD_API_KEY and RUNPOD_API_KEY_FILE are both set; keep one",
    );
    expect(() =>
      loadConfig({ RUNPOD_ENDPOINT_ID: "e", RUNPOD_API_KEY_FILE: path.join(dir, "missing") }, "/a"),
    ).toThrow(/cannot be read/);
    await writeFile(file, "\n");
    expect(() => loadConfig({ RUNPOD_ENDPOINT_ID: "e", RUNPOD_API_KEY_FILE: file }, "/a")).toThrow(
      /is empty/,
    );
    await rm(dir, { recursive: true });
  });
});

describe("storage settings", () => {
  const base = { RUNPOD_API_KEY: KEY, RUNPOD_ENDPOINT_ID: "abc123" };
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "app-storage-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true });
  });

  it("reads the bucket file, the output mode and extra origins", async () => {
    const file = path.join(dir, "s3.json");
    await writeFile(
      file,
      JSON.stringify({
        accessId: "AKIA1",
        accessSecret: "bucket-secret",
        bucketName: "outputs",
        endpointUrl: "http://127.0.0.1:9000",
      }),
    );
    const config = loadConfig(
      {
        ...base,
        APP_S3_CONFIG_FILE: file,
        APP_OUTPUT: "auto",
        APP_STORAGE_ORIGINS: "https://cdn.example, http://127.0.0.1:9000",
      },
      "/a",
    );
    expect(config.storage).toEqual({
      s3Config: {
        accessId: "AKIA1",
        accessSecret: "bucket-secret",
        bucketName: "outputs",
        endpointUrl: "http://127.0.0.1:9000",
      },
      output: "auto",
      origins: ["http://127.0.0.1:9000", "https://cdn.example"],
    });
  });

  it("names what is wrong with each storage setting", async () => {
    const bad = path.join(dir, "bad.json");
    await writeFile(bad, JSON.stringify({ accessId: "a", accessSecret: "b", bucketName: "c" }));
    const notJson = path.join(dir, "not.json");
    await writeFile(notJson, "{nope");
    for (const [env, message] of [
      [{ APP_S3_CONFIG_FILE: bad }, /endpointUrl must be a non-empty string/],
      [{ APP_S3_CONFIG_FILE: notJson }, /cannot be read as JSON/],
      [{ APP_S3_CONFIG_FILE: path.join(dir, "missing.json") }, /cannot be read as JSON/],
      [{ APP_OUTPUT: "bucket" }, 'APP_OUTPUT must be base64, s3 or auto, got "bucket"'],
      [{ APP_STORAGE_ORIGINS: "ftp://x" }, /is not an http\(s\) origin/],
    ] as const) {
      expect(() => loadConfig({ ...base, ...env }, "/a")).toThrow(message);
    }
  });
});

// A manifest.toml shaped like the repo's: comments, other tables, aliases, encoded URLs, filename.
const MANIFEST = `
[comfyui]
url = "https://github.com/comfyanonymous/ComfyUI"  # not a model

[[nodes]]
name = "ComfyUI-Sharp"
folder = "custom_nodes"

[[models]]
name = "SD 1.5"
url = "https://huggingface.co/x/y/resolve/main/v1-5-pruned-emaonly-fp16.safetensors"
folder = "checkpoints"

[[models]]  # a LoRA
name = "LoRA, 8 steps"
url = 'https://huggingface.co/x/y/resolve/main/Lightning%208steps.safetensors'
folder = "loras"

[[models]]
name = "LoRA, 4 steps"
url = "https://example.com/download?id=4"
filename = "Lightning-4steps.safetensors"
folder = "loras"

[[models]]
name = "old-style UNet folder"
url = "https://example.com/qwen_image_edit.safetensors"
folder = "unet"

[[models]]
name = "no folder: skipped"
url = "https://example.com/lost.safetensors"
`;

const EXPECTED_FOLDERS = {
  checkpoints: ["v1-5-pruned-emaonly-fp16.safetensors"],
  loras: ["Lightning 8steps.safetensors", "Lightning-4steps.safetensors"],
  diffusion_models: ["qwen_image_edit.safetensors"],
};

describe("modelsFromManifest", () => {
  it("reads [[models]] file names by ComfyUI folder, aliases merged, other tables ignored", () => {
    expect(modelsFromManifest(MANIFEST)).toEqual(EXPECTED_FOLDERS);
    expect(modelsFromManifest("")).toEqual({});
  });
});

describe("the app server", () => {
  let upstream: MockServer;
  let app: Server;
  let appUrl: string;
  let dir: string;
  let config: AppConfig;
  const logs: string[] = [];

  beforeAll(async () => {
    upstream = await MockServer.start();
    dir = await mkdtemp(path.join(tmpdir(), "app-server-"));
    await mkdir(path.join(dir, "workflows", "video"), { recursive: true });
    await mkdir(path.join(dir, "workflows", "a", "b"), { recursive: true });
    await mkdir(path.join(dir, "web", "assets"), { recursive: true });
    await writeFile(
      path.join(dir, "workflows", "simple_test.json"),
      '{"1": {"class_type": "EmptyImage", "inputs": {}}}',
    );
    await writeFile(path.join(dir, "workflows", "video", "clip.json"), "{}");
    await writeFile(path.join(dir, "workflows", "a", "b", "too_deep.json"), "{}");
    await writeFile(path.join(dir, "workflows", "notes.txt"), "not a workflow");
    await writeFile(path.join(dir, "secret.json"), '{"secret": true}');
    await writeFile(path.join(dir, "web", "index.html"), "<!doctype html><title>app</title>");
    await writeFile(path.join(dir, "web", "assets", "main-abc.js"), "console.log(1)");
    config = loadConfig(
      {
        RUNPOD_API_KEY: KEY,
        RUNPOD_ENDPOINT_ID: "ep1",
        RUNPOD_BASE_URL: `${upstream.url}/v2`,
        APP_WORKFLOWS_DIR: path.join(dir, "workflows"),
        APP_STATIC_DIR: path.join(dir, "web"),
        APP_MAX_BODY_MB: "1",
        APP_MODELS_MANIFEST: path.join(dir, "manifest.toml"),
      },
      dir,
    );
    await writeFile(path.join(dir, "manifest.toml"), MANIFEST);
    app = createApp(config, { log: (line) => logs.push(line) });
    await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
    appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    app.closeAllConnections();
    await new Promise((resolve) => app.close(resolve));
    await upstream.stop();
    await rm(dir, { recursive: true });
    // Whatever happened, the key must never have been logged.
    expect(logs.join("\n")).not.toContain(KEY);
  });
  beforeEach(() => upstream.reset());

  async function post(
    pathname: string,
    body: unknown,
    headers: Record<string, string> = {},
  ): Promise<Response> {
    return fetch(`${appUrl}${pathname}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  }

  describe("/api/runpod", () => {
    it("forwards /run with the server's key, passing only input and policy", async () => {
      upstream.reply({ body: { id: "job-1", status: "IN_QUEUE" } });
      const response = await post(
        "/api/runpod/run",
        {
          input: { workflow: { "1": {} } },
          policy: { executionTimeout: 1000 },
          webhook: "http://evil.example/hook",
          s3Config: { accessId: "x" },
        },
        { Authorization: "Bearer from-the-browser" },
      );
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ id: "job-1", status: "IN_QUEUE" });
      const [sent] = upstream.requests;
      expect(sent?.path).toBe("/v2/ep1/run");
      expect(sent?.headers.authorization).toBe(`Bearer ${KEY}`);
      expect(JSON.parse(sent?.body ?? "")).toEqual({
        input: { workflow: { "1": {} } },
        policy: { executionTimeout: 1000 },
      });
    });

    it("forwards status, cancel, health and runsync?wait to the same paths", async () => {
      upstream.otherwise((request) => ({
        body: { id: "j", status: "IN_QUEUE", echo: `${request.method} ${request.path}` },
      }));
      const calls = [
        await fetch(`${appUrl}/api/runpod/status/abc-123_x`),
        await post("/api/runpod/cancel/abc-123_x", ""),
        await fetch(`${appUrl}/api/runpod/health`),
        await post("/api/runpod/runsync?wait=5000", { input: {} }),
      ];
      const echoes = await Promise.all(calls.map(async (r) => ((await r.json()) as { echo: string }).echo));
      expect(echoes).toEqual([
        "GET /v2/ep1/status/abc-123_x",
        "POST /v2/ep1/cancel/abc-123_x",
        "GET /v2/ep1/health",
        "POST /v2/ep1/runsync?wait=5000",
      ]);
      expect(calls.every((r) => r.headers.get("cache-control") === "no-store")).toBe(true);
    });

    it("passes the endpoint's error status, body and Retry-After through untouched", async () => {
      upstream.reply({ status: 429, body: { error: "rate limited" }, headers: { "Retry-After": "3" } });
      const response = await fetch(`${appUrl}/api/runpod/status/j1`);
      expect(response.status).toBe(429);
      expect(response.headers.get("retry-after")).toBe("3");
      expect(await response.json()).toEqual({ error: "rate limited" });
    });

    it.each([
      ["GET", "/api/runpod/run"],
      ["POST", "/api/runpod/purge-queue"],
      ["GET", "/api/runpod/status/../../v2/other/health"],
      ["GET", "/api/runpod/status/a%2Fb"],
      ["POST", "/api/runpod/status/j1"],
      ["GET", "/api/runpod/status/j1/extra"],
      ["POST", "/api/runpod/runsync?wait=soon"],
      ["GET", "/api/runpod/stream/j1"],
    ])("refuses %s %s without calling the endpoint", async (method, pathname) => {
      const response = await fetch(`${appUrl}${pathname}`, { method, body: method === "POST" ? "{}" : null });
      expect(response.status).toBe(404);
      expect(upstream.requests).toHaveLength(0);
    });

    it.each([
      ["not JSON", "{oops", "the job request is not JSON"],
      ["a list", "[]", "the job request must be a JSON object {input: {...}}"],
      ["no input", '{"workflow": {}}', "the job request has no input object"],
    ])("refuses a job request that is %s", async (_name, body, message) => {
      const response = await post("/api/runpod/run", body);
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ error: message });
      expect(upstream.requests).toHaveLength(0);
    });

    it("refuses a request over APP_MAX_BODY_MB with 413 and RunPod's limits", async () => {
      const response = await post("/api/runpod/run", {
        input: { images: [{ name: "a.png", image: "A".repeat(1024 * 1024) }] },
      });
      expect(response.status).toBe(413);
      expect(((await response.json()) as { error: string }).error).toMatch(
        /larger than 1 MB \(APP_MAX_BODY_MB\); RunPod takes at most 10 MB on \/run/,
      );
      expect(upstream.requests).toHaveLength(0);
    });

    it("answers 502 naming the cause when the endpoint is down", async () => {
      const down = createApp(
        { ...config, baseUrl: `http://127.0.0.1:${await closedPort()}/v2` },
        { log: () => undefined },
      );
      await new Promise<void>((resolve) => down.listen(0, "127.0.0.1", resolve));
      const response = await fetch(
        `http://127.0.0.1:${(down.address() as AddressInfo).port}/api/runpod/health`,
      );
      expect(response.status).toBe(502);
      expect(await response.json()).toEqual({
        error: "the RunPod endpoint could not be reached: ECONNREFUSED",
      });
      await new Promise((resolve) => down.close(resolve));
    });
  });

  describe("/api/models", () => {
    it("lists the manifest's model files by folder, for the form's model-name choices", async () => {
      expect(await (await fetch(`${appUrl}/api/models`)).json()).toEqual({
        source: "manifest",
        folders: EXPECTED_FOLDERS,
        note: `from ${path.join(dir, "manifest.toml")}`,
      });
    });

    it("says why there is no list when the manifest cannot be read", async () => {
      const missing = path.join(dir, "nowhere", "manifest.toml");
      const other = createApp({ ...config, modelsManifest: missing });
      await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
      const port = (other.address() as AddressInfo).port;
      expect(await (await fetch(`http://127.0.0.1:${port}/api/models`)).json()).toEqual({
        source: "none",
        folders: {},
        note: `cannot read the model list ${missing} (ENOENT); set APP_MODELS_MANIFEST to the image's manifest.toml`,
      });
      other.closeAllConnections();
      await new Promise((resolve) => other.close(resolve));
    });
  });

  describe("/api/config and /api/workflows", () => {
    it("tells the page the endpoint but never the key", async () => {
      const text = await (await fetch(`${appUrl}/api/config`)).text();
      expect(JSON.parse(text)).toEqual({
        endpointId: "ep1",
        endpointUrl: `${upstream.url}/v2/ep1`,
        local: true,
        maxBodyBytes: 1024 * 1024,
        storage: { bucket: false, output: null },
      });
      expect(text).not.toContain(KEY);
    });

    it("lists *.json files, one subfolder deep, sorted", async () => {
      const body = await (await fetch(`${appUrl}/api/workflows`)).json();
      expect(body).toEqual({
        workflows: [
          { path: "simple_test.json", name: "simple_test" },
          { path: "video/clip.json", name: "video/clip" },
        ],
      });
    });

    it("serves a listed file, and nothing outside the listing", async () => {
      const ok = await fetch(`${appUrl}/api/workflows/simple_test.json`);
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ "1": { class_type: "EmptyImage", inputs: {} } });
      expect((await fetch(`${appUrl}/api/workflows/video/clip.json`)).status).toBe(200);
      for (const wanted of ["..%2Fsecret.json", "notes.txt", "a/b/too_deep.json", "missing.json"]) {
        expect((await fetch(`${appUrl}/api/workflows/${wanted}`)).status).toBe(404);
      }
    });

    it("keeps exposed-inputs files out of the list, serves and saves them beside their workflow", async () => {
      const put = (name: string, body: string, type = "application/json"): Promise<Response> =>
        fetch(`${appUrl}/api/workflows/${name}`, { method: "PUT", headers: { "Content-Type": type }, body });
      // No sidecar yet: 204 (nothing to show, not an error); no such workflow: 404.
      expect((await fetch(`${appUrl}/api/workflows/simple_test.inputs.json`)).status).toBe(204);
      expect((await fetch(`${appUrl}/api/workflows/missing.inputs.json`)).status).toBe(404);
      const body = JSON.stringify({ version: 1, inputs: [{ key: "1.width" }] });
      expect((await put("simple_test.inputs.json", body)).status).toBe(200);
      expect(await (await fetch(`${appUrl}/api/workflows/simple_test.inputs.json`)).json()).toEqual(
        JSON.parse(body),
      );
      const listed = (await (await fetch(`${appUrl}/api/workflows`)).json()) as {
        workflows: Array<{ path: string }>;
      };
      expect(listed.workflows.map((w) => w.path)).not.toContain("simple_test.inputs.json");
      // Only beside a listed workflow, only sidecars, only JSON.
      expect((await put("missing.inputs.json", body)).status).toBe(400);
      expect((await put("simple_test.json", body)).status).toBe(405);
      expect((await put("%2E%2E%2Fsecret.inputs.json", body)).status).toBe(400);
      expect((await put("simple_test.inputs.json", "{nope")).status).toBe(400);
      expect((await put("simple_test.inputs.json", body, "text/plain")).status).toBe(415);
      await rm(path.join(dir, "workflows", "simple_test.inputs.json"));
    });

    it("lists nothing when the folder does not exist", async () => {
      const empty = createApp({ ...config, workflowsDir: path.join(dir, "nope") }, { log: () => undefined });
      await new Promise<void>((resolve) => empty.listen(0, "127.0.0.1", resolve));
      const body = await (
        await fetch(`http://127.0.0.1:${(empty.address() as AddressInfo).port}/api/workflows`)
      ).json();
      expect(body).toEqual({ workflows: [] });
      await new Promise((resolve) => empty.close(resolve));
    });
  });

  describe("who may call", () => {
    /** A raw request, because fetch will not let a test set Host. */
    function raw(
      method: string,
      pathname: string,
      headers: Record<string, string>,
      body = "",
    ): Promise<number> {
      return new Promise((resolve, reject) => {
        const request = httpRequest(`${appUrl}${pathname}`, { method, headers }, (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        });
        request.on("error", reject);
        request.end(body);
      });
    }
    const port = (): string => new URL(appUrl).port;

    it("answers loopback names and refuses any other Host (DNS rebinding)", async () => {
      upstream.otherwise(() => ({ body: { jobs: {}, workers: {} } }));
      for (const host of [`127.0.0.1:${port()}`, `localhost:${port()}`, `[::1]:${port()}`, "127.9.9.9"]) {
        expect(await raw("GET", "/api/runpod/health", { Host: host })).toBe(200);
      }
      expect(await raw("GET", "/api/runpod/health", { Host: `evil.example:${port()}` })).toBe(403);
      expect(await raw("GET", "/", { Host: "evil.example" })).toBe(403);
      expect(upstream.requests).toHaveLength(4);
    });

    it("answers the names in APP_ALLOWED_HOSTS", async () => {
      const named = createApp({ ...config, allowedHosts: ["studio.internal"] }, { log: () => undefined });
      await new Promise<void>((resolve) => named.listen(0, "127.0.0.1", resolve));
      const status = await new Promise<number>((resolve) => {
        httpRequest(
          `http://127.0.0.1:${(named.address() as AddressInfo).port}/api/config`,
          { headers: { Host: "studio.internal" } },
          (response) => resolve(response.statusCode ?? 0),
        ).end();
      });
      expect(status).toBe(200);
      await new Promise((resolve) => named.close(resolve));
    });

    it("refuses a POST from another origin, or an opaque one", async () => {
      const json = { "Content-Type": "application/json", Host: `127.0.0.1:${port()}` };
      const body = JSON.stringify({ input: {} });
      expect(await raw("POST", "/api/runpod/run", { ...json, Origin: "https://evil.example" }, body)).toBe(
        403,
      );
      expect(await raw("POST", "/api/runpod/run", { ...json, Origin: "null" }, body)).toBe(403);
      expect(
        await raw("POST", "/api/runpod/cancel/j1", { Host: json.Host, Origin: "http://evil.example" }),
      ).toBe(403);
      expect(upstream.requests).toHaveLength(0);
      upstream.reply({ body: { id: "j", status: "IN_QUEUE" } });
      expect(
        await raw("POST", "/api/runpod/run", { ...json, Origin: `http://127.0.0.1:${port()}` }, body),
      ).toBe(200);
    });

    it("refuses a job request that is not declared JSON (a cross-site form post)", async () => {
      const status = await raw(
        "POST",
        "/api/runpod/run",
        { Host: `127.0.0.1:${port()}`, "Content-Type": "text/plain" },
        JSON.stringify({ input: {} }),
      );
      expect(status).toBe(415);
      expect(upstream.requests).toHaveLength(0);
    });
  });

  describe("the front end", () => {
    it("serves index.html with a strict content security policy", async () => {
      const response = await fetch(`${appUrl}/`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(response.headers.get("cache-control")).toBe("no-cache");
      expect(response.headers.get("content-security-policy")).toContain("default-src 'self'");
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    });

    it("caches hashed assets for good", async () => {
      const response = await fetch(`${appUrl}/assets/main-abc.js`);
      expect(response.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
      expect(response.headers.get("cache-control")).toContain("immutable");
    });

    it("refuses paths outside the folder, unknown files, unknown API routes and other methods", async () => {
      expect((await fetch(`${appUrl}/..%2Fsecret.json`)).status).toBe(404);
      expect((await fetch(`${appUrl}/nothing.js`)).status).toBe(404);
      expect((await fetch(`${appUrl}/api/nothing`)).status).toBe(404);
      expect((await fetch(`${appUrl}/index.html`, { method: "DELETE" })).status).toBe(405);
    });

    it("says how to build when the front end is missing", async () => {
      const bare = createApp({ ...config, staticDir: path.join(dir, "nope") }, { log: () => undefined });
      await new Promise<void>((resolve) => bare.listen(0, "127.0.0.1", resolve));
      const response = await fetch(`http://127.0.0.1:${(bare.address() as AddressInfo).port}/`);
      expect(response.status).toBe(503);
      expect(await response.text()).toMatch(/Run: npm --prefix app run build/);
      await new Promise((resolve) => bare.close(resolve));
    });
  });
});

describe("an app server with its own bucket", () => {
  const SECRET = "bucket-secret-0123";
  let upstream: MockServer;
  let app: Server;
  let appUrl: string;
  let dir: string;
  const logs: string[] = [];

  beforeAll(async () => {
    upstream = await MockServer.start();
    dir = await mkdtemp(path.join(tmpdir(), "app-bucket-"));
    await mkdir(path.join(dir, "web"), { recursive: true });
    await writeFile(path.join(dir, "web", "index.html"), "<!doctype html><title>app</title>");
    const file = path.join(dir, "s3.json");
    await writeFile(
      file,
      JSON.stringify({
        accessId: "AKIA1",
        accessSecret: SECRET,
        bucketName: "outputs",
        endpointUrl: "http://127.0.0.1:9000",
      }),
    );
    const config = loadConfig(
      {
        RUNPOD_API_KEY: KEY,
        RUNPOD_ENDPOINT_ID: "ep1",
        RUNPOD_BASE_URL: `${upstream.url}/v2`,
        APP_STATIC_DIR: path.join(dir, "web"),
        APP_S3_CONFIG_FILE: file,
        APP_OUTPUT: "auto",
      },
      dir,
    );
    app = createApp(config, { log: (line) => logs.push(line) });
    await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
    appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    app.closeAllConnections();
    await new Promise((resolve) => app.close(resolve));
    await upstream.stop();
    await rm(dir, { recursive: true });
    expect(logs.join("\n")).not.toContain(SECRET);
  });
  beforeEach(() => upstream.reset());

  async function run(body: unknown): Promise<unknown> {
    upstream.reply({ body: { id: "job-1", status: "IN_QUEUE" } });
    const response = await fetch(`${appUrl}/api/runpod/run`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(200);
    return JSON.parse(upstream.requests.at(-1)?.body ?? "");
  }

  it("adds its bucket and default output mode to each job, whatever the page sent", async () => {
    expect(
      await run({ input: { workflow: {} }, s3Config: { accessId: "page", endpointUrl: "http://evil" } }),
    ).toEqual({
      input: { workflow: {}, output: "auto" },
      s3Config: {
        accessId: "AKIA1",
        accessSecret: SECRET,
        bucketName: "outputs",
        endpointUrl: "http://127.0.0.1:9000",
      },
    });
  });

  it("applies RunPod's 10 MB limit to /run and 20 MB to /runsync", async () => {
    const body = JSON.stringify({
      input: { images: [{ name: "a.png", image: "A".repeat(11 * 1024 * 1024) }] },
    });
    const send = (route: string): Promise<Response> =>
      fetch(`${appUrl}/api/runpod/${route}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body,
      });
    const refused = await send("run");
    expect(refused.status).toBe(413);
    expect(((await refused.json()) as { error: string }).error).toMatch(
      /^the job request is larger than 10 MB; RunPod takes at most 10 MB on \/run/,
    );
    expect(upstream.requests).toHaveLength(0);
    upstream.reply({ body: { id: "job-2", status: "COMPLETED" } });
    expect((await send("runsync")).status).toBe(200);
    expect(upstream.requests).toHaveLength(1);
  });

  it("keeps the output mode the page chose", async () => {
    const sent = (await run({ input: { workflow: {}, output: "base64" } })) as { input: { output: string } };
    expect(sent.input.output).toBe("base64");
  });

  it("tells the page a bucket is set, never its keys, and lets the page load from it", async () => {
    const response = await fetch(`${appUrl}/api/config`);
    const text = await response.text();
    expect(JSON.parse(text).storage).toEqual({ bucket: true, output: "auto" });
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain("AKIA1");
    const csp = (await fetch(`${appUrl}/`)).headers.get("content-security-policy") ?? "";
    expect(csp).toContain("connect-src 'self' blob: data: https: http://127.0.0.1:9000");
    expect(csp).toContain("img-src 'self' blob: data: https: http://127.0.0.1:9000");
  });
});
