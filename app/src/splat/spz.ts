/**
 * Niantic SPZ files (`.spz`, what the worker's `"convert": {"ply": "spz"}` returns) into the
 * `.splat` rows the viewer draws. `spzToSplat` gunzips with the browser's DecompressionStream;
 * `spzRowsFromRaw` (the decoding) is pure.
 *
 * Layout (github.com/nianticlabs/spz README "File Format"; written by the worker's
 * handler/splats.py, described in docs/gaussian-splats.md): gzip of a 16-byte little-endian header
 * (magic 0x5053474e "NGSP", version 2 or 3, point count, SH degree, fractional bits, flags,
 * reserved) then column arrays, each for every point in turn:
 * - positions: 3 x 24-bit signed fixed point, divided by 2^fractionalBits;
 * - alphas: 1 byte, sigmoid(opacity) * 255;
 * - colours: 3 bytes, f_dc * 0.15 * 255 + 127.5;
 * - scales: 3 bytes, (log scale + 10) * 16;
 * - rotations: version 3, a 32-bit "smallest three" word (top 2 bits: index of the largest of
 *   x, y, z, w; then for each other component in order a sign bit and a 9-bit magnitude of
 *   |c| / sqrt(1/2)); version 2, 3 bytes x, y, z as (c * 127.5 + 127.5) with w >= 0 implied;
 * - spherical harmonics for degree > 0 (not drawn: the viewer uses the base colour).
 * SPZ's axes are RUB (three.js) and a 3DGS PLY's RDF, so y and z are flipped back (positions and
 * the rotation's y and z): rows come out in the same axes as a PLY's, and the view matches.
 */

import { PlyError, SPLAT_ROW_BYTES, type SplatCloud, centreRows } from "./ply.js";

const MAGIC = 0x5053474e;
const HEADER_BYTES = 16;
const COLOR_SCALE = 0.15;
const SH_C0 = 0.28209479177387814;
const SQRT1_2 = Math.SQRT1_2;
const MAG_MASK = (1 << 9) - 1;
/** SH coefficients per colour channel beyond the base colour, by degree. */
const SH_DIMS = [0, 3, 8, 15];
const MAX_POINTS = 50_000_000;

/** The gzip-compressed `.spz` file to rows (centred, like a PLY's). */
export async function spzToSplat(buffer: ArrayBuffer): Promise<SplatCloud> {
  const head = new Uint8Array(buffer, 0, Math.min(2, buffer.byteLength));
  if (head[0] !== 0x1f || head[1] !== 0x8b) {
    throw new PlyError("not an SPZ file (an .spz file is gzip-compressed; this one is not)");
  }
  let raw: ArrayBuffer;
  try {
    const stream = new Blob([buffer]).stream().pipeThrough(new DecompressionStream("gzip"));
    raw = await new Response(stream).arrayBuffer();
  } catch (error) {
    throw new PlyError(`the SPZ file's gzip data is damaged or cut short (${(error as Error).message})`);
  }
  return centreRows(spzRowsFromRaw(new Uint8Array(raw)));
}

