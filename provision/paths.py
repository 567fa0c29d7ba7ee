"""Where models go: a network volume when there is one, else the image.

    MODELS_ROOT set             -> exactly there
    /runpod-volume/models (or the volume) is writable -> /runpod-volume/models (serverless network volume)
    /workspace/models (or the volume) is writable     -> /workspace/models     (pod volume)
    otherwise                   -> $COMFYUI_PATH/models    (the image; also where BAKE_MODELS goes)

extra_model_paths.yaml points ComfyUI at all three, so a file is found wherever it landed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["VOLUME_ROOTS", "candidate_roots", "models_root"]

VOLUME_ROOTS = (Path("/runpod-volume"), Path("/workspace"))


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def models_root(
    comfyui_path: Path, *, override: Path | None = None, volumes: Sequence[Path] = VOLUME_ROOTS
) -> Path:
    """The folder that receives downloads (see the module docstring for the order)."""
    if override is not None:
        return override
    for volume in volumes:
        # start.sh hands a root-owned volume's models/ (not the volume) to the worker user.
        if _writable_dir(volume / "models") or _writable_dir(volume):
            return volume / "models"
    return comfyui_path / "models"


def candidate_roots(comfyui_path: Path, *, volumes: Sequence[Path] = VOLUME_ROOTS) -> list[Path]:
    """Every models folder ComfyUI reads, where an already verified copy also counts."""
    roots = [volume / "models" for volume in volumes if volume.is_dir()]
    roots.append(comfyui_path / "models")
    return roots
