"""Stand-ins for the Gaussian-splat nodes, written from their code at the manifest's commits.

ComfyUI-Sharp (PozzettiAndrea/ComfyUI-Sharp @4600f45, `nodes/`):
- `LoadSharpModel`: `device` (auto|cuda|mps|cpu), optional `checkpoint_path`; loads
  `models/sharp/sharp_2572gikvuh.pt` (the real node downloads it when missing; offline here, so
  a missing file fails the way a failed download does). Returns SHARP_MODEL.
- `SharpPredict`: OUTPUT_NODE with no `ui` at all, so history has no entry for it. Returns
  (`ply_path` STRING, EXTRINSICS, INTRINSICS). One image writes `output/{prefix}_{epoch ms}.ply`;
  a batch writes `output/{prefix}_{epoch ms}/001.ply`, `002.ply`, ... and returns the folder.
  The file is a binary little-endian 3DGS PLY (x y z, f_dc_0..2, opacity, scale_0..2, rot_0..3 as
  float32). The real model always works at 1536 px and writes 1,179,648 gaussians (66 MB); this
  one writes two layers of `behaviour.sharp_grid`² gaussians coloured from the image.
- `LoadImageWithExif`: LoadImage plus the 35 mm focal length from EXIF (default 30).

comfyui-GaussianViewer (CarlMarkswx/comfyui-GaussianViewer @5da86e7):
- `GaussianViewer`: OUTPUT_NODE. `ui` is columnar, lists of one value each: `ply_file` (path
  relative to output/), `filename`, `subfolder`, `type`, `file_size_mb`, plus `extrinsics`,
  `intrinsics` when given and `overlay_image` (`gaussian_overlay_<hex>.png`, written to output/
  and not reported as a file) when an image is connected. It then broadcasts
  `geompack_render_request` and waits `behaviour.browser_render_timeout_s` (30 s in the real node)
  for `/geompack/render_result` or `/geompack/render_error` (see `comfy_testserver.browser`). A
  rendered image is saved as `gaussian-<ply stem>-render-<hex>.png`; an error or a timeout gives
  a black placeholder (2048 px on the short side). Returns (IMAGE, EXTRINSICS, INTRINSICS); the
  camera outputs are None without a camera state from the browser.
- `ExtrinsicsToPose`: 4x4 matrix to x, y, z, pitch, yaw, roll and a pose string.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import struct
import time
import uuid
from pathlib import Path
from typing import Any

from PIL import Image

from ..folders import Folders
from .base import InputTypes, Node, NodeResult, NodeRun, spec
from .files import write_bytes
from .images import LoadImage, file_sha256
from .values import Images

__all__ = [
    "SPLAT_PROPERTIES",
    "ExtrinsicsToPose",
    "GaussianViewer",
    "LoadImageWithExif",
    "LoadSharpModel",
    "SharpModel",
    "SharpPredict",
    "splat_ply_bytes",
]

SHARP_CHECKPOINT = "sharp_2572gikvuh.pt"
SHARP_URL = "https://huggingface.co/apple/Sharp/resolve/main/sharp_2572gikvuh.pt"
SPLAT_PROPERTIES = (
    "x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
    "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
)  # fmt: skip
_SH_C0 = math.sqrt(1.0 / (4.0 * math.pi))


class SharpModel:
    """SHARP_MODEL: the real one is `{"predictor": <torch module>, "device": str}`."""

    def __init__(self, checkpoint: str, device: str) -> None:
        self.checkpoint = checkpoint
        self.device = device

    def __repr__(self) -> str:
        return f"{{'predictor': RGBGaussianPredictor(...), 'device': '{self.device}'}}"


class LoadSharpModel(Node):
    CLASS_TYPE = "LoadSharpModel"
    DISPLAY_NAME = "Load SHARP Model"
    CATEGORY = "SHARP"
    DESCRIPTION = "Load the SHARP model for monocular 3D Gaussian Splatting prediction."
    PYTHON_MODULE = "custom_nodes.ComfyUI-Sharp"
    RETURN_TYPES = ("SHARP_MODEL",)
    RETURN_NAMES = ("model",)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {"device": (["auto", "cuda", "mps", "cpu"], {"default": "auto"})},
            "optional": {"checkpoint_path": spec("STRING", default="")},
        }

    async def run(
        self, ctx: NodeRun, *, device: str = "auto", checkpoint_path: str = "", **_: Any
    ) -> NodeResult:
        if checkpoint_path and Path(checkpoint_path).exists():
            path = Path(checkpoint_path)
        else:
            path = ctx.folders.models / "sharp" / SHARP_CHECKPOINT
            if not path.is_file():  # the real node would download it; there is no network here
                raise OSError(
                    f"<urlopen error [Errno -3] Temporary failure in name resolution> ({SHARP_URL})"
                )
        resolved = "cpu" if device == "auto" else device
        return NodeResult((SharpModel(str(path), resolved),))


class SharpPredict(Node):
    CLASS_TYPE = "SharpPredict"
    DISPLAY_NAME = "SHARP Predict (Image to PLY)"
    CATEGORY = "SHARP"
    PYTHON_MODULE = "custom_nodes.ComfyUI-Sharp"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING", "EXTRINSICS", "INTRINSICS")
    RETURN_NAMES = ("ply_path", "extrinsics", "intrinsics")

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {"model": spec("SHARP_MODEL"), "image": spec("IMAGE")},
            "optional": {
                "focal_length_mm": spec("FLOAT", default=30.0, min=0.0, max=500.0, step=0.1),
                "output_prefix": spec("STRING", default="sharp"),
            },
        }

    async def run(
        self,
        ctx: NodeRun,
        *,
        model: SharpModel,
        image: Images,
        focal_length_mm: float = 0.0,
        output_prefix: str = "sharp",
        **_: Any,
    ) -> NodeResult:
        output = ctx.folders.output
        output.mkdir(parents=True, exist_ok=True)
        stamp = int(time.time() * 1000)
        batch = len(image) > 1
        target = output / f"{output_prefix}_{stamp}" if batch else output / f"{output_prefix}_{stamp}.ply"
        if batch:
            target.mkdir(parents=True, exist_ok=True)
        width, height = image.width, image.height
        f_px = (
            (focal_length_mm if focal_length_mm > 0 else 30.0)
            * math.hypot(width, height)
            / math.hypot(36, 24)
        )
        grid = max(1, ctx.behaviour.sharp_grid)
        for index, frame in enumerate(image.frames):
            path = target / f"{index + 1:03d}.ply" if batch else target
            data = await asyncio.to_thread(splat_ply_bytes, frame, grid)
            # Like plyfile's write: a missing parent folder (a prefix with a "/") is an error.
            with open(path, "wb") as handle:
                handle.write(data)
            await ctx.step()
        extrinsics = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
        intrinsics = [[f_px, 0, width * 0.5], [0, f_px, height * 0.5], [0, 0, 1]]
        return NodeResult((str(target), extrinsics, intrinsics))


def splat_ply_bytes(frame: Image.Image, grid: int) -> bytes:
    """A 3DGS PLY like SHARP's `save_ply`: two depth layers of `grid`² gaussians from `frame`."""
    small = frame.convert("RGB").resize((grid, grid))
    raw = small.tobytes()
    pixels = [tuple(raw[i : i + 3]) for i in range(0, len(raw), 3)]
    count = 2 * grid * grid
    header = "".join(
        ["ply\n", "format binary_little_endian 1.0\n", f"element vertex {count}\n"]
        + [f"property float {name}\n" for name in SPLAT_PROPERTIES]
        + ["end_header\n"]
    ).encode("ascii")
    row = struct.Struct("<14f")
    body = bytearray()
    scale = math.log(1.0 / grid)
    for layer in (0, 1):
        depth = 1.0 + layer
        opacity = 2.0 if layer == 0 else -1.0  # logits
        for index, (r, g, b) in enumerate(pixels):
            y, x = divmod(index, grid)
            u, v = (x + 0.5) / grid - 0.5, (y + 0.5) / grid - 0.5
            dc = [(c / 255.0 - 0.5) / _SH_C0 for c in (r, g, b)]
            body += row.pack(u * depth, v * depth, depth, *dc, opacity, scale, scale, scale - 2.0, 1, 0, 0, 0)
    return header + bytes(body)