/** Uncompressed SPZ bytes to uncentred `.splat` rows (PLY axes). Pure. */
export function spzRowsFromRaw(raw: Uint8Array): ArrayBuffer {
  if (raw.byteLength < HEADER_BYTES) throw new PlyError("the SPZ file is too short for its header");
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const magic = view.getUint32(0, true);
  const version = view.getUint32(4, true);
  const count = view.getUint32(8, true);
  const degree = view.getUint8(12);
  const bits = view.getUint8(13);
  if (magic !== MAGIC) throw new PlyError("not an SPZ file (its header does not start with NGSP)");
  if (version !== 2 && version !== 3) {
    throw new PlyError(`SPZ version ${version} is not supported (versions 2 and 3 are)`);
  }
  const shDim = SH_DIMS[degree];
  if (shDim === undefined) throw new PlyError(`the SPZ file says SH degree ${degree}; at most 3 exists`);
  if (count === 0) throw new PlyError("the SPZ file has no splats");
  if (count > MAX_POINTS)
    throw new PlyError(`the SPZ file says ${count} splats, more than this viewer takes`);
  if (bits > 23)
    throw new PlyError(`the SPZ file says ${bits} fractional bits; 24-bit positions allow at most 23`);
  const rotationBytes = version === 3 ? 4 : 3;
  const needed = HEADER_BYTES + count * (9 + 1 + 3 + 3 + rotationBytes + shDim * 3);
  if (raw.byteLength < needed) {
    throw new PlyError(
      `the SPZ file is truncated: ${count} splats need ${needed} bytes, it has ${raw.byteLength}`,
    );
  }

  const positionsAt = HEADER_BYTES;
  const alphasAt = positionsAt + count * 9;
  const colorsAt = alphasAt + count;
  const scalesAt = colorsAt + count * 3;
  const rotationsAt = scalesAt + count * 3;
  const unit = 1 / 2 ** bits;
  const rows = new ArrayBuffer(count * SPLAT_ROW_BYTES);
  const floats = new Float32Array(rows);
  const bytes = new Uint8ClampedArray(rows);
  const q = [0, 0, 0, 0]; // x y z w, RUB
  for (let i = 0; i < count; i++) {
    const f = i * 8;
    const b = i * SPLAT_ROW_BYTES;
    for (let axis = 0; axis < 3; axis++) {
      const at = positionsAt + i * 9 + axis * 3;
      let fixed = (raw[at] as number) | ((raw[at + 1] as number) << 8) | ((raw[at + 2] as number) << 16);
      if (fixed & 0x800000) fixed -= 1 << 24;
      floats[f + axis] = fixed * unit * (axis === 0 ? 1 : -1);
      floats[f + 3 + axis] = Math.exp((raw[scalesAt + i * 3 + axis] as number) / 16 - 10);
      const dc = ((raw[colorsAt + i * 3 + axis] as number) - 127.5) / (COLOR_SCALE * 255);
      bytes[b + 24 + axis] = (0.5 + SH_C0 * dc) * 255;
    }
    bytes[b + 27] = raw[alphasAt + i] as number;
    if (version === 3) readSmallestThree(view.getUint32(rotationsAt + i * 4, true), q);
    else {
      let sum = 0;
      for (let k = 0; k < 3; k++) {
        const c = ((raw[rotationsAt + i * 3 + k] as number) - 127.5) / 127.5;
        q[k] = c;
        sum += c * c;
      }
      q[3] = Math.sqrt(Math.max(0, 1 - sum));
    }
    // Row rotation: w, x, y, z in PLY axes (y and z flipped), mapped from [-1, 1] to bytes.
    const length = Math.hypot(q[0] as number, q[1] as number, q[2] as number, q[3] as number) || 1;
    bytes[b + 28] = ((q[3] as number) / length) * 128 + 128;
    bytes[b + 29] = ((q[0] as number) / length) * 128 + 128;
    bytes[b + 30] = (-(q[1] as number) / length) * 128 + 128;
    bytes[b + 31] = (-(q[2] as number) / length) * 128 + 128;
  }
  return rows;
}

/** A version 3 rotation word into `q` (x y z w). */
function readSmallestThree(word: number, q: number[]): void {
  const largest = word >>> 30;
  let rest = word;
  let sum = 0;
  for (let index = 3; index >= 0; index--) {
    if (index === largest) continue;
    const magnitude = (SQRT1_2 * (rest & MAG_MASK)) / MAG_MASK;
    const value = (rest >>> 9) & 1 ? -magnitude : magnitude;
    q[index] = value;
    sum += value * value;
    rest >>>= 10;
  }
  q[largest] = Math.sqrt(Math.max(0, 1 - sum));
}
