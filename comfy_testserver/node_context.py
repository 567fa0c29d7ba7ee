"""What a node sees while it runs (`NodeRun`), and the interrupt flag it checks.

`progress()` is ComfyUI's progress hook: `progress_state`, then `progress`, with a preview frame
before it for clients that announced `supports_preview_metadata` (event 4) and after it for
everyone else (event 1), as recorded in transcripts 08 and 16.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from .behaviour import Behaviour
from .browser import BrowserAnswer, BrowserRenders
from .folders import Folders
from .hub import Hub
from .nodes import InterruptProcessing
from .nodes.values import Preview
from .output_records import VideoFacts
from .progress import ProgressRegistry
from .prompt_queue import QueueItem
from .protocol import IMAGE_TYPE_JPEG, IMAGE_TYPE_PNG, preview_frame, preview_frame_with_metadata, text_frame

__all__ = ["InterruptFlag", "NodeContext"]


class InterruptFlag:
    """ComfyUI's global interrupt flag: set by POST /interrupt, checked at node starts and steps."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def check(self) -> None:
        if self._event.is_set():
            raise InterruptProcessing("Processing interrupted")

    async def sleep(self, seconds: float) -> None:
        """Sleep up to `seconds`; an interrupt ends the sleep early (without raising)."""
        if seconds > 0 and not self._event.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._event.wait(), seconds)


class NodeContext:
    """The `NodeRun` handed to a node's `run()`."""

    def __init__(
        self,
        *,
        node_id: str,
        item: QueueItem,
        folders: Folders,
        behaviour: Behaviour,
        hub: Hub,
        progress: ProgressRegistry,
        interrupts: InterruptFlag,
        browser: BrowserRenders,
        videos: VideoFacts,
    ) -> None:
        self.node_id = node_id
        self.prompt_id = item.prompt_id
        self.prompt = item.prompt
        self.extra_pnginfo = item.extra_data.get("extra_pnginfo")
        self.folders = folders
        self.behaviour = behaviour
        self._client = item.client_id
        self._hub = hub
        self._progress = progress
        self._interrupts = interrupts
        self._browser = browser
        self._videos = videos

    async def progress(self, value: int, total: int, preview: Preview | None = None) -> None:
        hub, client = self._hub, self._client
        self._progress.update(self.node_id, value, total)
        metadata_client = preview is not None and hub.supports_preview_metadata(client)
        if preview is not None and metadata_client:
            image_type, data = _encode_preview(preview)
            metadata = {
                "node_id": self.node_id,
                "prompt_id": self.prompt_id,
                "display_node_id": self.node_id,
                "parent_node_id": None,
                "real_node_id": self.node_id,
                "image_type": "image/png" if image_type == IMAGE_TYPE_PNG else "image/jpeg",
            }
            hub.send_binary(preview_frame_with_metadata(metadata, data), client)
        progress = {"value": value, "max": total, "prompt_id": self.prompt_id, "node": self.node_id}
        hub.send("progress", progress, client)
        if preview is not None and not metadata_client:
            hub.send_binary(preview_frame(*_encode_preview(preview)), client)

    async def step(self) -> None:
        await self._interrupts.sleep(self.behaviour.step_delay_s)
        self._interrupts.check()

    def send_text(self, text: str) -> None:
        self._hub.send_binary(text_frame(self.node_id, text), None)

    def record_video(self, path: Path, width: int, height: int, fps: float, frame_count: int) -> None:
        self._videos.record(path, width, height, fps, frame_count)

    async def ask_browser(
        self, event: str, payload: dict[str, Any], request_id: str, timeout_s: float
    ) -> BrowserAnswer | None:
        # PromptServer.send_sync without a sid: every connected socket gets it, any client's.
        self._hub.send(event, payload, None)
        return await self._browser.wait(request_id, timeout_s)


def _encode_preview(preview: Preview) -> tuple[int, bytes]:
    image: Image.Image = preview.image
    if preview.max_size is not None:
        image = ImageOps.contain(image, (preview.max_size, preview.max_size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    if preview.image_format == "PNG":
        image.save(buffer, format="PNG", compress_level=1)
        return IMAGE_TYPE_PNG, buffer.getvalue()
    image.convert("RGB").save(buffer, format="JPEG", quality=95)
    return IMAGE_TYPE_JPEG, buffer.getvalue()
