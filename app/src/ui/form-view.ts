/**
 * Draws a `WorkflowForm` as labelled controls grouped by node, and reads them back: the values
 * for `applyForm`, and the images dropped on LoadImage nodes for `wireAttachments`.
 */

import {
  type Attachment,
  AttachmentError,
  type FileAttachment,
  urlAttachment,
} from "../workflow/attachments.js";
import {
  type FormField,
  type FormGroup,
  type FormValues,
  type WorkflowForm,
  randomSeed,
} from "../workflow/form.js";
import type { ExposedField, ExposedInput } from "../workflow/exposed.js";
import { MEDIA_ACCEPT, type MediaKind } from "../workflow/known-inputs.js";
import { h, replaceChildren, uniqueId } from "./dom.js";
import { modelListId } from "./model-lists.js";
import { dropZone } from "./drop-zone.js";
import { readAsDataUrl } from "./files.js";

type Control = HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement;

export class FormView {
  private readonly _root: HTMLElement;
  private readonly _controls = new Map<string, Control>();
  private readonly _messages = new Map<string, HTMLElement>();
  /** Seeds whose "new seed each run" box is ticked. */
  private readonly _autoSeeds = new Map<string, HTMLInputElement>();
  private readonly _images = new Map<string, Attachment>();
  /** Per media node: show (and keep) a replacement attachment, e.g. a downscaled image. */
  private readonly _attach = new Map<string, (attachment: Attachment) => void>();

  constructor(root: HTMLElement) {
    this._root = root;
  }

  show(form: WorkflowForm): void {
    this._controls.clear();
    this._messages.clear();
    this._autoSeeds.clear();
    this._images.clear();
    this._attach.clear();
    if (form.groups.length === 0) {
      replaceChildren(
        this._root,
        h("p", { class: "muted" }, "This workflow has no inputs to edit; it runs as it is."),
      );
      return;
    }
    replaceChildren(
      this._root,
      form.groups.map((group) => this._group(group)),
    );
  }

  /** No workflow: nothing to edit. */
  clear(): void {
    this._controls.clear();
    this._messages.clear();
    this._autoSeeds.clear();
    this._images.clear();
    this._attach.clear();
    replaceChildren(this._root);
  }

  /** Current control values; seeds marked "new seed each run" get a fresh one first. */
  values(options: { peek?: boolean } = {}): FormValues {
    // `peek` (saving a draft) reads without drawing new seeds.
    for (const [key, box] of options.peek === true ? [] : this._autoSeeds) {
      const control = this._controls.get(key);
      if (box.checked && control !== undefined) control.value = String(randomSeed());
    }
    const values: FormValues = {};
    for (const [key, control] of this._controls) {
      values[key] =
        control instanceof HTMLInputElement && control.type === "checkbox" ? control.checked : control.value;
    }
    return values;
  }

  /** Put saved values back (a reload); keys the form no longer has are ignored. */
  setValues(values: FormValues): void {
    for (const [key, value] of Object.entries(values)) {
      const control = this._controls.get(key);
      if (control === undefined || control.disabled) continue;
      if (control instanceof HTMLInputElement && control.type === "checkbox")
        control.checked = value === true;
      else control.value = String(value);
    }
  }

  /** Replace an attached file (same node), e.g. with a smaller copy of the image. */
  replaceAttachment(attachment: Attachment): void {
    this._attach.get(attachment.nodeId)?.(attachment);
  }

  attachments(): Attachment[] {
    return [...this._images.values()];
  }

  /** Mark each bad field and say why next to it; focus the first so keyboard users land there. */
  showProblems(problems: ReadonlyArray<{ key: string; message: string }>): void {
    this.clearProblems();
    for (const { key, message } of problems) {
      this._controls.get(key)?.setAttribute("aria-invalid", "true");
      const slot = this._messages.get(key);
      if (slot !== undefined) slot.textContent = message;
    }
    const first = problems[0];
    if (first !== undefined) this._controls.get(first.key)?.focus();
  }

  clearProblems(): void {
    for (const control of this._controls.values()) control.removeAttribute("aria-invalid");
    for (const slot of this._messages.values()) slot.textContent = "";
  }

  private _group(group: FormGroup): HTMLElement {
    const legend =
      group.nodeId === "exposed"
        ? group.title
        : `#${group.nodeId} ${group.title === group.classType ? group.title : `${group.title} (${group.classType})`}`;
    return h(
      "fieldset",
      { class: "node-group", "data-node": group.nodeId },
      h("legend", {}, legend),
      group.fields.map((field) => this._field(group, field)),
    );
  }

