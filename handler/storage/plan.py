"""Which outputs go inline (base64) and which to S3, so the result always fits. Pure.

RunPod rejects a result somewhere past 10-20 MB and the work is lost, so the size of the
serialized result is known before anything is encoded: base64 of n bytes is exactly
``4 * ceil(n / 3)`` characters, none of which JSON escapes.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import OutputTooLarge

__all__ = ["URL_ALLOWANCE_BYTES", "b64_length", "plan_delivery", "serialized_size"]

URL_ALLOWANCE_BYTES = 2048  # a presigned URL is ~500-1500 characters


def b64_length(size_bytes: int) -> int:
    return 4 * ((size_bytes + 2) // 3)


def plan_delivery(
    sizes: list[int], *, mode: str, has_destination: bool, skeleton_bytes: int, limit_bytes: int
) -> set[int]:
    """Indices of the outputs to upload; the rest go inline. Raise OutputTooLarge if nothing fits.

    ``skeleton_bytes`` is the serialized result with every ``data`` empty.
    """
    if mode == "s3":
        return set(range(len(sizes)))
    total = skeleton_bytes + sum(b64_length(size) for size in sizes)
    remote: set[int] = set()
    if mode == "auto" and has_destination:
        for index in sorted(range(len(sizes)), key=lambda i: sizes[i], reverse=True):
            if total <= limit_bytes or b64_length(sizes[index]) <= URL_ALLOWANCE_BYTES:
                break  # fits now, or the rest are smaller than the URLs that would replace them
            remote.add(index)
            total += URL_ALLOWANCE_BYTES - b64_length(sizes[index])
    if total > limit_bytes:
        raise OutputTooLarge(
            size_bytes=total, limit_bytes=limit_bytes, mode=mode, has_destination=has_destination
        )
    return remote


def serialized_size(result: dict[str, Any]) -> int:
    """Bytes of ``json.dumps(result)`` as the RunPod SDK sends it, without copying the data."""
    data_bytes = 0
    skeleton: dict[str, Any] = dict(result)
    for key in ("images", "files"):
        entries = []
        for entry in result.get(key, []):
            data = entry.get("data", "")
            data_bytes += len(data.encode("utf-8")) if not data.isascii() else len(data)
            entries.append({**entry, "data": ""})
        skeleton[key] = entries
    return len(json.dumps(skeleton, ensure_ascii=False).encode("utf-8")) + data_bytes
