"""Gaussian-splat conversion on delivery: size and round-trip error of SPZ and .splat against the
PLY (run: ``python -m bench.splat_bench [--ply FILE]``).

Without ``--ply`` it synthesises a cloud of SHARP's shape and value ranges (1,179,648 gaussians:
two layers of 768x768, depths 1-20 m, log scales -9..-3, opacity logits N(0, 3), colours from a
gradient, random rotations); with ``--ply`` it measures a real SharpPredict output. Baseline: the
PLY itself, and base64 of each (what an inline result carries). Errors are over all gaussians:
max and 99th percentile of |position| (m), relative scale, displayed colour (0-255), opacity
(0-1) and rotation angle (degrees).
"""

from __future__ import annotations

import argparse
import base64
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from handler.splats import SH_C0, SplatCloud, decode, encode, quaternion_angle_deg, read_ply

SHARP_COUNT = 2 * 768 * 768


def synthetic_ply(n: int = SHARP_COUNT, seed: int = 7) -> bytes:
    rng = np.random.default_rng(seed)
    side = math.isqrt(n // 2)
    v, u = np.meshgrid(np.linspace(-0.5, 0.5, side), np.linspace(-0.5, 0.5, side), indexing="ij")
    depth = np.concatenate([rng.uniform(1.0, 20.0, side * side) for _ in range(2)])
    uu, vv = np.tile(u.ravel(), 2), np.tile(v.ravel(), 2)
    fields = [
        uu * depth, vv * depth, depth,
        *(np.tile(np.linspace(-1.7, 1.7, side * side), 2) * s for s in (1.0, -0.6, 0.3)),
        rng.normal(0.0, 3.0, 2 * side * side),
        *(rng.uniform(-9.0, -3.0, 2 * side * side) for _ in range(3)),
        *rng.normal(size=(4, 2 * side * side)),
    ]  # fmt: skip
    names = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
             "rot_0", "rot_1", "rot_2", "rot_3"]  # fmt: skip
    rows = np.empty(2 * side * side, dtype=[(name, "<f4") for name in names])
    for name, values in zip(names, fields, strict=True):
        rows[name] = values
    header = "ply\nformat binary_little_endian 1.0\n" + f"element vertex {len(rows)}\n"
    header += "".join(f"property float {name}\n" for name in names) + "end_header\n"
    return header.encode() + rows.tobytes()


def errors(a: SplatCloud, b: SplatCloud, *, sorted_output: bool) -> dict[str, tuple[float, float]]:
    if sorted_output:  # .splat reorders: match rows by position (unique per gaussian here)
        ka = np.lexsort(a.positions.T[::-1])
        kb = np.lexsort(b.positions.T[::-1])
        a = SplatCloud(*(getattr(a, f)[ka] for f in SplatCloud.__dataclass_fields__))
        b = SplatCloud(*(getattr(b, f)[kb] for f in SplatCloud.__dataclass_fields__))

    def stat(values: np.ndarray) -> tuple[float, float]:
        return float(values.max()), float(np.percentile(values, 99))

    def shown(dc: Any) -> Any:
        return np.clip((0.5 + SH_C0 * dc) * 255.0, 0, 255)

    def sig(x: Any) -> Any:
        return 1 / (1 + np.exp(-x.astype(np.float64)))

    return {
        "position (m)": stat(np.abs(a.positions - b.positions).max(axis=1)),
        "scale (relative)": stat(np.abs(np.exp(b.log_scales - a.log_scales) - 1).max(axis=1)),
        "colour (0-255)": stat(np.abs(shown(a.colors_dc) - shown(b.colors_dc)).max(axis=1)),
        "opacity (0-1)": stat(np.abs(sig(a.opacity_logits) - sig(b.opacity_logits))),
        "rotation (deg)": stat(quaternion_angle_deg(a.rotations, b.rotations)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ply", type=Path, help="a real SharpPredict .ply (default: synthesise one)")
    args = parser.parse_args()
    ply = args.ply.read_bytes() if args.ply else synthetic_ply()
    started = time.perf_counter()
    cloud = read_ply(ply)
    read_s = time.perf_counter() - started
    source = f"{args.ply}" if args.ply else "synthetic SHARP-shaped cloud"
    print(f"{source}: {len(cloud):,} gaussians, PLY {len(ply) / 1e6:.1f} MB (read {read_s:.2f} s)")
    print(f"{'format':<8}{'bytes':>14}{'ratio':>8}{'base64 MB':>11}{'encode s':>10}{'cpu s':>8}")
    print(f"{'ply':<8}{len(ply):>14,}{1.0:>8.3f}{len(base64.b64encode(ply)) / 1e6:>11.1f}{'':>10}")
    for fmt in ("spz", "splat"):
        started, cpu = time.perf_counter(), time.process_time()
        data = encode(cloud, fmt)
        took, cpu = time.perf_counter() - started, time.process_time() - cpu
        b64 = 4 * ((len(data) + 2) // 3)
        print(
            f"{fmt:<8}{len(data):>14,}{len(data) / len(ply):>8.3f}{b64 / 1e6:>11.1f}{took:>10.2f}{cpu:>8.2f}"
        )
        for name, (worst, p99) in errors(cloud, decode(data, fmt), sorted_output=fmt == "splat").items():
            print(f"    {name:<18} max {worst:.6g}   p99 {p99:.6g}")


if __name__ == "__main__":
    main()
