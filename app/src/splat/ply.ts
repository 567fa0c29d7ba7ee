/**
 * PLY files into the `.splat` rows the viewer draws. Pure.
 *
 * Gaussian-splat PLYs (3DGS/INRIA layout: `f_dc_*`, `opacity`, `scale_*`, `rot_*`, as SHARP
 * writes) keep their splats; plain point clouds (`red`/`green`/`blue`, ASCII or binary) get
 * round splats sized from the point spacing. gsplat's own PLY loader reads only binary float/int
 * properties, which leaves out ASCII files and uchar colours, hence this reader.
 *
 * A `.splat` row is 32 bytes: position float32 x3, scale float32 x3, colour RGBA uint8 x4,
 * rotation uint8 x4 (quaternion w, x, y, z mapped from [-1, 1] to [0, 255]).
 */

export const SPLAT_ROW_BYTES = 32;
/** Spherical-harmonics band 0 constant: colour = 0.5 + SH_C0 * f_dc. */
const SH_C0 = 0.28209479177387814;
const HEADER_LIMIT_BYTES = 64 * 1024;

export class PlyError extends Error {
  override name = "PlyError";
}

export interface SplatCloud {
  /** `count` rows of SPLAT_ROW_BYTES, positions moved so the cloud's centre is at the origin. */
  rows: ArrayBuffer;
  count: number;
  /** Distance from the centre to the farthest point, for placing the camera. */
  radius: number;
  /** True when the file had Gaussian-splat properties, false for a plain point cloud. */
  gaussian: boolean;
}

type Format = "ascii" | "binary_little_endian" | "binary_big_endian";
type ScalarType = "int8" | "uint8" | "int16" | "uint16" | "int32" | "uint32" | "float32" | "float64";

interface Property {
  name: string;
  type: ScalarType;
  /** For `property list <count type> <item type> name`: the count's type. */
  listCount?: ScalarType;
}

interface Element {
  name: string;
  count: number;
  properties: Property[];
}

interface Header {
  format: Format;
  elements: Element[];
  /** Byte offset of the body, just past `end_header` and its line break. */
  bodyOffset: number;
}

// prettier-ignore
const TYPE_ALIASES: Record<string, ScalarType> = {
  char: "int8", int8: "int8", uchar: "uint8", uint8: "uint8",
  short: "int16", int16: "int16", ushort: "uint16", uint16: "uint16",
  int: "int32", int32: "int32", uint: "uint32", uint32: "uint32",
  float: "float32", float32: "float32", double: "float64", float64: "float64",
};

// prettier-ignore
const TYPE_BYTES: Record<ScalarType, number> = {
  int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, float32: 4, float64: 8,
};

export function parsePlyHeader(bytes: Uint8Array): Header {
  const head = new TextDecoder("latin1").decode(bytes.subarray(0, HEADER_LIMIT_BYTES));
  if (!/^ply\r?\n/.test(head)) throw new PlyError("not a PLY file (it does not start with 'ply')");
  const end = /end_header\r?\n/.exec(head);
  if (end === null) throw new PlyError("the PLY header has no end_header line");
  let format: Format | null = null;
  const elements: Element[] = [];
  for (const line of head.slice(0, end.index).split(/\r?\n/).slice(1)) {
    const words = line.trim().split(/\s+/);
    const keyword = words[0];
    if (keyword === "format") {
      if (words[1] !== "ascii" && words[1] !== "binary_little_endian" && words[1] !== "binary_big_endian") {
        throw new PlyError(`unknown PLY format ${JSON.stringify(words[1])}`);
      }
      format = words[1];
    } else if (keyword === "element") {
      const count = Number(words[2]);
      if (words[1] === undefined || !Number.isSafeInteger(count) || count < 0) {
        throw new PlyError(`bad PLY element line: ${line.trim()}`);
      }
      elements.push({ name: words[1], count, properties: [] });
    } else if (keyword === "property") {
      const element = elements.at(-1);
      if (element === undefined) throw new PlyError("a PLY property comes before any element");
      element.properties.push(parseProperty(words, line));
    }
    // comment, obj_info and blank lines carry nothing we need.
  }
  if (format === null) throw new PlyError("the PLY header has no format line");
  // `end.index` counts characters, and latin1 decodes one character per byte, so it is a byte offset.
  return { format, elements, bodyOffset: end.index + end[0].length };
}

function parseProperty(words: string[], line: string): Property {
  if (words[1] === "list") {
    const countType = TYPE_ALIASES[words[2] ?? ""];
    const itemType = TYPE_ALIASES[words[3] ?? ""];
    if (countType === undefined || itemType === undefined || words[4] === undefined) {
      throw new PlyError(`bad PLY list property: ${line.trim()}`);
    }
    return { name: words[4], type: itemType, listCount: countType };
  }
  const type = TYPE_ALIASES[words[1] ?? ""];
  if (type === undefined || words[2] === undefined) throw new PlyError(`bad PLY property: ${line.trim()}`);
  return { name: words[2], type };
}

