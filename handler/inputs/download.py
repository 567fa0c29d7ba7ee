"""Fetch a job's URL inputs in parallel and hand each to ComfyUI's upload as soon as it is on disk.

Each file streams to the job's temp folder, is uploaded under the job's per-job name (the same
``<tag>-<name>`` as base64 inputs) and is deleted from the temp folder right after, so disk use
stays at about one file per parallel download. The first failure cancels the other downloads.
Progress goes out as "downloading inputs k/n".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..comfy.client import ComfyClient
from ..config import InputURLSettings
from ..destination import Destination
from ..errors import WorkerError
from ..values import RemoteInput
from .connector import Lookup, system_lookup
from .fetch import FetchedFile, FetchLimits, JobBudget, UrlFetcher
from .netguard import AddressPolicy
from .s3source import S3Source

__all__ = ["InputDownloads"]

logger = logging.getLogger(__name__)


@dataclass
class InputDownloads:
    """Everything one job's URL inputs need; ``run`` returns {input name: name stored in ComfyUI}."""

    settings: InputURLSettings
    max_file_bytes: int  # COMFY_MAX_INPUT_BYTES
    workdir: Path
    tag: str  # the job's per-job prefix
    bucket: Destination | None  # for s3:// URLs: the job's s3Config, else the environment's bucket
    lookup: Lookup = system_lookup  # tests inject a DNS
    ssl_context: ssl.SSLContext | None = None  # tests inject a CA

    async def run(
        self,
        inputs: Sequence[RemoteInput],
        comfy: ComfyClient,
        *,
        on_upload: Callable[[str], None],
        on_progress: Callable[[str], None],
    ) -> dict[str, str]:
        """Download and upload every input; ``on_upload(stored name)`` runs before each upload starts."""
        policy = AddressPolicy(self.settings.allow)
        limits = FetchLimits(
            max_file_bytes=self.max_file_bytes,
            connect_timeout_s=self.settings.connect_timeout_s,
            timeout_s=self.settings.timeout_s,
        )
        budget = JobBudget(self.settings.max_job_bytes)
        s3 = S3Source(self.bucket, policy, limits, budget)
        slots = asyncio.Semaphore(self.settings.concurrency)
        stored: dict[str, str] = {}
        total = len(inputs)
        on_progress(f"downloading inputs 0/{total}")

        async with UrlFetcher(
            policy,
            limits,
            budget,
            lookup=self.lookup,
            ssl_context=self.ssl_context,
            concurrency=self.settings.concurrency,
        ) as http:

            async def one(index: int, entry: RemoteInput) -> None:
                dest = self.workdir / f"input-{index:03d}"
                async with slots:
                    if entry.url.lower().startswith("s3://"):
                        fetched = await s3.fetch(entry, dest)
                    else:
                        fetched = await http.fetch(entry, dest)
                    logger.info(
                        "%s: downloaded %s (%d bytes, %s)",
                        entry.where,
                        entry.shown_url,
                        fetched.size_bytes,
                        fetched.mime_type,
                    )
                    stored[entry.name] = await self._upload(comfy, entry, fetched, on_upload)
                on_progress(f"downloading inputs {len(stored)}/{total}")

            try:
                async with asyncio.TaskGroup() as group:
                    for index, entry in enumerate(inputs):
                        group.create_task(one(index, entry))
            except BaseExceptionGroup as failures:
                raise _first(failures) from None
        return stored

    async def _upload(
        self, comfy: ComfyClient, entry: RemoteInput, fetched: FetchedFile, on_upload: Callable[[str], None]
    ) -> str:
        tagged = f"{self.tag}-{entry.name}"
        on_upload(tagged)  # before the await: a cancel mid-upload still cleans it up
        upload = asyncio.ensure_future(
            comfy.upload_file(name=tagged, path=fetched.path, mime_type=fetched.mime_type)
        )
        try:
            return await asyncio.shield(upload)
        except asyncio.CancelledError:
            # Let a started upload finish (it is local and short): aborted mid-body, ComfyUI's
            # aiohttp leaves its spooled temp file behind, and a late one would land after cleanup.
            with contextlib.suppress(WorkerError):
                await upload
            raise
        finally:
            fetched.path.unlink(missing_ok=True)


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The failure that cancelled the others: the first one that is not a cancellation."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]
