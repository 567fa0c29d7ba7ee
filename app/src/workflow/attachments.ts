/**
 * Input files: images, videos or audio a person dropped on a loader node (LoadImage, LoadVideo,
 * VHS_LoadVideo, LoadAudio, ...) become the job's `images` list (the worker uploads any file
 * type from it into ComfyUI's input folder), and that node's file input is set to the name the
 * worker will upload them under. Pure.
 *
 *   const { workflow, images } = wireAttachments(graph, [{ nodeId: "10", fileName: "cat.png", data }]);
 *   api.run({ workflow, images });
 */

import type { ApiWorkflow, InputImage } from "../api/types.js";
import { mediaInputKind } from "./known-inputs.js";

export type Attachment =
  | {
      nodeId: string;
      /** The file's name as the person's computer called it. */
      fileName: string;
      /** Base64 or a `data:` URI (what FileReader.readAsDataURL gives); the worker takes both. */
      data: string;
    }
  | {
      nodeId: string;
      /** The last part of the URL's path (see `urlAttachment`). */
      fileName: string;
      /** A pasted http(s) or s3:// URL: the worker downloads it, past RunPod's 10 MB request limit. */
      url: string;
    };

/** An attachment whose bytes travel in the job (base64), not by URL. */
export type FileAttachment = Extract<Attachment, { data: string }>;

/** An attachment for a pasted URL, named after the URL's last path segment; throws AttachmentError. */
export function urlAttachment(nodeId: string, pasted: string): Attachment {
  const url = pasted.trim();
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AttachmentError(`"${url}" is not a URL; paste one starting with https://, http:// or s3://`);
  }
  if (!["https:", "http:", "s3:"].includes(parsed.protocol)) {
    throw new AttachmentError(`${parsed.protocol} URLs cannot be fetched; use https://, http:// or s3://`);
  }
  const last = decodeURIComponent(parsed.pathname.split("/").pop() ?? "");
  return { nodeId, fileName: last === "" ? "image.png" : last, url };
}

export class AttachmentError extends Error {
  override name = "AttachmentError";
}

/** A copy of `workflow` whose image nodes name the attached files, and the files to send. */
export function wireAttachments(
  workflow: ApiWorkflow,
  attachments: readonly Attachment[],
): { workflow: ApiWorkflow; images: InputImage[] } {
  const edited: ApiWorkflow = structuredClone(workflow);
  const images: InputImage[] = [];
  const nameByData = new Map<string, string>();
  const taken = new Set<string>();
  for (const attachment of attachments) {
    const node = edited[attachment.nodeId];
    if (node === undefined) throw new AttachmentError(`node ${attachment.nodeId} is not in this workflow`);
    const input = Object.keys(node.inputs).find(
      (name) => mediaInputKind(node.class_type, name, node.inputs[name]) !== null,
    );
    if (input === undefined) {
      throw new AttachmentError(`node ${attachment.nodeId} (${node.class_type}) takes no input file`);
    }
    const source = "url" in attachment ? attachment.url : attachment.data;
    if (source === "") throw new AttachmentError(`${attachment.fileName} is empty`);
    // The same file dropped on two nodes is sent once; two different files never share a name,
    // because the worker refuses duplicate names (ComfyUI would silently keep only one).
    let name = nameByData.get(source);
    if (name === undefined) {
      name = uniqueName(safeFileName(attachment.fileName), taken);
      taken.add(name);
      nameByData.set(source, name);
      images.push("url" in attachment ? { name, url: attachment.url } : { name, image: attachment.data });
    }
    node.inputs[input] = name;
  }
  return { workflow: edited, images };
}

/**
 * A name the worker accepts: a plain file name (no `/`, `\`, `..`), in characters every file
 * system keeps. `../My Photo (1).PNG` becomes `My_Photo_1_.PNG`.
 */
export function safeFileName(fileName: string): string {
  const base = fileName.split(/[\\/]/).pop() ?? "";
  const cleaned = base
    .replace(/[^A-Za-z0-9._-]+/g, "_")
    .replace(/\.{2,}/g, ".")
    .replace(/^[._]+/, "");
  return cleaned === "" || !/[A-Za-z0-9]/.test(cleaned) ? "image.png" : cleaned.slice(-120);
}

function uniqueName(name: string, taken: ReadonlySet<string>): string {
  if (!taken.has(name)) return name;
  const dot = name.lastIndexOf(".");
  const stem = dot > 0 ? name.slice(0, dot) : name;
  const extension = dot > 0 ? name.slice(dot) : "";
  for (let n = 2; ; n++) {
    const candidate = `${stem}_${n}${extension}`;
    if (!taken.has(candidate)) return candidate;
  }
}
