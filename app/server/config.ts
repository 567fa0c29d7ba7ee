/**
 * The app server's settings: the only module that reads the environment. `loadConfig(env)` takes
 * the environment as a plain object (tests pass their own) and throws `ConfigError` naming every
 * variable that is wrong, so a misconfigured server refuses to start instead of failing requests.
 *
 * | variable                   | default                    | meaning                                      |
 * | RUNPOD_API_KEY (or _FILE)  | required                   | RunPod API key; stays in this process        |
 * | RUNPOD_ENDPOINT_ID         | required                   | the serverless endpoint's id                 |
 * | RUNPOD_ENDPOINT_BASE_URL   | https://api.runpod.ai/v2   | API root (the runpod SDK's and the CLI's name; RUNPOD_BASE_URL also works); the local endpoint's is http://127.0.0.1:8000/v2 |
 * | APP_HOST                   | 127.0.0.1                  | address the app listens on                   |
 * | APP_PORT                   | 3000                       | port (0 picks a free one)                    |
 * | APP_ALLOWED_HOSTS          | none                       | more host names to answer to (comma-separated; loopback always) |
 * | APP_WORKFLOWS_DIR          | <repo>/workflows           | where the workflow picker lists *.json       |
 * | APP_STATIC_DIR             | <app>/dist/web             | the built front end                          |
 * | APP_MAX_BODY_MB            | 20                         | largest job request accepted (RunPod's /runsync limit) |
 * | APP_S3_CONFIG_FILE         | none                       | JSON s3Config added to every job (the page never sees it) |
 * | APP_OUTPUT                 | none                       | base64, s3 or auto: the output mode when the page sends none |
 * | APP_STORAGE_ORIGINS        | none                       | more origins the page may load outputs from (http ones; https is allowed) |
 * | APP_MODELS_MANIFEST        | <repo>/manifest.toml       | the image's manifest: its [[models]] are the form's model-name choices ("" for none) |
 */

import { readFileSync } from "node:fs";
import path from "node:path";

export interface AppConfig {
  apiKey: string;
  endpointId: string;
  /** `${baseUrl}/${endpointId}` is the endpoint's API root. */
  baseUrl: string;
  host: string;
  port: number;
  /** Host names besides loopback and `host` that requests may be addressed to (see guard.ts). */
  allowedHosts: string[];
  workflowsDir: string;
  staticDir: string;
  maxBodyBytes: number;
  storage: StorageConfig;
  /** The manifest.toml whose [[models]] the page offers as model names; null for none. */
  modelsManifest: string | null;
}

/** RunPod's per-request bucket settings, as the worker reads them. */
export interface S3Config {
  accessId: string;
  accessSecret: string;
  bucketName: string;
  endpointUrl: string;
}

export type OutputMode = "base64" | "s3" | "auto";
export const OUTPUT_MODES: readonly OutputMode[] = ["base64", "s3", "auto"];

export interface StorageConfig {
  /** Added to every job request; never sent to the page. */
  s3Config: S3Config | null;
  /** The job's `output` when the page sends none. */
  output: OutputMode | null;
  /** Origins (scheme://host:port) the page may fetch outputs from besides https: ones. */
  origins: string[];
}

export const DEFAULT_BASE_URL = "https://api.runpod.ai/v2";
export const DEFAULT_PORT = 3000;
// RunPod refuses bodies over 10 MB on /run and 20 MB on /runsync; refusing here says so sooner.
export const DEFAULT_MAX_BODY_MB = 20;

export class ConfigError extends Error {
  override name = "ConfigError";
}

export function loadConfig(env: Record<string, string | undefined>, appDir: string): AppConfig {
  const problems: string[] = [];
  const apiKey = readSecret(env, "RUNPOD_API_KEY", problems);
  const endpointId = (env.RUNPOD_ENDPOINT_ID ?? "").trim();
  if (endpointId === "") {
    problems.push(
      "RUNPOD_ENDPOINT_ID is not set (the id in your endpoint's URL, e.g. RUNPOD_ENDPOINT_ID=abc123xyz)",
    );
  } else if (!/^[A-Za-z0-9_-]+$/.test(endpointId)) {
    problems.push(`RUNPOD_ENDPOINT_ID must be letters, digits, - or _, got ${JSON.stringify(endpointId)}`);
  }
  const baseUrl = checkBaseUrl(readBaseUrl(env, problems).replace(/\/+$/, ""), problems);
  const host = (env.APP_HOST ?? "127.0.0.1").trim();
  const port = readInteger(env, "APP_PORT", DEFAULT_PORT, 0, 65535, problems);
  const maxBodyMb = readInteger(env, "APP_MAX_BODY_MB", DEFAULT_MAX_BODY_MB, 1, 1024, problems);
  const storage = readStorage(env, problems);
  if (problems.length > 0) throw new ConfigError(problems.join("\n"));
  return {
    apiKey,
    endpointId,
    baseUrl,
    host,
    port,
    allowedHosts: (env.APP_ALLOWED_HOSTS ?? "")
      .split(",")
      .map((name) => name.trim())
      .filter((name) => name !== ""),
    workflowsDir: path.resolve(appDir, env.APP_WORKFLOWS_DIR ?? "../workflows"),
    staticDir: path.resolve(appDir, env.APP_STATIC_DIR ?? "dist/web"),
    maxBodyBytes: maxBodyMb * 1024 * 1024,
    storage,
    modelsManifest:
      env.APP_MODELS_MANIFEST === ""
        ? null
        : path.resolve(appDir, env.APP_MODELS_MANIFEST ?? "../manifest.toml"),
  };
}

