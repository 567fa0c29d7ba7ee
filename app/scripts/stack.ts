/**
 * Starts the whole local chain on loopback, each piece on a free port, and stops it again:
 *
 *   ComfyUI test server  <-  worker (python -m handler, run by the endpoint)  <-  local endpoint
 *     (RunPod's API)  <-  app server (holds the key)  <-  browser
 *
 *   const stack = await startStack({ appDir });
 *   // ... open stack.appUrl ...
 *   await stack.stop();
 *
 * Used by the e2e tests and by `npm run dev:local`. Each process writes to its own log file in
 * `stack.logDir`; a process that dies or never says it is listening fails the start with the end
 * of its log, and every process started so far is stopped.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";

export interface StackOptions {
  /** The app folder (holds dist/); the repo root is its parent. */
  appDir: string;
  /** Python with the project installed; default `$PYTHON`, else `<repo>/.venv/bin/python`. */
  python?: string;
  /** Seconds each KSampler step sleeps in the test server, so progress and cancel can be watched. */
  stepDelayS?: number;
  /** Use this ComfyUI (host:port) instead of starting the test server; then `comfyuiPath` is its folder. */
  comfyHost?: string;
  comfyuiPath?: string;
  /** Extra environment for the endpoint and its workers, e.g. COMFY_PROGRESS_INTERVAL_S. */
  workerEnv?: Record<string, string>;
  endpointPort?: number;
  appPort?: number;
  /** Where ComfyUI's folders and the logs go; a fresh temporary folder by default (removed on stop). */
  workDir?: string;
  /**
   * Start an in-memory S3 bucket with the endpoint (`--local-s3`) and have the app server add it to
   * every job (APP_S3_CONFIG_FILE, APP_OUTPUT=auto), so outputs too big to return inline (a real
   * splat) come back as s3_url. Default true.
   */
  localS3?: boolean;
  /**
   * Serve a copy of the repo's workflows/ (in the work folder) instead of the folder itself, so
   * what the page saves there (exposed inputs) does not touch the checkout. Tests set it.
   */
  copyWorkflows?: boolean;
  /** Extra environment for the app server (APP_OUTPUT, ...). */
  appEnv?: Record<string, string>;
  /** Lines about what is starting, for people watching (dev:local); tests leave it out. */
  say?: (line: string) => void;
}

