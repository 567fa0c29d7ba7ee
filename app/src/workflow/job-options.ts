/**
 * The job's own settings next to the workflow: where outputs go (`output`), whether preview
 * images come back (`include_temp`), the job's deadline (`timeout`) and what splat `.ply`
 * outputs are converted to (`convert`). Pure.
 */

import type { ApiWorkflow, JobInput } from "../api/types.js";

export type OutputChoice = "" | "base64" | "s3" | "auto";
/** "": splats come back as `.ply`; `+ply`: the converted file and the original. */
export type ConvertChoice = "" | "spz" | "spz+ply" | "splat" | "splat+ply";

type OptionFields = Pick<JobInput, "output" | "include_temp" | "timeout" | "convert">;

export interface JobOptionsValues {
  /** "" leaves it to the app server (APP_OUTPUT) or the worker. */
  output: OutputChoice;
  includeTemp: boolean;
  /** Seconds as typed; "" for the worker's default. */
  timeout: string;
  convert: ConvertChoice;
}

export class JobOptionsError extends Error {
  override name = "JobOptionsError";
}

// Nodes whose results ComfyUI keeps in output/ (the worker returns them without include_temp).
const SAVING = /^(Save|VHS_VideoCombine$|SharpPredict$)/;
const SPLAT_MAKERS = /^(SharpPredict|.*Gaussian.*|.*Splat.*)$/;
// Nodes whose images go to temp/, which the worker returns only with include_temp.
const PREVIEWING = new Set(["PreviewImage", "PreviewAudio", "PreviewVideo", "MaskPreview"]);

/** Nodes that write Gaussian-splat `.ply` files: the page suggests SPZ for them. */
export function makesSplats(workflow: ApiWorkflow): boolean {
  return Object.values(workflow).some((node) => SPLAT_MAKERS.test(node.class_type));
}

/** True when the workflow only previews (no Save* node): its results need include_temp. */
export function needsIncludeTemp(workflow: ApiWorkflow): boolean {
  const classes = Object.values(workflow).map((node) => node.class_type);
  return classes.some((c) => PREVIEWING.has(c)) && !classes.some((c) => SAVING.test(c));
}

/** The fields to add to the job input; throws JobOptionsError saying what to fix. */
export function jobOptionsInput(values: JobOptionsValues): OptionFields {
  const fields: OptionFields = {};
  if (values.output !== "") fields.output = values.output;
  if (values.includeTemp) fields.include_temp = true;
  if (values.convert !== "") {
    const [target, original] = values.convert.split("+");
    fields.convert = { ply: target === "splat" ? "splat" : "spz" };
    if (original === "ply") fields.convert.keep_original = true;
  }
  const text = values.timeout.trim();
  if (text !== "") {
    const seconds = Number(text);
    if (!Number.isFinite(seconds) || seconds <= 0) {
      throw new JobOptionsError(`The timeout must be a number of seconds above 0, got "${text}".`);
    }
    fields.timeout = seconds;
  }
  return fields;
}
