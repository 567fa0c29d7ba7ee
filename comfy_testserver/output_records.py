"""What today's ComfyUI adds to output entries and uploads: media `metadata` and asset records.

`current` profile only (PROFILES.md "Output entries" and "/upload/image"):
- `with_media_metadata(ui, folders)`: execution.py runs `enrich_output_with_media_metadata` on every
  UI output: each `{filename, subfolder, type}` entry whose file exists in its folder gains
  `metadata`: `{"kind": "image", "width", "height"}` for images (read from the file header, as
  app/assets/services/image_dimensions.py does), `{"kind": "video", "width", "height", "duration",
  "fps", "frame_count"}` for videos whose saver reported them (`VideoFacts`). The cache keeps this.
- `Assets`: the assets system (on unless ComfyUI runs with --disable-assets). Every output file
  emitted in `executed` and history gets the asset `id` of its file (and, for images, the image
  itself as `preview_id`: comfy_execution/asset_enrichment.py), and `/upload/image` answers an
  `asset` record (server.py image_upload). Ids are stable per file, as the asset database keeps
  one reference per path.
"""

from __future__ import annotations

import copy
import mimetypes
import os
import uuid
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from .folders import Folders

__all__ = ["Assets", "VideoFacts", "with_media_metadata"]


class VideoFacts:
    """What a video saver knows of the file it wrote (the real server probes the header with PyAV;
    the fake containers have no real streams to probe)."""

    def __init__(self) -> None:
        self._facts: dict[Path, dict[str, Any]] = {}

    def record(self, path: Path, width: int, height: int, fps: float, frame_count: int) -> None:
        duration = frame_count / fps if fps > 0 else 0.0
        self._facts[path.resolve()] = {
            "kind": "video",
            "width": width,
            "height": height,
            "duration": round(duration, 6),
            "fps": fps,
            "frame_count": frame_count,
        }

    def get(self, path: Path) -> dict[str, Any] | None:
        facts = self._facts.get(path.resolve())
        return dict(facts) if facts is not None else None


def with_media_metadata(ui: dict[str, Any], folders: Folders, videos: VideoFacts) -> dict[str, Any]:
    """A copy of `ui` whose file entries carry `metadata` where the file's media kind is known."""
    enriched: dict[str, Any] = {}
    for key, entries in ui.items():
        if not isinstance(entries, list):
            enriched[key] = entries
            continue
        enriched[key] = [_with_metadata(entry, folders, videos) for entry in entries]
    return enriched


def _with_metadata(entry: Any, folders: Folders, videos: VideoFacts) -> Any:
    if not isinstance(entry, dict) or "metadata" in entry:
        return entry
    path = _entry_path(entry, folders)
    if path is None:
        return entry
    mime_type = mimetypes.guess_type(entry["filename"], strict=False)[0] or ""
    metadata: dict[str, Any] | None = None
    if mime_type.startswith("image/"):
        metadata = _image_metadata(path)
    elif mime_type.startswith("video/"):
        metadata = videos.get(path)
    return {**entry, "metadata": metadata} if metadata is not None else entry


def _image_metadata(path: Path) -> dict[str, Any] | None:
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return {"kind": "image", "width": width, "height": height} if width > 0 and height > 0 else None


def _entry_path(entry: dict[str, Any], folders: Folders) -> Path | None:
    """The entry's file inside its base folder, or None (unknown type, escapes its folder, missing)."""
    filename, folder_type = entry.get("filename"), entry.get("type")
    if not isinstance(filename, str) or not isinstance(folder_type, str):
        return None
    base = folders.by_type(folder_type)
    if base is None:
        return None
    base_abs = os.path.abspath(base)
    path = os.path.abspath(os.path.join(base_abs, str(entry.get("subfolder") or ""), filename))
    if os.path.commonpath([base_abs, path]) != base_abs or not os.path.isfile(path):
        return None
    return Path(path)


class Assets:
    """The asset references of files the server has seen: one id per file path."""

    def __init__(self, folders: Folders) -> None:
        self._folders = folders
        self._ids: dict[str, str] = {}

    def id_for(self, path: Path) -> str:
        return self._ids.setdefault(os.path.abspath(path), str(uuid.uuid4()))

    def tag_outputs(self, ui: dict[str, Any]) -> dict[str, Any]:
        """A copy of `ui` whose on-disk file entries carry their asset `id` (and images a `preview_id`)."""
        tagged = copy.deepcopy(ui)
        for entries in tagged.values():
            if not isinstance(entries, list):
                continue
            for entry in entries:
                if not isinstance(entry, dict) or "filename" not in entry or "type" not in entry:
                    continue
                path = _entry_path(entry, self._folders)
                if path is None:
                    continue
                entry["id"] = self.id_for(path)
                mime_type = mimetypes.guess_type(path.name, strict=False)[0] or ""
                if mime_type.startswith("image/"):
                    entry["preview_id"] = entry["id"]
        return tagged

    def upload_record(self, path: Path, name: str, upload_type: str, subfolder: str) -> dict[str, Any]:
        """The `asset` object of an /upload/image answer (asset hashing off: `asset_hash` null)."""
        return {
            "id": self.id_for(path),
            "name": name,
            "asset_hash": None,
            "size": path.stat().st_size,
            "mime_type": mimetypes.guess_type(name, strict=False)[0],
            "tags": [upload_type if upload_type in ("input", "output") else "input"],
        }
