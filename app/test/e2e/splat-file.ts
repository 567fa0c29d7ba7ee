/**
 * A SHARP-size Gaussian-splat PLY for the viewer tests: binary little-endian, the 3DGS vertex
 * layout SHARP writes (x y z, f_dc_0..2, opacity, scale_0..2, rot_0..3, all float32), 1,179,648
 * splats (SHARP's count at 1536 px), 66 MB. The splats fill a ball of radius 1 in one colour.
 */

import { writeFile } from "node:fs/promises";

export const SHARP_SPLATS = 1_179_648;
const PROPERTIES = [
  "x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
  "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
]; // prettier-ignore
const SH_C0 = 0.28209479177387814;

/** Write the file; `rgb` is the splats' colour (0-255 per channel). Returns its size in bytes. */
export async function writeSharpPly(
  file: string,
  rgb: [number, number, number],
  count = SHARP_SPLATS,
): Promise<number> {
  const header = Buffer.from(
    ["ply", "format binary_little_endian 1.0", `element vertex ${count}`]
      .concat(
        PROPERTIES.map((name) => `property float ${name}`),
        ["end_header", ""],
      )
      .join("\n"),
    "latin1",
  );
  const body = new Float32Array(count * PROPERTIES.length);
  const dc = rgb.map((c) => (c / 255 - 0.5) / SH_C0);
  let seed = 12345;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  for (let i = 0; i < count; i++) {
    // A point in the unit ball (rejection sampling).
    let x: number, y: number, z: number;
    do {
      x = random() * 2 - 1;
      y = random() * 2 - 1;
      z = random() * 2 - 1;
    } while (x * x + y * y + z * z > 1);
    const row = i * PROPERTIES.length;
    body.set(
      [
        x,
        y,
        z,
        dc[0] ?? 0,
        dc[1] ?? 0,
        dc[2] ?? 0,
        4,
        Math.log(0.01),
        Math.log(0.01),
        Math.log(0.01),
        1,
        0,
        0,
        0,
      ],
      row,
    );
  }
  const bytes = Buffer.concat([header, Buffer.from(body.buffer)]);
  await writeFile(file, bytes);
  return bytes.byteLength;
}
