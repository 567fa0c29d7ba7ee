"""The values that flow along links between fake nodes (ComfyUI's IMAGE, LATENT, MODEL, ...).

Real ComfyUI passes torch tensors; here an IMAGE is a batch of small Pillow images and the model
types are named handles. Each value has a short `repr`, because `execution_error.current_inputs`
shows linked values as `str(value)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

__all__ = [
    "Audio",
    "Conditioning",
    "Images",
    "Latent",
    "Masks",
    "Mesh",
    "ModelHandle",
    "Preview",
    "UpscaleModel",
    "Video",
]


@dataclass(frozen=True, eq=False)
class Images:
    """IMAGE: a batch of RGB frames, all the same size."""

    frames: tuple[Image.Image, ...]

    @property
    def width(self) -> int:
        return self.frames[0].width

    @property
    def height(self) -> int:
        return self.frames[0].height

    def __len__(self) -> int:
        return len(self.frames)

    def __repr__(self) -> str:
        return f"IMAGE[{len(self.frames)}x{self.height}x{self.width}x3]"


@dataclass(frozen=True, eq=False)
class Masks:
    """MASK: a batch of single-channel frames."""

    frames: tuple[Image.Image, ...]

    def __repr__(self) -> str:
        first = self.frames[0]
        return f"MASK[{len(self.frames)}x{first.height}x{first.width}]"


@dataclass(frozen=True)
class Latent:
    """LATENT: pixel size of the image it decodes to, batch size and the seed that filled it."""

    width: int
    height: int
    batch_size: int
    seed: int | None = None

    def __repr__(self) -> str:
        return f"LATENT[{self.batch_size}x4x{self.height // 8}x{self.width // 8}]"


@dataclass(frozen=True)
class ModelHandle:
    """MODEL, CLIP or VAE loaded from a checkpoint file."""

    kind: str
    name: str


@dataclass(frozen=True)
class Conditioning:
    text: str


@dataclass(frozen=True)
class UpscaleModel:
    name: str
    scale: int


@dataclass(frozen=True, eq=False)
class Video:
    """VIDEO: frames plus frame rate (ComfyUI's VideoFromComponents)."""

    images: Images
    fps: float


@dataclass(frozen=True)
class Audio:
    """AUDIO: only what the fake writers need."""

    sample_rate: int
    channels: int
    num_samples: int
    source: str = ""


@dataclass(frozen=True)
class Mesh:
    vertices: tuple[tuple[float, float, float], ...]
    faces: tuple[tuple[int, int, int], ...] = field(default=())


@dataclass(frozen=True, eq=False)
class Preview:
    """An image a node hands to its progress bar: `("PNG", img, None)` / `("JPEG", img, 512)`."""

    image_format: str
    image: Image.Image
    max_size: int | None = None
