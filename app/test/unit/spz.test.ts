/**
 * The SPZ reader against files written by the worker's own converter (handler/splats.py, run
 * through the project's Python), compared with the same cloud read from its PLY.
 */

import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolvePython } from "../../scripts/stack.js";
import { PlyError, SPLAT_ROW_BYTES, plyToSplat } from "../../src/splat/ply.js";
import { spzRowsFromRaw, spzToSplat } from "../../src/splat/spz.js";
import { gaussianPly } from "./support/ply-file.js";

const appDir = fileURLToPath(new URL("../..", import.meta.url));
const repoRoot = path.dirname(appDir);

// handler/splats.py's reader and SPZ writer, as the worker uses them on delivery.
const CONVERT = `
import sys
from handler import splats
cloud = splats.read_ply(open(sys.argv[1], "rb").read())
open(sys.argv[2], "wb").write(splats.encode(cloud, "spz"))
`;

let dir = "";

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "spz-test-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The PLY, and the .spz the worker would return for it. */
async function convertWithWorker(
  points: Array<Record<string, number>>,
  name: string,
): Promise<[ArrayBuffer, ArrayBuffer]> {
  const ply = gaussianPly(true, points);
  const plyPath = path.join(dir, `${name}.ply`);
  const spzPath = path.join(dir, `${name}.spz`);
  await writeFile(plyPath, new Uint8Array(ply));
  execFileSync(resolvePython(process.env.PYTHON, appDir, repoRoot), ["-c", CONVERT, plyPath, spzPath], {
    cwd: repoRoot,
  });
  const spz = await readFile(spzPath);
  return [ply, spz.buffer.slice(spz.byteOffset, spz.byteOffset + spz.byteLength) as ArrayBuffer];
}

/** A deterministic spread of splats: every sign, rotations of every kind, opacities 0..1. */
function points(count: number, spread: number): Array<Record<string, number>> {
  let seed = 7;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  return Array.from({ length: count }, () => ({
    x: (random() * 2 - 1) * spread,
    y: (random() * 2 - 1) * spread,
    z: (random() * 2 - 1) * spread,
    f_dc_0: random() * 4 - 2,
    f_dc_1: random() * 4 - 2,
    f_dc_2: random() * 4 - 2,
    opacity: random() * 10 - 5,
    scale_0: random() * 6 - 7,
    scale_1: random() * 6 - 7,
    scale_2: random() * 6 - 7,
    rot_0: random() * 2 - 1,
    rot_1: random() * 2 - 1,
    rot_2: random() * 2 - 1,
    rot_3: random() * 2 - 1,
  }));
}

function rowAt(rows: ArrayBuffer, i: number): { position: number[]; scale: number[]; bytes: number[] } {
  const floats = new Float32Array(rows, i * SPLAT_ROW_BYTES, 6);
  return {
    position: [...floats.slice(0, 3)],
    scale: [...floats.slice(3, 6)],
    bytes: [...new Uint8Array(rows, i * SPLAT_ROW_BYTES + 24, 8)],
  };
}

/** Largest difference between two row quaternions (bytes w x y z), q and -q being the same. */
function rotationError(a: number[], b: number[]): number {
  const qa = a.map((v) => (v - 128) / 128);
  const qb = b.map((v) => (v - 128) / 128);
  const same = Math.max(...qa.map((v, k) => Math.abs(v - (qb[k] as number))));
  const flipped = Math.max(...qa.map((v, k) => Math.abs(v + (qb[k] as number))));
  return Math.min(same, flipped);
}

