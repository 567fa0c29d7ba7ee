/**
 * The endpoint image's model files as suggestions on loader inputs: one `<datalist>` per models
 * folder (filled from GET /api/models), and model-name text fields point at theirs with `list`.
 * A datalist suggests and never restricts, so a name the list lacks can still be typed, and the
 * workflow's own value is never changed by showing the form.
 */

import { type ModelLists, parseModelLists } from "../workflow/model-inputs.js";
import { h } from "./dom.js";

export function modelListId(folder: string): string {
  return `models-${folder.replace(/[^A-Za-z0-9_-]/g, "_")}`;
}

/** Fetch the lists and put them in `root` as datalists; resolves to what was found. */
export async function mountModelLists(root: HTMLElement): Promise<ModelLists> {
  let lists: ModelLists;
  try {
    const response = await fetch("/api/models", { headers: { Accept: "application/json" } });
    lists = response.ok
      ? parseModelLists(await response.json())
      : { source: "none", folders: {}, note: `/api/models answered HTTP ${response.status}` };
  } catch (error) {
    lists = { source: "none", folders: {}, note: `/api/models failed: ${(error as Error).message}` };
  }
  root.replaceChildren(
    ...Object.entries(lists.folders).map(([folder, names]) =>
      h(
        "datalist",
        { id: modelListId(folder), "data-folder": folder },
        names.map((name) => h("option", { value: name })),
      ),
    ),
  );
  root.dataset.source = lists.source;
  root.title = lists.note;
  return lists;
}
