"""The contract between the executor and a fake node class.

A node class declares its ComfyUI schema as class attributes plus `input_types()` (what
/object_info shows and validation checks) and implements `run()`, which receives its inputs as
keyword arguments and a `NodeRun` through which it reports progress, the way ComfyUI nodes use
`ProgressBar` and `PromptServer.send_progress_text`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from ..behaviour import Behaviour
from ..browser import BrowserAnswer
from ..folders import Folders
from .values import Preview

__all__ = ["InputTypes", "InterruptProcessing", "Node", "NodeResult", "NodeRun", "spec"]

InputTypes = dict[str, dict[str, Any]]
"""`{"required": {name: spec}, "optional": {...}, "hidden": {...}}` as in ComfyUI's INPUT_TYPES."""


def spec(kind: Any, **options: Any) -> tuple[Any, ...]:
    """An input spec: `("INT", {"min": 1})`, or `("IMAGE",)` when there are no options."""
    return (kind, options) if options else (kind,)


class InterruptProcessing(Exception):
    """Raised at an interrupt check after `POST /interrupt` (ComfyUI's InterruptProcessingException)."""


@dataclass(frozen=True)
class NodeResult:
    """What a node returns: its link outputs and, for UI nodes, the `executed` output object."""

    outputs: tuple[Any, ...] = ()
    ui: dict[str, Any] | None = None


class NodeRun(Protocol):
    """What a running node may use from the executor."""

    node_id: str
    prompt_id: str
    folders: Folders
    behaviour: Behaviour
    prompt: dict[str, Any]
    extra_pnginfo: dict[str, Any] | None

    async def progress(self, value: int, total: int, preview: Preview | None = None) -> None:
        """ComfyUI `ProgressBar.update_absolute`: `progress_state`, `progress`, preview frame."""
        ...

    async def step(self) -> None:
        """One unit of interruptible work: sleeps `step_delay_s`, raises InterruptProcessing."""
        ...

    def send_text(self, text: str) -> None:
        """A binary TEXT frame for this node, to every socket (GetImageSize)."""
        ...

    def record_video(self, path: Path, width: int, height: int, fps: float, frame_count: int) -> None:
        """Tell the server what a saved video holds (today's ComfyUI reads it from the file header)."""
        ...

    async def ask_browser(
        self, event: str, payload: dict[str, Any], request_id: str, timeout_s: float
    ) -> BrowserAnswer | None:
        """Broadcast `event` and wait up to `timeout_s` for a browser's answer (GaussianViewer)."""
        ...


class Node:
    """Base class of the fake nodes; subclasses set the class attributes and `run`."""

    CLASS_TYPE: ClassVar[str] = ""
    DISPLAY_NAME: ClassVar[str] = ""
    CATEGORY: ClassVar[str] = "sd"
    DESCRIPTION: ClassVar[str] = ""
    PYTHON_MODULE: ClassVar[str] = "nodes"
    RETURN_TYPES: ClassVar[tuple[str, ...]] = ()
    RETURN_NAMES: ClassVar[tuple[str, ...] | None] = None
    OUTPUT_TOOLTIPS: ClassVar[tuple[str | None, ...] | None] = None
    OUTPUT_NODE: ClassVar[bool] = False
    NEW_STYLE: ClassVar[bool] = False
    """A ComfyUI "v3" schema node: /object_info adds output_tooltips/deprecated/experimental/api_node
    and lists hidden inputs as one-element lists."""
    EXPERIMENTAL: ClassVar[bool] = False
    VALIDATED_INPUTS: ClassVar[tuple[str, ...]] = ()
    """Inputs checked by `validate()` (ComfyUI's VALIDATE_INPUTS) instead of the generic checks."""

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {"required": {}}

    @classmethod
    def validate(cls, folders: Folders, inputs: dict[str, Any]) -> bool | str:
        """Custom validation: True, or the reason shown in `custom_validation_failed`."""
        return True

    @classmethod
    def is_changed(cls, folders: Folders, inputs: dict[str, Any]) -> Any:
        """ComfyUI's IS_CHANGED: part of the cache key, so a new value forces a re-run."""
        return ""

    # `*args: Any, **inputs: Any` lets each node declare its own keyword inputs (the executor passes the
    # node's inputs by name) without breaking the override rule.
    async def run(self, ctx: NodeRun, *args: Any, **inputs: Any) -> NodeResult:
        raise NotImplementedError
