/**
 * Serves the built front end from one folder. Hashed assets are cached for good; index.html never
 * is, so a rebuild shows at the next reload. Paths that leave the folder are refused.
 */

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import path from "node:path";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".wasm": "application/wasm",
  ".map": "application/json",
  ".json": "application/json",
};

export async function serveStatic(root: string, urlPath: string, response: ServerResponse): Promise<void> {
  let relative: string;
  try {
    relative = decodeURIComponent(urlPath);
  } catch {
    notFound(response);
    return;
  }
  if (relative === "/" || relative === "") relative = "/index.html";
  const file = path.resolve(root, `.${relative}`);
  if (file !== root && !file.startsWith(root + path.sep)) {
    notFound(response);
    return;
  }
  let size: number;
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new Error("not a file");
    size = info.size;
  } catch {
    if (relative === "/index.html") {
      response.writeHead(503, { "Content-Type": "text/plain; charset=utf-8" });
      response.end(`The front end is not built (no ${file}). Run: npm --prefix app run build\n`);
      return;
    }
    notFound(response);
    return;
  }
  const hashed = relative.startsWith("/assets/");
  response.writeHead(200, {
    "Content-Type": TYPES[path.extname(file)] ?? "application/octet-stream",
    "Content-Length": size,
    "Cache-Control": hashed ? "public, max-age=31536000, immutable" : "no-cache",
  });
  createReadStream(file).pipe(response);
}

function notFound(response: ServerResponse): void {
  response.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" });
  response.end("not found\n");
}
