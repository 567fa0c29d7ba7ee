"""The job result: timings and the one function that assembles outputs into RunPod's result. Pure."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .media import is_image
from .outputs import PromptOutputs
from .storage.base import OutputFile

__all__ = ["WIDE_MS", "Timings", "assemble_result"]

# Stands in for a timing not measured yet when the result's size is planned: the widest it will be.
WIDE_MS = 99_999_999.9


@dataclass
class Timings:
    """Named durations of one job, in ms, plus ``total_ms`` since it started."""

    started: float = field(default_factory=time.monotonic)
    marks: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.marks[name] = round(seconds * 1000.0, 1)

    def since(self, name: str, started: float) -> None:
        """Record the time from ``started`` (time.monotonic()) until now."""
        self.add(name, time.monotonic() - started)

    def as_dict(self) -> dict[str, float]:
        return {**self.marks, "total_ms": round((time.monotonic() - self.started) * 1000.0, 1)}


def assemble_result(
    files: list[OutputFile],
    entries: list[dict[str, Any]],
    found: PromptOutputs,
    prompt_id: str,
    problems: list[str],
    notes: list[str],
) -> dict[str, Any]:
    """The result: entries split into images and other files by their real media type."""
    images = [entry for item, entry in zip(files, entries, strict=True) if is_image(item.mime_type)]
    others = [entry for item, entry in zip(files, entries, strict=True) if not is_image(item.mime_type)]
    result: dict[str, Any] = {
        "images": images,
        "files": others,
        "text": [{"node_id": t.node_id, "text": t.text} for t in found.texts],
        "prompt_id": prompt_id,
    }
    if problems:
        result["errors"] = problems
    if notes:
        result["notes"] = notes
    return result
