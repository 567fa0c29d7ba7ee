"""Core image nodes: EmptyImage, LoadImage, ImageInvert, ImageScale, ImageBatch, GetImageSize and
the image savers (SaveImage, PreviewImage, SaveImageWebsocket, SaveAnimatedWEBP, SaveAnimatedPNG).

Schemas follow ComfyUI 0.3.64 (`nodes.py`, `comfy_extras/nodes_images.py`,
`custom_nodes/websocket_image_save.py`); EmptyImage, LoadImage and SaveImage reproduce the
/object_info entries recorded in transcript 00 exactly.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any, ClassVar

from PIL import Image, ImageOps, ImageSequence

from ..folders import Folders
from .base import InputTypes, Node, NodeResult, NodeRun, spec
from .files import file_entry, png_bytes, png_metadata, temp_prefix_suffix, write_bytes
from .values import Images, Masks, Preview

__all__ = [
    "MAX_RESOLUTION",
    "EmptyImage",
    "GetImageSize",
    "ImageBatch",
    "ImageInvert",
    "ImageScale",
    "LoadImage",
    "PreviewImage",
    "SaveAnimatedPNG",
    "SaveAnimatedWEBP",
    "SaveImage",
    "SaveImageWebsocket",
    "file_sha256",
    "scale_images",
]

MAX_RESOLUTION = 16384
_PREFIX_TOOLTIP = (
    "The prefix for the file to save. This may include formatting information such as "
    "%date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes."
)
_RESAMPLE = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
_SAVE_HIDDEN = {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}


def file_sha256(path: Any) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class EmptyImage(Node):
    CLASS_TYPE = "EmptyImage"
    DISPLAY_NAME = "EmptyImage"
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {
                "width": spec("INT", default=512, min=1, max=MAX_RESOLUTION, step=1),
                "height": spec("INT", default=512, min=1, max=MAX_RESOLUTION, step=1),
                "batch_size": spec("INT", default=1, min=1, max=4096),
                "color": spec("INT", default=0, min=0, max=0xFFFFFF, step=1, display="color"),
            }
        }

    async def run(
        self, ctx: NodeRun, *, width: int, height: int, batch_size: int = 1, color: int = 0, **_: Any
    ) -> NodeResult:
        rgb = ((color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF)
        frame = Image.new("RGB", (width, height), rgb)
        return NodeResult((Images(tuple(frame.copy() for _ in range(batch_size))),))


class LoadImage(Node):
    CLASS_TYPE = "LoadImage"
    DISPLAY_NAME = "Load Image"
    CATEGORY = "image"
    RETURN_TYPES: ClassVar[tuple[str, ...]] = ("IMAGE", "MASK")
    VALIDATED_INPUTS = ("image",)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {"required": {"image": (folders.input_files(), {"image_upload": True})}}

    @classmethod
    def validate(cls, folders: Folders, inputs: dict[str, Any]) -> bool | str:
        image = inputs.get("image")
        if not isinstance(image, str) or not folders.exists_annotated(image):
            return f"Invalid image file: {image}"
        return True

    @classmethod
    def is_changed(cls, folders: Folders, inputs: dict[str, Any]) -> Any:
        path = folders.annotated_path(str(inputs.get("image")))
        return file_sha256(path) if path.is_file() else ""

    async def run(self, ctx: NodeRun, *, image: str, **_: Any) -> NodeResult:
        path = ctx.folders.annotated_path(image)
        return NodeResult(await asyncio.to_thread(_load_frames, str(path)))


def _load_frames(path: str) -> tuple[Images, Masks]:
    # A corrupt file raises PIL.UnidentifiedImageError here, with the message ComfyUI reports.
    with Image.open(path) as img:
        frames: list[Image.Image] = []
        masks: list[Image.Image] = []
        for frame in ImageSequence.Iterator(img):
            frame = ImageOps.exif_transpose(frame) or frame
            if frames and frame.size != frames[0].size:
                continue
            if "A" in frame.getbands():
                masks.append(ImageOps.invert(frame.getchannel("A")))
            else:
                masks.append(Image.new("L", (64, 64), 0))
            frames.append(frame.convert("RGB"))
    return Images(tuple(frames)), Masks(tuple(masks))


class ImageInvert(Node):
    CLASS_TYPE = "ImageInvert"
    DISPLAY_NAME = "Invert Image"
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {"required": {"image": spec("IMAGE")}}

    async def run(self, ctx: NodeRun, *, image: Images, **_: Any) -> NodeResult:
        return NodeResult((Images(tuple(ImageOps.invert(frame) for frame in image.frames)),))


class ImageScale(Node):
    CLASS_TYPE = "ImageScale"
    DISPLAY_NAME = "Upscale Image"
    CATEGORY = "image/upscaling"
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {
                "image": spec("IMAGE"),
                "upscale_method": spec(list(_RESAMPLE)),
                "width": spec("INT", default=512, min=0, max=MAX_RESOLUTION, step=1),
                "height": spec("INT", default=512, min=0, max=MAX_RESOLUTION, step=1),
                "crop": spec(["disabled", "center"]),
            }
        }

    async def run(
        self,
        ctx: NodeRun,
        *,
        image: Images,
        upscale_method: str,
        width: int,
        height: int,
        crop: str,
        **_: Any,
    ) -> NodeResult:
        if width == 0 and height == 0:
            return NodeResult((image,))
        if width == 0:
            width = max(1, round(image.width * height / image.height))
        elif height == 0:
            height = max(1, round(image.height * width / image.width))
        scaled = await asyncio.to_thread(scale_images, image, width, height, upscale_method, crop)
        return NodeResult((scaled,))


def scale_images(
    images: Images, width: int, height: int, method: str = "bilinear", crop: str = "disabled"
) -> Images:
    """ComfyUI's `common_upscale`: optional centre crop to the target aspect, then resize."""
    resample = _RESAMPLE.get(method, Image.Resampling.BILINEAR)
    out = []
    for frame in images.frames:
        if crop == "center":
            frame = ImageOps.fit(frame, (width, height), method=resample)
        else:
            frame = frame.resize((width, height), resample)
        out.append(frame)
    return Images(tuple(out))


