"""Convert fetched outputs on delivery (``input.convert``): Gaussian-splat .ply to SPZ or .splat.

Runs on the job's temp copies, never on ComfyUI's files. A .ply that is not a Gaussian splat
(a mesh, an ASCII point cloud) is delivered unchanged with a note saying why.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .job import ConvertOptions
from .splats import NotASplat, encode, read_ply
from .storage import OutputFile

__all__ = ["MIME_TYPES", "convert_outputs"]

MIME_TYPES = {"spz": "application/x-spz", "splat": "application/x-splat"}


def convert_outputs(
    files: list[OutputFile], options: ConvertOptions, workdir: Path
) -> tuple[list[OutputFile], list[str]]:
    """The files to deliver (converted into ``workdir``, plus originals when asked) and one note
    per decision. The originals are never touched: they may be ComfyUI's own output files."""
    if options.ply is None:
        return files, []
    result: list[OutputFile] = []
    notes: list[str] = []
    for index, item in enumerate(files, start=1):
        if not item.filename.lower().endswith(".ply"):
            result.append(item)
            continue
        try:
            converted = _convert(item, options.ply, workdir / f"converted_{index:05d}")
        except NotASplat as exc:
            notes.append(f"{item.filename} was not converted to .{options.ply}: {exc}")
            result.append(item)
            continue
        notes.append(
            f"{item.filename} ({item.size_bytes:,} bytes) converted to {converted.filename} "
            f"({converted.size_bytes:,} bytes)"
            + ("; the original .ply is returned too" if options.keep_original else "")
        )
        if options.keep_original:
            result.append(item)
        result.append(converted)
    return result, notes


def _convert(item: OutputFile, fmt: str, target_stem: Path) -> OutputFile:
    data = encode(read_ply(item.path.read_bytes()), fmt)
    target = target_stem.with_suffix(f".{fmt}")
    target.write_bytes(data)
    return dataclasses.replace(
        item,
        filename=str(Path(item.filename).with_suffix(f".{fmt}")),
        path=target,
        mime_type=MIME_TYPES[fmt],
        size_bytes=len(data),
        metadata=None,  # ComfyUI's metadata described the .ply, not this file
        written_ns=None,  # the job's own file in its temp folder, not one on ComfyUI's disk
    )