/** Convert a PLY file to centred `.splat` rows. Throws `PlyError` saying what it could not read. */
export function plyToSplat(buffer: ArrayBuffer): SplatCloud {
  const bytes = new Uint8Array(buffer);
  const header = parsePlyHeader(bytes);
  const vertexIndex = header.elements.findIndex((element) => element.name === "vertex");
  const vertex = header.elements[vertexIndex];
  if (vertex === undefined) throw new PlyError("the PLY file has no vertex element");
  if (vertex.count === 0) throw new PlyError("the PLY file has no points");
  for (const name of ["x", "y", "z"]) {
    if (!vertex.properties.some((p) => p.name === name && p.listCount === undefined)) {
      throw new PlyError(`the PLY vertices have no ${name} coordinate`);
    }
  }
  const values =
    header.format === "ascii"
      ? readAscii(bytes, header, vertexIndex)
      : readBinary(buffer, header, vertexIndex, header.format === "binary_little_endian");
  return toRows(vertex, values);
}

/** Per-vertex property values, `properties.length` numbers per vertex. */
function readAscii(bytes: Uint8Array, header: Header, vertexIndex: number): Float64Array {
  const text = new TextDecoder("latin1").decode(bytes.subarray(header.bodyOffset));
  const lines = text.split(/\r?\n/);
  let line = 0;
  // One line per element instance, so earlier elements (even with lists) are skipped by counting.
  for (const element of header.elements.slice(0, vertexIndex)) line += element.count;
  const vertex = header.elements[vertexIndex] as Element;
  const width = vertex.properties.length;
  const values = new Float64Array(vertex.count * width);
  for (let i = 0; i < vertex.count; i++) {
    const source = lines[line + i];
    const trimmed = source?.trim() ?? "";
    const words = trimmed === "" ? [] : trimmed.split(/\s+/);
    if (words.length < width)
      throw new PlyError(`PLY vertex ${i} has ${words.length} values, expected ${width}`);
    for (let p = 0; p < width; p++) {
      const value = Number(words[p]);
      if (!Number.isFinite(value)) throw new PlyError(`PLY vertex ${i} has a value that is not a number`);
      values[i * width + p] = value;
    }
  }
  return values;
}

function readBinary(
  buffer: ArrayBuffer,
  header: Header,
  vertexIndex: number,
  littleEndian: boolean,
): Float64Array {
  let offset = header.bodyOffset;
  for (const element of header.elements.slice(0, vertexIndex)) {
    if (element.properties.some((p) => p.listCount !== undefined)) {
      throw new PlyError(
        `cannot skip the binary PLY element "${element.name}" before the vertices (it has lists)`,
      );
    }
    offset += element.count * rowBytes(element);
  }
  const vertex = header.elements[vertexIndex] as Element;
  if (vertex.properties.some((p) => p.listCount !== undefined)) {
    throw new PlyError("binary PLY vertices with list properties are not supported");
  }
  const stride = rowBytes(vertex);
  if (offset + stride * vertex.count > buffer.byteLength) {
    throw new PlyError(
      `the PLY file is truncated: ${vertex.count} vertices need ${stride * vertex.count} bytes`,
    );
  }
  const view = new DataView(buffer);
  const width = vertex.properties.length;
  const values = new Float64Array(vertex.count * width);
  const offsets: number[] = [];
  let at = 0;
  for (const property of vertex.properties) {
    offsets.push(at);
    at += TYPE_BYTES[property.type];
  }
  for (let i = 0; i < vertex.count; i++) {
    const row = offset + i * stride;
    for (let p = 0; p < width; p++) {
      values[i * width + p] = readScalar(
        view,
        row + (offsets[p] as number),
        (vertex.properties[p] as Property).type,
        littleEndian,
      );
    }
  }
  return values;
}

function rowBytes(element: Element): number {
  return element.properties.reduce((sum, p) => sum + TYPE_BYTES[p.type], 0);
}

// prettier-ignore
function readScalar(view: DataView, at: number, type: ScalarType, little: boolean): number {
  switch (type) {
    case "int8": return view.getInt8(at);
    case "uint8": return view.getUint8(at);
    case "int16": return view.getInt16(at, little);
    case "uint16": return view.getUint16(at, little);
    case "int32": return view.getInt32(at, little);
    case "uint32": return view.getUint32(at, little);
    case "float32": return view.getFloat32(at, little);
    case "float64": return view.getFloat64(at, little);
  }
}