class LoadImageWithExif(LoadImage):
    CLASS_TYPE = "LoadImageWithExif"
    DISPLAY_NAME = "Load Image with EXIF (Focal Length)"
    CATEGORY = "SHARP"
    PYTHON_MODULE = "custom_nodes.ComfyUI-Sharp"
    RETURN_TYPES = ("IMAGE", "MASK", "FLOAT")
    RETURN_NAMES = ("image", "mask", "focal_length_mm")

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {"image": (folders.input_files(), {"image_upload": True})},
            "optional": {"default_focal_mm": spec("FLOAT", default=30.0, min=1.0, max=500.0, step=0.1)},
        }

    @classmethod
    def is_changed(cls, folders: Folders, inputs: dict[str, Any]) -> Any:
        path = folders.annotated_path(str(inputs.get("image")))
        return file_sha256(path) if path.is_file() else ""

    async def run(self, ctx: NodeRun, *, image: str, default_focal_mm: float = 30.0, **_: Any) -> NodeResult:
        images, masks = (await super().run(ctx, image=image)).outputs
        focal = await asyncio.to_thread(_focal_length_mm, ctx.folders.annotated_path(image), default_focal_mm)
        return NodeResult((images, masks, focal))


def _focal_length_mm(path: Path, default_mm: float) -> float:
    with Image.open(path) as img:
        exif = img.getexif()
        tags = {**exif, **exif.get_ifd(0x8769)}
    f_35 = tags.get(0xA405)  # FocalLengthIn35mmFilm
    if f_35 is None or float(f_35) < 1:
        focal = tags.get(0x920A)  # FocalLength
        if focal is None:
            return float(default_mm)
        f_35 = float(focal) * 8.4 if float(focal) < 10.0 else float(focal)
    return float(f_35)