class ImageBatch(Node):
    CLASS_TYPE = "ImageBatch"
    DISPLAY_NAME = "Batch Images"
    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {"required": {"image1": spec("IMAGE"), "image2": spec("IMAGE")}}

    async def run(self, ctx: NodeRun, *, image1: Images, image2: Images, **_: Any) -> NodeResult:
        if (image2.width, image2.height) != (image1.width, image1.height):
            image2 = scale_images(image2, image1.width, image1.height, "bilinear", "center")
        return NodeResult((Images(image1.frames + image2.frames),))


class GetImageSize(Node):
    CLASS_TYPE = "GetImageSize"
    DISPLAY_NAME = "Get Image Size"
    CATEGORY = "image"
    DESCRIPTION = "Returns width and height of the image, and passes it through unchanged."
    PYTHON_MODULE = "comfy_extras.nodes_images"
    RETURN_TYPES = ("INT", "INT", "INT")
    RETURN_NAMES = ("width", "height", "batch_size")

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {"required": {"image": spec("IMAGE")}, "hidden": {"unique_id": "UNIQUE_ID"}}

    async def run(self, ctx: NodeRun, *, image: Images, **_: Any) -> NodeResult:
        # The binary TEXT frame of transcript 07: "width: 40, height: 24\n batch size: 2".
        ctx.send_text(f"width: {image.width}, height: {image.height}\n batch size: {len(image)}")
        return NodeResult((image.width, image.height, len(image)))


class SaveImage(Node):
    CLASS_TYPE = "SaveImage"
    DISPLAY_NAME = "Save Image"
    CATEGORY = "image"
    DESCRIPTION = "Saves the input images to your ComfyUI output directory."
    OUTPUT_NODE = True
    FOLDER_TYPE: ClassVar[str] = "output"
    COMPRESS_LEVEL: ClassVar[int] = 4

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {
                "images": spec("IMAGE", tooltip="The images to save."),
                "filename_prefix": spec("STRING", default="ComfyUI", tooltip=_PREFIX_TOOLTIP),
            },
            "hidden": dict(_SAVE_HIDDEN),
        }

    def _prefix(self, filename_prefix: str) -> str:
        return filename_prefix

    async def run(
        self, ctx: NodeRun, *, images: Images, filename_prefix: str = "ComfyUI", **_: Any
    ) -> NodeResult:
        base = ctx.folders.output if self.FOLDER_TYPE == "output" else ctx.folders.temp
        target = ctx.folders.save_path(self._prefix(filename_prefix), base)
        metadata = png_metadata(ctx.prompt, ctx.extra_pnginfo)
        results = []
        counter = target.counter
        for batch_number, frame in enumerate(images.frames):
            name = target.filename.replace("%batch_num%", str(batch_number))
            filename = f"{name}_{counter:05}_.png"
            data = await asyncio.to_thread(png_bytes, frame, metadata, self.COMPRESS_LEVEL)
            write_bytes(target.folder / filename, data)
            results.append(file_entry(filename, target.subfolder, self.FOLDER_TYPE))
            counter += 1
        return NodeResult(ui={"images": results})