function toRows(vertex: Element, values: Float64Array): SplatCloud {
  const width = vertex.properties.length;
  const index = (name: string): number => vertex.properties.findIndex((p) => p.name === name);
  const [ix, iy, iz] = [index("x"), index("y"), index("z")];
  const dc = [index("f_dc_0"), index("f_dc_1"), index("f_dc_2")];
  const rgb = [index("red"), index("green"), index("blue")];
  const rgbIsByte = rgb.every((i) => i < 0 || (vertex.properties[i] as Property).type === "uint8");
  const scale = [index("scale_0"), index("scale_1"), index("scale_2")];
  const rot = [index("rot_0"), index("rot_1"), index("rot_2"), index("rot_3")];
  const opacity = index("opacity");
  const alpha = index("alpha");
  const gaussian = dc.every((i) => i >= 0) && scale.every((i) => i >= 0);
  const count = vertex.count;

  // Centre and radius first: rows are written centred, and point clouds need a size.
  const min = [Infinity, Infinity, Infinity];
  const max = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < count; i++) {
    const base = i * width;
    [ix, iy, iz].forEach((column, axis) => {
      const v = values[base + column] as number;
      if (v < (min[axis] as number)) min[axis] = v;
      if (v > (max[axis] as number)) max[axis] = v;
    });
  }
  const centre = min.map((low, axis) => (low + (max[axis] as number)) / 2);
  const diagonal = Math.hypot(...max.map((high, axis) => high - (min[axis] as number)));
  // A point cloud has no splat size: make each point a round splat a small part of the rough
  // spacing (diagonal / cube root of the count), so points read as points, not one blur.
  const pointScale = Math.max(1e-4, (diagonal / Math.cbrt(count)) * 0.12);

  const rows = new ArrayBuffer(count * SPLAT_ROW_BYTES);
  const floats = new Float32Array(rows);
  const bytes = new Uint8ClampedArray(rows);
  let radius = 0;
  for (let i = 0; i < count; i++) {
    const base = i * width;
    const f = i * 8;
    const b = i * SPLAT_ROW_BYTES;
    const x = (values[base + ix] as number) - (centre[0] as number);
    const y = (values[base + iy] as number) - (centre[1] as number);
    const z = (values[base + iz] as number) - (centre[2] as number);
    floats[f] = x;
    floats[f + 1] = y;
    floats[f + 2] = z;
    radius = Math.max(radius, Math.hypot(x, y, z));
    for (let axis = 0; axis < 3; axis++) {
      const column = scale[axis] as number;
      floats[f + 3 + axis] = gaussian && column >= 0 ? Math.exp(values[base + column] as number) : pointScale;
    }
    for (let channel = 0; channel < 3; channel++) {
      const dcColumn = dc[channel] as number;
      const rgbColumn = rgb[channel] as number;
      let value = 200;
      if (dcColumn >= 0) value = (0.5 + SH_C0 * (values[base + dcColumn] as number)) * 255;
      else if (rgbColumn >= 0) {
        const raw = values[base + rgbColumn] as number;
        value = rgbIsByte ? raw : raw * 255;
      }
      bytes[b + 24 + channel] = value;
    }
    if (opacity >= 0) bytes[b + 27] = 255 / (1 + Math.exp(-(values[base + opacity] as number)));
    else if (alpha >= 0) bytes[b + 27] = values[base + alpha] as number;
    else bytes[b + 27] = 255;
    writeRotation(
      bytes,
      b + 28,
      rot.every((c) => c >= 0) ? rot.map((c) => values[base + c] as number) : null,
    );
  }
  return { rows, count, radius, gaussian };
}

/** Normalised quaternion (w, x, y, z) as bytes; identity when the file has none or a zero one. */
function writeRotation(bytes: Uint8ClampedArray, at: number, q: number[] | null): void {
  const length = q === null ? 0 : Math.hypot(...q);
  const unit =
    q === null || length === 0 || !Number.isFinite(length) ? [1, 0, 0, 0] : q.map((v) => v / length);
  unit.forEach((v, k) => {
    bytes[at + k] = v * 128 + 128;
  });
}

/** A `.splat` file (already rows): checked, copied and centred like a converted PLY. */
export function cloudFromSplatRows(buffer: ArrayBuffer): SplatCloud {
  if (buffer.byteLength === 0 || buffer.byteLength % SPLAT_ROW_BYTES !== 0) {
    throw new PlyError(
      `a .splat file is a whole number of ${SPLAT_ROW_BYTES}-byte rows; this one has ${buffer.byteLength} bytes`,
    );
  }
  return centreRows(buffer.slice(0));
}

/** Rows moved (in place) so the cloud's centre is at the origin, with the radius for the camera. */
export function centreRows(rows: ArrayBuffer): SplatCloud {
  const floats = new Float32Array(rows);
  const count = rows.byteLength / SPLAT_ROW_BYTES;
  const min = [Infinity, Infinity, Infinity];
  const max = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < count; i++) {
    for (let axis = 0; axis < 3; axis++) {
      const v = floats[i * 8 + axis] as number;
      min[axis] = Math.min(min[axis] as number, v);
      max[axis] = Math.max(max[axis] as number, v);
    }
  }
  const centre = min.map((low, axis) => (low + (max[axis] as number)) / 2);
  let radius = 0;
  for (let i = 0; i < count; i++) {
    for (let axis = 0; axis < 3; axis++)
      floats[i * 8 + axis] = (floats[i * 8 + axis] as number) - (centre[axis] as number);
    radius = Math.max(
      radius,
      Math.hypot(floats[i * 8] as number, floats[i * 8 + 1] as number, floats[i * 8 + 2] as number),
    );
  }
  return { rows, count, radius, gaussian: true };
}
