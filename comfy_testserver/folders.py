"""The ComfyUI install-directory layout under `root`, and ComfyUI's rules for naming files in it.

Mirrors `folder_paths.py` of ComfyUI 0.3.64: `input/`, `output/`, `temp/`, `models/<folder>/`,
`name [input]`-style annotated names, and `get_save_image_path`'s counter that continues from the
files already on disk.
"""

from __future__ import annotations

import mimetypes
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MODEL_FOLDERS", "Folders", "SavePath", "UnsafePathError"]

# GET /models, in the order the real server listed them (transcript 00).
MODEL_FOLDERS: tuple[str, ...] = (
    "checkpoints",
    "configs",
    "loras",
    "vae",
    "text_encoders",
    "diffusion_models",
    "clip_vision",
    "style_models",
    "embeddings",
    "diffusers",
    "vae_approx",
    "controlnet",
    "gligen",
    "upscale_models",
    "custom_nodes",
    "hypernetworks",
    "photomaker",
    "classifiers",
    "model_patches",
    "audio_encoders",
)

_ANNOTATIONS = {" [input]": "input", " [output]": "output", " [temp]": "temp"}


class UnsafePathError(ValueError):
    """A file name or prefix that would leave its base folder."""


@dataclass(frozen=True)
class SavePath:
    """Where a save node writes: `folder/<filename>_<counter:05>_.<ext>`, reported with `subfolder`."""

    folder: Path
    filename: str
    counter: int
    subfolder: str


class Folders:
    """The directories of one fake ComfyUI install."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.input = self.root / "input"
        self.output = self.root / "output"
        self.temp = self.root / "temp"
        self.models = self.root / "models"

    def create(self) -> None:
        """Create the layout and empty `temp/`, which ComfyUI wipes on every start."""
        for path in (self.input, self.output, self.models / "checkpoints", self.models / "upscale_models"):
            path.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.temp, ignore_errors=True)
        self.temp.mkdir(parents=True, exist_ok=True)

    def by_type(self, folder_type: str) -> Path | None:
        return {"input": self.input, "output": self.output, "temp": self.temp}.get(folder_type)

    # --- input files -------------------------------------------------------------------------------

    def input_files(self, kinds: tuple[str, ...] = ("image",)) -> list[str]:
        """Files directly in `input/` whose MIME type is one of `kinds`, sorted: the options
        LoadImage (`image`) and LoadAudio (`audio`, `video`) offer in /object_info."""
        if not self.input.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.input.iterdir()
            if entry.is_file() and (mimetypes.guess_type(entry.name)[0] or "").split("/")[0] in kinds
        )

    def split_annotation(self, name: str) -> tuple[str, Path | None]:
        """`"x.png [temp]"` -> `("x.png", temp/)`; names without an annotation give `(name, None)`."""
        for suffix, folder_type in _ANNOTATIONS.items():
            if name.endswith(suffix):
                return name[: -len(suffix)], self.by_type(folder_type)
        return name, None

    def annotated_path(self, name: str, default: str = "input") -> Path:
        """Resolve `sub/name.png` or `name.png [output]` the way LoadImage does."""
        name, base = self.split_annotation(name)
        base = base or self.by_type(default)
        assert base is not None
        return base / name

    def exists_annotated(self, name: str) -> bool:
        return self.annotated_path(name).is_file()

    # --- models ------------------------------------------------------------------------------------

    def model_files(self, folder: str) -> list[str]:
        """Every file under `models/<folder>` (recursive, `/`-separated, sorted)."""
        base = self.models / folder
        if not base.is_dir():
            return []
        return sorted(path.relative_to(base).as_posix() for path in base.rglob("*") if path.is_file())

    # --- saving ------------------------------------------------------------------------------------

    def save_path(self, filename_prefix: str, base: Path) -> SavePath:
        """ComfyUI's `get_save_image_path`: a `/` in the prefix becomes a subfolder, and the counter
        continues after the highest `<prefix>_NNNNN_*` file already there."""
        prefix = _expand_date_vars(filename_prefix)
        normalised = os.path.normpath(prefix)
        subfolder = os.path.dirname(normalised)
        filename = os.path.basename(normalised)
        folder = (base / subfolder).resolve()
        if os.path.commonpath((str(base), str(folder))) != str(base):
            raise UnsafePathError(
                "**** ERROR: Saving image outside the output folder is not allowed."
                f"\n full_output_folder: {folder}\n         output_dir: {base}"
            )
        folder.mkdir(parents=True, exist_ok=True)
        counter = 1 + max((_counter_of(name, filename) for name in os.listdir(folder)), default=0)
        return SavePath(folder=folder, filename=filename, counter=counter, subfolder=subfolder)


def _counter_of(existing: str, filename: str) -> int:
    """The NNNNN of `<filename>_NNNNN_...`, or 0 when `existing` is not one of ours."""
    head = existing[: len(filename) + 1]
    if os.path.normcase(head[:-1]) != os.path.normcase(filename) or head[-1:] != "_":
        return 0
    try:
        return int(existing[len(filename) + 1 :].split("_")[0])
    except ValueError:
        return 0


def _expand_date_vars(prefix: str) -> str:
    if "%" not in prefix:
        return prefix
    now = time.localtime()
    for var, value in (
        ("%year%", str(now.tm_year)),
        ("%month%", f"{now.tm_mon:02}"),
        ("%day%", f"{now.tm_mday:02}"),
        ("%hour%", f"{now.tm_hour:02}"),
        ("%minute%", f"{now.tm_min:02}"),
        ("%second%", f"{now.tm_sec:02}"),
    ):
        prefix = prefix.replace(var, value)
    return prefix
