"""What the DEBUG WebSocket trace (WEBSOCKET_TRACE) shows of a ComfyUI frame. Pure.

An ``executed`` frame carries a node's outputs, text outputs included, and a text output can hold
what the job's result redacts (a key a node echoed); the trace logs frames before any redaction.
So the trace shows each frame's type and shape, and replaces output values by their size.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["trace_line"]

MAX_TRACE_CHARS = 500
_CARRY_TEXT = ("output", "text")  # "executed" outputs; "progress_text" frames (nodes' own text)


def trace_line(frame: str) -> str:
    """One log line for a text frame: its JSON with output and text values replaced by their size."""
    try:
        message = json.loads(frame)
    except ValueError:
        return f"(not JSON, {len(frame)} chars)"
    if not isinstance(message, dict):
        return f"(a JSON {type(message).__name__}, {len(frame)} chars)"
    data = message.get("data")
    if isinstance(data, dict):
        message = {**message, "data": {key: _masked(key, value) for key, value in data.items()}}
    return json.dumps(message)[:MAX_TRACE_CHARS]


def _masked(key: str, value: Any) -> Any:
    if key not in _CARRY_TEXT or value is None:
        return value
    return f"<{len(json.dumps(value))} chars not logged>"