class GaussianViewer(Node):
    CLASS_TYPE = "GaussianViewer"
    DISPLAY_NAME = "GaussianViewer"
    CATEGORY = "geompack/visualization"
    PYTHON_MODULE = "custom_nodes.comfyui-GaussianViewer"
    OUTPUT_NODE = True
    RETURN_TYPES = ("IMAGE", "EXTRINSICS", "INTRINSICS")
    RETURN_NAMES = ("image", "extrinsics", "intrinsics")

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {"ply_path": spec("STRING", forceInput=True)},
            "optional": {
                "extrinsics": spec("EXTRINSICS"),
                "intrinsics": spec("INTRINSICS"),
                "image": spec("IMAGE"),
            },
            "hidden": {"node_id": "UNIQUE_ID"},
        }

    @classmethod
    def is_changed(cls, folders: Folders, inputs: dict[str, Any]) -> Any:
        return repr((inputs.get("ply_path"), inputs.get("extrinsics"), inputs.get("intrinsics")))

    async def run(
        self,
        ctx: NodeRun,
        *,
        ply_path: str = "",
        extrinsics: Any = None,
        intrinsics: Any = None,
        image: Images | None = None,
        **_: Any,
    ) -> NodeResult:
        if not ply_path:
            return NodeResult((_placeholder(1.0), None, None), ui={"error": ["No PLY path provided"]})
        path = Path(ply_path)
        if not path.exists():
            return NodeResult((_placeholder(1.0), None, None), ui={"error": [f"File not found: {ply_path}"]})
        filename, subfolder, relative = _output_file_info(ctx.folders.output, path)
        ui: dict[str, list[Any]] = {
            "ply_file": [relative],
            "filename": [filename],
            "subfolder": [subfolder],
            "type": ["output"],
            "file_size_mb": [round(path.stat().st_size / (1024 * 1024), 2)],
        }
        if extrinsics is not None:
            ui["extrinsics"] = [extrinsics]
        if intrinsics is not None:
            ui["intrinsics"] = [intrinsics]
        if image is not None:
            overlay = f"gaussian_overlay_{uuid.uuid4().hex}.png"
            await asyncio.to_thread(image.frames[0].save, ctx.folders.output / overlay)
            ui["overlay_image"] = [overlay]
        rendered = await self._render(ctx, path, relative, filename, subfolder, extrinsics, intrinsics)
        return NodeResult((rendered, None, None), ui=ui)

    async def _render(
        self,
        ctx: NodeRun,
        path: Path,
        relative: str,
        filename: str,
        subfolder: str,
        extrinsics: Any,
        intrinsics: Any,
    ) -> Images:
        aspect = _aspect(intrinsics)
        request_id = f"render-{uuid.uuid4().hex[:16]}"
        payload = {
            "request_id": request_id,
            "node_id": ctx.node_id,
            "ply_file": relative,
            "filename": filename,
            "subfolder": subfolder,
            "type": "output",
            "output_resolution": _resolution(aspect),
            "output_aspect_ratio": "source",
            "extrinsics": extrinsics,
            "intrinsics": intrinsics,
            "camera_state": None,
        }
        answer = await ctx.ask_browser(
            "geompack_render_request", payload, request_id, ctx.behaviour.browser_render_timeout_s
        )
        if answer is None or answer.image is None:  # timeout or the browser's render_error
            return _placeholder(aspect)
        data = base64.b64decode(answer.image.split(",", 1)[-1])
        rendered = Image.open(io.BytesIO(data)).convert("RGB")
        name = f"gaussian-{path.stem[:50]}-render-{uuid.uuid4().hex[:12]}.png"
        write_bytes(ctx.folders.output / name, data)
        return Images((rendered,))