describe("spzToSplat (files from the worker's converter)", () => {
  it.each([
    ["a room-sized cloud (12 fractional bits)", 3, 1 / 4096],
    ["a cloud kilometres wide (fewer fractional bits, as a random-weight SHARP makes)", 5000, 1 / 1024],
  ])("draws %s like its PLY, within SPZ's quantisation", async (_, spread, positionStep) => {
    const input = points(400, spread);
    const [ply, spz] = await convertWithWorker(input, `cloud-${spread}`);
    expect(spz.byteLength).toBeLessThan(ply.byteLength / 2);
    const fromPly = plyToSplat(ply);
    const fromSpz = await spzToSplat(spz);
    expect(fromSpz.count).toBe(input.length);
    expect(fromSpz.gaussian).toBe(true);
    expect(fromSpz.radius).toBeCloseTo(fromPly.radius, 1);
    for (let i = 0; i < input.length; i++) {
      const a = rowAt(fromPly.rows, i);
      const b = rowAt(fromSpz.rows, i);
      // Same axes as the PLY (SPZ's RUB flipped back): a sign error would be off by the spread.
      a.position.forEach((v, k) =>
        expect(Math.abs(v - (b.position[k] as number))).toBeLessThanOrEqual(positionStep),
      );
      // Log scales in 1/16 steps: at most half a step, 3.2 %.
      a.scale.forEach((v, k) =>
        expect(Math.abs(Math.log((b.scale[k] as number) / v))).toBeLessThan(1 / 32 + 1e-4),
      );
      // Colour channels (clamped like the PLY's) and opacity within about one display step.
      for (let k = 0; k < 4; k++)
        expect(Math.abs((a.bytes[k] as number) - (b.bytes[k] as number))).toBeLessThanOrEqual(2);
      expect(rotationError(a.bytes.slice(4), b.bytes.slice(4))).toBeLessThanOrEqual(3 / 128);
    }
  });

  it("reads a SHARP-shaped cloud of 100,000 splats", async () => {
    const [, spz] = await convertWithWorker(points(100_000, 2), "big");
    const cloud = await spzToSplat(spz);
    expect(cloud.count).toBe(100_000);
    expect(cloud.rows.byteLength).toBe(100_000 * SPLAT_ROW_BYTES);
  });

  it("refuses a file that is not gzip, or whose gzip data is cut short, saying so", async () => {
    const ply = gaussianPly(true, points(2, 1));
    await expect(spzToSplat(ply)).rejects.toThrow(/not an SPZ file \(an \.spz file is gzip-compressed/);
    const [, spz] = await convertWithWorker(points(50, 1), "cut");
    await expect(spzToSplat(spz.slice(0, spz.byteLength / 2))).rejects.toThrow(
      /gzip data is damaged or cut short/,
    );
  });
});

/** An uncompressed SPZ: header plus one splat's columns. */
function rawSpz(
  fields: { magic?: number; version?: number; count?: number; degree?: number; bits?: number },
  body: number[],
): Uint8Array {
  const raw = new Uint8Array(16 + body.length);
  const view = new DataView(raw.buffer);
  view.setUint32(0, fields.magic ?? 0x5053474e, true);
  view.setUint32(4, fields.version ?? 3, true);
  view.setUint32(8, fields.count ?? 1, true);
  view.setUint8(12, fields.degree ?? 0);
  view.setUint8(13, fields.bits ?? 12);
  raw.set(body, 16);
  return raw;
}

describe("spzRowsFromRaw", () => {
  it("reads a version 2 splat (8-bit rotation x y z, w implied) into PLY axes", () => {
    // Position (1, 2, -3) in RUB at 12 bits; alpha 200; colour 127/128 ~ 0; scale 160/16-10 = 0;
    // rotation x y z = 0 -> identity.
    const fixed = (v: number): number[] => {
      const n = (Math.round(v * 4096) + (1 << 24)) % (1 << 24);
      return [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff];
    };
    const body = [...fixed(1), ...fixed(2), ...fixed(-3), 200, 128, 128, 128, 160, 160, 160, 128, 128, 128];
    const rows = spzRowsFromRaw(rawSpz({ version: 2 }, body));
    const row = rowAt(rows, 0);
    expect(row.position).toEqual([1, -2, 3]);
    expect(row.scale.map((v) => Number(v.toFixed(6)))).toEqual([1, 1, 1]);
    expect(row.bytes[3]).toBe(200);
    // 128 is 0.5 / 127.5 above v2's zero, so "identity" is one step off at most.
    row.bytes
      .slice(4)
      .forEach((v, k) => expect(Math.abs(v - ([255, 128, 128, 128][k] as number))).toBeLessThanOrEqual(1));
  });

  it.each([
    [{ magic: 0x12345678 }, 24, /its header does not start with NGSP/],
    [{ version: 4 }, 24, /SPZ version 4 is not supported/],
    [{ degree: 4 }, 24, /SH degree 4; at most 3/],
    [{ count: 0 }, 0, /has no splats/],
    [{ bits: 30 }, 24, /30 fractional bits/],
    [{ count: 2 }, 24, /truncated: 2 splats need 56 bytes, it has 40/],
  ])("refuses a broken header %j with a reason", (fields, bodyBytes, message) => {
    expect(() => spzRowsFromRaw(rawSpz(fields, new Array<number>(bodyBytes).fill(0)))).toThrow(PlyError);
    expect(() => spzRowsFromRaw(rawSpz(fields, new Array<number>(bodyBytes).fill(0)))).toThrow(message);
  });

  it("refuses a file shorter than its header", () => {
    expect(() => spzRowsFromRaw(new Uint8Array(10))).toThrow(/too short for its header/);
  });
});
