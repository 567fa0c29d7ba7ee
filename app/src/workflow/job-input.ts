/**
 * Everything between the form and `api.run`: the edited workflow, the attached images wired in,
 * and the size check, as one result the page can show. Pure.
 *
 *   const prepared = prepareJobInput(workflow, form, values, attachments, maxBytes);
 *   if (prepared.ok) await api.run(prepared.input);
 */

import type { ApiWorkflow, JobInput } from "../api/types.js";
import { type Attachment, AttachmentError, wireAttachments } from "./attachments.js";
import { type FormValues, FormValueError, type WorkflowForm, applyForm } from "./form.js";

export type PreparedJob =
  | { ok: true; input: JobInput; sizeBytes: number }
  | {
      ok: false;
      message: string;
      problems: ReadonlyArray<{ key: string; message: string }>;
      /** Set when the request is too large: its size and the limit, for offering to downscale. */
      tooLarge?: { sizeBytes: number; maxBytes: number };
    };

export function prepareJobInput(
  workflow: ApiWorkflow,
  form: WorkflowForm,
  values: FormValues,
  attachments: readonly Attachment[],
  maxBytes: number | null,
): PreparedJob {
  let input: JobInput;
  try {
    const wired = wireAttachments(applyForm(workflow, form, values), attachments);
    input =
      wired.images.length > 0
        ? { workflow: wired.workflow, images: wired.images }
        : { workflow: wired.workflow };
  } catch (error) {
    if (error instanceof FormValueError) {
      return { ok: false, message: "Fix the marked fields first.", problems: error.problems };
    }
    if (error instanceof AttachmentError) return { ok: false, message: error.message, problems: [] };
    throw error;
  }
  // RunPod refuses a large request only after receiving all of it; saying so first saves the wait.
  const sizeBytes = new TextEncoder().encode(JSON.stringify({ input })).length;
  if (maxBytes !== null && sizeBytes > maxBytes) {
    const mb = (n: number): string => (n / 1024 / 1024).toFixed(1);
    return {
      ok: false,
      message: `This request is ${mb(sizeBytes)} MB, over the ${mb(maxBytes)} MB limit (RunPod takes at most 10 MB on /run, which this page uses); use smaller input images. Nothing was sent.`,
      problems: [],
      tooLarge: { sizeBytes, maxBytes },
    };
  }
  return { ok: true, input, sizeBytes };
}