class PreviewImage(SaveImage):
    CLASS_TYPE = "PreviewImage"
    DISPLAY_NAME = "Preview Image"
    FOLDER_TYPE = "temp"
    COMPRESS_LEVEL = 1

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {"required": {"images": spec("IMAGE")}, "hidden": dict(_SAVE_HIDDEN)}

    def _prefix(self, filename_prefix: str) -> str:
        # Always ComfyUI_temp_<5 random letters>, whatever the prompt says (transcript 03).
        return "ComfyUI" + temp_prefix_suffix()


class SaveImageWebsocket(Node):
    CLASS_TYPE = "SaveImageWebsocket"
    DISPLAY_NAME = "SaveImageWebsocket"
    CATEGORY = "api node/image"
    PYTHON_MODULE = "custom_nodes.websocket_image_save"
    OUTPUT_NODE = True

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {"required": {"images": spec("IMAGE")}}

    @classmethod
    def is_changed(cls, folders: Folders, inputs: dict[str, Any]) -> Any:
        return time.time()  # as shipped: never cached, always re-sends its frames

    async def run(self, ctx: NodeRun, *, images: Images, **_: Any) -> NodeResult:
        # Progress 0..N-1 of N, each with the PNG as a preview frame; no file, no UI output.
        for step, frame in enumerate(images.frames):
            await ctx.progress(step, len(images), Preview("PNG", frame, None))
        return NodeResult()


class SaveAnimatedWEBP(Node):
    CLASS_TYPE = "SaveAnimatedWEBP"
    DISPLAY_NAME = "SaveAnimatedWEBP"
    CATEGORY = "image/animation"
    PYTHON_MODULE = "comfy_extras.nodes_images"
    OUTPUT_NODE = True
    METHODS: ClassVar[dict[str, int]] = {"default": 4, "fastest": 0, "slowest": 6}

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {
                "images": spec("IMAGE"),
                "filename_prefix": spec("STRING", default="ComfyUI"),
                "fps": spec("FLOAT", default=6.0, min=0.01, max=1000.0, step=0.01),
                "lossless": spec("BOOLEAN", default=True),
                "quality": spec("INT", default=80, min=0, max=100),
                "method": spec(list(cls.METHODS)),
            },
            "hidden": dict(_SAVE_HIDDEN),
        }

    async def run(
        self,
        ctx: NodeRun,
        *,
        images: Images,
        filename_prefix: str = "ComfyUI",
        fps: float = 6.0,
        lossless: bool = True,
        quality: int = 80,
        method: str = "default",
        **_: Any,
    ) -> NodeResult:
        options = {
            "format": "WEBP",
            "lossless": lossless,
            "quality": quality,
            "method": self.METHODS.get(method, 4),
        }
        return await _save_animation(ctx, images, filename_prefix, fps, "webp", options)


class SaveAnimatedPNG(Node):
    CLASS_TYPE = "SaveAnimatedPNG"
    DISPLAY_NAME = "SaveAnimatedPNG"
    CATEGORY = "image/animation"
    PYTHON_MODULE = "comfy_extras.nodes_images"
    OUTPUT_NODE = True

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {
                "images": spec("IMAGE"),
                "filename_prefix": spec("STRING", default="ComfyUI"),
                "fps": spec("FLOAT", default=6.0, min=0.01, max=1000.0, step=0.01),
                "compress_level": spec("INT", default=4, min=0, max=9),
            },
            "hidden": dict(_SAVE_HIDDEN),
        }

    async def run(
        self,
        ctx: NodeRun,
        *,
        images: Images,
        filename_prefix: str = "ComfyUI",
        fps: float = 6.0,
        compress_level: int = 4,
        **_: Any,
    ) -> NodeResult:
        options = {
            "format": "PNG",
            "compress_level": compress_level,
            "pnginfo": png_metadata(ctx.prompt, ctx.extra_pnginfo),
        }
        return await _save_animation(ctx, images, filename_prefix, fps, "png", options)


async def _save_animation(
    ctx: NodeRun, images: Images, filename_prefix: str, fps: float, ext: str, options: dict[str, Any]
) -> NodeResult:
    """One animated file for the whole batch, listed under `images` plus `animated` (transcript 05)."""
    target = ctx.folders.save_path(filename_prefix, ctx.folders.output)
    filename = f"{target.filename}_{target.counter:05}_.{ext}"
    first, *rest = images.frames
    duration_ms = round(1000.0 / fps) if fps > 0 else 100

    def _write() -> None:
        first.save(
            target.folder / filename,
            save_all=True,
            append_images=rest,
            duration=duration_ms,
            loop=0,
            **options,
        )

    await asyncio.to_thread(_write)
    return NodeResult(
        ui={"images": [file_entry(filename, target.subfolder, "output")], "animated": [len(images) != 1]}
    )
