"""ComfyUI's 400 body from POST /prompt, as one readable line per problem. Pure.

ComfyUI answers a workflow it refuses with ``{"error": {...}, "node_errors": {node id: {...}}}``
(shared/comfyui-protocol); each problem becomes a line naming the node, its class, the input and
what to do (a missing model lists the values that are available).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["describe_validation_errors"]


def describe_validation_errors(body: Any, workflow: Mapping[str, Any]) -> list[str]:
    """One readable line per problem in ComfyUI's 400 body from POST /prompt."""
    if not isinstance(body, Mapping):
        return [f"ComfyUI answered 400 without a JSON error body: {str(body)[:300]!r}"]
    problems: list[str] = []
    node_errors = body.get("node_errors")
    if isinstance(node_errors, Mapping):
        for node_id, entry in node_errors.items():
            problems.extend(_describe_node(str(node_id), entry, workflow))
    if not problems:
        problems.append(_describe_top_level(body.get("error")))
    return problems


def _describe_top_level(error: Any) -> str:
    if not isinstance(error, Mapping):
        return "ComfyUI rejected the prompt without saying why"
    kind = str(error.get("type", ""))
    message = str(error.get("message", "")).strip().rstrip(".")
    details = str(error.get("details", "")).strip()
    line = f"{message} ({details})" if details and details != message else message
    hints = {
        "invalid_prompt": "install the custom node pack that provides it, or fix the class_type",
        "prompt_no_outputs": "add an output node such as SaveImage",
    }
    if "missing the class_type" in message:
        return f"{line}: every node needs a class_type; export with 'Save (API Format)'"
    if kind in hints:
        return f"{line}: {hints[kind]}"
    return line or kind or "ComfyUI rejected the prompt"


def _describe_node(node_id: str, entry: Any, workflow: Mapping[str, Any]) -> list[str]:
    if not isinstance(entry, Mapping):
        return [f"node {node_id}: {entry!r}"]
    class_type = entry.get("class_type")
    if not class_type and isinstance(workflow.get(node_id), Mapping):
        class_type = workflow[node_id].get("class_type")
    where = f"node {node_id} ({class_type or '?'})"
    lines = []
    for error in entry.get("errors") or []:
        if not isinstance(error, Mapping):
            continue
        lines.append(f"{where} {_describe_input_error(error)}")
    return lines or [f"{where}: rejected by ComfyUI"]


def _describe_input_error(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    message = str(error.get("message", "")).strip()
    details = str(error.get("details", "")).strip()
    extra_info = error.get("extra_info")
    extra: Mapping[str, Any] = extra_info if isinstance(extra_info, Mapping) else {}
    input_name = extra.get("input_name")
    prefix = f"input '{input_name}': " if input_name else ""
    if kind == "required_input_missing":
        return f"input '{details or input_name}': required input is missing"
    if kind == "value_not_in_list":
        # details look like "ckpt_name: 'x.safetensors' not in ['a', 'b']"
        name, _, rest = details.partition(": ")
        value, _, options = rest.partition(" not in ")
        available = options if options and options != "[]" else "none (the folder is empty)"
        hint = "; the file is missing from ComfyUI's models folder" if _looks_like_file(value) else ""
        return f"input '{name}': value {value} is not available{hint}. Available: {available}"
    if kind == "custom_validation_failed":
        text = details.split(" - ", 1)[1] if " - " in details else details or message
        hint = ""
        if "Invalid image file" in text:
            hint = "; send the file in input.images under that name, or fix the name in the node"
        return f"{prefix}{text}{hint}"
    if kind == "exception_during_validation":
        exc_type = extra.get("exception_type", "error")
        return f"{prefix}validation raised {exc_type}: {details} (a link points at a missing node or output?)"
    if details == input_name:
        details = ""  # ComfyUI repeats the input name here; the prefix already says it
    text = f"{message}: {details}" if details and details not in message else message
    return f"{prefix}{text}" if text else f"{prefix}{kind}"


def _looks_like_file(value: str) -> bool:
    return any(
        value.strip("'\"").lower().endswith(ext)
        for ext in (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx")
    )
