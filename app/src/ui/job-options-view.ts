/** The job options controls (output mode, include_temp, timeout, splat conversion) under the workflow's inputs. */

import type { ApiWorkflow } from "../api/types.js";
import {
  type ConvertChoice,
  type JobOptionsValues,
  type OutputChoice,
  makesSplats,
  needsIncludeTemp,
} from "../workflow/job-options.js";
import { h, uniqueId } from "./dom.js";

export class JobOptionsView {
  readonly element: HTMLElement;
  private readonly _output: HTMLSelectElement;
  private readonly _includeTemp: HTMLInputElement;
  private readonly _timeout: HTMLInputElement;
  private readonly _convert: HTMLSelectElement;
  private readonly _serverDefault: HTMLOptionElement;
  private readonly _convertNote = h("p", { class: "muted field-hint", "data-testid": "convert-note" });
  private readonly _note = h("p", { class: "muted field-message", "data-testid": "options-note" });

  constructor() {
    const outputId = uniqueId("option");
    const timeoutId = uniqueId("option");
    const convertId = uniqueId("option");
    this._serverDefault = h("option", { value: "" }, "Endpoint default");
    this._output = h(
      "select",
      { id: outputId, name: "job-output", "data-testid": "job-output" },
      this._serverDefault,
      h("option", { value: "base64" }, "base64: in the result"),
      h("option", { value: "auto" }, "auto: big files to the bucket"),
      h("option", { value: "s3" }, "s3: everything to the bucket"),
    );
    this._convert = h(
      "select",
      { id: convertId, name: "job-convert", "data-testid": "job-convert" },
      h("option", { value: "" }, "keep .ply (no conversion)"),
      h("option", { value: "spz" }, "SPZ (Niantic): 4-15x smaller"),
      h("option", { value: "spz+ply" }, "SPZ and the original .ply"),
      h("option", { value: "splat" }, ".splat (antimatter15): 1.75x smaller"),
      h("option", { value: "splat+ply" }, ".splat and the original .ply"),
    );
    this._includeTemp = h("input", {
      type: "checkbox",
      name: "job-include-temp",
      "data-testid": "job-include-temp",
    });
    this._timeout = h("input", {
      id: timeoutId,
      name: "job-timeout",
      type: "text",
      inputmode: "decimal",
      placeholder: "worker default",
      "data-testid": "job-timeout",
    });
    this.element = h(
      "fieldset",
      { class: "node-group job-options" },
      h("legend", {}, "Job options"),
      h("div", { class: "field" }, h("label", { for: outputId }, "Outputs"), this._output),
      h("div", { class: "field" }, h("label", { for: timeoutId }, "Timeout (s)"), this._timeout),
      h(
        "div",
        { class: "field field-text" },
        h("label", { for: convertId }, "Gaussian-splat .ply outputs (convert)"),
        this._convert,
        this._convertNote,
      ),
      h(
        "div",
        { class: "field field-text" },
        h("label", { class: "checkbox-row" }, this._includeTemp, "Also return preview images (include_temp)"),
        this._note,
      ),
    );
  }

  /** What the app server sends when the page leaves the output mode alone. */
  setServerDefault(output: string | null, bucket: boolean): void {
    const where = bucket ? "bucket set on the app server" : "no bucket on the app server";
    this._serverDefault.textContent = `Endpoint default${output === null ? "" : ` (${output})`}; ${where}`;
  }

  /** A preview-only workflow gets include_temp ticked, saying why. */
  suggestFor(workflow: ApiWorkflow): void {
    const needed = needsIncludeTemp(workflow);
    this._includeTemp.checked = needed;
    this._note.textContent = needed
      ? "Ticked because this workflow only previews (PreviewImage, no Save node): without it there is nothing to return."
      : "";
    this._convertNote.textContent = makesSplats(workflow)
      ? "This workflow makes Gaussian splats: as SPZ a SHARP splat is 4-15x smaller, often small enough to come back without a bucket. The 3D view reads all three formats."
      : "";
  }

  values(): JobOptionsValues {
    return {
      output: this._output.value as OutputChoice,
      includeTemp: this._includeTemp.checked,
      timeout: this._timeout.value,
      convert: this._convert.value as ConvertChoice,
    };
  }

  markTimeout(invalid: boolean): void {
    if (invalid) {
      this._timeout.setAttribute("aria-invalid", "true");
      this._timeout.focus();
    } else this._timeout.removeAttribute("aria-invalid");
  }
}
