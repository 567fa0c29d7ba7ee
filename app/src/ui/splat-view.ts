/**
 * A splat file in the 3D view, with what is happening while a big one arrives: "Downloading 41 of
 * 66 MB", "Reading 1,179,648 splats", then the view. gsplat and the viewer (about 150 KB) load
 * only when a splat is shown.
 */

import { PlyError, type SplatCloud, cloudFromSplatRows, plyToSplat } from "../splat/ply.js";
import { spzToSplat } from "../splat/spz.js";
import { h } from "./dom.js";
import { formatBytes } from "./files.js";

/** Reports bytes received so far and the total when known. */
export type OnBytes = (received: number, total: number | null) => void;

/** Where the bytes come from: a result (inline or a storage URL) or a file from disk. */
export type LoadBytes = (onBytes: OnBytes) => Promise<ArrayBuffer>;

export function isSplatName(filename: string): boolean {
  const name = filename.toLowerCase();
  return name.endsWith(".ply") || name.endsWith(".splat") || name.endsWith(".spz");
}

/** Read a splat file by its kind: `.splat` rows, Niantic `.spz` (gzip), or any PLY. */
async function readCloud(filename: string, bytes: ArrayBuffer): Promise<SplatCloud> {
  const name = filename.toLowerCase();
  if (name.endsWith(".splat")) return cloudFromSplatRows(bytes);
  if (name.endsWith(".spz")) return spzToSplat(bytes);
  return plyToSplat(bytes);
}

/** Let the browser paint a status line before a long synchronous step. */
function nextPaint(): Promise<void> {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

/**
 * Mount a splat view for `filename` in `container`; returns its dispose function. The status line
 * (role=status, `data-state` loading|ready|error) says what it is doing and, on failure, why.
 */
export function mountSplat(container: HTMLElement, filename: string, load: LoadBytes): () => void {
  const bar = h("progress", { class: "splat-progress", "aria-label": `Loading ${filename}` });
  const note = h("p", { class: "muted splat-status", role: "status" }, "Loading the 3D view...");
  container.dataset.state = "loading";
  container.append(bar, note);
  let disposed = false;
  let dispose = (): void => {
    disposed = true;
  };
  void (async () => {
    try {
      const bytes = await load((received, total) => {
        note.textContent =
          total === null
            ? `Downloading ${formatBytes(received)}...`
            : `Downloading ${formatBytes(received)} of ${formatBytes(total)}...`;
        if (total !== null && total > 0) {
          bar.max = total;
          bar.value = received;
        }
      });
      if (disposed) return;
      bar.removeAttribute("value");
      note.textContent = `Reading ${formatBytes(bytes.byteLength)} of splats...`;
      await nextPaint();
      const cloud = await readCloud(filename, bytes);
      if (disposed) return;
      note.textContent = `Preparing ${cloud.count.toLocaleString("en")} splats for display...`;
      await nextPaint();
      const { mountSplatView } = await import("../splat/viewer.js");
      if (disposed) return;
      const view = mountSplatView(container, cloud, filename);
      dispose = () => view.dispose();
      bar.remove();
      note.textContent = `${cloud.count.toLocaleString("en")} ${cloud.gaussian ? "Gaussian splats" : "points"}: drag or use the arrow keys to turn, wheel or +/- to zoom.`;
      container.dataset.splatCount = String(cloud.count);
      container.dataset.state = "ready";
    } catch (error) {
      bar.remove();
      const reason =
        error instanceof PlyError
          ? `cannot read this ${filename.toLowerCase().endsWith(".spz") ? "SPZ" : "PLY"} file: ${error.message}`
          : (error as Error).message;
      note.textContent = `No 3D preview (${reason}); the download still works.`;
      container.dataset.state = "error";
    }
  })();
  return () => dispose();
}
