"""Put a job's inputs into ComfyUI's input/ folder: base64 files uploaded, URL inputs downloaded
then uploaded, each under a per-job prefix. Returns how the workflow's references must change.

A per-job prefix means concurrent jobs on one ComfyUI, and a user's own files in input/ (a dev
pod), are never overwritten or cleaned up by this job.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from pathlib import Path

from ..comfy.client import ComfyClient
from ..config import InputURLSettings
from ..destination import Destination
from ..job import JobRequest
from .download import InputDownloads

__all__ = ["stage_inputs"]


async def stage_inputs(
    comfy: ComfyClient,
    request: JobRequest,
    *,
    url_settings: InputURLSettings,
    max_file_bytes: int,
    workdir: Path,
    bucket: Destination | None,
    on_stored: Callable[[str], None],
    on_stage: Callable[[str, str], None],
) -> dict[str, str]:
    """Upload and download the job's inputs; return input name in the job -> name in input/.

    ``on_stored(name)`` is called for every name in input/ before the await that writes it, so a
    cancel mid-upload still cleans it up; ``on_stage(what, progress_stage)`` says what is going on.
    """
    renamed: dict[str, str] = {}
    if request.images:
        on_stage("uploading inputs", "uploading")
    tag = uuid.uuid4().hex[:8]
    for image in request.images:
        tagged = f"{tag}-{image.name}"
        on_stored(tagged)
        stored = await comfy.upload(dataclasses.replace(image, name=tagged))
        on_stored(stored)
        renamed[image.name] = stored
    if request.remote_inputs:
        on_stage("downloading inputs", "")
        downloads = InputDownloads(
            settings=url_settings, max_file_bytes=max_file_bytes, workdir=workdir, tag=tag, bucket=bucket
        )
        stored_names = await downloads.run(
            request.remote_inputs,
            comfy,
            on_upload=on_stored,
            on_progress=lambda stage: on_stage("downloading inputs", stage),
        )
        for name in stored_names.values():
            on_stored(name)
        renamed.update(stored_names)
    return renamed
