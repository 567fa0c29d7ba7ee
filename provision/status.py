"""The models status file: what this boot's download left missing, for the handler to read.

    {"version": 1, "written_at": 1767225600.0, "root": "/runpod-volume/models",
     "strict": false,
     "missing": [{"name": "SHARP weights", "group": "GAUSSIAN", "folder": "sharp",
                  "filename": "sharp_2572gikvuh.pt", "loaded_by": ["LoadSharpModel"],
                  "error": "ChecksumMismatch", "reason": "sha256 is ..., manifest.toml expects ..."}]}

`python -m provision download` rewrites it at the end of every run (and removes it first, so a
cut run leaves none); scripts/download_models.sh removes it when no group is enabled. A file
that is missing here lets the boot go on without it (unless DOWNLOAD_STRICT=true); the handler
then fails a job that needs it with MODEL_MISSING instead of letting a node download it or
crash. Default path: $COMFYUI_PATH/.provision/models-status.json (MODELS_STATUS_FILE).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .download import Outcome

__all__ = ["STATUS_VERSION", "default_status_path", "remove_status", "status_payload", "write_status"]

STATUS_VERSION = 1


def default_status_path(comfyui_path: Path) -> Path:
    return comfyui_path / ".provision" / "models-status.json"


def status_payload(outcomes: Sequence[Outcome], *, root: Path, strict: bool) -> dict[str, Any]:
    """The status document for a finished run (pure)."""
    missing = [
        {
            "name": o.model.name,
            "group": o.model.group,
            "folder": o.model.folder,
            "filename": o.model.filename,
            "loaded_by": list(o.model.loaded_by),
            "error": type(o.error).__name__ if o.error is not None else "DownloadError",
            "reason": getattr(o.error, "reason", str(o.error)),
        }
        for o in outcomes
        if not o.ok
    ]
    return {
        "version": STATUS_VERSION,
        "written_at": time.time(),
        "root": str(root),
        "strict": strict,
        "missing": missing,
    }


def write_status(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically: the handler never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def remove_status(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