export interface Stack {
  appUrl: string;
  /** `http://127.0.0.1:P/v2/local`: RunPod's API, as the app server sees it. */
  endpointUrl: string;
  comfyUrl: string | null;
  /** The local bucket's service URL (`http://127.0.0.1:P`, bucket `comfy-outputs`), when started. */
  s3Url: string | null;
  apiKey: string;
  /** ComfyUI's folder (input/, output/, models/). */
  comfyuiPath: string;
  /** The folder the app lists workflows from (a copy with `copyWorkflows`). */
  workflowsDir: string;
  logDir: string;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = { comfy: 30_000, endpoint: 120_000, app: 15_000 };
const STOP_GRACE_MS = 10_000;

export async function startStack(options: StackOptions): Promise<Stack> {
  const repoRoot = path.resolve(options.appDir, "..");
  const python = resolvePython(options.python ?? process.env.PYTHON, options.appDir, repoRoot);
  const say = options.say ?? (() => undefined);
  const ownWorkDir = options.workDir === undefined;
  const workDir = options.workDir ?? (await mkdtemp(path.join(tmpdir(), "comfy-app-stack-")));
  const logDir = path.join(workDir, "logs");
  await mkdir(logDir, { recursive: true });
  const serverMain = path.join(options.appDir, "dist", "node", "server", "main.js");
  if (!existsSync(serverMain))
    throw new Error(`${serverMain} is missing: run npm --prefix app run build first`);
  if (python.includes(path.sep) && !existsSync(python)) {
    throw new Error(
      `no Python at ${python}: create the venv (python3 -m venv .venv && .venv/bin/pip install -e '.[test]') or set PYTHON`,
    );
  }

  const started: Running[] = [];
  const stop = async (): Promise<void> => {
    // Front to back: the app first, then the endpoint (which stops its workers), then ComfyUI.
    for (const running of started.reverse()) await running.stop();
    if (ownWorkDir) await rm(workDir, { recursive: true, force: true });
  };
  try {
    let comfyHost = options.comfyHost;
    let comfyuiPath = options.comfyuiPath ?? path.join(workDir, "comfyui");
    let comfyUrl: string | null = null;
    if (comfyHost === undefined) {
      await prepareComfyFolder(comfyuiPath, path.join(repoRoot, "workflows"));
      const args = ["-m", "comfy_testserver", "--root", comfyuiPath, "--host", "127.0.0.1", "--port", "0"];
      if (options.stepDelayS !== undefined) args.push("--step-delay-s", String(options.stepDelayS));
      say("starting the ComfyUI test server...");
      const comfy = await launch("comfy", python, args, {
        cwd: repoRoot,
        logDir,
        ready: /comfy_testserver listening on (http:\/\/\S+)/,
        timeoutMs: READY_TIMEOUT_MS.comfy,
      });
      started.push(comfy);
      comfyUrl = comfy.url;
      comfyHost = new URL(comfy.url).host;
    } else {
      comfyuiPath = options.comfyuiPath ?? "";
    }

    const apiKey = `local-${randomBytes(12).toString("hex")}`;
    const endpointArgs = [
      "-m",
      "comfy_worker",
      "serve",
      "--comfy-host",
      comfyHost,
      "--workers",
      "1",
      "--host",
      "127.0.0.1",
      "--port",
      String(options.endpointPort ?? 0),
      "--endpoint-id",
      "local",
      "--api-key",
      apiKey,
    ];
    if (comfyuiPath !== "") endpointArgs.push("--comfyui-path", comfyuiPath);
    const localS3 = options.localS3 ?? true;
    if (localS3) endpointArgs.push("--local-s3");
    say(`starting the local endpoint and its worker${localS3 ? " (and a local S3 bucket)" : ""}...`);
    const endpoint = await launch("endpoint", python, endpointArgs, {
      cwd: repoRoot,
      logDir,
      ready: /listening on (http:\/\/127\.0\.0\.1:\d+)/,
      also: /local S3 at (http:\/\/127\.0\.0\.1:\d+)/,
      timeoutMs: READY_TIMEOUT_MS.endpoint,
      env: options.workerEnv ?? {},
    });
    started.push(endpoint);
    const appStorage: Record<string, string> = {};
    if (localS3) {
      if (endpoint.also === null) throw new Error("the endpoint did not say where its local S3 is");
      // The bucket `comfy-outputs` that `comfy-worker serve --local-s3` creates; moto checks no keys.
      const s3ConfigFile = path.join(workDir, "s3config.json");
      await writeFile(
        s3ConfigFile,
        JSON.stringify({
          endpointUrl: endpoint.also,
          bucketName: "comfy-outputs",
          accessId: "local-s3",
          accessSecret: "local-s3-secret",
        }),
      );
      appStorage.APP_S3_CONFIG_FILE = s3ConfigFile;
      appStorage.APP_OUTPUT = "auto";
    }

    let workflowsDir = path.join(repoRoot, "workflows");
    if (options.copyWorkflows === true) {
      const copy = path.join(workDir, "workflows");
      await cp(workflowsDir, copy, { recursive: true });
      workflowsDir = copy;
    }
    say("starting the app server...");
    const app = await launch("app", process.execPath, [serverMain], {
      cwd: options.appDir,
      logDir,
      ready: /app listening on (http:\/\/\S+)/,
      timeoutMs: READY_TIMEOUT_MS.app,
      env: {
        RUNPOD_API_KEY: apiKey,
        RUNPOD_ENDPOINT_ID: "local",
        RUNPOD_ENDPOINT_BASE_URL: `${endpoint.url}/v2`,
        APP_HOST: "127.0.0.1",
        APP_PORT: String(options.appPort ?? 0),
        APP_WORKFLOWS_DIR: workflowsDir,
        ...appStorage,
        ...options.appEnv,
      },
    });
    started.push(app);
    return {
      appUrl: app.url,
      endpointUrl: `${endpoint.url}/v2/local`,
      comfyUrl,
      s3Url: endpoint.also,
      apiKey,
      comfyuiPath,
      workflowsDir,
      logDir,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * `PYTHON` as test-all.sh documents it: a path relative to the app folder (`../.venv/bin/python`),
 * an absolute path, or a bare command name looked up on PATH; the repo's venv by default.
 */
export function resolvePython(value: string | undefined, appDir: string, repoRoot: string): string {
  if (value === undefined || value === "") return path.join(repoRoot, ".venv", "bin", "python");
  return value.includes("/") ? path.resolve(appDir, value) : value;
}

/**
 * ComfyUI's folders, with an empty stand-in for each checkpoint the repo's workflows load, so
 * txt2img and friends validate on the test server (its "models" are just names on disk), and for
 * the SHARP weights its LoadSharpModel needs.
 */
async function prepareComfyFolder(root: string, workflowsDir: string): Promise<void> {
  const checkpoints = path.join(root, "models", "checkpoints");
  const sharp = path.join(root, "models", "sharp");
  for (const folder of ["input", "output", "temp", checkpoints, sharp])
    await mkdir(path.resolve(root, folder), { recursive: true });
  await writeFile(path.join(sharp, "sharp_2572gikvuh.pt"), "");
  let files: string[] = [];
  try {
    files = (await readdir(workflowsDir)).filter((name) => name.endsWith(".json"));
  } catch {
    return;
  }
  for (const file of files) {
    const text = await readFile(path.join(workflowsDir, file), "utf8");
    for (const match of text.matchAll(/"ckpt_name"\s*:\s*"([^"/\\]+)"/g)) {
      const name = match[1];
      if (name !== undefined) await writeFile(path.join(checkpoints, name), "");
    }
  }
}

interface Running {
  url: string;
  /** LaunchOptions.also's capture, if such a line came before the ready line. */
  also: string | null;
  stop(): Promise<void>;
}

interface LaunchOptions {
  cwd: string;
  logDir: string;
  /** First capture group: the URL the process listens on. */
  ready: RegExp;
  /** A line to pick a value from (first capture group) on the way to `ready`. */
  also?: RegExp;
  timeoutMs: number;
  env?: Record<string, string>;
}

async function launch(
  name: string,
  command: string,
  args: string[],
  options: LaunchOptions,
): Promise<Running> {
  const logFile = path.join(options.logDir, `${name}.log`);
  const log = createWriteStream(logFile);
  // Its own process group, so stop() reaches the endpoint's worker processes too.
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { ...process.env, PYTHONUNBUFFERED: "1", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const running: Running = { url: "", also: null, stop: () => stopChild(child, exited) };
  try {
    running.url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${name} did not say it was listening within ${options.timeoutMs / 1000} s`)),
        options.timeoutMs,
      );
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      lines.on("line", (line) => {
        log.write(`${line}\n`);
        const also = options.also?.exec(line);
        if (also?.[1] !== undefined) running.also = also[1];
        const match = options.ready.exec(line);
        if (match?.[1] !== undefined) {
          clearTimeout(timer);
          resolve(match[1].replace(/\/$/, ""));
        }
      });
      child.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited with code ${code} before it was listening`));
      });
    });
  } catch (error) {
    await running.stop();
    log.end();
    const tail = (await readFile(logFile, "utf8").catch(() => "")).split("\n").slice(-30).join("\n");
    throw new Error(`${(error as Error).message}; the end of ${logFile}:\n${tail}`);
  }
  return running;
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const group = -child.pid;
  signalGroup(group, "SIGTERM");
  const timedOut = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(true), STOP_GRACE_MS)),
  ]);
  // Whatever is left of the group (a worker that ignored SIGTERM) goes now.
  signalGroup(group, "SIGKILL");
  if (timedOut) await exited;
}

function signalGroup(group: number, signal: NodeJS.Signals): void {
  try {
    process.kill(group, signal);
  } catch {
    // ESRCH: the group is already gone, which is what we wanted.
  }
}
