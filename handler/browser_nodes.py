"""Nodes that need a browser to do their work, and how a serverless job gets by without one. Pure.

comfyui-GaussianViewer's `GaussianViewer` (and `GeomPackRenderGaussian`, the render node it grew
from) broadcast `geompack_render_request` over ComfyUI's WebSocket and wait up to 30 s for the
browser's viewer to POST a rendered image back; on serverless no browser ever answers, so every
job would wait the full 30 s. Before queueing, the worker therefore:

- leaves out a browser node whose outputs feed nothing (a preview): its work is for a person
  looking at the UI, and the files it would show are returned anyway;
- keeps one whose outputs feed another node, and answers its request at once through the node's
  own error route (`POST /geompack/render_error`), so it returns its placeholder immediately.

Extra classes from `BROWSER_NODES` (config.py) are left out when they feed nothing; with no known
answer route they run unchanged when they do. Each decision becomes one line of the result's
``notes``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "KNOWN_BROWSER_NODES",
    "NO_BROWSER_ERROR",
    "BrowserHandshake",
    "BrowserPlan",
    "browser_nodes",
    "plan_browser_nodes",
]

NO_BROWSER_ERROR = "no browser on a serverless worker (answered by comfy-serverless-worker)"


@dataclass(frozen=True)
class BrowserHandshake:
    """How a node asks the browser (a WebSocket event) and where a refusal is POSTed."""

    event: str
    answer_route: str


_GEOMPACK = BrowserHandshake("geompack_render_request", "/geompack/render_error")

# comfyui-GaussianViewer @5da86e7: gaussian_viewer.py (registered) and render_gaussian.py
# (`GeomPackRenderGaussian`, registered by older releases and by ComfyUI-GeometryPack).
KNOWN_BROWSER_NODES: Mapping[str, BrowserHandshake | None] = {
    "GaussianViewer": _GEOMPACK,
    "GeomPackRenderGaussian": _GEOMPACK,
}


def browser_nodes(extra: Iterable[str] = ()) -> dict[str, BrowserHandshake | None]:
    """The known browser nodes plus `extra` class names (no known handshake)."""
    return {**{name: None for name in extra}, **KNOWN_BROWSER_NODES}


@dataclass(frozen=True)
class BrowserPlan:
    """The workflow to queue, and what was done to its browser nodes."""

    workflow: dict[str, dict[str, Any]]
    removed: dict[str, str] = field(default_factory=dict)  # node id -> class
    answered: dict[str, BrowserHandshake] = field(default_factory=dict)  # node id -> handshake
    unanswered: dict[str, str] = field(default_factory=dict)  # node id -> class (no known route)

    def notes(self, classes: Mapping[str, str]) -> list[str]:
        lines = [
            f"node {node_id} ({cls}) left out: it only shows a preview in a browser, and a serverless "
            "worker has none; its files are returned as usual"
            for node_id, cls in self.removed.items()
        ]
        lines += [
            f"node {node_id} ({classes.get(node_id, '?')}) ran without a browser: its render request was "
            "answered at once, so its IMAGE output is the node's blank placeholder"
            for node_id in self.answered
        ]
        lines += [
            f"node {node_id} ({cls}) needs a browser and feeds other nodes; it ran unchanged and may have "
            "waited for a browser that never came"
            for node_id, cls in self.unanswered.items()
        ]
        return lines


def plan_browser_nodes(
    workflow: Mapping[str, Mapping[str, Any]],
    known: Mapping[str, BrowserHandshake | None],
    *,
    is_output: Callable[[str], bool],
) -> BrowserPlan:
    """Leave out unused browser nodes and pick the used ones to answer (see the module docstring).

    A browser node is left out only if no remaining node links to it and some output node remains,
    so the prompt never becomes one ComfyUI refuses for having no outputs.
    """
    kept = {node_id: dict(node) for node_id, node in workflow.items()}
    removed: dict[str, str] = {}
    changed = True
    while changed:  # a viewer that only fed another (removed) viewer is unused too
        changed = False
        used = _linked_sources(kept)
        for node_id, node in list(kept.items()):
            cls = str(node.get("class_type"))
            if cls not in known or node_id in used:
                continue
            rest = [str(n.get("class_type")) for i, n in kept.items() if i != node_id]
            if not any(is_output(c) for c in rest):
                continue
            removed[node_id] = cls
            del kept[node_id]
            changed = True
    answered: dict[str, BrowserHandshake] = {}
    unanswered: dict[str, str] = {}
    for node_id, node in kept.items():
        cls = str(node.get("class_type"))
        if cls not in known:
            continue
        handshake = known[cls]
        if handshake is None:
            unanswered[node_id] = cls
        else:
            answered[node_id] = handshake
    return BrowserPlan(kept, removed, answered, unanswered)


def _linked_sources(workflow: Mapping[str, Mapping[str, Any]]) -> set[str]:
    sources: set[str] = set()
    for node in workflow.values():
        for value in (node.get("inputs") or {}).values():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
                sources.add(str(value[0]))
    return sources
