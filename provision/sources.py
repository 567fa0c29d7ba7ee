"""The source trees an image is built from: ComfyUI and the custom nodes, cloned or taken from a folder.

`gather_sources` puts each entry at ``dest/<path>`` (ComfyUI at ``dest`` itself, a node at
``dest/custom_nodes/<name>``), either fetched with git at the manifest's pin, or, for air-gapped
builds and machines without GitHub, copied from ``SOURCES_DIR/<name>`` (one plain tree per
manifest entry, named as in the manifest). A copied tree's commit is read from
``<tree>/.source-commit`` (one line, written by scripts/export-sources.sh) or from its ``.git``;
it is printed beside the manifest's pin and recorded in ``dest/.provision/sources-<set>.json``,
so an image built from other sources says so.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import InstallError
from .install import Runner, checkout, subprocess_runner

__all__ = ["COMMIT_FILE", "Gathered", "SourceEntry", "gather_sources", "read_entries"]

COMMIT_FILE = ".source-commit"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class SourceEntry:
    name: str
    path: str  # under the destination: "" for ComfyUI, "custom_nodes/<name>" for a node
    repo: str
    ref: str  # tag, branch or 40-hex commit


@dataclass(frozen=True)
class Gathered:
    name: str
    path: str  # where under the image's ComfyUI folder
    origin: str  # "git" or "sources-dir"
    commit: str  # "unrecorded" when a copied tree carries no commit
    pinned: str  # the manifest's ref
    matches_pin: bool | None  # None when the pin is a tag/branch that cannot be checked offline


def read_entries(entries_file: Path) -> list[SourceEntry]:
    """The entries of one `provision layers` file: sources/comfyui.json, nodes.json or compute.json."""
    data = json.loads(entries_file.read_text(encoding="utf-8"))
    return [SourceEntry(e["name"], e["path"], e["repo"], e["ref"]) for e in data]


def gather_sources(
    entries: list[SourceEntry],
    dest: Path,
    *,
    record: str,
    sources_dir: Path | None = None,
    run: Runner = subprocess_runner,
) -> list[Gathered]:
    """Put each entry's tree at ``dest/<path>``; record and return what was used."""
    gathered = []
    for entry in entries:
        target = dest / entry.path
        if sources_dir is not None:
            found = _copy_tree(entry, sources_dir, target)
        else:
            commit = checkout(target, entry.repo, entry.ref, what=entry.name, run=run)
            found = _gathered(entry, "git", commit)
        _say(found)
        gathered.append(found)
    state = dest / ".provision"
    state.mkdir(parents=True, exist_ok=True)
    (state / f"sources-{record}.json").write_text(
        json.dumps([asdict(g) for g in gathered], indent=2) + "\n", "utf-8"
    )
    return gathered


def _copy_tree(entry: SourceEntry, sources_dir: Path, target: Path) -> Gathered:
    tree = sources_dir / entry.name
    if not tree.is_dir():
        raise InstallError(
            f"SOURCES_DIR has no {entry.name}/ (expected {tree}, a plain source tree of {entry.repo} "
            f"at {entry.ref}); export one with scripts/export-sources.sh or leave SOURCES_DIR unset to clone",
            command=["copy", str(tree)],
            returncode=1,
        )
    shutil.copytree(tree, target, symlinks=True, dirs_exist_ok=True)
    return _gathered(entry, "sources-dir", _recorded_commit(target))


def _recorded_commit(tree: Path) -> str:
    marker = tree / COMMIT_FILE
    if marker.is_file():
        text = marker.read_text(encoding="utf-8").strip().lower()
        if _COMMIT.match(text):
            return text
    head = tree / ".git" / "HEAD"
    if head.is_file():
        text = head.read_text(encoding="utf-8").strip()
        if _COMMIT.match(text):
            return text
    return "unrecorded"


def _gathered(entry: SourceEntry, origin: str, commit: str) -> Gathered:
    pin = entry.ref.lower()
    matches = (commit == pin) if _COMMIT.match(pin) else None
    return Gathered(entry.name, entry.path or ".", origin, commit, entry.ref, matches)


def _say(found: Gathered) -> None:
    where = "cloned" if found.origin == "git" else "from SOURCES_DIR"
    line = f"{found.name}: {where}, commit {found.commit} (manifest pins {found.pinned})"
    print(line, file=sys.stderr, flush=True)
    if found.matches_pin is False or found.commit == "unrecorded":
        print(
            f"WARNING: {found.name} is not the manifest's pin: this image is built from other sources "
            "(recorded in /comfyui/.provision/sources-*.json)",
            file=sys.stderr,
            flush=True,
        )
    elif found.matches_pin is None and found.origin != "git":
        print(
            f"NOTE: {found.name}: the pin {found.pinned} is a tag or branch; a copied tree cannot be "
            "checked against it offline, so make sure the tree is that version",
            file=sys.stderr,
            flush=True,
        )
