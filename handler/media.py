"""Media types from a file's first bytes, with the file name as a fallback. Pure.

Inputs are uploaded with the type their bytes say (a PNG named photo.jpg is still a PNG), and
outputs are labelled the same way, so an .mp4 is ``video/mp4`` and never ``image/mp4``.
"""

from __future__ import annotations

import mimetypes
from pathlib import PurePosixPath

__all__ = ["SNIFF_BYTES", "is_image", "sniff_mime"]

SNIFF_BYTES = 64
OCTET_STREAM = "application/octet-stream"

# Types mimetypes does not know on every platform.
_BY_EXTENSION = {
    ".webp": "image/webp",
    ".apng": "image/apng",
    ".avif": "image/avif",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".opus": "audio/opus",
    ".m4a": "audio/mp4",
    ".ply": "application/ply",
    ".splat": "application/octet-stream",
    ".ksplat": "application/octet-stream",
    ".spz": "application/octet-stream",
    ".glb": "model/gltf-binary",
    ".gltf": "model/gltf+json",
    ".obj": "model/obj",
    ".stl": "model/stl",
    ".fbx": "application/octet-stream",
    ".safetensors": "application/octet-stream",
    ".json": "application/json",
    ".txt": "text/plain",
    ".exr": "image/x-exr",
    ".hdr": "image/vnd.radiance",
    ".npy": "application/octet-stream",
}


def sniff_mime(head: bytes, filename: str = "") -> str:
    """Return the media type of a file from its first bytes (>= 64 is plenty) and name."""
    sniffed = _sniff(head)
    if sniffed:
        return sniffed
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix in _BY_EXTENSION:
        return _BY_EXTENSION[suffix]
    guessed, _ = mimetypes.guess_type(f"x{suffix}") if suffix else (None, None)
    return guessed or OCTET_STREAM


def is_image(mime_type: str) -> bool:
    """Whether an output belongs in the result's ``images`` list (as worker-comfyui returns it)."""
    return mime_type.startswith("image/")


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        # An animated PNG carries an acTL chunk before the first IDAT; it is still image/png
        # to browsers, and worker-comfyui clients expect png under images.
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head.startswith(b"BM") and len(head) > 14 and head[6:10] == b"\x00\x00\x00\x00":
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head[4:8] == b"ftyp":
        return _iso_bmff(head[8:12])
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/x-matroska" if b"matroska" in head else "video/webm"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head.startswith(b"glTF"):
        return "model/gltf-binary"
    if head.startswith(b"ply\n") or head.startswith(b"ply\r\n"):
        return "application/ply"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"v/1\x01"):
        return "image/x-exr"
    return None


def _iso_bmff(brand: bytes) -> str:
    if brand in (b"avif", b"avis"):
        return "image/avif"
    if brand in (b"heic", b"heix", b"mif1", b"msf1"):
        return "image/heic"
    if brand == b"qt  ":
        return "video/quicktime"
    if brand in (b"M4A ", b"M4B "):
        return "audio/mp4"
    return "video/mp4"
