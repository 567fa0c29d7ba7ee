/**
 * The workflow picker's source: the `*.json` files in the repo's `workflows/` folder (and one
 * level of subfolders), listed by path. A file is served only if the listing has it, so no request
 * can reach outside the folder whatever its path says.
 */

import { readdir, readFile } from "node:fs/promises";
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
    else if (entry.isFile() && entry.name.toLowerCase().endsWith(".json")) {
      found.push({ path: relative, name: relative.replace(/\.json$/i, "") });
    }
  }
}

/** The file's text, or null when `wanted` is not in the listing. */
export async function readWorkflow(folder: string, wanted: string): Promise<string | null> {
  const listed = await listWorkflows(folder);
  const entry = listed.find((item) => item.path === wanted);
  if (entry === undefined) return null;
  return readFile(path.join(folder, ...entry.path.split("/")), "utf8");
}
