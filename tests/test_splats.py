"""Gaussian-splat conversion (handler/splats.py, input.convert): file layouts, round-trip error
bounds, refusal of non-splat PLYs, and the worker end to end against the test server's SharpPredict."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import struct
from typing import Any

import numpy as np
import pytest
from PIL import Image

from comfy_testserver import ComfyTestServer
from comfy_testserver.nodes.files import ply_text
from comfy_testserver.nodes.gaussians import splat_ply_bytes
from handler.job import JobLimits, parse_job_input
from handler.splats import SH_C0, NotASplat, decode, encode, quaternion_angle_deg, read_ply
from handler.worker import Worker

from . import workflows as wf
from .conftest import make_settings


@pytest.fixture
def ply() -> bytes:
    photo = Image.linear_gradient("L").convert("RGB").resize((64, 48))
    return splat_ply_bytes(photo, 24)  # 1152 gaussians in SHARP's layout


def sig(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x.astype(np.float64)))


def test_spz_layout_and_error_bounds(ply: bytes) -> None:
    cloud = read_ply(ply)
    data = encode(cloud, "spz")
    raw = gzip.decompress(data)
    assert data[:2] == b"\x1f\x8b"
    assert struct.unpack_from("<IIIBBBB", raw) == (0x5053474E, 3, len(cloud), 0, 12, 0, 0)
    assert len(raw) == 16 + len(cloud) * (9 + 1 + 3 + 3 + 4)
    first_y = int.from_bytes(raw[16 + 3 : 16 + 6], "little", signed=True)
    assert first_y == round(-cloud.positions[0, 1] * 4096)  # RDF -> RUB: y (and z) flipped
    back = decode(data, "spz")
    assert np.abs(back.positions - cloud.positions).max() <= 0.5 / 4096 + 1e-6
    assert np.abs(back.log_scales - cloud.log_scales).max() <= 0.5 / 16 + 1e-6
    shown = lambda dc: (0.5 + SH_C0 * dc) * 255  # noqa: E731
    assert np.abs(shown(back.colors_dc) - shown(cloud.colors_dc)).max() <= 0.5 * SH_C0 / 0.15 + 1e-3
    assert np.abs(sig(back.opacity_logits) - sig(cloud.opacity_logits)).max() <= 0.5 / 255 + 1e-6
    assert quaternion_angle_deg(back.rotations, cloud.rotations).max() < 0.25


def test_spz_rotations_survive_in_any_orientation(ply: bytes) -> None:
    cloud = read_ply(ply)
    turned = np.random.default_rng(3).normal(size=(len(cloud), 4)).astype(np.float32)
    cloud = dataclasses.replace(cloud, rotations=turned)
    back = decode(encode(cloud, "spz"), "spz")
    assert quaternion_angle_deg(back.rotations, cloud.rotations).max() < 0.25  # smallest-three, 9 bits
    # The 180-degree turn about x between RDF and RUB: a quaternion's y and z change sign on disk.
    raw = gzip.decompress(
        encode(
            dataclasses.replace(
                cloud, rotations=np.tile([0.6, 0, 0.8, 0], (len(cloud), 1)).astype(np.float32)
            ),
            "spz",
        )
    )
    word = int.from_bytes(raw[-4:], "little")
    assert word >> 30 == 1  # y is the largest of x, y, z, w
    # y became -0.8 in RUB; the largest is stored positive, so the whole quaternion is negated: w < 0.
    assert (word >> 9) & 1 == 1 and (word & 511) == round(511 * 0.6 / 0.5**0.5)


def test_splat_layout_order_and_error_bounds(ply: bytes) -> None:
    cloud = read_ply(ply)
    data = encode(cloud, "splat")
    assert len(data) == 32 * len(cloud)
    back = decode(data, "splat")
    importance = np.exp(back.log_scales.sum(axis=1)) * sig(back.opacity_logits)
    assert np.all(np.diff(importance) <= 1e-9)  # biggest, most opaque first (what viewers expect)
    order = np.lexsort(cloud.positions.T[::-1])
    again = np.lexsort(back.positions.T[::-1])
    assert np.array_equal(back.positions[again], cloud.positions[order])  # float32: exact
    assert np.allclose(np.exp(back.log_scales[again]), np.exp(cloud.log_scales[order]), rtol=1e-6)
    colour = np.abs((0.5 + SH_C0 * back.colors_dc[again]) - (0.5 + SH_C0 * cloud.colors_dc[order])) * 255
    assert colour.max() <= 0.5 + 1e-3


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not a ply", "not a PLY file"),
        (ply_text([(0.0, 0.0, 0.0)], [(1, 2, 3)]).encode(), "only binary little-endian"),
        (b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float x\nelement face 0\n"
         b"property list uchar int vertex_indices\nend_header\n" + bytes(4), "a mesh"),
        (b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
         b"property float z\nend_header\n" + bytes(12), "no f_dc_0"),
    ],
)  # fmt: skip
def test_other_plys_are_refused_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(NotASplat, match=reason):
        read_ply(data)


@pytest.mark.parametrize(
    ("convert", "message"),
    [
        ("spz", "input.convert must be an object"),
        ({"ply": "glb"}, 'input.convert.ply must be "spz" or "splat", got \'glb\''),
        ({"ply": "spz", "keep": True}, "unknown key(s) 'keep'"),
        ({"ply": "spz", "keep_original": "yes"}, "input.convert.keep_original must be true or false"),
    ],
)
def test_bad_convert_input_is_refused(convert: Any, message: str) -> None:
    from handler.errors import JobInputError

    with pytest.raises(JobInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_job_input({"workflow": wf.splat(), "convert": convert}, JobLimits(1, 1.0))


async def test_job_returns_the_splat_converted(comfy: ComfyTestServer) -> None:
    worker = Worker(make_settings(comfy))
    job = {"workflow": wf.splat("room"), "convert": {"ply": "spz"}}
    result = await worker.handle({"id": "c1", "input": job})
    assert "error" not in result, result
    (entry,) = result["files"]
    assert entry["filename"].startswith("room_") and entry["filename"].endswith(".spz")
    assert entry["mime_type"] == "application/x-spz" and entry["node_id"] == "3"
    cloud = decode(base64.b64decode(entry["data"]), "spz")
    assert len(cloud) == 2 * 16 * 16
    assert entry["size_bytes"] == len(base64.b64decode(entry["data"]))
    (note,) = result["notes"]
    assert "converted to " + entry["filename"] in note


async def test_keep_original_returns_both(comfy: ComfyTestServer) -> None:
    worker = Worker(make_settings(comfy))
    job = {"workflow": wf.splat("room"), "convert": {"ply": "splat", "keep_original": True}}
    result = await worker.handle({"id": "c2", "input": job})
    assert "error" not in result, result
    ply_entry, splat_entry = result["files"]
    assert ply_entry["filename"].endswith(".ply") and splat_entry["filename"].endswith(".splat")
    original = read_ply(base64.b64decode(ply_entry["data"]))
    assert len(base64.b64decode(splat_entry["data"])) == 32 * len(original)


def test_spz_of_a_kilometre_wide_cloud_trades_precision_instead_of_wrapping(ply: bytes) -> None:
    # A random-weight SHARP puts gaussians 8.6 km deep; 12 fractional bits would overflow 24 bits.
    cloud = read_ply(ply)
    wide = dataclasses.replace(cloud, positions=cloud.positions * np.float32(5000.0))
    data = encode(wide, "spz")
    bits = gzip.decompress(data)[13]
    assert bits == 9  # widest coordinate 2.0 * 5000 = 10000 units: 10000 * 2^9 < 2^23 <= 10000 * 2^10
    back = decode(data, "spz")
    assert np.abs(back.positions - wide.positions).max() <= 0.5 / 2**bits + 1e-3
    huge = dataclasses.replace(cloud, positions=cloud.positions * np.float32(1e7))
    with pytest.raises(NotASplat, match="do not fit SPZ's 24-bit fixed point"):
        encode(huge, "spz")
