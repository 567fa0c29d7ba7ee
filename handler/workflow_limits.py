"""Bounds a workflow must keep before it reaches ComfyUI, and file paths it may not name. Pure.

ComfyUI trusts the prompt it is given. Found by attacking a real ComfyUI 0.3.64 (issue 14):
- ``PromptQueue.get()`` deep-copies every prompt; an input nested ~495 levels deep raises
  RecursionError there and kills ComfyUI's prompt runner thread for good (depth 400 passes), so
  every later job waits out its deadline. We refuse far below that.
- ``LoadImage`` and the other loaders join the name they are given to the input folder, and
  ``os.path.join`` lets an absolute path or ``..`` escape it: any image on the disk could be
  read back as an output. Their ``VALIDATE_INPUTS`` skips ComfyUI's own list check.
- A file-name part longer than the file system's 255 bytes fails inside the save node, and an
  absolute or ``..`` ``filename_prefix`` fails with a message naming the server's folders.

Every refusal names the node, the input, the limit and how to fix it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import JobInputError

__all__ = [
    "FILE_INPUTS",
    "MAX_FILE_NAME_BYTES",
    "MAX_LIST_ITEMS",
    "MAX_NESTING_DEPTH",
    "MAX_PREFIX_PART_BYTES",
    "MAX_STRING_CHARS",
    "check_file_inputs",
    "check_workflow_limits",
    "file_inputs_of",
]

MAX_NESTING_DEPTH = 100  # ComfyUI's prompt runner dies near 495 (RecursionError in deepcopy)
MAX_STRING_CHARS = 8 * 1024 * 1024  # one string value: far above any prompt text
MAX_LIST_ITEMS = 100_000  # one list or object value
MAX_INT_BITS = 64  # ComfyUI's INT inputs stop at 0xffffffffffffffff
MAX_CLASS_TYPE_CHARS = 256
FS_NAME_BYTES = 255  # NAME_MAX of ext4, xfs, overlayfs
# The worker stores an input as "<8 hex>-<name>" (handler/worker.py, handler/inputs/download.py).
JOB_TAG_CHARS = 9
MAX_FILE_NAME_BYTES = FS_NAME_BYTES - JOB_TAG_CHARS
# Save nodes append a counter and an extension ("_00001_.png", "_00001_.latent", "_00001_.webm"...).
MAX_PREFIX_PART_BYTES = 200

# Loader inputs ComfyUI joins to a folder, by class; /object_info adds any input marked *_upload.
FILE_INPUTS: dict[str, frozenset[str]] = {
    "LoadImage": frozenset({"image"}),
    "LoadImageMask": frozenset({"image"}),
    "LoadImageOutput": frozenset({"image"}),
    "LoadAudio": frozenset({"audio"}),
    "LoadVideo": frozenset({"file"}),
    "Load3D": frozenset({"model_file"}),
    "Load3DAnimation": frozenset({"model_file"}),
    "LoadLatent": frozenset({"latent"}),
}
_UPLOAD_OPTIONS = ("image_upload", "audio_upload", "video_upload", "file_upload", "upload")
_ANNOTATION = re.compile(r" \[(input|output|temp)\]$")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_workflow_limits(
    workflow: Mapping[str, Mapping[str, Any]], *, allowed_paths: Iterable[str] = ()
) -> None:
    """Raise JobInputError for the first value of ``workflow`` ComfyUI could not survive or should not see."""
    allowed = tuple(allowed_paths)
    for node_id, node in workflow.items():
        where = f"input.workflow[{node_id!r}]"
        class_type = str(node.get("class_type", ""))
        _check_class_type(class_type, where)
        _check_nested(node.get("_meta"), f"{where}._meta")
        for name, value in node.get("inputs", {}).items():
            input_where = f"{where}.inputs.{name} ({class_type})"
            _check_nested(value, input_where)
            if name == "filename_prefix" and isinstance(value, str):
                _check_prefix(value, input_where)
        _check_paths(node, FILE_INPUTS.get(class_type, frozenset()), where, allowed)


def file_inputs_of(info: Mapping[str, Any]) -> frozenset[str]:
    """The inputs a node definition from /object_info marks as files (``image_upload`` and kin)."""
    found: set[str] = set()
    spec = info.get("input")
    if not isinstance(spec, Mapping):
        return frozenset()
    for section in ("required", "optional"):
        entries = spec.get(section)
        if not isinstance(entries, Mapping):
            continue
        for name, definition in entries.items():
            options = definition[1] if isinstance(definition, list) and len(definition) > 1 else None
            if isinstance(options, Mapping) and any(options.get(key) for key in _UPLOAD_OPTIONS):
                found.add(str(name))
    return frozenset(found)


def check_file_inputs(
    workflow: Mapping[str, Mapping[str, Any]],
    file_inputs: Mapping[str, frozenset[str]],
    *,
    allowed_paths: Iterable[str] = (),
) -> None:
    """Refuse paths in the inputs that node schemas (``file_inputs`` by class) mark as files."""
    allowed = tuple(allowed_paths)
    for node_id, node in workflow.items():
        names = file_inputs.get(str(node.get("class_type", "")), frozenset())
        if names:
            _check_paths(node, names, f"input.workflow[{node_id!r}]", allowed)


def _check_class_type(class_type: str, where: str) -> None:
    if len(class_type) > MAX_CLASS_TYPE_CHARS or _CONTROL.search(class_type) or "/" in class_type:
        raise JobInputError(
            f"{where}.class_type {class_type[:80]!r} is not a node class ComfyUI can look up (a '/', a "
            f"control character or over {MAX_CLASS_TYPE_CHARS} characters); copy the class_type from "
            "the node's definition or from an API-format export"
        )


def _check_nested(value: Any, where: str) -> None:
    """Walk ``value`` without recursion, so the check itself cannot hit Python's recursion limit."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, tuple, Mapping)):
            if depth > MAX_NESTING_DEPTH:
                raise JobInputError(
                    f"{where} is nested more than {MAX_NESTING_DEPTH} levels deep; ComfyUI's prompt "
                    "runner crashes on deeply nested values (near 495 levels), so the worker refuses "
                    "them: flatten the value"
                )
            if len(item) > MAX_LIST_ITEMS:
                raise JobInputError(
                    f"{where} holds a list or object of {len(item)} items, over the {MAX_LIST_ITEMS}-item "
                    "limit; send large data as a file in input.files instead"
                )
            children = item.values() if isinstance(item, Mapping) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            if len(item) > MAX_STRING_CHARS:
                raise JobInputError(
                    f"{where} holds a string of {len(item)} characters, over the {MAX_STRING_CHARS}-"
                    "character limit; send large data as a file in input.files instead"
                )
        elif isinstance(item, int) and not isinstance(item, bool) and item.bit_length() > MAX_INT_BITS:
            raise JobInputError(
                f"{where} holds an integer of about {int(item.bit_length() * 0.30103) + 1} digits; "
                "ComfyUI's INT inputs stop at 18446744073709551615 (64 bits): use a smaller number"
            )


