"""Models the boot could not provide, and the check that fails a job needing one (MODEL_MISSING).

`python -m provision download --keep-going` (scripts/download_models.sh) lets the worker boot
without a model whose download failed (checksum mismatch, 404, no space) and lists it in the
models status file (provision/status.py). A workflow needs a missing model when one of its
inputs names the file (``"ckpt_name": "x.safetensors"``, also inside a subfolder) or when it uses a
node the manifest says loads that file by itself (``loaded_by``, e.g. LoadSharpModel, which
would otherwise download 2.8 GB unverified in the middle of the job).

`read_missing` is the I/O edge (a small file, read per job so a pod's background download is
seen); `check_workflow` is pure.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ModelMissing

__all__ = ["check_workflow", "read_missing"]

logger = logging.getLogger(__name__)


def read_missing(path: Path | None) -> list[dict[str, Any]]:
    """The missing models the status file lists; none when there is no file."""
    if path is None:
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        logger.warning("cannot read the models status file %s (%s); assuming no model is missing", path, exc)
        return []
    missing = data.get("missing") if isinstance(data, dict) else None
    if not isinstance(missing, list):
        return []
    return [m for m in missing if isinstance(m, dict) and isinstance(m.get("filename"), str)]


def check_workflow(workflow: Mapping[str, Mapping[str, Any]], missing: list[dict[str, Any]]) -> None:
    """Raise ModelMissing naming every missing model the workflow needs."""
    if not missing:
        return
    classes = {str(node.get("class_type", "")) for node in workflow.values() if isinstance(node, Mapping)}
    names: set[str] = set()
    for node in workflow.values():
        inputs = node.get("inputs") if isinstance(node, Mapping) else None
        if isinstance(inputs, Mapping):
            names.update(v.replace("\\", "/") for v in inputs.values() if isinstance(v, str))
    needed = [m for m in missing if _needed(m, classes, names)]
    if needed:
        raise ModelMissing(needed)


def _needed(model: Mapping[str, Any], classes: set[str], names: set[str]) -> bool:
    filename = str(model["filename"])
    loaded_by = model.get("loaded_by") or []
    if any(str(cls) in classes for cls in loaded_by):
        return True
    return any(name == filename or name.endswith("/" + filename) for name in names)
