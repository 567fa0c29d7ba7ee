"""`POST /prompt` validation, producing the error bodies recorded in transcript 09.

A port of `validate_prompt` / `validate_inputs` from ComfyUI 0.3.64's `execution.py`, including
its quirks: the first unknown or missing class_type anywhere rejects the whole prompt with
`node_errors: {}`; the top-level `details` only lists errors of the output nodes themselves (so a
missing widget upstream gives `""` but a missing link on SaveImage gives "Required input is
missing: images"); a broken node is charged to every failing output checked after it; and a
prompt with at least one valid output is accepted with the broken ones in `node_errors`.
With `missing_node_type=True` (the `current` profile) an unknown or missing class_type is today's
`missing_node_type` error naming the node's title (PROFILES.md "Validation").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .folders import Folders
from .nodes import NODE_CLASSES

__all__ = ["Validation", "full_type_name", "validate_prompt"]

# Tracebacks in validation errors name ComfyUI's own frames, in the redacted form of the
# transcripts; the line numbers are the recorded ones (1010 / 788 / 790).
_FRAME = '  File "/comfyui/execution.py", line {line}, in {func}\n    <source line omitted>\n'
_LINE_LINK_NODE = 788
_LINE_LINK_SLOT = 790
_LINE_INNER_CALL = 828
_LINE_OUTER_CALL = 1010

ValidationState = tuple[bool, list[dict[str, Any]]]


@dataclass
class Validation:
    """The outcome: `ok`, the top-level `error` when rejected, outputs to run and `node_errors`."""

    ok: bool
    error: dict[str, Any] | None = None
    outputs: list[str] = field(default_factory=list)
    node_errors: dict[str, Any] = field(default_factory=dict)


def validate_prompt(
    prompt: Any,
    folders: Folders,
    partial_targets: list[str] | None = None,
    *,
    missing_node_type: bool = False,
) -> Validation:
    """Validate an API-format prompt. Raises (-> HTTP 500) when `prompt` is not an object.

    Like ComfyUI, converts widget values in place (`"64"` -> `64` for INT inputs).
    """
    if not isinstance(prompt, dict):
        raise TypeError(f"string indices must be integers, not 'str' (prompt is {type(prompt).__name__})")
    outputs: list[str] = []
    for node_id, node in prompt.items():
        if missing_node_type and (error := _missing_node_type(node_id, node)) is not None:
            return Validation(False, error)
        if "class_type" not in node:
            return Validation(
                False,
                _invalid_prompt("Cannot execute because a node is missing the class_type property.", node_id),
            )
        cls = NODE_CLASSES.get(node["class_type"])
        if cls is None:
            return Validation(
                False,
                _invalid_prompt(f"Cannot execute because node {node['class_type']} does not exist.", node_id),
            )
        if cls.OUTPUT_NODE and (partial_targets is None or node_id in partial_targets):
            outputs.append(node_id)
    if not outputs:
        return Validation(False, _error("prompt_no_outputs", "Prompt has no outputs", ""))

    validated: dict[str, ValidationState] = {}
    failures: list[tuple[str, list[dict[str, Any]]]] = []
    node_errors: dict[str, Any] = {}
    good: list[str] = []
    for output in outputs:
        try:
            valid, reasons = _validate_node(prompt, output, validated, folders)
        except Exception as ex:  # noqa: BLE001 - every failure becomes a validation error, as in ComfyUI
            valid = False
            reasons = [
                _exception_reason(
                    "exception_during_validation",
                    "Exception when validating node",
                    ex,
                    _FRAME.format(line=_LINE_OUTER_CALL, func="validate_prompt"),
                )
            ]
            validated[output] = (False, reasons)
        if valid:
            good.append(output)
            continue
        failures.append((output, reasons))
        for node_id, (node_ok, node_reasons) in validated.items():
            # Nodes downstream of a broken one fail without reasons of their own; they are not listed.
            if node_ok or not node_reasons:
                continue
            entry = node_errors.setdefault(
                node_id,
                {
                    "errors": node_reasons,
                    "dependent_outputs": [],
                    "class_type": prompt[node_id]["class_type"],
                },
            )
            entry["dependent_outputs"].append(output)

    if not good:
        details = "\n".join(f"{r['message']}: {r['details']}" for _, reasons in failures for r in reasons)
        error = _error("prompt_outputs_failed_validation", "Prompt outputs failed validation", details)
        return Validation(False, error, [], node_errors)
    return Validation(True, None, good, node_errors)


def _validate_node(
    prompt: dict[str, Any], node_id: str, validated: dict[str, ValidationState], folders: Folders
) -> ValidationState:
    if node_id in validated:
        return validated[node_id]
    validated[node_id] = (False, [])  # a link cycle ends here instead of recursing forever
    node = prompt[node_id]
    inputs = node["inputs"]
    cls = NODE_CLASSES[node["class_type"]]
    types = cls.input_types(folders)
    required = types.get("required", {})
    optional = {k: v for k, v in types.get("optional", {}).items() if k not in required}
    errors: list[dict[str, Any]] = []
    valid = True

    for name, (category, input_spec) in _declared(required, optional).items():
        input_type = input_spec[0]
        extra = input_spec[1] if len(input_spec) > 1 else {}
        info = [input_type, extra]
        if name not in inputs:
            if category == "required":
                errors.append(
                    _reason("required_input_missing", "Required input is missing", name, {"input_name": name})
                )
            continue
        value = inputs[name]
        if isinstance(value, list):
            outcome = _check_link(prompt, name, value, input_type, info, validated, folders)
            if outcome is not None:
                if outcome:
                    errors.append(outcome)
                valid = False
            continue
        error = _check_widget(inputs, name, value, input_type, extra, info, cls.VALIDATED_INPUTS)
        if error is not None:
            errors.append(error)

    # Linked values do not exist before execution, so only widget values reach the custom check.
    widgets = [name for name in cls.VALIDATED_INPUTS if name in inputs and not isinstance(inputs[name], list)]
    if cls.VALIDATED_INPUTS and widgets == list(cls.VALIDATED_INPUTS):
        verdict = cls.validate(folders, {name: inputs[name] for name in cls.VALIDATED_INPUTS})
        if verdict is not True:
            for name in cls.VALIDATED_INPUTS:
                details = name if verdict is False else f"{name} - {verdict}"
                errors.append(
                    _reason(
                        "custom_validation_failed",
                        "Custom validation failed for node",
                        details,
                        {"input_name": name},
                    )
                )

    state: ValidationState = (not errors and valid, errors)
    validated[node_id] = state
    return state


def _declared(required: dict[str, Any], optional: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    declared = {name: ("required", value) for name, value in required.items()}
    declared.update({name: ("optional", value) for name, value in optional.items()})
    return declared


def _check_link(
    prompt: dict[str, Any],
    name: str,
    value: list[Any],
    input_type: Any,
    info: list[Any],
    validated: dict[str, ValidationState],
    folders: Folders,
) -> dict[str, Any] | None:
    """None when the link is fine; an error; or `{}` when the linked node failed on its own."""
    if len(value) != 2:
        return _reason(
            "bad_linked_input",
            "Bad linked input, must be a length-2 list of [node_id, slot_index]",
            name,
            {"input_name": name, "input_config": info, "received_value": value},
        )
    source_id = value[0]
    try:
        source_class = prompt[source_id]["class_type"]
    except Exception as ex:
        _add_frame(ex, _FRAME.format(line=_LINE_LINK_NODE, func="validate_inputs"))
        raise
    try:
        received_type = NODE_CLASSES[source_class].RETURN_TYPES[value[1]]
    except Exception as ex:
        _add_frame(ex, _FRAME.format(line=_LINE_LINK_SLOT, func="validate_inputs"))
        raise
    if not _types_match(received_type, input_type):
        return _reason(
            "return_type_mismatch",
            "Return type mismatch between linked nodes",
            f"{name}, received_type({received_type}) mismatch input_type({input_type})",
            {"input_name": name, "input_config": info, "received_type": received_type, "linked_node": value},
        )
    try:
        source_ok, _ = _validate_node(prompt, source_id, validated, folders)
    except Exception as ex:  # noqa: BLE001 - reported on the linked node, as ComfyUI does
        frame = _FRAME.format(line=_LINE_INNER_CALL, func="validate_inputs")
        reason = _exception_reason(
            "exception_during_inner_validation", "Exception when validating inner node", ex, frame
        )
        reason["extra_info"].update(
            {"input_name": name, "input_config": info, "exception_message": str(ex), "linked_node": value}
        )
        validated[source_id] = (False, [reason])
        return {}
    return None if source_ok else {}


def _check_widget(
    inputs: dict[str, Any],
    name: str,
    value: Any,
    input_type: Any,
    extra: dict[str, Any],
    info: list[Any],
    custom_validated: tuple[str, ...],
) -> dict[str, Any] | None:
    try:
        if isinstance(value, dict) and "__value__" in value:
            value = inputs[name] = value["__value__"]
        converter = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}.get(
            input_type if isinstance(input_type, str) else ""
        )
        if converter is not None:
            value = inputs[name] = converter(value)
    except Exception as ex:  # noqa: BLE001 - any conversion failure is an invalid_input_type
        return _reason(
            "invalid_input_type",
            f"Failed to convert an input value to a {input_type} value",
            f"{name}, {value}, {ex}",
            {"input_name": name, "input_config": info, "received_value": value, "exception_message": str(ex)},
        )
    if name in custom_validated:
        return None
    if "min" in extra and value < extra["min"]:
        return _reason(
            "value_smaller_than_min",
            f"Value {value} smaller than min of {extra['min']}",
            name,
            {"input_name": name, "input_config": info, "received_value": value},
        )
    if "max" in extra and value > extra["max"]:
        return _reason(
            "value_bigger_than_max",
            f"Value {value} bigger than max of {extra['max']}",
            name,
            {"input_name": name, "input_config": info, "received_value": value},
        )
    if isinstance(input_type, list) or input_type == "COMBO":
        options = extra.get("options", []) if input_type == "COMBO" else input_type
        if value not in options:
            # ComfyUI does not echo long lists (e.g. hundreds of model files) back.
            if len(options) > 20:
                shown, config = f"(list of length {len(options)})", None
            else:
                shown, config = str(options), info
            return _reason(
                "value_not_in_list",
                "Value not in list",
                f"{name}: '{value}' not in {shown}",
                {"input_name": name, "input_config": config, "received_value": value},
            )
    return None


def _types_match(received: Any, expected: Any) -> bool:
    """ComfyUI's validate_node_input: equal, `*` on either side, or overlapping comma unions."""
    if isinstance(expected, list):
        expected = "COMBO"
    if received == expected or received == "*" or expected == "*":
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    return bool({t.strip() for t in received.split(",")} & {t.strip() for t in expected.split(",")})


