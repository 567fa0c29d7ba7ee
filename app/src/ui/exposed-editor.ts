/**
 * Choosing a workflow's exposed inputs in the page: every editable input of the full form as a
 * row (tick to expose, label, widget, slider range or choice list, move up), saved as the
 * workflow's sidecar file by the caller.
 */

import { type ExposedInput, type ExposedInputs, WIDGETS, type Widget } from "../workflow/exposed.js";
import type { WorkflowForm } from "../workflow/form.js";
import { h } from "./dom.js";

interface Row {
  element: HTMLElement;
  read(): ExposedInput | null;
}

export function exposedEditor(
  full: WorkflowForm,
  start: ExposedInputs,
  onSave: (exposed: ExposedInputs) => void,
  onCancel: () => void,
): HTMLElement {
  const titles = new Map(full.groups.flatMap((g) => g.fields.map((f) => [f.key, `#${g.nodeId} ${g.title}`])));
  const fields = full.groups.flatMap((g) => g.fields);
  const chosen = new Map(start.inputs.map((entry) => [entry.key, entry]));
  // Chosen inputs first, in their order; then the rest in node order.
  const ordered = [
    ...start.inputs.map((entry) => fields.find((f) => f.key === entry.key)).filter((f) => f !== undefined),
    ...fields.filter((f) => !chosen.has(f.key)),
  ];
  const list = h("ol", { class: "exposed-rows" });
  const rows: Row[] = ordered.map((field) => {
    const entry = chosen.get(field.key);
    const on = h("input", {
      type: "checkbox",
      checked: entry !== undefined,
      "aria-label": `Expose ${field.key}`,
    });
    const label = h("input", {
      type: "text",
      value: entry?.label ?? "",
      placeholder: field.input,
      "aria-label": `Label for ${field.key}`,
    });
    const widget = h(
      "select",
      { "aria-label": `Widget for ${field.key}` },
      WIDGETS.map((w) => h("option", { value: w, selected: (entry?.widget ?? "auto") === w }, w)),
    );
    const number = (name: string, value: number | undefined): HTMLInputElement =>
      h("input", {
        type: "text",
        inputmode: "decimal",
        size: 5,
        value: value === undefined ? "" : String(value),
        placeholder: name,
        "aria-label": `${name} for ${field.key}`,
      });
    const min = number("min", entry?.min);
    const max = number("max", entry?.max);
    const step = number("step", entry?.step);
    const options = h("input", {
      type: "text",
      value: (entry?.options ?? []).join(", "),
      placeholder: "name1, name2, ...",
      "aria-label": `Choices for ${field.key}`,
    });
    const range = h("span", { class: "exposed-range" }, min, max, step);
    const showExtras = (): void => {
      range.hidden = widget.value !== "slider";
      options.hidden = widget.value !== "choice";
    };
    widget.addEventListener("change", showExtras);
    showExtras();
    const element = h(
      "li",
      { class: "exposed-row", "data-key": field.key },
      h(
        "label",
        { class: "checkbox-row" },
        on,
        h("code", {}, field.key),
        h("span", { class: "muted" }, titles.get(field.key) ?? ""),
      ),
      label,
      widget,
      range,
      options,
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          "aria-label": `Move ${field.key} up`,
          onclick: () => {
            const previous = element.previousElementSibling;
            if (previous !== null) list.insertBefore(element, previous);
          },
        },
        "Up",
      ),
    );
    const toNumber = (input: HTMLInputElement): number | undefined =>
      input.value.trim() === "" || !Number.isFinite(Number(input.value)) ? undefined : Number(input.value);
    return {
      element,
      read: () => {
        if (!on.checked) return null;
        const out: ExposedInput = { key: field.key, widget: widget.value as Widget };
        if (label.value.trim() !== "") out.label = label.value.trim();
        if (widget.value === "slider") {
          const [a, b, c] = [toNumber(min), toNumber(max), toNumber(step)];
          if (a !== undefined) out.min = a;
          if (b !== undefined) out.max = b;
          if (c !== undefined) out.step = c;
        }
        if (widget.value === "choice") {
          out.options = options.value
            .split(/[,\n]/)
            .map((o) => o.trim())
            .filter((o) => o !== "");
        }
        return out;
      },
    };
  });
  const byElement = new Map(rows.map((row) => [row.element, row]));
  list.append(...rows.map((row) => row.element));
  return h(
    "div",
    { class: "exposed-editor", "data-testid": "exposed-editor" },
    h(
      "p",
      { class: "muted" },
      "Tick the inputs this workflow's form shows, in this order (Up moves one). The rest keep the workflow's values. Saved beside the workflow as <name>.inputs.json.",
    ),
    list,
    h(
      "div",
      { class: "submit-row" },
      h(
        "button",
        {
          type: "button",
          class: "primary",
          "data-testid": "exposed-save",
          onclick: () => {
            const inputs = [...list.children]
              .map((element) => byElement.get(element as HTMLElement)?.read() ?? null)
              .filter((entry): entry is ExposedInput => entry !== null);
            onSave({ version: 1, inputs });
          },
        },
        "Save exposed inputs",
      ),
      h("button", { type: "button", class: "secondary", onclick: onCancel }, "Cancel"),
    ),
  );
}
