"""Delivering outputs read in place on ComfyUI's disk (storage/delivery.py): a file that ComfyUI
writes again between the job's collection and its delivery (a later prompt saving under the same
fixed file name) is never returned as this job's output."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import pytest

from handler.errors import OutputRewritten
from handler.storage import OutputFile
from handler.storage.delivery import deliver_outputs


def collected(path: Path, *, in_place: bool) -> OutputFile:
    stat = path.stat()
    return OutputFile(
        node_id="2",
        filename=path.name,
        subfolder="",
        path=path,
        mime_type="image/png",
        size_bytes=stat.st_size,
        written_ns=stat.st_mtime_ns if in_place else None,
    )


def rewrite(path: Path, data: bytes) -> None:
    """What a later prompt's node does to a fixed file name: same path, new bytes, a later mtime."""
    later = path.stat().st_mtime_ns + 50_000_000
    path.write_bytes(data)
    os.utime(path, ns=(later, later))


def test_an_unchanged_file_is_delivered_as_read(tmp_path: Path) -> None:
    path = tmp_path / "fixed.png"
    path.write_bytes(b"\x89PNG this job's image")
    [entry] = asyncio.run(deliver_outputs([collected(path, in_place=True)], remote=set(), s3=None))
    assert base64.b64decode(entry["data"]) == b"\x89PNG this job's image"


def test_a_file_rewritten_after_collection_fails_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "fixed.png"
    path.write_bytes(b"\x89PNG this job's image")
    item = collected(path, in_place=True)
    rewrite(path, b"\x89PNG the next job's image")
    with pytest.raises(OutputRewritten) as raised:
        asyncio.run(deliver_outputs([item], remote=set(), s3=None))
    assert raised.value.code == "OUTPUT_FAILED"
    assert "wrote ComfyUI's file 'fixed.png' again before this job had read it" in raised.value.message
    assert "file name that changes with every run" in raised.value.message


def test_a_downloaded_copy_is_the_jobs_own_whatever_happens_on_comfyuis_disk(tmp_path: Path) -> None:
    path = tmp_path / "00001_fixed.png"  # fetched over GET /view into the job's temp folder
    path.write_bytes(b"\x89PNG this job's image")
    item = collected(path, in_place=False)
    rewrite(path, b"\x89PNG this job's image")  # touched again: no in-place write time to compare
    [entry] = asyncio.run(deliver_outputs([item], remote=set(), s3=None))
    assert base64.b64decode(entry["data"]) == b"\x89PNG this job's image"