  private _field(group: FormGroup, field: FormField): HTMLElement {
    const id = uniqueId("field");
    const messageId = `${id}-message`;
    const message = h("span", { class: "field-message", id: messageId, "aria-live": "polite" });
    this._messages.set(field.key, message);
    const exposed = (field as ExposedField).exposed;
    const label = h("label", { for: id }, (field as ExposedField).label ?? field.input);
    const common = { id, name: field.key, "aria-describedby": messageId, "data-key": field.key };
    let body: Array<Node | string>;
    switch (field.kind) {
      case "text": {
        const control = field.multiline
          ? h("textarea", { ...common, rows: 3 }, field.value)
          : h("input", { ...common, type: "text", value: field.value });
        this._controls.set(field.key, control);
        body = [label, control];
        if (field.modelFolder !== undefined) {
          // Suggestions from the image's manifest (model-lists.ts); any other name can be typed.
          control.setAttribute("list", modelListId(field.modelFolder));
          control.setAttribute("autocomplete", "off");
          control.dataset.modelFolder = field.modelFolder;
          body.push(
            h(
              "span",
              { class: "muted field-hint" },
              `a file in models/${field.modelFolder}/: pick one the image has (arrow), or type any name`,
            ),
          );
        }
        break;
      }
      case "number": {
        const control = h("input", {
          ...common,
          type: "text",
          inputmode: field.integer ? "numeric" : "decimal",
          value: String(field.value),
        });
        this._controls.set(field.key, control);
        body = [label, control];
        if (exposed?.widget === "slider") body.push(slider(control, exposed, String(field.input)));
        if (exposed?.widget === "color") body.push(colourPicker(control, String(field.input)));
        break;
      }
      case "seed":
        body = [label, this._seed(group, field, common)];
        break;
      case "choice": {
        const control = h(
          "select",
          common,
          field.options.map((option) =>
            h("option", { value: option, selected: option === field.value }, option),
          ),
        );
        this._controls.set(field.key, control);
        body = [label, control];
        break;
      }
      case "boolean": {
        const control = h("input", { ...common, type: "checkbox", checked: field.value });
        this._controls.set(field.key, control);
        body = [h("span", { class: "checkbox-row" }, control, label)];
        break;
      }
      case "media":
        body = [h("span", { class: "label" }, field.input), this._mediaSlot(group, field, common)];
        break;
    }
    return h("div", { class: `field field-${field.kind}` }, ...body, message);
  }

