/**
 * The workflow picker's source: the `*.json` files in the repo's `workflows/` folder (and one
 * level of subfolders), listed by path. A file is served only if the listing has it, so no request
 * can reach outside the folder whatever its path says.
 */

import { readdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";

export interface WorkflowEntry {
  /** Path inside the folder with `/` separators, e.g. `simple_test.json` or `video/clip.json`. */
  path: string;
  /** What the picker shows: the path without `.json`. */
  name: string;
}

const MAX_DEPTH = 2;

export async function listWorkflows(folder: string): Promise<WorkflowEntry[]> {
  const found: WorkflowEntry[] = [];
  await walk(folder, "", 1, found);
  return found.sort((a, b) => a.path.localeCompare(b.path));
}

async function walk(folder: string, prefix: string, depth: number, found: WorkflowEntry[]): Promise<void> {
  let entries;
  try {
    entries = await readdir(path.join(folder, prefix), { withFileTypes: true });
  } catch (error) {
    // No workflows folder is a normal state (a fresh checkout of the app alone): list nothing.
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  for (const entry of entries) {
    if (entry.name.startsWith(".")) continue;
    const relative = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory() && depth < MAX_DEPTH) await walk(folder, relative, depth + 1, found);
    else if (entry.isFile() && entry.name.toLowerCase().endsWith(".json") && !isSidecar(entry.name)) {
      found.push({ path: relative, name: relative.replace(/\.json$/i, "") });
    }
  }
}

/** `x.inputs.json`: the exposed-inputs sidecar of `x.json`, not a workflow. */
export function isSidecar(name: string): boolean {
  return name.toLowerCase().endsWith(".inputs.json");
}

/** `x.inputs.json` -> `x.json`. */
export function workflowOf(sidecar: string): string {
  return sidecar.replace(/\.inputs\.json$/i, ".json");
}

/** The listed workflow a sidecar path belongs to, or null. */
async function sidecarOwner(folder: string, wanted: string): Promise<WorkflowEntry | null> {
  if (!isSidecar(wanted)) return null;
  const workflowPath = wanted.replace(/\.inputs\.json$/i, ".json");
  return (await listWorkflows(folder)).find((item) => item.path === workflowPath) ?? null;
}

/**
 * The file's text, or null when `wanted` is not in the listing (a sidecar counts when its
 * workflow is listed and the sidecar exists).
 */
export async function readWorkflow(folder: string, wanted: string): Promise<string | null> {
  if (isSidecar(wanted)) {
    const owner = await sidecarOwner(folder, wanted);
    if (owner === null) return null;
    try {
      return await readFile(path.join(folder, ...wanted.split("/")), "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw error;
    }
  }
  const listed = await listWorkflows(folder);
  const entry = listed.find((item) => item.path === wanted);
  if (entry === undefined) return null;
  return readFile(path.join(folder, ...entry.path.split("/")), "utf8");
}

export const MAX_SIDECAR_BYTES = 64 * 1024;

/**
 * Save an exposed-inputs sidecar beside its listed workflow (written to a temporary name, then
 * renamed, so a reader never sees half a file). Returns an error message, or null when saved.
 */
export async function writeSidecar(folder: string, wanted: string, text: string): Promise<string | null> {
  const owner = await sidecarOwner(folder, wanted);
  if (owner === null)
    return `no listed workflow ${JSON.stringify(wanted.replace(/\.inputs\.json$/i, ".json"))} to save inputs for`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return "the exposed inputs are not JSON";
  }
  if (
    typeof parsed !== "object" ||
    parsed === null ||
    !Array.isArray((parsed as { inputs?: unknown }).inputs)
  ) {
    return 'the exposed inputs must be {"version": 1, "inputs": [...]}';
  }
  const target = path.join(folder, ...wanted.split("/"));
  const partial = `${target}.part`;
  await writeFile(partial, `${JSON.stringify(parsed, null, 2)}\n`, "utf8");
  await rename(partial, target);
  return null;
}
