/**
 * An interactive Gaussian-splat view (gsplat's WebGL2 renderer) of a PLY result: drag to orbit,
 * wheel to zoom, and once focused, arrow keys, + / - and 0 to reset.
 */

import * as SPLAT from "gsplat";
import { type Orbit, cameraPose, initialOrbit, orbitForKey, turn, zoom } from "./orbit.js";
import type { SplatCloud } from "./ply.js";

export interface SplatView {
  dispose(): void;
}

/** Thrown when the browser has no WebGL2 (some VMs, locked-down machines): offer the download only. */
export class ViewerUnavailable extends Error {
  override name = "ViewerUnavailable";
}

// When to draw: gsplat draws splats in the order its sort worker last sent, and that worker answers
// (with a new order) only after a frame with a camera it has not sorted for yet. So we draw one
// frame per change (resize, drag, key, wheel) and one more each time a sorted order arrives: the
// view settles on the sorted picture however long the sort takes (a 1M-splat cloud on a slow CPU
// takes seconds), and an idle page draws nothing.
/**
 * Vertical field of view. gsplat's camera keeps a fixed focal length in pixels (1132), which makes
 * a small canvas a narrow telephoto; we set the focal length from the canvas height instead, so
 * `initialOrbit` frames the cloud at any size.
 */
const FIELD_OF_VIEW_RAD = (50 * Math.PI) / 180;

export function hasWebGL2(): boolean {
  try {
    return document.createElement("canvas").getContext("webgl2") !== null;
  } catch {
    return false;
  }
}

export function mountSplatView(container: HTMLElement, cloud: SplatCloud, label: string): SplatView {
  if (!hasWebGL2()) throw new ViewerUnavailable("this browser has no WebGL2, which the 3D view needs");
  const canvas = document.createElement("canvas");
  canvas.className = "splat-canvas";
  canvas.tabIndex = 0;
  canvas.setAttribute("role", "img");
  canvas.setAttribute(
    "aria-label",
    `3D view of ${label} (${cloud.count} splats). Drag or use the arrow keys to turn, wheel or + and - to zoom, 0 to reset.`,
  );
  container.append(canvas);

  // No render passes: gsplat's default FadeInPass grows the splats a little on every drawn frame
  // (100 frames to full size), which on a page that draws only when something changes leaves
  // them invisible until the user has dragged for a while.
  const renderer = new SPLAT.WebGLRenderer(canvas, []);
  const scene = new SPLAT.Scene();
  const camera = new SPLAT.Camera();
  // Near and far planes from the cloud's size, so both a 1 m object and a 100 m scene fit.
  camera.data.near = Math.max(0.001, cloud.radius * 0.005);
  camera.data.far = Math.max(10, cloud.radius * 50);
  // Loader.LoadFromArrayBuffer reads the rows through typed-array views of the whole buffer, so it
  // needs a buffer of its own that starts at offset 0: slice() gives one.
  SPLAT.Loader.LoadFromArrayBuffer(cloud.rows.slice(0), scene);

  let orbit: Orbit = initialOrbit(cloud.radius);
  let frame = 0;
  let disposed = false;
  let sorter: Worker | null = null;
  let frames = 0;

  const changed = (): void => {
    if (frame === 0 && !disposed) frame = requestAnimationFrame(draw);
  };
  const draw = (): void => {
    frame = 0;
    if (disposed || !canvas.isConnected) return;
    const pose = cameraPose(orbit);
    camera.position = new SPLAT.Vector3(...pose.position);
    camera.rotation = SPLAT.Quaternion.FromEuler(new SPLAT.Vector3(...pose.euler));
    renderer.render(scene, camera);
    frames++;
    canvas.dataset.frames = String(frames);
    // The sort worker exists after the first frame; follow its answers (and a new one, should gsplat
    // ever replace it).
    const worker = renderer.renderProgram.worker;
    if (worker !== sorter) {
      sorter?.removeEventListener("message", changed);
      worker?.addEventListener("message", changed);
      sorter = worker;
    }
  };

  const resize = new ResizeObserver(() => {
    const width = Math.max(1, Math.round(canvas.clientWidth));
    const height = Math.max(1, Math.round(canvas.clientHeight));
    if (canvas.width !== width || canvas.height !== height) renderer.setSize(width, height);
    const focal = height / (2 * Math.tan(FIELD_OF_VIEW_RAD / 2));
    camera.data.fx = focal;
    camera.data.fy = focal;
    changed();
  });
  resize.observe(canvas);

  let dragging: { x: number; y: number } | null = null;
  const onPointerDown = (event: PointerEvent): void => {
    dragging = { x: event.clientX, y: event.clientY };
    canvas.setPointerCapture(event.pointerId);
  };
  const onPointerMove = (event: PointerEvent): void => {
    if (dragging === null) return;
    orbit = turn(orbit, (event.clientX - dragging.x) * 0.01, (event.clientY - dragging.y) * 0.01);
    dragging = { x: event.clientX, y: event.clientY };
    changed();
  };
  const onPointerUp = (): void => {
    dragging = null;
  };
  const onWheel = (event: WheelEvent): void => {
    event.preventDefault();
    orbit = zoom(orbit, Math.exp(event.deltaY * 0.001), cloud.radius);
    changed();
  };
  const onKey = (event: KeyboardEvent): void => {
    const next = orbitForKey(orbit, event.key, cloud.radius);
    if (next === null) return;
    event.preventDefault();
    orbit = next;
    changed();
  };
  canvas.addEventListener("pointerdown", onPointerDown);
  canvas.addEventListener("pointermove", onPointerMove);
  canvas.addEventListener("pointerup", onPointerUp);
  canvas.addEventListener("pointercancel", onPointerUp);
  canvas.addEventListener("wheel", onWheel, { passive: false });
  canvas.addEventListener("keydown", onKey);
  changed();

  return {
    dispose(): void {
      if (disposed) return;
      disposed = true;
      if (frame !== 0) cancelAnimationFrame(frame);
      sorter?.removeEventListener("message", changed);
      resize.disconnect();
      renderer.dispose();
      canvas.remove();
    },
  };
}
