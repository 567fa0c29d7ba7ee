"""Gaussian-splat .ply files to compact formats, and back (for measuring). numpy, no I/O.

Input: a binary little-endian 3DGS PLY (what SHARP and every 3DGS trainer write) with float
``x y z f_dc_0..2 opacity scale_0..2 rot_0..3`` (opacity and scales as logits/logs, ``rot_0`` = w).
Higher spherical-harmonic bands (``f_rest_*``) are dropped: SHARP writes none.

- ``spz``: Niantic's SPZ, version 3 (github.com/nianticlabs/spz, README "File Format"): gzip of a
  16-byte header (magic 0x5053474e, version 3, count, SH degree 0, 12 fractional bits, fewer
  only for clouds wider than +-2048 units) and
  column arrays: positions as 24-bit fixed point, alphas sigmoid(opacity)*255, colours
  f_dc*0.15*255+127.5, scales (log+10)*16, rotations "smallest three" in 32 bits (index of the
  largest |component| of x,y,z,w in the top 2 bits, then per other component a sign bit and a
  9-bit magnitude scaled by sqrt(2)). Version 2 files (8-bit x,y,z) are read too.
  SPZ is RUB (three.js) while PLY is RDF, so y and z are flipped on the way in (positions, and
  the rotation's y and z), as Niantic's library does when told the PLY is RDF.
- ``splat``: antimatter15's .splat, 32 bytes per gaussian: position float32 x3, scale float32 x3
  (exp of the log), RGBA uint8 (0.5 + 0.28209*f_dc, sigmoid(opacity)), rotation uint8 x4 (w x y z,
  q*128+128); sorted by size x opacity, largest first, like its converter; PLY axes.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "FORMATS",
    "NotASplat",
    "SplatCloud",
    "decode",
    "encode",
    "quaternion_angle_deg",
    "read_ply",
]

FORMATS = ("spz", "splat")
SH_C0 = 0.28209479177387814  # sqrt(1 / (4 pi)): degree-0 spherical harmonic
_FIELDS = ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
           "rot_0", "rot_1", "rot_2", "rot_3")  # fmt: skip
_PLY_TYPES = {"float": "f4", "float32": "f4", "double": "f8", "float64": "f8", "uchar": "u1", "uint8": "u1",
              "char": "i1", "int8": "i1", "ushort": "u2", "uint16": "u2", "short": "i2", "int16": "i2",
              "uint": "u4", "uint32": "u4", "int": "i4", "int32": "i4"}  # fmt: skip
_SPZ_MAGIC = 0x5053474E
_SPZ_FRACTIONAL_BITS = 12
_SPZ_COLOR_SCALE = 0.15
_MAX_HEADER = 64 * 1024

Floats = npt.NDArray[np.float32]


class NotASplat(ValueError):
    """The file is not a 3DGS PLY this module can convert (a mesh, ASCII, missing fields)."""


@dataclass(frozen=True)
class SplatCloud:
    """Gaussians in PLY terms: log scales, opacity logits, SH DC colours, quaternions (w x y z)."""

    positions: Floats  # (n, 3)
    colors_dc: Floats  # (n, 3)
    opacity_logits: Floats  # (n,)
    log_scales: Floats  # (n, 3)
    rotations: Floats  # (n, 4) w x y z, not necessarily normalised

    def __len__(self) -> int:
        return int(self.positions.shape[0])


def read_ply(data: bytes | memoryview) -> SplatCloud:
    """Parse a 3DGS PLY; raise NotASplat with the reason if it is not one."""
    view = memoryview(data)
    end = bytes(view[:_MAX_HEADER]).find(b"end_header\n")
    if not bytes(view[:4]) == b"ply\n" or end < 0:
        raise NotASplat("not a PLY file with a readable header")
    header = bytes(view[:end]).decode("ascii", errors="replace").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise NotASplat("only binary little-endian PLY is converted")
    count, props, first = 0, [], True
    for line in header:
        parts = line.split()
        if parts[:1] == ["element"]:
            if not first or parts[1] != "vertex":
                raise NotASplat("the PLY has elements besides 'vertex' (a mesh?)")
            count, first = int(parts[2]), False
        elif parts[:1] == ["property"]:
            if parts[1] == "list" or parts[1] not in _PLY_TYPES:
                raise NotASplat(f"unsupported PLY property {' '.join(parts[1:])!r}")
            props.append((parts[2], "<" + _PLY_TYPES[parts[1]]))
    names = {name for name, _ in props}
    missing = [f for f in _FIELDS if f not in names]
    if missing:
        raise NotASplat(f"not a Gaussian splat: no {', '.join(missing[:4])} property")
    dtype = np.dtype(props)
    body = view[end + len(b"end_header\n") :]
    if len(body) < count * dtype.itemsize:
        raise NotASplat(f"the PLY is truncated ({len(body)} bytes for {count} vertices)")
    rows = np.frombuffer(body, dtype=dtype, count=count)

    def cols(*fields: str) -> Floats:
        return np.stack([rows[f].astype(np.float32) for f in fields], axis=1)

    return SplatCloud(
        positions=cols("x", "y", "z"),
        colors_dc=cols("f_dc_0", "f_dc_1", "f_dc_2"),
        opacity_logits=rows["opacity"].astype(np.float32),
        log_scales=cols("scale_0", "scale_1", "scale_2"),
        rotations=cols("rot_0", "rot_1", "rot_2", "rot_3"),
    )


def encode(cloud: SplatCloud, fmt: str) -> bytes:
    if fmt == "spz":
        return _to_spz(cloud)
    if fmt == "splat":
        return _to_splat(cloud)
    raise ValueError(f"unknown splat format {fmt!r}; use one of {', '.join(FORMATS)}")


def decode(data: bytes, fmt: str) -> SplatCloud:
    """Read an encoded cloud back (for measuring the round trip)."""
    if fmt == "spz":
        return _from_spz(data)
    if fmt == "splat":
        return _from_splat(data)
    raise ValueError(f"unknown splat format {fmt!r}")


def _unit_quaternions(q: Floats) -> Floats:
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    norm[norm == 0] = 1.0
    unit: Floats = (q / norm).astype(np.float32)
    return unit


def _sigmoid(x: Floats) -> Floats:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)


def _logit(p: Floats) -> Floats:
    p64 = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
    return np.log(p64 / (1 - p64)).astype(np.float32)


def _u8(x: npt.NDArray[np.floating]) -> npt.NDArray[np.uint8]:
    clipped: npt.NDArray[np.uint8] = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return clipped


_FLIP = np.array([1.0, -1.0, -1.0], dtype=np.float32)  # RDF (PLY) <-> RUB (SPZ)


def _to_spz(cloud: SplatCloud) -> bytes:
    n = len(cloud)
    bits = _fractional_bits(cloud.positions)
    fixed = np.rint(cloud.positions * _FLIP * float(1 << bits)).astype(np.int64)
    packed = (fixed & 0xFFFFFF).astype("<u4").view(np.uint8).reshape(n, 3, 4)[:, :, :3]
    alphas = _u8(_sigmoid(cloud.opacity_logits) * 255.0)
    colors = _u8(cloud.colors_dc * (_SPZ_COLOR_SCALE * 255.0) + 127.5)
    scales = _u8((cloud.log_scales + 10.0) * 16.0)
    rotations = _smallest_three(_unit_quaternions(cloud.rotations))
    header = struct.pack("<IIIBBBB", _SPZ_MAGIC, 3, n, 0, bits, 0, 0)
    body = b"".join(a.tobytes() for a in (packed, alphas, colors, scales, rotations))
    return gzip.compress(header + body, compresslevel=6, mtime=0)


def _fractional_bits(positions: Floats) -> int:
    """12 (1/4096 units, Niantic's choice), or fewer when the cloud is too wide for 24 bits.

    The header carries the value and decoders read it, so a wide cloud (a random-weight model's
    kilometre-deep splat) loses precision instead of wrapping around.
    """
    widest = float(np.abs(positions).max(initial=0.0))
    limit = (1 << 23) - 1
    for bits in range(_SPZ_FRACTIONAL_BITS, -1, -1):
        if round(widest * (1 << bits)) <= limit:
            return bits
    raise NotASplat(f"positions up to {widest:.0f} units do not fit SPZ's 24-bit fixed point")


def _from_spz(data: bytes) -> SplatCloud:
    raw = gzip.decompress(data)
    magic, version, n, degree, bits, _, _ = struct.unpack_from("<IIIBBBB", raw)
    if magic != _SPZ_MAGIC or version not in (2, 3) or degree != 0:
        raise NotASplat("not an SPZ v2/v3 file of SH degree 0")
    offset = 16

    def take(count: int) -> npt.NDArray[np.uint8]:
        nonlocal offset
        chunk = np.frombuffer(raw, dtype=np.uint8, count=count, offset=offset)
        offset += count
        return chunk

    p = take(n * 9).reshape(n, 3, 3).astype(np.int32)
    fixed = p[:, :, 0] | (p[:, :, 1] << 8) | (p[:, :, 2] << 16)
    fixed = np.where(fixed & 0x800000, fixed - (1 << 24), fixed)
    positions = (fixed / float(1 << bits)).astype(np.float32) * _FLIP
    alphas = take(n).astype(np.float32) / 255.0
    colors = (take(n * 3).reshape(n, 3).astype(np.float32) - 127.5) / (_SPZ_COLOR_SCALE * 255.0)
    scales = take(n * 3).reshape(n, 3).astype(np.float32) / 16.0 - 10.0
    if version == 3:
        rotations = _from_smallest_three(take(n * 4).view("<u4"))
    else:
        xyz = (take(n * 3).reshape(n, 3).astype(np.float32) - 127.5) / 127.5 * _FLIP
        w = np.sqrt(np.clip(1.0 - (xyz**2).sum(axis=1, keepdims=True), 0.0, 1.0))
        rotations = np.hstack([w, xyz]).astype(np.float32)
    return SplatCloud(positions, colors, _logit(alphas), scales, rotations)


_SQRT1_2 = np.float32(np.sqrt(0.5))
_MAG = (1 << 9) - 1


def _smallest_three(q: Floats) -> npt.NDArray[np.uint8]:
    """Unit quaternions (w x y z, PLY axes) to SPZ v3's 32-bit words (x y z w order, RUB axes)."""
    xyzw = np.hstack([q[:, 1:] * _FLIP, q[:, :1]])
    largest = np.abs(xyzw).argmax(axis=1)
    rows = np.arange(len(xyzw))
    negate = xyzw[rows, largest] < 0
    words = largest.astype(np.uint32)
    for index in range(4):
        component = xyzw[:, index]
        sign = ((component < 0) ^ negate).astype(np.uint32)
        mag = np.floor(_MAG * (np.abs(component) / _SQRT1_2) + 0.5).astype(np.uint32)
        packed = (words << 10) | (sign << 9) | np.minimum(mag, _MAG)
        words = np.where(largest == index, words, packed)
    packed_bytes: npt.NDArray[np.uint8] = words.astype("<u4").view(np.uint8)
    return packed_bytes


def _from_smallest_three(words: npt.NDArray[np.uint32]) -> Floats:
    words = words.astype(np.uint32)
    largest = (words >> 30).astype(np.int64)
    xyzw = np.zeros((len(words), 4), dtype=np.float32)
    rest = words.copy()
    for index in (3, 2, 1, 0):  # packed first-to-last, so read last-to-first
        here = largest != index
        value = _SQRT1_2 * (rest & _MAG).astype(np.float32) / _MAG
        value = np.where((rest >> 9) & 1, -value, value)
        xyzw[:, index] = np.where(here, value, 0.0)
        rest = np.where(here, rest >> 10, rest)
    rows = np.arange(len(words))
    xyzw[rows, largest] = np.sqrt(np.clip(1.0 - (xyzw**2).sum(axis=1), 0.0, 1.0))
    return np.hstack([xyzw[:, 3:], xyzw[:, :3] * _FLIP]).astype(np.float32)


def _to_splat(cloud: SplatCloud) -> bytes:
    n = len(cloud)
    alpha = _sigmoid(cloud.opacity_logits)
    order = np.argsort(-(np.exp(cloud.log_scales.astype(np.float64).sum(axis=1)) * alpha), kind="stable")
    rows = np.empty(n, dtype=[("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])
    rows["pos"] = cloud.positions[order]
    rows["scale"] = np.exp(cloud.log_scales[order])
    rows["rgba"][:, :3] = _u8((0.5 + SH_C0 * cloud.colors_dc[order]) * 255.0)
    rows["rgba"][:, 3] = _u8(alpha[order] * 255.0)
    rows["rot"] = _u8(_unit_quaternions(cloud.rotations[order]) * 128.0 + 128.0)
    return rows.tobytes()


def _from_splat(data: bytes) -> SplatCloud:
    dtype = np.dtype([("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])
    if len(data) % dtype.itemsize:
        raise NotASplat("a .splat file is a whole number of 32-byte records")
    rows = np.frombuffer(data, dtype=dtype)
    rgba = rows["rgba"].astype(np.float32) / 255.0
    return SplatCloud(
        positions=rows["pos"].astype(np.float32),
        colors_dc=(rgba[:, :3] - 0.5) / SH_C0,
        opacity_logits=_logit(rgba[:, 3]),
        log_scales=np.log(np.maximum(rows["scale"].astype(np.float32), 1e-30)),
        rotations=(rows["rot"].astype(np.float32) - 128.0) / 128.0,
    )


def quaternion_angle_deg(a: Floats, b: Floats) -> Floats:
    """The angle between rotations a and b (degrees), for error bounds."""
    dot = np.abs((_unit_quaternions(a) * _unit_quaternions(b)).sum(axis=1))
    angle: Floats = np.degrees(2.0 * np.arccos(np.clip(dot, 0.0, 1.0))).astype(np.float32)
    return angle
