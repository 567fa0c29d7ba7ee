"""Video nodes of `comfy_extras/nodes_video.py` (new-style schema): CreateVideo, SaveVideo, SaveWEBM.

The real nodes encode with PyAV; these write the small container stand-ins from `files.py`
(`ftyp`-first mp4, EBML webm). SaveVideo's entry matches transcript 00, and both savers report
their file under `images` with `animated: [true]` as recorded in transcript 06.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..folders import Folders
from .base import InputTypes, Node, NodeResult, NodeRun, spec
from .files import file_entry, mp4_bytes, webm_bytes, write_bytes
from .values import Images, Video

__all__ = ["CreateVideo", "SaveVideo", "SaveWEBM"]

_PREFIX_TOOLTIP = (
    "The prefix for the file to save. This may include formatting information such as "
    "%date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes."
)
_NEW_STYLE_HIDDEN = {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}


class CreateVideo(Node):
    CLASS_TYPE = "CreateVideo"
    DISPLAY_NAME = "Create Video"
    CATEGORY = "image/video"
    DESCRIPTION = "Create a video from images."
    PYTHON_MODULE = "comfy_extras.nodes_video"
    NEW_STYLE = True
    RETURN_TYPES = ("VIDEO",)
    OUTPUT_TOOLTIPS = (None,)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {
                "images": spec("IMAGE", tooltip="The images to create a video from."),
                "fps": spec("FLOAT", default=30.0, min=1.0, max=120.0, step=1.0),
            },
            "optional": {"audio": spec("AUDIO", tooltip="The audio to add to the video.")},
        }

    async def run(self, ctx: NodeRun, *, images: Images, fps: float = 30.0, **_: Any) -> NodeResult:
        return NodeResult((Video(images, fps),))


class SaveVideo(Node):
    CLASS_TYPE = "SaveVideo"
    DISPLAY_NAME = "Save Video"
    CATEGORY = "image/video"
    DESCRIPTION = "Saves the input images to your ComfyUI output directory."
    PYTHON_MODULE = "comfy_extras.nodes_video"
    NEW_STYLE = True
    OUTPUT_NODE = True
    OUTPUT_TOOLTIPS = ()

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {
                "video": spec("VIDEO", tooltip="The video to save."),
                "filename_prefix": spec(
                    "STRING", tooltip=_PREFIX_TOOLTIP, default="video/ComfyUI", multiline=False
                ),
                "format": spec(
                    "COMBO",
                    tooltip="The format to save the video as.",
                    default="auto",
                    multiselect=False,
                    options=["auto", "mp4"],
                ),
                "codec": spec(
                    "COMBO",
                    tooltip="The codec to use for the video.",
                    default="auto",
                    multiselect=False,
                    options=["auto", "h264"],
                ),
            },
            "hidden": dict(_NEW_STYLE_HIDDEN),
        }

    async def run(
        self, ctx: NodeRun, *, video: Video, filename_prefix: str = "video/ComfyUI", **_: Any
    ) -> NodeResult:
        target = ctx.folders.save_path(filename_prefix, ctx.folders.output)
        filename = f"{target.filename}_{target.counter:05}_.mp4"
        data = await asyncio.to_thread(mp4_bytes, video.images, video.fps)
        write_bytes(target.folder / filename, data)
        images = video.images
        ctx.record_video(target.folder / filename, images.width, images.height, video.fps, len(images))
        return NodeResult(
            ui={"images": [file_entry(filename, target.subfolder, "output")], "animated": [True]}
        )


class SaveWEBM(Node):
    CLASS_TYPE = "SaveWEBM"
    DISPLAY_NAME = "SaveWEBM"
    CATEGORY = "image/video"
    PYTHON_MODULE = "comfy_extras.nodes_video"
    NEW_STYLE = True
    EXPERIMENTAL = True
    OUTPUT_NODE = True
    OUTPUT_TOOLTIPS = ()

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {
                "images": spec("IMAGE"),
                "filename_prefix": spec("STRING", default="ComfyUI", multiline=False),
                "codec": spec("COMBO", multiselect=False, options=["vp9", "av1"]),
                "fps": spec("FLOAT", default=24.0, min=0.01, max=1000.0, step=0.01),
                "crf": spec(
                    "FLOAT",
                    default=32.0,
                    min=0,
                    max=63.0,
                    step=1,
                    tooltip="Higher crf means lower quality with a smaller file size, "
                    "lower crf means higher quality higher filesize.",
                ),
            },
            "hidden": dict(_NEW_STYLE_HIDDEN),
        }

    async def run(
        self, ctx: NodeRun, *, images: Images, filename_prefix: str = "ComfyUI", fps: float = 24.0, **_: Any
    ) -> NodeResult:
        target = ctx.folders.save_path(filename_prefix, ctx.folders.output)
        filename = f"{target.filename}_{target.counter:05}_.webm"
        data = await asyncio.to_thread(webm_bytes, images, fps)
        write_bytes(target.folder / filename, data)
        ctx.record_video(target.folder / filename, images.width, images.height, fps, len(images))
        return NodeResult(
            ui={"images": [file_entry(filename, target.subfolder, "output")], "animated": [True]}
        )
