"""Wire formats of ComfyUI's WebSocket: binary frame layouts and a few fixed payloads.

Binary frames start with a big-endian u32 event type (README "Binary frames"):
1 PREVIEW_IMAGE (u32 image_type + bytes), 3 TEXT (u32 len(node_id) + node_id + text),
4 PREVIEW_IMAGE_WITH_METADATA (u32 len(json) + json + bytes).
"""

from __future__ import annotations

import json
import struct
import time
from typing import Any

__all__ = [
    "EVENT_PREVIEW_IMAGE",
    "EVENT_PREVIEW_IMAGE_WITH_METADATA",
    "EVENT_TEXT",
    "IMAGE_TYPE_JPEG",
    "IMAGE_TYPE_PNG",
    "now_ms",
    "preview_frame",
    "preview_frame_with_metadata",
    "text_frame",
]

EVENT_PREVIEW_IMAGE = 1
EVENT_TEXT = 3
EVENT_PREVIEW_IMAGE_WITH_METADATA = 4
IMAGE_TYPE_JPEG = 1
IMAGE_TYPE_PNG = 2


def now_ms() -> int:
    """ComfyUI's message timestamps: integer milliseconds since the epoch."""
    return int(time.time() * 1000)


def preview_frame(image_type: int, image: bytes) -> bytes:
    return struct.pack(">II", EVENT_PREVIEW_IMAGE, image_type) + image


def preview_frame_with_metadata(metadata: dict[str, Any], image: bytes) -> bytes:
    # json.dumps with default separators: the recorded metadata length (165) depends on it.
    encoded = json.dumps(metadata).encode("utf-8")
    return struct.pack(">II", EVENT_PREVIEW_IMAGE_WITH_METADATA, len(encoded)) + encoded + image


def text_frame(node_id: str, text: str) -> bytes:
    node = node_id.encode("utf-8")
    return struct.pack(">II", EVENT_TEXT, len(node)) + node + text.encode("utf-8")
