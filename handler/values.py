"""Value types that several layers share, so each layer imports them downward from here. Pure.

The job layer (`job.py`) makes `InputImage` and `RemoteInput`; the ComfyUI client uploads them and
`inputs/` downloads them. The ComfyUI session makes `RunProgress`; `progress.py` forwards it.
`comfy/folders.py` takes a `FolderSnapshot`; `outputs.py` compares two of them. This module
imports nothing of ours but `inputs.netguard` (pure) for how a URL is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .inputs.netguard import display_url

__all__ = ["FolderSnapshot", "InputImage", "RemoteInput", "RunProgress"]

FolderSnapshot = Mapping[str, tuple[int, int]]  # relative posix path -> (size, mtime_ns)


@dataclass(frozen=True)
class InputImage:
    """One decoded input file, uploaded to ComfyUI's input folder under ``name``."""

    name: str
    data: bytes = field(repr=False)
    mime_type: str


@dataclass(frozen=True)
class RemoteInput:
    """One input the worker downloads (http, https or s3) and uploads under ``name``.

    ``where`` names the entry in messages (``input.images[2]``); ``kind`` is "image" for
    ``images`` entries (the bytes must be an image) and "file" for ``files`` (any media).
    """

    name: str
    url: str = field(repr=False)  # may carry a presigned query string: shown via display_url only
    where: str
    kind: str = "image"
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def shown_url(self) -> str:
        return display_url(urlsplit(self.url))


@dataclass(frozen=True)
class RunProgress:
    """What the prompt is doing now; the worker forwards it to RunPod."""

    stage: str
    node: str | None = None
    node_class: str | None = None
    step: int | None = None
    max_steps: int | None = None
    nodes_done: int = 0
    nodes_total: int = 0
    # The run's estimate (progress_estimate.py); progress.py keeps it from going backwards.
    percent: float | None = None
    # What the running node spends its time on: "loading model <file>", or ComfyUI's own activity.
    activity: str | None = None
    elapsed_s: float | None = None  # since ComfyUI started executing the prompt
    node_elapsed_s: float | None = None  # since the running node started
