"""ComfyUI's input/output/temp folders on local disk (COMFYUI_PATH): snapshots and cleanup, and
the API nodes' request logs in temp/api_logs.

Only used when the worker shares a disk with ComfyUI (the container, a dev pod). Against a remote
COMFY_HOST the folders are absent and every method does nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from stat import S_ISDIR, S_ISREG

from ..values import FolderSnapshot

__all__ = ["ComfyFolders"]

logger = logging.getLogger(__name__)

_FOLDER_TYPES = ("input", "output", "temp")


class ComfyFolders:
    def __init__(self, comfyui_path: Path) -> None:
        self.root = comfyui_path

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def available(self) -> bool:
        """Whether ComfyUI's folders are on this disk."""
        return self.output_dir.is_dir()

    def written_between(self, window: tuple[int, int], prefixes: Sequence[str]) -> FolderSnapshot:
        """Files under output/ last written inside ``window`` (ns since the epoch).

        With ``prefixes`` (relative paths a silent node's inputs name, e.g. SharpPredict's
        ``output_prefix``), only the entries of each prefix's folder whose name starts with it are
        looked at, a matching folder whole: one listing of names and a stat per candidate, so the
        cost does not grow with the other files in output/ (a pod's can hold 100k). Without
        prefixes, the whole folder is walked.
        """
        if not self.available:
            return {}
        low, high = window
        roots: list[Path] = []
        for prefix in prefixes or [""]:
            folder, _, start = prefix.rpartition("/")
            directory = self.output_dir / folder if folder else self.output_dir
            if not start:
                roots.append(directory)
                continue
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue  # no such folder: the node wrote nothing there
            roots.extend(Path(entry.path) for entry in entries if entry.name.startswith(start))
        found: dict[str, tuple[int, int]] = {}
        for root in roots:
            for path, stat in _walk_files(root):
                if low <= stat.st_mtime_ns <= high:
                    found[path.relative_to(self.output_dir).as_posix()] = (stat.st_size, stat.st_mtime_ns)
        return found

    @property
    def api_logs_dir(self) -> Path:
        """Where ComfyUI's API nodes log each request, X-API-KEY header included
        (comfy_api_nodes/apis/request_logger.py: temp/api_logs/<time>_<operation>_<hash>.log)."""
        return self.root / "temp" / "api_logs"

    def snapshot_api_logs(self) -> dict[str, int]:
        """Every file in temp/api_logs, name -> mtime_ns (empty when there is no such folder)."""
        try:
            entries = list(os.scandir(self.api_logs_dir))
        except OSError:
            return {}
        snapshot: dict[str, int] = {}
        for entry in entries:
            try:
                if entry.is_file(follow_symlinks=False):
                    snapshot[entry.name] = entry.stat(follow_symlinks=False).st_mtime_ns
            except FileNotFoundError:
                continue
        return snapshot

    def remove_api_logs_since(self, before: dict[str, int]) -> int:
        """Delete the API-node logs written or rewritten since ``before``; how many were removed."""
        removed = 0
        for name, mtime_ns in self.snapshot_api_logs().items():
            if before.get(name) == mtime_ns:
                continue
            try:
                (self.api_logs_dir / name).unlink()
                removed += 1
            except FileNotFoundError:
                continue
            except OSError as exc:
                logger.warning(
                    "could not remove temp/api_logs/%s (it holds an API key): %s", name, exc.strerror
                )
        return removed

    def path_of(self, folder_type: str, relpath: str) -> Path | None:
        """The local path of a file ComfyUI serves, or None if it would leave its folder."""
        if folder_type not in _FOLDER_TYPES:
            return None
        base = (self.root / folder_type).resolve()
        candidate = (base / relpath).resolve()
        if base != candidate and base not in candidate.parents:
            return None
        return candidate

    def written_file(self, folder_type: str, relpath: str, window: tuple[int, int]) -> Path | None:
        """The file on this disk that GET /view would serve, if ComfyUI wrote it inside
        ``window`` (ns since the epoch): this prompt's own file, read in place instead of copied
        over HTTP. None otherwise (not here, a symlink, or older: a cached node's earlier file, or
        a COMFYUI_PATH that is not this ComfyUI's folder); the caller then downloads it."""
        path = self.path_of(folder_type, relpath)
        mtime_ns = _file_mtime_ns(path)
        low, high = window
        return path if mtime_ns is not None and low <= mtime_ns <= high else None

    def rewritten_after(self, folder_type: str, relpath: str, end_ns: int) -> bool:
        """Whether the file was last written after ``end_ns`` (a prompt's end): a later prompt wrote
        it again, as when a node saves under a fixed file name (no counter) and pipelined prompts
        follow each other at once. The file is that prompt's now, not the earlier one's."""
        mtime_ns = _file_mtime_ns(self.path_of(folder_type, relpath))
        return mtime_ns is not None and mtime_ns > end_ns

    def remove(self, folder_type: str, relpath: str, *, written_by_ns: int | None = None) -> bool:
        """Delete one file ComfyUI wrote or we uploaded; True if it was removed. With
        ``written_by_ns`` (the end of the prompt that wrote it), a file written again after that
        belongs to a later prompt and stays."""
        path = self.path_of(folder_type, relpath)
        if path is None or not self.available:
            return False
        # (A rewrite landing between this look and the unlink, microseconds, is not told apart.)
        if written_by_ns is not None and self.rewritten_after(folder_type, relpath, written_by_ns):
            logger.info("left %s/%s in place: a later prompt wrote it again", folder_type, relpath)
            return False
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            logger.warning("could not remove %s/%s: %s", folder_type, relpath, exc.strerror)
            return False
        self._remove_empty_parents(path, (self.root / folder_type).resolve())
        return True

    @staticmethod
    def _remove_empty_parents(path: Path, base: Path) -> None:
        parent = path.parent
        while parent != base and base in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                return  # not empty, or not ours to remove
            parent = parent.parent


def _walk_files(root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Every regular file at or under ``root`` (no symlinks followed), with its stat."""
    try:
        stat = root.lstat()
    except OSError:
        return
    if not S_ISDIR(stat.st_mode):
        if S_ISREG(stat.st_mode):
            yield root, stat
        return
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue  # removed while we walked: it holds nothing new
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                try:
                    yield Path(entry.path), entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # another job on this ComfyUI cleaned it up while we walked


def _file_mtime_ns(path: Path | None) -> int | None:
    """When a regular file (not a symlink) was last written; None if there is none at ``path``."""
    if path is None:
        return None
    try:
        stat = path.lstat()
    except OSError:
        return None
    return stat.st_mtime_ns if S_ISREG(stat.st_mode) else None