function readStorage(env: Record<string, string | undefined>, problems: string[]): StorageConfig {
  const origins: string[] = [];
  let s3Config: S3Config | null = null;
  const file = (env.APP_S3_CONFIG_FILE ?? "").trim();
  if (file !== "") {
    s3Config = readS3Config(file, problems);
    if (s3Config !== null) origins.push(new URL(s3Config.endpointUrl).origin);
  }
  let output: OutputMode | null = null;
  const rawOutput = (env.APP_OUTPUT ?? "").trim();
  if (rawOutput !== "") {
    if ((OUTPUT_MODES as readonly string[]).includes(rawOutput)) output = rawOutput as OutputMode;
    else problems.push(`APP_OUTPUT must be base64, s3 or auto, got ${JSON.stringify(rawOutput)}`);
  }
  for (const raw of (env.APP_STORAGE_ORIGINS ?? "").split(",")) {
    const value = raw.trim();
    if (value === "") continue;
    try {
      const url = new URL(value);
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http(s)");
      origins.push(url.origin);
    } catch {
      problems.push(
        `APP_STORAGE_ORIGINS: ${JSON.stringify(value)} is not an http(s) origin like http://127.0.0.1:9000`,
      );
    }
  }
  return { s3Config, output, origins: [...new Set(origins)] };
}

/** The bucket settings file: `{accessId, accessSecret, bucketName, endpointUrl}`, all strings. */
function readS3Config(file: string, problems: string[]): S3Config | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    problems.push(`APP_S3_CONFIG_FILE (${file}) cannot be read as JSON: ${(error as Error).message}`);
    return null;
  }
  const shape = '{"accessId", "accessSecret", "bucketName", "endpointUrl"}';
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    problems.push(`APP_S3_CONFIG_FILE (${file}) must hold a JSON object ${shape}`);
    return null;
  }
  const record = parsed as Record<string, unknown>;
  const fields: Record<string, string> = {};
  for (const key of ["accessId", "accessSecret", "bucketName", "endpointUrl"]) {
    const value = record[key];
    if (typeof value !== "string" || value.trim() === "") {
      problems.push(`APP_S3_CONFIG_FILE (${file}): ${key} must be a non-empty string (${shape})`);
      return null;
    }
    fields[key] = value.trim();
  }
  try {
    const url = new URL(fields.endpointUrl as string);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http(s)");
  } catch {
    problems.push(
      `APP_S3_CONFIG_FILE (${file}): endpointUrl must be the bucket service's http(s) URL, e.g. https://s3.us-east-1.amazonaws.com`,
    );
    return null;
  }
  return fields as unknown as S3Config;
}

/** `NAME`, or the contents of the file `NAME_FILE` names (a Docker or Kubernetes secret); not both. */
function readSecret(env: Record<string, string | undefined>, name: string, problems: string[]): string {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  if (direct !== undefined && direct !== "" && file !== undefined && file !== "") {
    problems.push(`${name} and ${name}_FILE are both set; keep one`);
    return "";
  }
  if (file !== undefined && file !== "") {
    try {
      const value = readFileSync(file, "utf8").trim();
      if (value === "") problems.push(`${name}_FILE (${file}) is empty`);
      return value;
    } catch (error) {
      problems.push(`${name}_FILE (${file}) cannot be read: ${(error as Error).message}`);
      return "";
    }
  }
  if (direct === undefined || direct.trim() === "") {
    problems.push(`${name} is not set (RunPod console > Settings > API Keys; it never leaves this server)`);
    return "";
  }
  return direct.trim();
}

/** RUNPOD_ENDPOINT_BASE_URL (as the CLI and the runpod SDK), or its alias RUNPOD_BASE_URL. */
function readBaseUrl(env: Record<string, string | undefined>, problems: string[]): string {
  const main = (env.RUNPOD_ENDPOINT_BASE_URL ?? "").trim();
  const alias = (env.RUNPOD_BASE_URL ?? "").trim();
  if (main !== "" && alias !== "" && main.replace(/\/+$/, "") !== alias.replace(/\/+$/, "")) {
    problems.push(
      `RUNPOD_ENDPOINT_BASE_URL (${main}) and RUNPOD_BASE_URL (${alias}) disagree; keep RUNPOD_ENDPOINT_BASE_URL`,
    );
  }
  return main || alias || DEFAULT_BASE_URL;
}

function checkBaseUrl(value: string, problems: string[]): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push(
      `RUNPOD_ENDPOINT_BASE_URL is not a URL: ${JSON.stringify(value)} (e.g. ${DEFAULT_BASE_URL})`,
    );
    return value;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    problems.push(`RUNPOD_ENDPOINT_BASE_URL must be http(s), got ${url.protocol}`);
  } else if (url.protocol === "http:" && !isLoopback(url.hostname)) {
    // The key goes in every request's Authorization header: in clear text only to this machine.
    problems.push(
      `RUNPOD_ENDPOINT_BASE_URL must use https for ${url.hostname}; plain http is allowed for loopback only`,
    );
  }
  return value;
}

export function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function readInteger(
  env: Record<string, string | undefined>,
  name: string,
  fallback: number,
  min: number,
  max: number,
  problems: string[],
): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    problems.push(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
    return fallback;
  }
  return value;
}