def _reason(kind: str, message: str, details: str, extra_info: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra_info}


def _error(kind: str, message: str, details: str) -> dict[str, Any]:
    return _reason(kind, message, details, {})


def _missing_node_type(node_id: str, node: dict[str, Any]) -> dict[str, Any] | None:
    """Today's execution.py validate_prompt: a node without class_type, or with an unknown one."""
    meta = node.get("_meta")
    title = meta.get("title") if isinstance(meta, dict) else None
    if "class_type" not in node:
        message = (
            f"Node '{title or f'ID #{node_id}'}' has no class_type. "
            "The workflow may be corrupted or a custom node is missing."
        )
        class_type = None
    elif node["class_type"] not in NODE_CLASSES:
        class_type = node["class_type"]
        title = title or class_type
        message = f"Node '{title}' not found. The custom node may not be installed."
    else:
        return None
    extra_info = {"node_id": node_id, "class_type": class_type, "node_title": title}
    return _reason("missing_node_type", message, f"Node ID '#{node_id}'", extra_info)


def _invalid_prompt(message: str, node_id: str) -> dict[str, Any]:
    return _error("invalid_prompt", message, f"Node ID '#{node_id}'")


def _add_frame(ex: BaseException, frame: str) -> None:
    frames = getattr(ex, "comfy_frames", [])
    ex.comfy_frames = [frame, *frames]  # type: ignore[attr-defined]


def _exception_reason(kind: str, message: str, ex: Exception, outer_frame: str) -> dict[str, Any]:
    frames = [outer_frame, *getattr(ex, "comfy_frames", [])]
    return _reason(kind, message, str(ex), {"exception_type": full_type_name(type(ex)), "traceback": frames})


def full_type_name(klass: type) -> str:
    """`KeyError` for builtins, `module.Qualname` otherwise (ComfyUI's full_type_name)."""
    if klass.__module__ == "builtins":
        return klass.__qualname__
    return f"{klass.__module__}.{klass.__qualname__}"
