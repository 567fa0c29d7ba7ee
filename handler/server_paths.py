"""Keep the machine's own paths out of error results: ComfyUI's texts name files anywhere on disk.

ComfyUI's execution errors carry tracebacks and messages such as
``File "/opt/venv/lib/python3.11/site-packages/PIL/Image.py"``; a failing loader may name any file
it tried. An error result keeps paths inside ComfyUI's folder (COMFYUI_PATH: its code, input/,
output/, models/) and replaces every other absolute path: a Python package's file keeps its path
below site-packages (``<python>/PIL/Image.py``), anything else only its file name
(``<server path>/x.png``). Pure; issue 14.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

__all__ = ["PYTHON_PLACEHOLDER", "SERVER_PLACEHOLDER", "hide_paths_in_texts", "hide_server_paths"]

PYTHON_PLACEHOLDER = "<python>"
SERVER_PLACEHOLDER = "<server path>"

# An absolute POSIX path of two or more segments, not part of a URL ("http://h/a/b") or of a
# longer word ("and/or", "input/x.png").
_PATH = re.compile(r"(?<![\w.~:/\\-])/(?:[^\s/'\"<>|,;()\[\]{}]+/)+[^\s/'\"<>|,;()\[\]{}]*")
# ComfyUI's HTTP routes appear in our own messages ("POST /upload/image"): not paths on disk.
_ROUTES = frozenset(
    {"api", "geompack", "history", "internal", "object_info", "prompt", "queue", "upload", "view", "ws"}
)
_PACKAGES = ("site-packages", "dist-packages")


def hide_server_paths(result: Mapping[str, Any], *, keep: Iterable[str]) -> dict[str, Any]:
    """An error result with every absolute path outside the ``keep`` folders replaced, in all of
    its string values (recursively). Results without ``error`` are returned unchanged."""
    if "error" not in result:
        return dict(result)
    roots = _roots(keep)
    return {key: _hide(value, roots) for key, value in result.items()}


def hide_paths_in_texts(texts: Iterable[str], *, keep: Iterable[str]) -> list[str]:
    """ComfyUI's texts in a successful result (a skipped branch's validation errors) with the same
    paths replaced as in an error result."""
    return [_hide(text, _roots(keep)) for text in texts]


def _roots(keep: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({root.rstrip("/") for root in keep if root.strip("/")}, key=len, reverse=True))


def _hide(value: Any, roots: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return _PATH.sub(lambda match: _replacement(match.group(0), roots), value) if "/" in value else value
    if isinstance(value, dict):
        return {key: _hide(item, roots) for key, item in value.items()}
    if isinstance(value, list):
        return [_hide(item, roots) for item in value]
    return value


def _replacement(path: str, roots: tuple[str, ...]) -> str:
    parts = PurePosixPath(path).parts  # ("/", "opt", "venv", ...)
    if len(parts) > 1 and parts[1] in _ROUTES:
        return path
    if any(path == root or path.startswith(root + "/") for root in roots):
        return path
    for marker in _PACKAGES:
        if marker in parts:
            below = parts[parts.index(marker) + 1 :]
            if below:
                return "/".join((PYTHON_PLACEHOLDER, *below))
    return f"{SERVER_PLACEHOLDER}/{parts[-1]}" if len(parts) > 1 else path