  private _seed(group: FormGroup, field: FormField, common: Record<string, string>): HTMLElement {
    const control = h("input", { ...common, type: "text", inputmode: "numeric", value: String(field.value) });
    this._controls.set(field.key, control);
    const auto = h("input", {
      type: "checkbox",
      "aria-label": `New ${field.input} each run for node #${group.nodeId}`,
    });
    this._autoSeeds.set(field.key, auto);
    return h(
      "span",
      { class: "seed-row" },
      control,
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          "aria-label": `Randomise ${field.input} of node #${group.nodeId}`,
          "data-testid": `randomise-${field.key}`,
          onclick: () => {
            control.value = String(randomSeed());
            control.removeAttribute("aria-invalid");
          },
        },
        "Randomise",
      ),
      h("label", { class: "checkbox-row" }, auto, "each run"),
    );
  }

  /** "Or paste a URL": for inputs over RunPod's request limit, fetched by the worker itself. */
  private _urlField(group: FormGroup, attach: (attachment: Attachment) => void): HTMLElement {
    const url = h("input", {
      type: "url",
      placeholder: "or paste an image URL (https://, s3://)",
      "aria-label": `Image URL for node #${group.nodeId}`,
      "data-testid": `image-url-${group.nodeId}`,
    });
    const problem = h("p", { class: "error-inline", role: "alert" });
    const use = (): void => {
      try {
        attach(urlAttachment(group.nodeId, url.value));
        url.value = "";
        problem.textContent = "";
      } catch (error) {
        if (!(error instanceof AttachmentError)) throw error;
        problem.textContent = error.message;
      }
    };
    url.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        use();
      }
    });
    return h(
      "div",
      { class: "image-url-row" },
      url,
      h(
        "button",
        { type: "button", class: "secondary", onclick: use, "data-testid": `image-url-use-${group.nodeId}` },
        "Use URL",
      ),
      problem,
    );
  }

  /**
   * A drop target for the node's input file (image, video or audio); the current server-side name
   * stays until one is dropped, with a hint that it must then exist on the worker.
   */
  private _mediaSlot(group: FormGroup, field: FormField, common: Record<string, string>): HTMLElement {
    const media: MediaKind = field.kind === "media" ? field.media : "image";
    const name = h("input", {
      ...common,
      type: "text",
      value: String(field.value),
      "aria-label": `${field.input} file name`,
    });
    const hint = h("span", { class: "field-hint muted", "data-testid": `media-hint-${group.nodeId}` });
    const showHint = (): void => {
      hint.textContent =
        name.disabled || name.value.trim() === ""
          ? ""
          : `Not attached: "${name.value}" must already be in ComfyUI's input/ folder on the worker; drop a file to send it with the job.`;
    };
    name.addEventListener("input", showHint);
    this._controls.set(field.key, name);
    const preview = h("div", { class: "image-preview" });
    const slot = h("div", { class: "image-slot" });
    this._attach.set(group.nodeId, (attachment) => showAttached(attachment));
    const showAttached = (attachment: Attachment | null): void => {
      if (attachment === null) {
        this._images.delete(group.nodeId);
        name.disabled = false;
        showHint();
        replaceChildren(preview);
        return;
      }
      this._images.set(group.nodeId, attachment);
      name.value = attachment.fileName;
      // The name is decided at submit (wireAttachments makes it safe and unique), not typed.
      name.disabled = true;
      showHint();
      replaceChildren(
        preview,
        // A URL is shown, not loaded: the worker fetches it, and s3:// means nothing to a browser.
        "url" in attachment
          ? h(
              "p",
              { class: "image-url", "data-testid": `image-url-shown-${group.nodeId}` },
              `By URL: ${attachment.url}`,
            )
          : mediaPreview(media, attachment),
        h(
          "button",
          { type: "button", class: "secondary", onclick: () => showAttached(null) },
          `Remove ${attachment.fileName}`,
        ),
      );
    };
    slot.append(
      dropZone({
        text: `Drop an input ${media} here, or press to choose one`,
        accept: MEDIA_ACCEPT[media],
        label: `Input ${media} for node #${group.nodeId}`,
        testId: `image-input-${group.nodeId}`,
        onFile: (file) => {
          void readAsDataUrl(file).then((data) =>
            showAttached({ nodeId: group.nodeId, fileName: file.name, data }),
          );
        },
      }),
    );
    // Images can also come by URL (the worker fetches them, past RunPod's request limit).
    if (media === "image") slot.append(this._urlField(group, showAttached));
    slot.append(preview, name, hint);
    showHint();
    return slot;
  }
}

/** A range input kept in step with the number field (which stays the value sent). */
function slider(control: HTMLInputElement, exposed: ExposedInput, name: string): HTMLElement {
  const range = h("input", {
    type: "range",
    min: String(exposed.min ?? 0),
    max: String(exposed.max ?? 100),
    step: String(exposed.step ?? "any"),
    value: control.value,
    "aria-label": `${name} slider`,
    "data-testid": `slider-${control.name}`,
  });
  range.addEventListener("input", () => {
    control.value = range.value;
    control.dispatchEvent(new Event("input", { bubbles: true }));
  });
  control.addEventListener("input", () => {
    range.value = control.value;
  });
  return range;
}

/** A colour picker for ComfyUI's integer colours (0xRRGGBB), kept in step with the number. */
function colourPicker(control: HTMLInputElement, name: string): HTMLElement {
  const toHex = (value: string): string => {
    const n = Number(value);
    return Number.isInteger(n) && n >= 0 && n <= 0xffffff ? `#${n.toString(16).padStart(6, "0")}` : "#000000";
  };
  const picker = h("input", {
    type: "color",
    value: toHex(control.value),
    "aria-label": `${name} colour`,
    "data-testid": `colour-${control.name}`,
  });
  picker.addEventListener("input", () => {
    control.value = String(parseInt(picker.value.slice(1), 16));
    control.dispatchEvent(new Event("input", { bubbles: true }));
  });
  control.addEventListener("input", () => {
    picker.value = toHex(control.value);
  });
  return picker;
}

/** What was attached: the picture, a player for video and audio. */
function mediaPreview(media: MediaKind, attachment: FileAttachment): HTMLElement {
  const label = `Attached ${attachment.fileName}`;
  if (media === "video")
    return h("video", { src: attachment.data, controls: true, muted: true, "aria-label": label });
  if (media === "audio") return h("audio", { src: attachment.data, controls: true, "aria-label": label });
  return h("img", { src: attachment.data, alt: label });
}
