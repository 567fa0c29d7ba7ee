"""What dead worker processes left in ComfyUI's history and output folder.

A worker process killed between ComfyUI finishing its prompt and its own housekeeping (OOM-killed,
SIGKILL, a crash) leaves the prompt's history entry, with its whole workflow, and the files the
prompt wrote. The process that comes next on the same ComfyUI finds them, once per connection,
among ComfyUI's last `LOOKBACK` history entries: an entry is a leftover only when its client id
names a worker process that no longer exists on this machine (comfy/client_ids.py), never a
person's prompt or a live worker's. Its files (reported, and unreported ones written in its
execution window where its silent nodes write, and the inputs its job uploaded, which its
``extra_data`` names: comfy/client_ids.py) are removed unless COMFY_CLEANUP is off, then its entry
is deleted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from .comfy.client import ComfyClient
from .comfy.client_ids import is_leftover, uploads_of
from .comfy.folders import ComfyFolders
from .errors import ComfyUnavailable
from .outputs import execution_window, files_written
from .values import FolderSnapshot
from .workflow import output_prefixes

__all__ = ["LOOKBACK", "clear_dead_workers_history", "remove_left_behind", "written_finder"]

logger = logging.getLogger(__name__)

LOOKBACK = 64  # history entries read: a dead worker held at most its pipeline depth of prompts


def written_finder(
    folders: ComfyFolders, workflow: Mapping[str, Mapping[str, Any]]
) -> Callable[[tuple[int, int], frozenset[str]], FolderSnapshot]:
    """How `files_written` looks on disk for a prompt's unreported files: where the silent nodes'
    inputs say they write, and the whole output folder only if that finds nothing."""

    def find_written(window: tuple[int, int], silent: frozenset[str]) -> FolderSnapshot:
        return folders.written_between(window, output_prefixes(workflow, silent)) or (
            folders.written_between(window, [])
        )

    return find_written


async def clear_dead_workers_history(
    comfy: ComfyClient, folders: ComfyFolders, *, own_client_id: str, remove_files: bool
) -> int:
    """Remove dead worker processes' finished prompts (files, then history entries); how many."""
    try:
        entries = await comfy.recent_history(LOOKBACK)
    except ComfyUnavailable as exc:
        logger.info("could not look for prompts of dead worker processes: %s", exc.message)
        return 0
    cleared = 0
    for prompt_id, entry in entries.items():
        queued = _queued_as(entry)
        if queued is None or not is_leftover(queued.client_id, own_client_id=own_client_id):
            continue
        if remove_files:
            removed = await asyncio.to_thread(_remove_written, folders, entry, queued)
        else:
            removed = 0
        if await comfy.delete_history(prompt_id):
            cleared += 1
            logger.warning(
                "removed prompt %s of a dead worker process (client id %s) from ComfyUI's history, "
                "and %d file(s) it wrote or uploaded",
                prompt_id,
                queued.client_id,
                removed,
            )
    return cleared


def remove_left_behind(
    folders: ComfyFolders, inputs: tuple[str, ...], history: Mapping[str, Any] | None
) -> int:
    """What one prompt of a dead worker left on disk, once ComfyUI has let go of it: the inputs its
    job uploaded and, given its history entry, the files it wrote; how many files were removed."""
    queued = _queued_as(history) if history is not None else None
    if history is None or queued is None:
        return sum(folders.remove("input", name) for name in inputs)
    return _remove_written(folders, history, queued)


class _Queued:
    """What a history entry's ``prompt`` says: ``[number, id, workflow, extra_data, outputs]``."""

    def __init__(
        self, client_id: str, workflow: dict[str, Any], output_nodes: frozenset[str], inputs: tuple[str, ...]
    ) -> None:
        self.client_id = client_id
        self.workflow = workflow
        self.output_nodes = output_nodes
        self.inputs = inputs  # what its job uploaded to input/


def _queued_as(entry: Mapping[str, Any]) -> _Queued | None:
    prompt = entry.get("prompt")
    if not isinstance(prompt, list) or len(prompt) < 5:
        return None
    workflow, extra_data, outputs = prompt[2], prompt[3], prompt[4]
    client_id = extra_data.get("client_id") if isinstance(extra_data, dict) else None
    if not isinstance(client_id, str) or not isinstance(workflow, dict):
        return None
    output_nodes = frozenset(str(node) for node in outputs) if isinstance(outputs, list) else frozenset()
    return _Queued(client_id, workflow, output_nodes, uploads_of(extra_data))


def _remove_written(folders: ComfyFolders, entry: Mapping[str, Any], queued: _Queued) -> int:
    written = files_written(
        entry,
        output_nodes=queued.output_nodes,
        streamed_nodes=set(),
        find_written=written_finder(folders, queued.workflow),
    )
    window = execution_window(entry)
    end_ns = window[1] if window else None
    removed = sum(folders.remove(kind, relpath, written_by_ns=end_ns) for kind, relpath in written.paths)
    return removed + sum(folders.remove("input", name) for name in queued.inputs)
