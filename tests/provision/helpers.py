"""Helpers for the download tests: a manifest written from plain dicts, and random payloads."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

BASE = """schema = 1

[comfyui]
repo = "https://github.com/comfyanonymous/ComfyUI.git"
version = "v0.8.2"

[torch]
index_url = "https://download.pytorch.org/whl/cu128"
packages = ["torch==2.9.1"]
"""


def payload(size: int) -> bytes:
    return os.urandom(size)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_manifest(path: Path, models: Iterable[Mapping[str, Any]]) -> Path:
    """A manifest with the given [[models]] entries (name and group defaulted)."""
    lines = [BASE]
    for index, model in enumerate(models):
        entry = {"name": f"model {index}", "group": "TEST", **model}
        lines.append("\n[[models]]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in entry.items())
    path.write_text("\n".join(lines) + "\n")
    return path
