/**
 * GET /api/models: the model files the endpoint's image has, by ComfyUI models folder, read from
 * the manifest.toml the image is built from (`[[models]]`: `folder`, and `filename` or the URL's
 * last part). A serverless endpoint has no `/object_info` to ask, so the manifest is the list.
 * The page offers these names on loader inputs (ckpt_name, lora_name...), free text still allowed.
 */

import { readFile } from "node:fs/promises";
import { type ModelLists, canonicalFolder } from "../src/workflow/model-inputs.js";

/** The `[[models]]` tables of a manifest.toml, as far as the list needs: string keys only. Pure. */
export function modelsFromManifest(text: string): Record<string, string[]> {
  const tables: Array<Record<string, string>> = [];
  let current: Record<string, string> | null = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith("[")) {
      current = line.replace(/\s*#.*$/, "") === "[[models]]" ? {} : null;
      if (current !== null) tables.push(current);
      continue;
    }
    if (current === null) continue;
    const match = /^([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|'[^']*')/.exec(line);
    if (match === null) continue;
    const [, key, quoted] = match as unknown as [string, string, string];
    try {
      current[key] = quoted.startsWith("'") ? quoted.slice(1, -1) : (JSON.parse(quoted) as string);
    } catch {
      // A TOML escape JSON does not know (\U0001F600...): not a file name this list needs.
    }
  }
  const folders: Record<string, string[]> = {};
  for (const table of tables) {
    const folder = table.folder;
    if (folder === undefined) continue;
    const name = table.filename || fileNameOf(table.url ?? "");
    if (name === "") continue;
    const list = (folders[canonicalFolder(folder)] ??= []);
    if (!list.includes(name)) list.push(name);
  }
  for (const list of Object.values(folders)) list.sort((a, b) => a.localeCompare(b));
  return folders;
}

function fileNameOf(url: string): string {
  try {
    const last = new URL(url).pathname.split("/").pop() ?? "";
    return decodeURIComponent(last);
  } catch {
    return "";
  }
}

/** The lists for GET /api/models; no manifest (or an unreadable one) is "none" with the reason. */
export async function readModelLists(manifestPath: string | null): Promise<ModelLists> {
  if (manifestPath === null) {
    return { source: "none", folders: {}, note: "APP_MODELS_MANIFEST is empty: no model list" };
  }
  let text: string;
  try {
    text = await readFile(manifestPath, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "error";
    return {
      source: "none",
      folders: {},
      note: `cannot read the model list ${manifestPath} (${code}); set APP_MODELS_MANIFEST to the image's manifest.toml`,
    };
  }
  return { source: "manifest", folders: modelsFromManifest(text), note: `from ${manifestPath}` };
}
