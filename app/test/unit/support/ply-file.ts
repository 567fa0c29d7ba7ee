/** Gaussian-splat PLY bytes for tests. */

const encoder = new TextEncoder();

/** A binary Gaussian-splat PLY in the 3DGS layout, as SHARP and most trainers write it. */
export function gaussianPly(littleEndian: boolean, points: Array<Record<string, number>>): ArrayBuffer {
  const names = [
    "x",
    "y",
    "z",
    "nx",
    "ny",
    "nz",
    "f_dc_0",
    "f_dc_1",
    "f_dc_2",
    "opacity",
    "scale_0",
    "scale_1",
    "scale_2",
    "rot_0",
    "rot_1",
    "rot_2",
    "rot_3",
  ];
  const header = [
    "ply",
    `format ${littleEndian ? "binary_little_endian" : "binary_big_endian"} 1.0`,
    `element vertex ${points.length}`,
    ...names.map((n) => `property float ${n}`),
    "end_header",
    "",
  ].join("\n");
  const head = encoder.encode(header);
  const buffer = new ArrayBuffer(head.length + points.length * names.length * 4);
  new Uint8Array(buffer).set(head);
  const view = new DataView(buffer);
  points.forEach((point, i) => {
    names.forEach((name, p) =>
      view.setFloat32(head.length + (i * names.length + p) * 4, point[name] ?? 0, littleEndian),
    );
  });
  return buffer;
}
