/**
 * The splat viewer's camera: an orbit around the origin, moved by drag, wheel and keys. Pure math.
 *
 * We drive gsplat's camera ourselves instead of using its OrbitControls, because those listen for
 * keys on the whole window (arrow keys would turn the splat while a person types a prompt) and
 * offer no way to focus and operate the view from the keyboard.
 */

export interface Orbit {
  /** Turn around the vertical axis, radians. */
  yaw: number;
  /** Up/down angle, radians, kept within +-MAX_PITCH. */
  pitch: number;
  /** Distance from the centre. */
  distance: number;
}

const MAX_PITCH = (85 * Math.PI) / 180;
/** Start this many radii away: with the viewer's 50 degree field of view the cloud fills about 60%. */
const FRAMING = 3.5;

/** Where a cloud of `radius` is fully in view, with a margin. */
export function initialOrbit(radius: number): Orbit {
  return { yaw: 0, pitch: 0.2, distance: Math.max(0.5, radius * FRAMING) };
}

export function turn(orbit: Orbit, dYaw: number, dPitch: number): Orbit {
  const pitch = Math.min(MAX_PITCH, Math.max(-MAX_PITCH, orbit.pitch + dPitch));
  return { ...orbit, yaw: orbit.yaw + dYaw, pitch };
}

/** Multiply the distance (below 1 comes closer), within sensible limits for a cloud of `radius`. */
export function zoom(orbit: Orbit, factor: number, radius: number): Orbit {
  const limit = Math.max(0.5, radius * FRAMING);
  const distance = Math.min(limit * 10, Math.max(limit / 20, orbit.distance * factor));
  return { ...orbit, distance };
}

/**
 * Camera position and Euler rotation (x = pitch, y = yaw) looking at the origin, in gsplat's
 * convention (the same formulas as its OrbitControls.update).
 */
export function cameraPose(orbit: Orbit): {
  position: [number, number, number];
  euler: [number, number, number];
} {
  const { yaw, pitch, distance } = orbit;
  const position: [number, number, number] = [
    distance * Math.sin(yaw) * Math.cos(pitch),
    -distance * Math.sin(pitch),
    -distance * Math.cos(yaw) * Math.cos(pitch),
  ];
  const [x, y, z] = position.map((v) => -v / distance) as [number, number, number];
  return { position, euler: [Math.asin(-y), Math.atan2(x, z), 0] };
}

/** What a key does to the orbit, or null when the key is not ours (so it keeps its usual job). */
// prettier-ignore
export function orbitForKey(orbit: Orbit, key: string, radius: number): Orbit | null {
  const step = Math.PI / 24;
  switch (key) {
    case "ArrowLeft": return turn(orbit, -step, 0);
    case "ArrowRight": return turn(orbit, step, 0);
    case "ArrowUp": return turn(orbit, 0, -step);
    case "ArrowDown": return turn(orbit, 0, step);
    case "+": case "=": return zoom(orbit, 0.85, radius);
    case "-": case "_": return zoom(orbit, 1 / 0.85, radius);
    case "0": case "Home": return initialOrbit(radius);
    default: return null;
  }
}
