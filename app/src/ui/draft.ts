/**
 * The workflow being edited survives a reload: its name, its text and the form's values are kept
 * in the tab's sessionStorage. Dropped input images are not (they can be megabytes, over what
 * sessionStorage holds); the form says so when it restores.
 */

import type { FormValues } from "../workflow/form.js";

const KEY = "studio-app.draft.v1";

export interface Draft {
  name: string;
  text: string;
  /** The picker's entry when the workflow came from the repo's list, else "". */
  listedPath: string;
  values: FormValues;
}

export function loadDraft(storage: Storage | null): Draft | null {
  try {
    const raw = storage?.getItem(KEY);
    if (raw === null || raw === undefined) return null;
    const draft = JSON.parse(raw) as Partial<Draft>;
    if (typeof draft.name !== "string" || typeof draft.text !== "string") return null;
    return {
      name: draft.name,
      text: draft.text,
      listedPath: typeof draft.listedPath === "string" ? draft.listedPath : "",
      values: typeof draft.values === "object" && draft.values !== null ? draft.values : {},
    };
  } catch {
    return null; // Unreadable: start fresh rather than fail to start.
  }
}

export function saveDraft(storage: Storage | null, draft: Draft | null): void {
  try {
    if (draft === null) storage?.removeItem(KEY);
    else storage?.setItem(KEY, JSON.stringify(draft));
  } catch {
    // Over the quota (a huge workflow): the draft is simply not kept.
  }
}
