"""Inline delivery: the file's bytes as base64 inside the result (worker-comfyui's default)."""

from __future__ import annotations

import base64
from typing import Any

from .base import OutputFile

__all__ = ["InlineDelivery"]

# A multiple of 3, so chunks encode without padding in the middle of the output.
_CHUNK_BYTES = 3 * 1024 * 1024


class InlineDelivery:
    async def deliver(self, item: OutputFile) -> dict[str, Any]:
        return item.entry("base64", encode_file(item))


def encode_file(item: OutputFile) -> str:
    """Base64 of the file, read in chunks so only the encoded text is held whole."""
    encoded = bytearray()
    with item.path.open("rb") as source:
        while chunk := source.read(_CHUNK_BYTES):
            encoded += base64.b64encode(chunk)
    return encoded.decode("ascii")
