"""Which node classes a ComfyUI tree and its custom nodes provide, read statically. Stdlib only.

``python -m provision record-nodes`` parses (never imports) every ``.py`` file of ComfyUI and of
each manifest node's folder and collects the class names they register:

- keys of dict literals assigned to a name ending in ``NODE_CLASS_MAPPINGS`` (``{"A": A, **B}``),
  of ``NODE_CLASS_MAPPINGS["A"] = ...`` and of ``NODE_CLASS_MAPPINGS.update({...})``;
- ``node_id="A"`` in ``Schema(...)`` calls (ComfyUI's v3 nodes, e.g. ``comfy_extras/nodes_qwen.py``),
  and string assignments to ``node_id``, ``NODE_ID`` or ``NodeId`` (subclassed v3 schemas, the
  hook nodes of ``comfy_extras/nodes_hooks.py``).

ComfyUI's own tree is read without ``custom_nodes/`` except its top-level files (ComfyUI ships
``websocket_image_save.py`` there).

The list may hold a class the package defines but no longer registers (comfyui-GaussianViewer's
``GeomPackRenderGaussian``); against a running ComfyUI, ``/object_info`` is the exact answer.
The result is JSON: ``{"schema": 1, "comfyui": {"version", "classes"}, "nodes": {name: {"commit",
"classes"}}}``; the image writes it to ``/comfyui/.provision/node_classes.json``.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA", "classes_in_source", "classes_in_tree", "record"]

SCHEMA = 1
_ID_NAMES = {"node_id", "NODE_ID", "NodeId"}
_SKIP_DIRS = {".git", "tests", "tests-unit", "custom_nodes", "node_modules", "venv", ".venv", "__pycache__"}


def classes_in_source(source: str) -> set[str]:
    """Node class names registered in one Python source text (empty if it does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if _is_mapping(target) and isinstance(node.value, ast.Dict):
                    found.update(_dict_keys(node.value))
                elif isinstance(target, ast.Subscript) and _is_mapping(target.value):
                    found.update(_strings([target.slice]))
                elif _name(target) in _ID_NAMES and node.value is not None:
                    found.update(_strings([node.value]))
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "update" and _is_mapping(func.value):
                for arg in node.args:
                    if isinstance(arg, ast.Dict):
                        found.update(_dict_keys(arg))
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "Schema":
                found.update(_strings(k.value for k in node.keywords if k.arg == "node_id"))
    return found


def classes_in_tree(root: Path, *, skip: Iterable[str] = _SKIP_DIRS) -> list[str]:
    """Every class registered under ``root`` (sorted)."""
    skipped = set(skip)
    found: set[str] = set()
    for path in _python_files(root, skipped):
        try:
            found |= classes_in_source(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    return sorted(found)


def record(comfyui: Path, nodes: Iterable[tuple[str, str, Path]], *, version: str) -> dict[str, Any]:
    """The node list of ComfyUI at ``comfyui`` plus each (name, commit, folder) custom node."""
    listed: dict[str, Any] = {}
    for name, commit, folder in nodes:
        listed[name] = {"commit": commit, "classes": classes_in_tree(folder, skip={".git", "node_modules"})}
    core = set(classes_in_tree(comfyui))
    for path in _python_files(comfyui / "custom_nodes", set(), recurse=False):
        core |= classes_in_source(path.read_text(encoding="utf-8", errors="replace"))
    return {
        "schema": SCHEMA,
        "comfyui": {"version": version, "classes": sorted(core)},
        "nodes": listed,
    }


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def _python_files(root: Path, skipped: set[str], *, recurse: bool = True) -> Iterator[Path]:
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if path.is_dir():
            if recurse and path.name not in skipped and not path.is_symlink():
                yield from _python_files(path, skipped)
        elif path.suffix == ".py":
            yield path


def _name(node: ast.AST) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def _is_mapping(node: ast.AST) -> bool:
    return _name(node).endswith("NODE_CLASS_MAPPINGS")


def _dict_keys(node: ast.Dict) -> set[str]:
    return _strings(key for key in node.keys if key is not None)


def _strings(nodes: Iterable[ast.AST]) -> set[str]:
    return {n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value}