def _output_file_info(output: Path, path: Path) -> tuple[str, str, str]:
    """(filename, subfolder, relative path) for /view, as `get_comfy_output_file_info` computes."""
    try:
        relative = path.resolve().relative_to(output.resolve())
    except ValueError:
        return path.name, "", path.name
    parts = relative.parts
    return parts[-1], "/".join(parts[:-1]), "/".join(parts)


def _aspect(intrinsics: Any) -> float:
    try:
        cx, cy = float(intrinsics[0][2]), float(intrinsics[1][2])
    except (TypeError, IndexError, ValueError):
        return 1.0
    return cx / cy if cx > 0 and cy > 0 else 1.0


def _resolution(aspect: float, min_dim: int = 2048) -> int:
    return round(min_dim * aspect) if aspect >= 1.0 else round(min_dim / aspect)


def _placeholder(aspect: float) -> Images:
    resolution = _resolution(aspect)
    if aspect >= 1.0:
        size = (resolution, max(1, round(resolution / aspect)))
    else:
        size = (max(1, round(resolution * aspect)), resolution)
    return Images((Image.new("RGB", size, (0, 0, 0)),))


class ExtrinsicsToPose(Node):
    CLASS_TYPE = "ExtrinsicsToPose"
    DISPLAY_NAME = "Extrinsics to Pose"
    CATEGORY = "geompack/camera"
    PYTHON_MODULE = "custom_nodes.comfyui-GaussianViewer"
    RETURN_TYPES = ("FLOAT", "FLOAT", "FLOAT", "FLOAT", "FLOAT", "FLOAT", "STRING")
    RETURN_NAMES = ("x", "y", "z", "pitch", "yaw", "roll", "pose_string")

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {"required": {"extrinsics": spec("EXTRINSICS")}}

    async def run(self, ctx: NodeRun, *, extrinsics: Any = None, **_: Any) -> NodeResult:
        if extrinsics is None:
            return NodeResult((0.0, 0.0, 0.0, 0.0, 0.0, 0.0, ""))
        m = extrinsics
        x, y, z = (round(float(m[i][3]), 2) for i in range(3))
        if abs(m[2][1]) < 0.99999:
            pitch, yaw, roll = math.asin(-m[2][1]), math.atan2(m[2][0], m[2][2]), math.atan2(m[0][1], m[1][1])
        else:
            pitch, yaw, roll = math.copysign(math.pi / 2, -m[2][1]), math.atan2(-m[0][2], m[0][0]), 0.0
        pitch, yaw, roll = (round(math.degrees(a), 2) for a in (pitch, yaw, roll))
        pose = f'"x":{x},"y":{y},"z":{z},"pitch":{pitch},"yaw":{yaw},"roll":{roll}'
        return NodeResult((x, y, z, pitch, yaw, roll, pose))
