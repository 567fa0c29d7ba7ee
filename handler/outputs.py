"""Find a prompt's outputs in its history entry and in the output folder's changes. Pure.

History ``outputs`` maps node id -> UI output. A file output is any list entry with a
``filename`` under ANY key (``images``, ``gifs``, ``audio``, ``3d``, ...), since custom nodes pick
their own keys; ``text`` lists are text outputs. Nodes that write files without reporting them
(ComfyUI-Sharp's SharpPredict) are found by diffing the output folder before and after the job.
Newer ComfyUI adds a ``metadata`` object to file entries (``kind``, ``width``, ``height``, and
``duration``, ``fps``, ``frame_count`` for videos); its plain values ride along on the `FileRef`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .values import FolderSnapshot

__all__ = [
    "FileRef",
    "FolderSnapshot",
    "PromptOutputs",
    "TextOutput",
    "WrittenFiles",
    "collect_outputs",
    "execution_window",
    "files_written",
    "new_files",
]

_FILE_TYPES = ("output", "temp")


@dataclass(frozen=True)
class FileRef:
    """A file ComfyUI can serve from /view."""

    node_id: str
    filename: str
    subfolder: str = ""
    folder_type: str = "output"  # ComfyUI's "type": output | temp
    # ComfyUI's media metadata for the file (newer versions), plain JSON values only; else None.
    metadata: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def relpath(self) -> str:
        return f"{self.subfolder}/{self.filename}" if self.subfolder else self.filename


@dataclass(frozen=True)
class TextOutput:
    node_id: str
    text: str


@dataclass
class PromptOutputs:
    files: list[FileRef] = field(default_factory=list)
    texts: list[TextOutput] = field(default_factory=list)
    skipped_temp: int = 0  # PreviewImage files left out because include_temp was false


def collect_outputs(outputs: Any, *, include_temp: bool) -> PromptOutputs:
    """Walk a history entry's ``outputs`` into files and texts, in node order, without duplicates."""
    result = PromptOutputs()
    if not isinstance(outputs, Mapping):
        return result
    seen: set[tuple[str, str, str]] = set()
    for node_id, ui in outputs.items():
        if not isinstance(ui, Mapping):
            continue
        for key, values in ui.items():
            if not isinstance(values, list):
                continue
            if key == "text":
                result.texts.extend(TextOutput(str(node_id), str(v)) for v in values if isinstance(v, str))
                continue
            for ref in _file_refs(str(node_id), values):
                identity = (ref.folder_type, ref.subfolder, ref.filename)
                if identity in seen:
                    continue
                seen.add(identity)
                if ref.folder_type == "temp" and not include_temp:
                    result.skipped_temp += 1
                    continue
                result.files.append(ref)
    return result


def companion_files(outputs: Any) -> list[tuple[str, str]]:
    """Files an output entry names beside its own: VideoHelperSuite's ``workflow`` (the first
    frame it saves as ``<prefix>_NNNNN.png``, same folder). Not outputs, but written by the job:
    (folder type, relative path) for cleanup."""
    found: list[tuple[str, str]] = []
    for ui in outputs.values() if isinstance(outputs, Mapping) else []:
        for values in ui.values() if isinstance(ui, Mapping) else []:
            for value in values if isinstance(values, list) else []:
                if not isinstance(value, Mapping):
                    continue
                name, folder_type = value.get("workflow"), str(value.get("type") or "output")
                if not isinstance(name, str) or not name or "/" in name or folder_type not in _FILE_TYPES:
                    continue
                subfolder = value.get("subfolder") if isinstance(value.get("subfolder"), str) else ""
                found.append((folder_type, f"{subfolder}/{name}" if subfolder else name))
    return found


def _file_refs(node_id: str, values: Iterable[Any]) -> Iterable[FileRef]:
    for value in values:
        if not isinstance(value, Mapping):
            continue
        filename = value.get("filename")
        if not isinstance(filename, str) or not filename:
            continue
        folder_type = str(value.get("type") or "output")
        if folder_type not in _FILE_TYPES:
            continue  # "input" entries are the user's own inputs echoed back
        subfolder = value.get("subfolder")
        yield FileRef(
            node_id,
            filename,
            subfolder if isinstance(subfolder, str) else "",
            folder_type,
            _media_metadata(value.get("metadata")),
        )


