"""Turn ComfyUI WebSocket frames into typed events. Pure.

Text frames are ``{"type": T, "data": {...}}``; binary frames start with a big-endian u32 event
type (1 = preview/streamed image, 3 = text, 4 = image with JSON metadata). The shapes are the ones
recorded in shared/comfyui-protocol (README "WebSocket"); ``progress_state`` (every version since
0.3.4x: the state of each started node) may carry a node's ``activity`` (what it spends time on,
e.g. ``"loading"``) in newer ComfyUI (docs/comfyui-versions.md).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BinaryImage",
    "BinaryText",
    "BrowserRequest",
    "Event",
    "Executed",
    "Executing",
    "ExecutionCached",
    "ExecutionError",
    "ExecutionInterrupted",
    "ExecutionStart",
    "ExecutionSuccess",
    "Ignored",
    "NodeState",
    "Progress",
    "ProgressState",
    "Status",
    "feature_flags_frame",
    "parse_binary_frame",
    "parse_text_frame",
]

_IMAGE_TYPES = {1: "image/jpeg", 2: "image/png"}


@dataclass(frozen=True)
class Status:
    queue_remaining: int | None
    sid: str | None = None
    prompt_id: None = None


@dataclass(frozen=True)
class ExecutionStart:
    prompt_id: str | None
    timestamp_ms: int | None = None


@dataclass(frozen=True)
class ExecutionCached:
    prompt_id: str | None
    nodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Executing:
    """``node is None`` means the prompt finished (success, error or interrupt)."""

    prompt_id: str | None
    node: str | None


@dataclass(frozen=True)
class Progress:
    prompt_id: str | None
    node: str | None
    value: int
    max: int


@dataclass(frozen=True)
class NodeState:
    """One node of a ``progress_state`` frame: pending/running/finished/error, and its activity."""

    node: str
    state: str
    activity: str | None = None


@dataclass(frozen=True)
class ProgressState:
    """``progress_state``: the state of every node of the prompt that has started."""

    prompt_id: str | None
    nodes: tuple[NodeState, ...] = ()


@dataclass(frozen=True)
class Executed:
    prompt_id: str | None
    node: str
    output: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecutionSuccess:
    prompt_id: str | None


@dataclass(frozen=True)
class ExecutionError:
    prompt_id: str | None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecutionInterrupted:
    prompt_id: str | None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BinaryImage:
    """An image sent over the socket: a latent preview or a streamed output (SaveImageWebsocket)."""

    mime_type: str
    data: bytes = field(repr=False)
    node: str | None = None  # known only for event-4 frames
    prompt_id: str | None = None


@dataclass(frozen=True)
class BinaryText:
    node: str
    text: str
    prompt_id: None = None


@dataclass(frozen=True)
class BrowserRequest:
    """A custom node asking the browser for work (``geompack_render_request`` of GaussianViewer).

    Such frames are broadcast without a prompt id; ``node`` is the asking node's id.
    """

    kind: str
    request_id: str
    node: str | None
    prompt_id: None = None


@dataclass(frozen=True)
class Ignored:
    """A frame the worker has no use for (feature_flags, unknown types)."""

    kind: str
    prompt_id: None = None


Event = (
    Status
    | ExecutionStart
    | ExecutionCached
    | Executing
    | Progress
    | ProgressState
    | Executed
    | ExecutionSuccess
    | ExecutionError
    | ExecutionInterrupted
    | BinaryImage
    | BinaryText
    | BrowserRequest
    | Ignored
)


def feature_flags_frame() -> str:
    """The first frame we send: asks for event-4 images, which name the node that sent them."""
    return json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}})


def parse_text_frame(text: str) -> Event:
    """Parse one JSON text frame; malformed or unknown frames become `Ignored`."""
    try:
        message = json.loads(text)
    except ValueError:
        return Ignored("malformed")
    if not isinstance(message, dict) or not isinstance(message.get("data"), dict):
        return Ignored("malformed")
    kind, data = str(message.get("type")), message["data"]
    prompt_id = _opt_str(data.get("prompt_id"))
    if kind == "status":
        exec_info = (data.get("status") or {}).get("exec_info") or {}
        remaining = exec_info.get("queue_remaining")
        return Status(remaining if isinstance(remaining, int) else None, _opt_str(data.get("sid")))
    if kind == "execution_start":
        return ExecutionStart(prompt_id, data.get("timestamp"))
    if kind == "execution_cached":
        return ExecutionCached(prompt_id, tuple(str(n) for n in data.get("nodes") or []))
    if kind == "executing":
        return Executing(prompt_id, _opt_str(data.get("node")))
    if kind == "progress":
        return Progress(prompt_id, _opt_str(data.get("node")), _int(data.get("value")), _int(data.get("max")))
    if kind == "progress_state":
        return ProgressState(prompt_id, _node_states(data.get("nodes")))
    if kind == "executed":
        output = data.get("output")
        return Executed(prompt_id, str(data.get("node")), output if isinstance(output, dict) else {})
    if kind == "execution_success":
        return ExecutionSuccess(prompt_id)
    if kind == "execution_error":
        return ExecutionError(prompt_id, data)
    if kind == "execution_interrupted":
        return ExecutionInterrupted(prompt_id, data)
    if isinstance(data.get("request_id"), str):
        return BrowserRequest(kind, data["request_id"], _opt_str(data.get("node_id")))
    return Ignored(kind)


def parse_binary_frame(frame: bytes) -> Event:
    """Parse one binary frame (event 1, 3 or 4); anything else becomes `Ignored`."""
    if len(frame) < 8:
        return Ignored("binary:short")
    (event,) = struct.unpack(">I", frame[:4])
    if event == 1:
        (image_type,) = struct.unpack(">I", frame[4:8])
        return BinaryImage(_IMAGE_TYPES.get(image_type, "application/octet-stream"), frame[8:])
    if event == 3:
        (length,) = struct.unpack(">I", frame[4:8])
        node = frame[8 : 8 + length].decode("utf-8", errors="replace")
        return BinaryText(node, frame[8 + length :].decode("utf-8", errors="replace"))
    if event == 4:
        (length,) = struct.unpack(">I", frame[4:8])
        try:
            meta = json.loads(frame[8 : 8 + length])
        except ValueError:
            return Ignored("binary:bad-metadata")
        if not isinstance(meta, dict):
            return Ignored("binary:bad-metadata")
        return BinaryImage(
            str(meta.get("image_type") or "application/octet-stream"),
            frame[8 + length :],
            node=_opt_str(meta.get("node_id")),
            prompt_id=_opt_str(meta.get("prompt_id")),
        )
    return Ignored(f"binary:{event}")


def _node_states(nodes: Any) -> tuple[NodeState, ...]:
    if not isinstance(nodes, dict):
        return ()
    states = []
    for node_id, entry in nodes.items():
        if not isinstance(entry, dict):
            continue
        activity = entry.get("activity")
        states.append(
            NodeState(
                str(node_id),
                str(entry.get("state") or ""),
                activity if isinstance(activity, str) and activity else None,
            )
        )
    return tuple(states)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
