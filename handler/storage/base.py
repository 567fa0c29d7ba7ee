"""The delivery interface: turn one fetched output file into a result entry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Delivery", "OutputFile"]


@dataclass(frozen=True)
class OutputFile:
    """An output fetched to local disk, ready to deliver."""

    node_id: str | None
    filename: str
    subfolder: str
    path: Path
    mime_type: str
    size_bytes: int
    metadata: Mapping[str, Any] | None = None  # ComfyUI's media metadata (newer versions)
    # A file read in place on ComfyUI's disk: when ComfyUI last wrote it, so delivery can tell a
    # later prompt's rewrite (a fixed file name) from this job's file.
    written_ns: int | None = None

    def entry(self, kind: str, data: str) -> dict[str, Any]:
        """The result entry every delivery returns: worker-comfyui's shape plus metadata; ComfyUI's
        ``metadata`` (width, height, duration, ...) only where ComfyUI gave one."""
        entry = {
            "filename": self.filename,
            "type": kind,
            "data": data,
            "mime_type": self.mime_type,
            "size_bytes": self.size_bytes,
            "node_id": self.node_id,
            "subfolder": self.subfolder,
        }
        if self.metadata:
            entry["metadata"] = dict(self.metadata)
        return entry


class Delivery(Protocol):
    """Where outputs go. Implementations live in their own modules (inline, s3)."""

    async def deliver(self, item: OutputFile) -> dict[str, Any]:
        """Return the result entry for ``item``; raise a WorkerError if it cannot be delivered."""
        ...