def _media_metadata(value: Any) -> dict[str, Any] | None:
    """The plain (string, number, boolean) fields of an entry's ``metadata`` object, if any."""
    if not isinstance(value, Mapping):
        return None
    plain = {str(k): v for k, v in value.items() if isinstance(v, str | int | float | bool)}
    return plain or None


def new_files(
    before: FolderSnapshot,
    after: FolderSnapshot,
    *,
    reported: Iterable[str],
    written_between: tuple[int, int] | None = None,
) -> list[str]:
    """Paths that appeared in the output folder during the job and no node reported.

    Files that existed before the job are never returned, even if the job rewrote them; with
    ``written_between`` (nanoseconds since the epoch), only files last written in that window.
    """
    known = set(reported)
    low, high = written_between or (0, 2**63)
    return sorted(
        path
        for path, (_, mtime_ns) in after.items()
        if path not in before and path not in known and low <= mtime_ns <= high
    )


def execution_window(history: Mapping[str, Any]) -> tuple[int, int] | None:
    """When ComfyUI ran this prompt, in ns since the epoch, from its history status messages.

    ComfyUI runs one prompt at a time, so files written in this window are this prompt's.
    """
    messages = (history.get("status") or {}).get("messages") or []
    stamps = {
        str(m[0]): m[1].get("timestamp")
        for m in messages
        if isinstance(m, list) and len(m) == 2 and isinstance(m[1], Mapping)
    }
    start = stamps.get("execution_start")
    end = next(
        (stamps[k] for k in ("execution_success", "execution_error", "execution_interrupted") if k in stamps),
        None,
    )
    if not isinstance(start, int) or not isinstance(end, int):
        return None
    # Timestamps are whole milliseconds; widen by one on each side for the truncation.
    return (start - 1) * 1_000_000, (end + 1) * 1_000_000


@dataclass(frozen=True)
class WrittenFiles:
    """Every file a prompt wrote: all of them to clean up, and the ones no node reported."""

    paths: list[tuple[str, str]]  # (folder type, relative path)
    unreported: list[FileRef]  # found on disk, credited to the one silent output node if there is one


def silent_outputs(
    history: Mapping[str, Any] | None, *, output_nodes: frozenset[str], streamed_nodes: set[str]
) -> frozenset[str]:
    """The output nodes that reported nothing and streamed nothing: for these, and only these,
    `files_written` looks on disk."""
    reported = (history or {}).get("outputs") or {}
    return frozenset(output_nodes - set(reported.keys()) - streamed_nodes)


def files_written(
    history: Mapping[str, Any] | None,
    *,
    output_nodes: frozenset[str],
    streamed_nodes: set[str],
    find_written: Callable[[tuple[int, int], frozenset[str]], FolderSnapshot],
) -> WrittenFiles:
    """What the prompt wrote, reported or not.

    Unreported files are looked for only when an output node reported nothing (SharpPredict), and
    only among files written while this prompt executed: other prompts on the same ComfyUI (other
    workers, a user in the UI, the next job of a pipelined worker) write to the same folder.
    ``find_written(window, silent_nodes)`` is called only then and returns the output files last
    written inside the window.
    """
    history = history or {}
    reported_outputs = history.get("outputs") or {}
    found = collect_outputs(reported_outputs, include_temp=True)
    paths = [(ref.folder_type, ref.relpath) for ref in found.files] + companion_files(reported_outputs)
    silent = silent_outputs(history, output_nodes=output_nodes, streamed_nodes=streamed_nodes)
    window = execution_window(history)
    if not silent or window is None:
        return WrittenFiles(paths, [])
    reported = [ref.relpath for ref in found.files if ref.folder_type == "output"]
    unreported = new_files(
        {}, find_written(window, frozenset(silent)), reported=reported, written_between=window
    )
    node_id = next(iter(silent)) if len(silent) == 1 else ""
    refs = []
    for relpath in unreported:
        subfolder, _, filename = relpath.rpartition("/")
        refs.append(FileRef(node_id, filename, subfolder, "output"))
    return WrittenFiles([*paths, *(("output", path) for path in unreported)], refs)
