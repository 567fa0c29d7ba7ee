"""The manifest cut into one small input per image layer, so each layer's cache key is its own entries.

The Dockerfile's `manifest` stage runs `python -m provision layers --out /layers` and the later
stages copy only the file they need: editing a model entry, provision's code or README.md then
leaves the torch, ComfyUI and node layers (gigabytes that every RunPod host pulls) untouched.

    /layers/torch/requirements.txt     torch pins            (torch layer)
    /layers/torch/index-url            the wheel index, or "default" for pip's own
    /layers/constraints.txt            torch pins as constraints for every later pip install
    /layers/sources/comfyui.json       ComfyUI repo and ref                (sources stage)
    /layers/sources/nodes.json         the nodes both images get           (sources stage)
    /layers/sources/compute.json       the nodes only pods get (ComfyUI-Manager)
    /layers/nodes/requirements.txt     one `-r` line per node whose requirements are installed
    /layers/packages/requirements.txt  the manifest's pip packages
    /layers/compute/requirements.txt   the pod-only nodes' requirements (compute stage)

Nothing here depends on the image mode: both images share every layer up to the worker's code,
and the compute image adds its own on top.
    /layers/worker/requirements.txt    pyproject.toml's dependencies (worker layer)
    /layers/models/manifest.toml       only the baked groups' models (models stage)

Pure apart from writing the files; every file is written with sorted, stable content.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path

from .errors import ManifestError
from .manifest import ALL_GROUPS, PLACEHOLDER_PREFIX, Manifest, ModelSpec, NodeSpec

__all__ = ["DEFAULT_INDEX", "layer_files", "write_layers"]

DEFAULT_INDEX = "default"  # TORCH_INDEX_URL=default: pip's own index (PyPI or PIP_INDEX_URL)


def layer_files(
    manifest: Manifest,
    *,
    node_groups: frozenset[str] | str = ALL_GROUPS,
    bake_groups: frozenset[str] | str = frozenset(),
    torch_index_url: str = "",
    pyproject: Path | None = None,
) -> dict[str, str]:
    """Every layer input as {relative path: content}; `torch_index_url` overrides the manifest's."""
    selected = manifest.select(node_groups)
    shared = selected.for_mode("serverless").nodes
    pod_only = tuple(n for n in selected.for_mode("compute").nodes if n not in shared)
    files = {
        "torch/requirements.txt": _lines(manifest.torch.packages),
        "torch/index-url": (torch_index_url.strip() or manifest.torch.index_url) + "\n",
        "constraints.txt": manifest.torch.constraints(),
        "sources/comfyui.json": _json(
            [{"name": "ComfyUI", "path": "", "repo": manifest.comfyui.repo, "ref": manifest.comfyui.version}]
        ),
        "sources/nodes.json": _json([_node(n) for n in shared]),
        "sources/compute.json": _json([_node(n) for n in pod_only]),
        "nodes/requirements.txt": _requirements(shared),
        "packages/requirements.txt": _lines(p.spec for p in selected.packages),
        "compute/requirements.txt": _requirements(pod_only),
        "models/manifest.toml": _models_toml(manifest.select(bake_groups).models if bake_groups else ()),
    }
    if pyproject is not None:
        files["worker/requirements.txt"] = _lines(_dependencies(pyproject))
    return files


def write_layers(out: Path, files: dict[str, str]) -> None:
    """Write `files` under `out`, creating folders."""
    for relative, content in sorted(files.items()):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


def _node(node: NodeSpec) -> dict[str, object]:
    return {"name": node.name, "path": f"custom_nodes/{node.name}", "repo": node.repo, "ref": node.commit}


def _requirements(nodes: Iterable[NodeSpec]) -> str:
    return _lines(f"-r /comfyui/custom_nodes/{n.name}/requirements.txt" for n in nodes if n.requirements)


def _lines(items: Iterable[str]) -> str:
    return "".join(f"{item}\n" for item in items)


def _json(data: object) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _dependencies(pyproject: Path) -> list[str]:
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        dependencies = data["project"]["dependencies"]
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise ManifestError(f"cannot read [project].dependencies ({exc})", source=str(pyproject)) from exc
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise ManifestError("[project].dependencies must be a list of strings", source=str(pyproject))
    return dependencies


def _models_toml(models: Iterable[ModelSpec]) -> str:
    """A manifest holding only `models` (plus the sections every manifest needs), for the bake."""
    out = [
        "schema = 1",
        "",
        "[comfyui]",
        'repo = "https://example.invalid/unused.git"',
        'version = "unused"',
        "",
    ]
    out += ["[torch]", 'index_url = "https://example.invalid/unused"', 'packages = ["unused"]', ""]
    for model in models:
        out.append("[[models]]")
        # Field names are the manifest's keys, so new ModelSpec fields travel without changes here.
        for spec in fields(model):
            value = getattr(model, spec.name)
            if spec.name == "sha256" and value is None:
                value = f"{PLACEHOLDER_PREFIX}: not pinned in manifest.toml"
            if value is not None and value != ():  # an empty list is the manifest's "not set"
                out.append(f"{spec.name} = {_toml_value(value)}")
        out.append("")
    return "\n".join(out) + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))
