"""``comfy-worker check``: will this workflow run on the image, before you deploy it? Pure.

A workflow needs every node class it uses and every model file it names. Offline, the classes
come from the node list the image build records (``python -m provision record-nodes``: ComfyUI
core plus each manifest node; a copy for the pinned versions ships as ``node_classes.json``)
and the model files from manifest.toml's ``[[models]]``. Against a running ComfyUI
(``--comfy-url``) both come from its ``/object_info``: the classes it has loaded, and the files
each loader's list offers.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = [
    "DEFAULT_NODE_LIST",
    "CheckReport",
    "Provided",
    "check_workflow",
    "load_workflow",
    "provided_by_object_info",
    "provided_offline",
]

DEFAULT_NODE_LIST = Path(__file__).with_name("node_classes.json")
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx")
# Loaders that read a file the workflow does not name (an empty input means the default file).
IMPLICIT_MODELS: Mapping[str, tuple[str, str]] = {
    "LoadSharpModel": ("checkpoint_path", "sharp_2572gikvuh.pt"),
}


@dataclass(frozen=True)
class Provided:
    """What the target offers: node class -> where it comes from, and the model files."""

    classes: Mapping[str, str]
    models: frozenset[str]  # model file names the manifest downloads (offline check)
    source: str
    choices: Mapping[str, Mapping[str, list[str]]] | None = None  # class -> input -> allowed values

    @property
    def model_hint(self) -> str:
        if self.choices is not None:
            return "this ComfyUI does not list it; put the file in its models folder or fix the name"
        return "not provided; add it to manifest.toml [[models]] or put it on the network volume"


@dataclass
class CheckReport:
    source: str
    model_hint: str = ""
    used: dict[str, str] = field(default_factory=dict)  # class -> provider
    missing_classes: dict[str, list[str]] = field(default_factory=dict)  # class -> node ids
    missing_models: list[tuple[str, str, str, str]] = field(default_factory=list)  # id, class, input, file

    @property
    def ok(self) -> bool:
        return not self.missing_classes and not self.missing_models

    def lines(self) -> list[str]:
        out = [f"checked against {self.source}"]
        for cls, provider in sorted(self.used.items()):
            out.append(f"  ok       {cls:<32} {provider}")
        for cls, ids in self.missing_classes.items():
            out.append(
                f"  MISSING  {cls:<32} node {', '.join(ids)}: no installed node provides it; add its "
                "custom node to manifest.toml [[nodes]] (or fix the class name)"
            )
        for node_id, cls, name, filename in self.missing_models:
            out.append(f"  MISSING  model {filename!r} (node {node_id} {cls}.{name}): {self.model_hint}")
        out.append("ready to deploy" if self.ok else "NOT ready: fix the MISSING lines above")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "source": self.source,
            "classes": self.used,
            "missing_classes": self.missing_classes,
            "missing_models": [
                {"node_id": i, "class_type": c, "input": n, "file": f} for i, c, n, f in self.missing_models
            ],
        }


def provided_offline(node_list: Mapping[str, Any], manifest_text: str) -> Provided:
    """From a recorded node list (provision record-nodes) and manifest.toml's text."""
    manifest = tomllib.loads(manifest_text)
    listed_nodes = node_list.get("nodes") or {}
    wanted = {str(n.get("name")) for n in manifest.get("nodes", [])}
    classes: dict[str, str] = {}
    core = node_list.get("comfyui") or {}
    for cls in core.get("classes", []):
        classes[cls] = f"ComfyUI {core.get('version', '')} core".replace("  ", " ")
    for name, entry in listed_nodes.items():
        if name not in wanted:
            continue  # recorded for another manifest
        for cls in entry.get("classes", []):
            classes.setdefault(cls, f"{name} (manifest.toml)")
    models = set()
    for model in manifest.get("models", []):
        url = str(model.get("url", ""))
        models.add(str(model.get("filename") or unquote(PurePosixPath(urlsplit(url).path).name)))
    return Provided(classes, frozenset(models), source="the recorded node list and manifest.toml")


def provided_by_object_info(object_info: Mapping[str, Any], url: str) -> Provided:
    """From a running ComfyUI's /object_info."""
    classes: dict[str, str] = {}
    choices: dict[str, dict[str, list[str]]] = {}
    for cls, entry in object_info.items():
        if not isinstance(entry, Mapping):
            continue
        module = str(entry.get("python_module", ""))
        custom = module.startswith("custom_nodes.")
        classes[cls] = f"custom node {module.removeprefix('custom_nodes.')}" if custom else "ComfyUI core"
        inputs = entry.get("input") or {}
        for section in ("required", "optional"):
            for name, spec in (inputs.get(section) or {}).items():
                if isinstance(spec, list) and spec and isinstance(spec[0], list):
                    choices.setdefault(cls, {})[name] = [str(v) for v in spec[0]]
    return Provided(classes, frozenset(), source=f"the ComfyUI at {url}", choices=choices)


def check_workflow(workflow: Mapping[str, Mapping[str, Any]], provided: Provided) -> CheckReport:
    report = CheckReport(source=provided.source, model_hint=provided.model_hint)
    for node_id, node in workflow.items():
        cls = str(node.get("class_type"))
        if cls in provided.classes:
            report.used[cls] = provided.classes[cls]
        else:
            report.missing_classes.setdefault(cls, []).append(str(node_id))
            continue
        for name, filename in _named_models(cls, node.get("inputs") or {}):
            if not _available(provided, cls, name, filename):
                report.missing_models.append((str(node_id), cls, name, filename))
    return report


def load_workflow(path: Path) -> dict[str, dict[str, Any]]:
    """An API-format workflow from a file (a UI-format export is refused with a hint)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "nodes" in data and "links" in data:
        raise ValueError(
            f"{path} is a UI-format workflow; in ComfyUI use Workflow > Export (API) and check that file"
        )
    if not isinstance(data, dict) or not all(
        isinstance(n, dict) and "class_type" in n for n in data.values()
    ):
        raise ValueError(f"{path} is not an API-format workflow (an object of nodes with class_type)")
    return data


def _named_models(cls: str, inputs: Mapping[str, Any]) -> list[tuple[str, str]]:
    named = [
        (name, value)
        for name, value in inputs.items()
        if isinstance(value, str) and value.lower().endswith(MODEL_SUFFIXES)
    ]
    implicit = IMPLICIT_MODELS.get(cls)
    if implicit and not inputs.get(implicit[0]):
        named.append((implicit[0], implicit[1]))
    return named


def _available(provided: Provided, cls: str, name: str, filename: str) -> bool:
    if provided.choices is not None:
        allowed = provided.choices.get(cls, {}).get(name)
        if allowed is None:  # a free-text path (checkpoint_path): ComfyUI cannot tell us
            return True
        return filename in allowed
    return PurePosixPath(filename.replace("\\", "/")).name in provided.models
