/** Bytes in and out of the page: output entries as blobs and object URLs, dropped files as data URIs. */

import type { OutputFile } from "../api/index.js";

/** Decode base64 (not a data URI) to bytes. */
export function base64ToBytes(data: string): Uint8Array<ArrayBuffer> {
  const binary = atob(data);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * A URL the page can show or download: an object URL for inline outputs (which the caller must
 * revoke), the storage URL itself for `s3_url` ones.
 */
export function outputUrl(file: OutputFile): { url: string; revoke: () => void } {
  if (file.type === "s3_url") return { url: file.data, revoke: () => undefined };
  const url = URL.createObjectURL(new Blob([base64ToBytes(file.data)], { type: file.mimeType }));
  return { url, revoke: () => URL.revokeObjectURL(url) };
}

/**
 * The output's bytes; for storage URLs this needs the bucket to allow this origin (CORS), and
 * `onBytes` hears how much has arrived.
 */
export async function outputBytes(
  file: OutputFile,
  onBytes: (received: number, total: number | null) => void = () => undefined,
): Promise<ArrayBuffer> {
  if (file.type === "base64") return base64ToBytes(file.data).buffer;
  let response: Response;
  try {
    response = await fetch(file.data);
  } catch {
    throw new Error(
      "the storage URL could not be read from this page: the bucket must allow this page's origin (CORS), see app/README.md",
    );
  }
  if (!response.ok) throw new Error(`the storage URL answered HTTP ${response.status}`);
  return readWithProgress(response, onBytes);
}

/** Read a response body, reporting progress as it arrives. */
export async function readWithProgress(
  response: Response,
  onBytes: (received: number, total: number | null) => void,
): Promise<ArrayBuffer> {
  const header = Number(response.headers.get("content-length"));
  const total = Number.isFinite(header) && header > 0 ? header : null;
  if (response.body === null) return response.arrayBuffer();
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.byteLength;
    onBytes(received, total);
  }
  const out = new Uint8Array(received);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out.buffer;
}

export function readAsDataUrl(file: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error ?? new Error("the file could not be read"));
    reader.readAsDataURL(file);
  });
}

export function formatBytes(size: number | null): string {
  if (size === null) return "";
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KB`;
  return `${(size / 1024 / 1024).toFixed(1)} MB`;
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${ms.toFixed(ms < 10 ? 1 : 0)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
