/**
 * A drop target that is also a keyboard-reachable file picker: a label around a real file input,
 * so Tab reaches it, Enter or Space opens the picker, and dropping a file does the same thing.
 */

import { h, uniqueId } from "./dom.js";

export interface DropZoneOptions {
  /** The visible text, e.g. "Drop an API-format workflow (.json) or choose a file". */
  text: string;
  accept: string;
  onFile: (file: File) => void;
  /** For tests and assistive tech: the input's accessible name. */
  label: string;
  testId?: string;
}

export function dropZone(options: DropZoneOptions): HTMLElement {
  const inputId = uniqueId("file");
  const input = h("input", {
    type: "file",
    id: inputId,
    accept: options.accept,
    class: "visually-hidden",
    "aria-label": options.label,
    "data-testid": options.testId,
  });
  input.addEventListener("change", () => {
    const file = input.files?.[0];
    if (file !== undefined) options.onFile(file);
    // Cleared so choosing the same file again (after editing it) fires change again.
    input.value = "";
  });
  const zone = h("label", { class: "drop-zone", for: inputId }, input, h("span", {}, options.text));
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("drag-over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("drag-over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("drag-over");
    const file = event.dataTransfer?.files[0];
    if (file !== undefined) options.onFile(file);
  });
  // Space and Enter on a focused file input already open the picker; the label only shows focus.
  return zone;
}
