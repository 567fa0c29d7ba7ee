"""Helpers for the provision tests: a manifest written from plain dicts, random payloads, and git
run against local repositories."""

from __future__ import annotations

import hashlib
import os
import subprocess
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


GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.org",
}


def git(*args: str, cwd: Path) -> str:
    """Run git in `cwd` with a fixed identity; its stdout."""
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def commit_files(
    repo: Path, files: Mapping[str, str | bytes], *, message: str = "commit", tag: str = ""
) -> str:
    """Write `files` into `repo` (made a git repository first if it is not one), commit them,
    optionally tag the commit; its hash."""
    if not (repo / ".git").exists():
        repo.mkdir(parents=True, exist_ok=True)
        git("init", "--quiet", cwd=repo)
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    git("add", ".", cwd=repo)
    git("commit", "--quiet", "-m", message, cwd=repo)
    if tag:
        git("tag", tag, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo).strip()
