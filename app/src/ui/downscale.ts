/**
 * Shrinking attached images so a job request fits RunPod's limit, on request: each image is
 * redrawn smaller on a canvas and re-encoded (JPEG for opaque photos, PNG when the original
 * was PNG, so transparency survives).
 */

import type { Attachment } from "../workflow/attachments.js";

/** The factor to scale each side by so `imageBytes` shrinks to fit `budgetBytes` (area ~ bytes). */
export function sideScale(imageBytes: number, budgetBytes: number): number {
  if (imageBytes <= 0 || budgetBytes >= imageBytes) return 1;
  return Math.max(0.05, Math.sqrt(Math.max(budgetBytes, 1) / imageBytes) * 0.95);
}

/** A smaller copy of an attached image (a data: URI), scaled by `scale` on each side. */
export async function downscaleAttachment(attachment: Attachment, scale: number): Promise<Attachment> {
  if (!("data" in attachment)) return attachment; // by URL: the worker fetches it, nothing to redraw
  const match = /^data:(image\/[A-Za-z0-9.+-]+);base64,/.exec(attachment.data);
  if (match === null) return attachment; // not an image we can redraw: unchanged
  const image = new Image();
  image.src = attachment.data;
  await image.decode();
  const width = Math.max(1, Math.round(image.naturalWidth * scale));
  const height = Math.max(1, Math.round(image.naturalHeight * scale));
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  if (context === null) return attachment;
  context.imageSmoothingQuality = "high";
  context.drawImage(image, 0, 0, width, height);
  const png = match[1] === "image/png";
  const data = canvas.toDataURL(png ? "image/png" : "image/jpeg", 0.92);
  const fileName = png ? attachment.fileName : attachment.fileName.replace(/\.[A-Za-z0-9]+$/, "") + ".jpg";
  return { ...attachment, fileName, data };
}