def _check_prefix(prefix: str, where: str) -> None:
    if _CONTROL.search(prefix):
        raise JobInputError(f"{where} contains a control character (a newline?); use a plain name")
    if _is_absolute(prefix) or ".." in _segments(prefix):
        raise JobInputError(
            f"{where} {prefix[:80]!r} points outside ComfyUI's output folder (absolute or '..'); use a "
            'relative name such as "ComfyUI" or "renders/shot1"'
        )
    for part in _segments(prefix):
        size = len(part.encode("utf-8"))
        if size > MAX_PREFIX_PART_BYTES:
            raise JobInputError(
                f"{where} has a name part of {size} bytes; at most {MAX_PREFIX_PART_BYTES} bytes per "
                f"folder or file name, since ComfyUI adds a counter and extension and file systems stop "
                f"at {FS_NAME_BYTES} bytes: shorten it"
            )


def _check_paths(
    node: Mapping[str, Any], names: frozenset[str], where: str, allowed: tuple[str, ...]
) -> None:
    for name in sorted(names):
        value = node.get("inputs", {}).get(name)
        if not isinstance(value, str):
            continue  # a link to another node, or absent
        path = _ANNOTATION.sub("", value)
        outside = _is_absolute(path) or ".." in _segments(path) or path.startswith("~")
        if outside and not _allowed(path, allowed):
            raise JobInputError(
                f"{where}.inputs.{name} ({node.get('class_type')}) {value[:80]!r} names a file outside "
                "ComfyUI's folders (an absolute path or '..'); send the file in input.images or "
                "input.files and use its plain name, or ask the operator to list the folder in "
                "COMFY_ALLOWED_INPUT_PATHS"
            )
        if _CONTROL.search(path):
            raise JobInputError(
                f"{where}.inputs.{name} ({node.get('class_type')}) contains a control character "
                "(a newline?); use the file's plain name"
            )


def _allowed(path: str, allowed: tuple[str, ...]) -> bool:
    if not _is_absolute(path) or "\\" in path or ".." in _segments(path):
        return False  # only plain absolute paths can be on the operator's list
    normal = posixpath.normpath(path)
    return any(normal == root or normal.startswith(root.rstrip("/") + "/") for root in allowed)


def _is_absolute(path: str) -> bool:
    return path.startswith(("/", "\\")) or bool(_WINDOWS_DRIVE.match(path))


def _segments(path: str) -> list[str]:
    return [part for part in re.split(r"[/\\]", path) if part]
