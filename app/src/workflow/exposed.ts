/**
 * Exposed inputs: a small sidecar file per workflow (`<name>.inputs.json` beside `<name>.json`)
 * that says which inputs a person edits, in which order, under which labels and with which
 * widgets. Everything else keeps the workflow's own value. Pure.
 *
 *   {
 *     "version": 1,
 *     "inputs": [
 *       { "key": "6.text", "label": "Prompt", "widget": "textarea" },
 *       { "key": "3.steps", "label": "Steps", "widget": "slider", "min": 1, "max": 50, "step": 1 },
 *       { "key": "3.seed", "label": "Seed" },
 *       { "key": "1.color", "label": "Background", "widget": "color" },
 *       { "key": "4.ckpt_name", "label": "Model", "widget": "choice", "options": ["a.safetensors", "b.safetensors"] }
 *     ]
 *   }
 *
 * `key` is `<node id>.<input name>`, as in the full form. A workflow without a sidecar keeps the
 * full form.
 */

import type { FormField, FormGroup, WorkflowForm } from "./form.js";

export const WIDGETS = ["auto", "textarea", "text", "slider", "color", "choice"] as const;
export type Widget = (typeof WIDGETS)[number];

export interface ExposedInput {
  key: string;
  label?: string;
  /** "auto" (or none): the full form's control for the input. */
  widget?: Widget;
  min?: number;
  max?: number;
  step?: number;
  options?: string[];
}

export interface ExposedInputs {
  version: 1;
  inputs: ExposedInput[];
}

export class ExposedInputsError extends Error {
  override name = "ExposedInputsError";
}

/** The sidecar's path for a listed workflow: `txt2img.json` -> `txt2img.inputs.json`. */
export function sidecarPath(workflowPath: string): string {
  return workflowPath.replace(/\.json$/i, ".inputs.json");
}

/** Read and check a sidecar against the workflow's full form; throws saying what is wrong. */
export function parseExposedInputs(text: string, form: WorkflowForm): ExposedInputs {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ExposedInputsError("the exposed-inputs file is not JSON");
  }
  if (typeof raw !== "object" || raw === null || !Array.isArray((raw as { inputs?: unknown }).inputs)) {
    throw new ExposedInputsError('the exposed-inputs file must be {"version": 1, "inputs": [...]}');
  }
  const known = new Map(form.groups.flatMap((g) => g.fields).map((f) => [f.key, f]));
  const inputs: ExposedInput[] = [];
  const seen = new Set<string>();
  for (const [index, entry] of ((raw as { inputs: unknown[] }).inputs ?? []).entries()) {
    const where = `inputs[${index}]`;
    if (typeof entry !== "object" || entry === null)
      throw new ExposedInputsError(`${where} must be an object`);
    const item = entry as Record<string, unknown>;
    const key = item.key;
    if (typeof key !== "string" || !known.has(key)) {
      throw new ExposedInputsError(
        `${where}.key ${JSON.stringify(key)} is not an editable input of this workflow (keys look like "6.text")`,
      );
    }
    if (seen.has(key)) throw new ExposedInputsError(`${where}.key "${key}" is listed twice`);
    seen.add(key);
    const widget = item.widget ?? "auto";
    if (typeof widget !== "string" || !(WIDGETS as readonly string[]).includes(widget)) {
      throw new ExposedInputsError(`${where}.widget must be one of ${WIDGETS.join(", ")}`);
    }
    const out: ExposedInput = { key, widget: widget as Widget };
    if (item.label !== undefined) {
      if (typeof item.label !== "string") throw new ExposedInputsError(`${where}.label must be text`);
      out.label = item.label;
    }
    for (const name of ["min", "max", "step"] as const) {
      const value = item[name];
      if (value === undefined) continue;
      if (typeof value !== "number" || !Number.isFinite(value)) {
        throw new ExposedInputsError(`${where}.${name} must be a number`);
      }
      out[name] = value;
    }
    if (widget === "slider" && (out.min === undefined || out.max === undefined || out.min >= out.max)) {
      throw new ExposedInputsError(`${where}: a slider needs min below max`);
    }
    if (item.options !== undefined) {
      if (!Array.isArray(item.options) || !item.options.every((o) => typeof o === "string")) {
        throw new ExposedInputsError(`${where}.options must be a list of names`);
      }
      out.options = item.options as string[];
    }
    if (widget === "choice" && (out.options === undefined || out.options.length === 0)) {
      throw new ExposedInputsError(`${where}: a choice needs options`);
    }
    inputs.push(out);
  }
  return { version: 1, inputs };
}

/** A field as shown with its sidecar entry: its label and widget. */
export type ExposedField = FormField & { label?: string; exposed?: ExposedInput };

/** The form with only the exposed inputs, in the sidecar's order, as one group. */
export function exposedForm(form: WorkflowForm, exposed: ExposedInputs): WorkflowForm {
  const byKey = new Map(form.groups.flatMap((g) => g.fields).map((f) => [f.key, f]));
  const fields: ExposedField[] = [];
  for (const entry of exposed.inputs) {
    const field = byKey.get(entry.key);
    if (field === undefined) continue;
    let shown: ExposedField = { ...field, exposed: entry };
    if (entry.label !== undefined) shown = { ...shown, label: entry.label };
    if (entry.widget === "choice" && entry.options !== undefined && field.kind !== "boolean") {
      const value = String(field.value);
      const options = entry.options.includes(value) ? entry.options : [value, ...entry.options];
      shown = { ...shown, kind: "choice", options, value } as ExposedField;
    }
    if (entry.widget === "textarea" && field.kind === "text")
      shown = { ...shown, multiline: true } as ExposedField;
    if (entry.widget === "text" && field.kind === "text")
      shown = { ...shown, multiline: false } as ExposedField;
    fields.push(shown);
  }
  const group: FormGroup = { nodeId: "exposed", classType: "exposed", title: "Inputs", fields };
  return { groups: [group] };
}

/** A starting sidecar: prompts first, then the rest in node order, labelled by node title. */
export function defaultExposed(form: WorkflowForm): ExposedInputs {
  const all = form.groups.flatMap((g) => g.fields.map((f) => ({ field: f, title: g.title })));
  const prompts = all.filter(({ field }) => field.kind === "text" && field.multiline);
  const rest = all.filter((item) => !prompts.includes(item));
  return {
    version: 1,
    inputs: [...prompts, ...rest].map(({ field, title }) => ({
      key: field.key,
      label: `${title} ${field.input}`,
      widget: field.kind === "text" && field.multiline ? "textarea" : "auto",
    })),
  };
}
