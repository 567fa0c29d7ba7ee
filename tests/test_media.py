"""Media types come from bytes first, names second."""

from __future__ import annotations

import pytest

from handler.media import is_image, sniff_mime

from .conftest import png_bytes


@pytest.mark.parametrize(
    ("head", "name", "expected"),
    [
        (png_bytes(), "x.jpg", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "x.png", "image/jpeg"),
        (b"GIF89a....", "x", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "x", "image/webp"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "x", "audio/wav"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "clip.webm", "video/mp4"),
        (b"\x00\x00\x00\x1cftypqt  ", "x", "video/quicktime"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm", "x", "video/webm"),
        (b"fLaC\x00\x00\x00\x22", "x", "audio/flac"),
        (b"ID3\x04\x00", "x", "audio/mpeg"),
        (b"OggS\x00\x02", "x", "audio/ogg"),
        (b"glTF\x02\x00\x00\x00", "x", "model/gltf-binary"),
        (b"ply\nformat binary_little_endian 1.0\n", "x", "application/ply"),
        (b"\x00\x01\x02", "scene.splat", "application/octet-stream"),
        (b"\x00\x01\x02", "scene.ply", "application/ply"),
        (b"{}", "meta.json", "application/json"),
        (b"hello", "notes.txt", "text/plain"),
        (b"\x00\x01", "", "application/octet-stream"),
    ],
)
def test_sniff_mime(head: bytes, name: str, expected: str) -> None:
    assert sniff_mime(head[:64], name) == expected


def test_images_list_takes_image_types_only() -> None:
    assert is_image("image/webp") and is_image("image/gif")
    assert not is_image("video/mp4") and not is_image("application/ply")
