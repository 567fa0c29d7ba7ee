"""Stand-ins for custom nodes and for core nodes that need libraries the real ones use.

These reproduce what the worker sees from such nodes: which file lands where and what the UI
output (and so the history entry) looks like. They are not copies of the real implementations.

The Gaussian-splat nodes (ComfyUI-Sharp, comfyui-GaussianViewer) live in `gaussians`.
- `VHS_VideoCombine`: stand-in for ComfyUI-VideoHelperSuite. Writes `<prefix>_NNNNN.png` (first frame,
  the "workflow" image) and `<prefix>_NNNNN.<ext>`, reported under the non-standard `gifs` key with
  `format`, `frame_rate`, `workflow` and `fullpath`.
- `SaveAudio`: stand-in for the core FLAC saver (torchaudio). Its `audio` input accepts anything
  (`*`: AUDIO from LoadAudio, or an IMAGE so test workflows need no audio source); writes
  `<prefix>_NNNNN_.flac` (a `fLaC` file with a STREAMINFO block), UI key `audio`.
- `SaveGLB`: stand-in for the core 3D saver. Its `mesh` input accepts anything (`*`); writes
  `<prefix>_NNNNN_.glb` (a valid glTF 2.0 binary cube unless given a mesh), UI key `3d`.
- `LoadAudio`: the core loader's schema and validation (`Invalid audio file: x`); any file in
  `input/` loads.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

from ..folders import Folders
from .base import InputTypes, Node, NodeResult, NodeRun, spec
from .files import (
    file_entry,
    flac_bytes,
    glb_bytes,
    mp4_bytes,
    png_bytes,
    png_metadata,
    webm_bytes,
    write_bytes,
)
from .images import file_sha256
from .values import Audio, Images, Mesh

__all__ = ["LoadAudio", "SaveAudio", "SaveGLB", "VHS_VideoCombine"]

_SAVE_HIDDEN = {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
_VHS_FORMATS = {"image/gif": "gif", "image/webp": "webp", "video/h264-mp4": "mp4", "video/webm": "webm"}


class VHS_VideoCombine(Node):
    CLASS_TYPE = "VHS_VideoCombine"
    DISPLAY_NAME = "Video Combine 🎥🅥🅗🅢"
    CATEGORY = "Video Helper Suite 🎥🅥🅗🅢"
    PYTHON_MODULE = "custom_nodes.ComfyUI-VideoHelperSuite"
    OUTPUT_NODE = True
    RETURN_TYPES = ("VHS_FILENAMES",)
    RETURN_NAMES = ("Filenames",)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {
                "images": spec("IMAGE"),
                "frame_rate": spec("FLOAT", default=8, min=1, step=1),
                "loop_count": spec("INT", default=0, min=0, max=100, step=1),
                "filename_prefix": spec("STRING", default="AnimateDiff"),
                "format": spec(list(_VHS_FORMATS)),
                "pingpong": spec("BOOLEAN", default=False),
                "save_output": spec("BOOLEAN", default=True),
            },
            "optional": {"audio": spec("AUDIO")},
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO", "unique_id": "UNIQUE_ID"},
        }

    async def run(
        self,
        ctx: NodeRun,
        *,
        images: Images,
        frame_rate: float = 8.0,
        filename_prefix: str = "AnimateDiff",
        format: str = "image/gif",
        save_output: bool = True,
        **_: Any,
    ) -> NodeResult:
        base = ctx.folders.output if save_output else ctx.folders.temp
        target = ctx.folders.save_path(filename_prefix, base)
        # VHS numbers its files `<prefix>_NNNNN.<ext>` (no trailing underscore), after the highest
        # existing number.
        counter = 1 + max((_vhs_counter(p.name, target.filename) for p in target.folder.iterdir()), default=0)
        stem = f"{target.filename}_{counter:05}"
        ext = _VHS_FORMATS.get(format, "mp4")
        workflow_png = await asyncio.to_thread(
            png_bytes, images.frames[0], png_metadata(ctx.prompt, ctx.extra_pnginfo)
        )
        write_bytes(target.folder / f"{stem}.png", workflow_png)
        video_path = target.folder / f"{stem}.{ext}"
        write_bytes(video_path, await asyncio.to_thread(_encode, images, frame_rate, ext))
        entry = {
            "filename": video_path.name,
            "subfolder": target.subfolder,
            "type": "output" if save_output else "temp",
            "format": format,
            "frame_rate": float(frame_rate),
            "workflow": f"{stem}.png",
            "fullpath": str(video_path),
        }
        return NodeResult(((save_output, [str(video_path)]),), ui={"gifs": [entry]})


def _vhs_counter(name: str, filename: str) -> int:
    stem = name.rsplit(".", 1)[0]
    head, _, digits = stem.rpartition("_")
    return int(digits) if head == filename and digits.isdigit() else 0


def _encode(images: Images, fps: float, ext: str) -> bytes:
    if ext == "mp4":
        return mp4_bytes(images, fps)
    if ext == "webm":
        return webm_bytes(images, fps)
    buffer = io.BytesIO()
    first, *rest = images.frames
    first.save(
        buffer, format=ext.upper(), save_all=True, append_images=rest, duration=round(1000 / fps), loop=0
    )
    return buffer.getvalue()


class LoadAudio(Node):
    CLASS_TYPE = "LoadAudio"
    DISPLAY_NAME = "Load Audio"
    CATEGORY = "audio"
    PYTHON_MODULE = "comfy_extras.nodes_audio"
    RETURN_TYPES = ("AUDIO",)
    VALIDATED_INPUTS = ("audio",)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {"required": {"audio": (folders.input_files(("audio", "video")), {"audio_upload": True})}}

    @classmethod
    def validate(cls, folders: Folders, inputs: dict[str, Any]) -> bool | str:
        audio = inputs.get("audio")
        if not isinstance(audio, str) or not folders.exists_annotated(audio):
            return f"Invalid audio file: {audio}"
        return True

    @classmethod
    def is_changed(cls, folders: Folders, inputs: dict[str, Any]) -> Any:
        path = folders.annotated_path(str(inputs.get("audio")))
        return file_sha256(path) if path.is_file() else ""

    async def run(self, ctx: NodeRun, *, audio: str, **_: Any) -> NodeResult:
        size = ctx.folders.annotated_path(audio).stat().st_size
        return NodeResult(
            (Audio(sample_rate=44100, channels=2, num_samples=max(1, size // 4), source=audio),)
        )


class SaveAudio(Node):
    CLASS_TYPE = "SaveAudio"
    DISPLAY_NAME = "Save Audio (FLAC)"
    CATEGORY = "audio"
    PYTHON_MODULE = "comfy_extras.nodes_audio"
    OUTPUT_NODE = True

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {"audio": ("*", {}), "filename_prefix": spec("STRING", default="audio/ComfyUI")},
            "hidden": dict(_SAVE_HIDDEN),
        }

    async def run(
        self, ctx: NodeRun, *, audio: Any, filename_prefix: str = "audio/ComfyUI", **_: Any
    ) -> NodeResult:
        if not isinstance(audio, Audio):  # e.g. an IMAGE batch: one second of silence per frame
            frames = len(audio) if isinstance(audio, Images) else 1
            audio = Audio(sample_rate=44100, channels=2, num_samples=44100 * frames)
        target = ctx.folders.save_path(filename_prefix, ctx.folders.output)
        filename = f"{target.filename}_{target.counter:05}_.flac"
        write_bytes(target.folder / filename, flac_bytes(audio))
        return NodeResult(ui={"audio": [file_entry(filename, target.subfolder, "output")]})


class SaveGLB(Node):
    CLASS_TYPE = "SaveGLB"
    DISPLAY_NAME = "SaveGLB"
    CATEGORY = "3d"
    PYTHON_MODULE = "comfy_extras.nodes_hunyuan3d"
    OUTPUT_NODE = True

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {"mesh": ("*", {}), "filename_prefix": spec("STRING", default="mesh/ComfyUI")},
            "hidden": dict(_SAVE_HIDDEN),
        }

    async def run(
        self, ctx: NodeRun, *, mesh: Any, filename_prefix: str = "mesh/ComfyUI", **_: Any
    ) -> NodeResult:
        if not isinstance(mesh, Mesh):
            mesh = _cube(1.0)
        target = ctx.folders.save_path(filename_prefix, ctx.folders.output)
        filename = f"{target.filename}_{target.counter:05}_.glb"
        write_bytes(target.folder / filename, glb_bytes(mesh))
        return NodeResult(ui={"3d": [file_entry(filename, target.subfolder, "output")]})


def _cube(size: float) -> Mesh:
    vertices = tuple((x * size, y * size, z * size) for x in (0, 1) for y in (0, 1) for z in (0, 1))
    faces = (
        (0, 1, 3),
        (0, 3, 2),
        (4, 6, 7),
        (4, 7, 5),
        (0, 4, 5),
        (0, 5, 1),
        (2, 3, 7),
        (2, 7, 6),
        (0, 2, 6),
        (0, 6, 4),
        (1, 5, 7),
        (1, 7, 3),
    )
    return Mesh(vertices, faces)
