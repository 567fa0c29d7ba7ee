/**
 * The workflow form: which of a graph's inputs a person can edit (texts, seeds, numbers, choices,
 * switches, input image names), and writing the edited values back into a copy of the graph.
 * Pure; `ui/form-view.ts` renders it.
 *
 *   const form = buildForm(workflow);
 *   const edited = applyForm(workflow, form, { "6.text": "a red fox", "3.seed": "42" });
 *
 * Only literal values become fields; links (`["4", 0]`), lists and objects stay as they are.
 */

import type { ApiWorkflow } from "../api/types.js";
import { isLink, nodeTitle, sortedNodeIds } from "./graph.js";
import {
  type MediaKind,
  choicesFor,
  isIntegerInput,
  isMultilineInput,
  isSeedInput,
  mediaInputKind,
} from "./known-inputs.js";
import { modelFolderFor } from "./model-inputs.js";

interface FieldBase {
  /** `nodeId.input`: unique in the form, and the name of the form control. */
  key: string;
  nodeId: string;
  input: string;
}

export type FormField =
  | (FieldBase & {
      kind: "text";
      multiline: boolean;
      value: string;
      /** The models folder this input names a file from (ckpt_name: checkpoints), for suggestions. */
      modelFolder?: string;
    })
  | (FieldBase & { kind: "seed"; value: number })
  | (FieldBase & { kind: "number"; integer: boolean; value: number })
  | (FieldBase & { kind: "choice"; options: readonly string[]; value: string })
  | (FieldBase & { kind: "boolean"; value: boolean })
  | (FieldBase & { kind: "media"; media: MediaKind; value: string });

export interface FormGroup {
  nodeId: string;
  classType: string;
  title: string;
  fields: FormField[];
}

export interface WorkflowForm {
  groups: FormGroup[];
}

/** Raw control values by field key: strings from inputs and selects, booleans from checkboxes. */
export type FormValues = Record<string, string | boolean>;

/** One message per bad value, each naming its field, so the page can mark every one at once. */
export class FormValueError extends Error {
  override name = "FormValueError";
  readonly problems: ReadonlyArray<{ key: string; message: string }>;

  constructor(problems: Array<{ key: string; message: string }>) {
    super(problems.map((p) => `${p.key}: ${p.message}`).join("; "));
    this.problems = problems;
  }
}

/**
 * ComfyUI's front end draws random seeds below 2**50; staying there also keeps seeds exact in
 * JavaScript numbers (safe up to 2**53).
 */
export const MAX_RANDOM_SEED = 2 ** 50;

export function randomSeed(random: () => number = Math.random): number {
  return Math.floor(random() * MAX_RANDOM_SEED);
}

export function buildForm(workflow: ApiWorkflow): WorkflowForm {
  const groups: FormGroup[] = [];
  for (const nodeId of sortedNodeIds(workflow)) {
    const node = workflow[nodeId];
    if (node === undefined) continue;
    const fields: FormField[] = [];
    for (const [input, value] of Object.entries(node.inputs)) {
      const field = fieldFor(node.class_type, nodeId, input, value);
      if (field !== null) fields.push(field);
    }
    if (fields.length > 0)
      groups.push({ nodeId, classType: node.class_type, title: nodeTitle(node), fields });
  }
  return { groups };
}

function fieldFor(classType: string, nodeId: string, input: string, value: unknown): FormField | null {
  const base = { key: `${nodeId}.${input}`, nodeId, input };
  if (isLink(value)) return null;
  if (typeof value === "boolean") return { ...base, kind: "boolean", value };
  if (typeof value === "number" && Number.isFinite(value)) {
    if (isSeedInput(input) && Number.isInteger(value)) return { ...base, kind: "seed", value };
    return { ...base, kind: "number", integer: isIntegerInput(input) && Number.isInteger(value), value };
  }
  if (typeof value === "string") {
    const media = mediaInputKind(classType, input, value);
    if (media !== null) return { ...base, kind: "media", media, value };
    const choices = choicesFor(classType, input);
    if (choices !== null) {
      // Keep the workflow's own value even when our table lacks it, so rendering never edits.
      const options = choices.includes(value) ? choices : [value, ...choices];
      return { ...base, kind: "choice", options, value };
    }
    const modelFolder = modelFolderFor(classType, input);
    if (modelFolder !== null) return { ...base, kind: "text", multiline: false, value, modelFolder };
    const multiline = isMultilineInput(input) || value.includes("\n") || value.length > 80;
    return { ...base, kind: "text", multiline, value };
  }
  return null;
}

/**
 * A copy of `workflow` with `values` written in. Keys missing from `values` keep the workflow's
 * value; keys that are no field are ignored. Throws `FormValueError` listing every bad value.
 */
export function applyForm(workflow: ApiWorkflow, form: WorkflowForm, values: FormValues): ApiWorkflow {
  const edited: ApiWorkflow = structuredClone(workflow);
  const problems: Array<{ key: string; message: string }> = [];
  for (const group of form.groups) {
    for (const field of group.fields) {
      if (!Object.hasOwn(values, field.key)) continue;
      const node = edited[field.nodeId];
      if (node === undefined) {
        problems.push({ key: field.key, message: `node ${field.nodeId} is not in this workflow` });
        continue;
      }
      const parsed = parseValue(field, values[field.key]);
      if ("problem" in parsed) problems.push({ key: field.key, message: parsed.problem });
      else node.inputs[field.input] = parsed.value;
    }
  }
  if (problems.length > 0) throw new FormValueError(problems);
  return edited;
}

type Parsed = { value: string | number | boolean } | { problem: string };

function parseValue(field: FormField, raw: string | boolean | undefined): Parsed {
  if (field.kind === "boolean") {
    return typeof raw === "boolean" ? { value: raw } : { problem: "must be on or off" };
  }
  if (typeof raw !== "string") return { problem: "must be text" };
  switch (field.kind) {
    case "text":
    case "media":
      return { value: raw };
    case "choice":
      return field.options.includes(raw)
        ? { value: raw }
        : {
            problem: `must be one of ${field.options.slice(0, 5).join(", ")}${field.options.length > 5 ? ", ..." : ""}`,
          };
    case "seed":
      return parseSeed(raw);
    case "number":
      return parseNumber(raw, field.integer);
  }
}

function parseSeed(raw: string): Parsed {
  const text = raw.trim();
  if (!/^\d+$/.test(text)) return { problem: "a seed is a whole number of 0 or more" };
  const seed = Number(text);
  if (!Number.isSafeInteger(seed)) {
    return { problem: `a seed above ${Number.MAX_SAFE_INTEGER} cannot be sent exactly from a browser` };
  }
  return { value: seed };
}

function parseNumber(raw: string, integer: boolean): Parsed {
  const text = raw.trim();
  // Number("") is 0 and Number("0x10") is 16: accept only plain decimal notation.
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return { problem: "must be a number" };
  const value = Number(text);
  if (!Number.isFinite(value)) return { problem: "must be a finite number" };
  if (integer && !Number.isInteger(value)) return { problem: "must be a whole number" };
  if (integer && !Number.isSafeInteger(value)) return { problem: "is too large to send exactly" };
  return { value };
}
