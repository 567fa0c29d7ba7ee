"""Writing output files: PNGs with ComfyUI's metadata, and small but well-formed stand-ins for the
containers the real nodes produce with PyAV/torchaudio/trimesh (mp4, webm, flac, glb, ply).

The stand-ins start with the right magic bytes and box/element structure so that anything sniffing
the file type (or a test) sees what a real ComfyUI would have written.
"""

from __future__ import annotations

import io
import json
import random
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from .values import Audio, Images, Mesh

__all__ = [
    "file_entry",
    "flac_bytes",
    "glb_bytes",
    "jpeg_bytes",
    "mp4_bytes",
    "ply_text",
    "png_bytes",
    "png_metadata",
    "temp_prefix_suffix",
    "webm_bytes",
    "write_bytes",
]

# ComfyUI's PreviewImage draws from this exact alphabet (it has no "w" and two "p"s).
_TEMP_LETTERS = "abcdefghijklmnopqrstupvxyz"


def temp_prefix_suffix() -> str:
    """`_temp_<5 letters>`, appended to PreviewImage's `ComfyUI` prefix."""
    return "_temp_" + "".join(random.choice(_TEMP_LETTERS) for _ in range(5))


def file_entry(filename: str, subfolder: str, folder_type: str) -> dict[str, str]:
    """One entry of a UI output list, e.g. `{"filename", "subfolder", "type"}` under `images`."""
    return {"filename": filename, "subfolder": subfolder, "type": folder_type}


def png_metadata(prompt: dict[str, Any] | None, extra_pnginfo: dict[str, Any] | None) -> PngInfo:
    """SaveImage's tEXt chunks: `prompt` plus one chunk per `extra_pnginfo` key (e.g. `workflow`)."""
    info = PngInfo()
    if prompt is not None:
        info.add_text("prompt", json.dumps(prompt))
    for key, value in (extra_pnginfo or {}).items():
        info.add_text(key, json.dumps(value))
    return info


def png_bytes(image: Image.Image, metadata: PngInfo | None = None, compress_level: int = 4) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=metadata, compress_level=compress_level)
    return buffer.getvalue()


def jpeg_bytes(image: Image.Image, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


# --- ISO-BMFF (mp4) --------------------------------------------------------------------------------


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4_bytes(images: Images, fps: float) -> bytes:
    """`ftyp` + `moov/mvhd` (with the real duration) + `mdat` holding the frames as JPEG."""
    timescale = 1000
    duration = round(len(images) * timescale / fps) if fps > 0 else 0
    identity_matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = _box(
        b"mvhd",
        struct.pack(">IIIII", 0, 0, 0, timescale, duration)
        + struct.pack(">IH", 0x10000, 0x100)
        + bytes(10)
        + identity_matrix
        + bytes(24)
        + struct.pack(">I", 2),
    )
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41")
    mdat = _box(b"mdat", b"".join(jpeg_bytes(frame, 80) for frame in images.frames))
    return ftyp + _box(b"moov", mvhd) + mdat


# --- EBML (webm) -----------------------------------------------------------------------------------


def _ebml_size(length: int) -> bytes:
    if length < 0x7F:
        return bytes([0x80 | length])
    return b"\x01" + length.to_bytes(7, "big")


def _element(element_id: int, data: bytes) -> bytes:
    raw_id = element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")
    return raw_id + _ebml_size(len(data)) + data


def webm_bytes(images: Images, fps: float) -> bytes:
    """EBML header (magic 1A 45 DF A3, DocType webm) + a Segment with Info and the frames."""
    header = _element(
        0x1A45DFA3,
        _element(0x4286, b"\x01")
        + _element(0x42F7, b"\x01")
        + _element(0x42F2, b"\x04")
        + _element(0x42F3, b"\x08")
        + _element(0x4282, b"webm")
        + _element(0x4287, b"\x04")
        + _element(0x4285, b"\x02"),
    )
    duration_ms = 1000.0 * len(images) / fps if fps > 0 else 0.0
    info = _element(
        0x1549A966,
        _element(0x2AD7B1, (1_000_000).to_bytes(3, "big"))
        + _element(0x4489, struct.pack(">d", duration_ms))
        + _element(0x4D80, b"comfy_testserver"),
    )
    frames = b"".join(_element(0xA3, jpeg_bytes(frame, 80)) for frame in images.frames)
    return header + _element(0x18538067, info + _element(0x1F43B675, frames))


# --- FLAC, glTF binary, PLY ------------------------------------------------------------------------


def flac_bytes(audio: Audio) -> bytes:
    """`fLaC` + a STREAMINFO block describing `audio` (no audio frames)."""
    bits = 16
    fields = (
        (4096, 16),
        (4096, 16),
        (0, 24),
        (0, 24),
        (audio.sample_rate, 20),
        (audio.channels - 1, 3),
        (bits - 1, 5),
        (audio.num_samples, 36),
    )
    value = 0
    for field_value, width in fields:
        value = (value << width) | field_value
    streaminfo = value.to_bytes(18, "big") + bytes(16)
    return b"fLaC" + bytes([0x80]) + len(streaminfo).to_bytes(3, "big") + streaminfo


def glb_bytes(mesh: Mesh) -> bytes:
    """A valid glTF 2.0 binary: one mesh with positions and triangle indices."""
    positions = b"".join(struct.pack("<3f", *vertex) for vertex in mesh.vertices)
    indices = b"".join(struct.pack("<3H", *face) for face in mesh.faces)
    indices += bytes((-len(indices)) % 4)
    binary = positions + indices
    xs, ys, zs = zip(*mesh.vertices, strict=True)
    document = {
        "asset": {"version": "2.0", "generator": "comfy_testserver"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}],
        "buffers": [{"byteLength": len(binary)}],
        "bufferViews": [
            {"buffer": 0, "byteOffset": 0, "byteLength": len(positions)},
            {"buffer": 0, "byteOffset": len(positions), "byteLength": len(mesh.faces) * 6},
        ],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5126,
                "count": len(mesh.vertices),
                "type": "VEC3",
                "min": [min(xs), min(ys), min(zs)],
                "max": [max(xs), max(ys), max(zs)],
            },
            {"bufferView": 1, "componentType": 5123, "count": len(mesh.faces) * 3, "type": "SCALAR"},
        ],
    }
    json_chunk = json.dumps(document, separators=(",", ":")).encode()
    json_chunk += b" " * ((-len(json_chunk)) % 4)
    chunks = (
        struct.pack("<I4s", len(json_chunk), b"JSON")
        + json_chunk
        + struct.pack("<I4s", len(binary), b"BIN\x00")
        + binary
    )
    return b"glTF" + struct.pack("<II", 2, 12 + len(chunks)) + chunks


def ply_text(vertices: Sequence[tuple[float, float, float]], colors: Sequence[tuple[int, int, int]]) -> str:
    """An ASCII PLY point cloud, the kind Gaussian-splat nodes write."""
    lines = [
        "ply",
        "format ascii 1.0",
        "comment generated by comfy_testserver",
        f"element vertex {len(vertices)}",
        "property float x",
        "property float y",
        "property float z",
        "property uchar red",
        "property uchar green",
        "property uchar blue",
        "end_header",
    ]
    lines += [f"{x} {y} {z} {r} {g} {b}" for (x, y, z), (r, g, b) in zip(vertices, colors, strict=True)]
    return "\n".join(lines) + "\n"


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
