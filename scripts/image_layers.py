"""An image's layers, their sizes and what made them; and what changed between two builds.

    buildah inspect --type image IMAGE | python3 image_layers.py
    python3 image_layers.py --compare OLD.json NEW.json   (each a `buildah inspect` of an image)

Sizes are uncompressed layer sizes, as the local store keeps them (a registry gzips them).
Each layer is put in the part of the Dockerfile it belongs to (base, torch, ComfyUI, nodes,
worker dependencies, models, worker code, compute extras) and each part is summed: the parts
are what an edit re-creates and every RunPod host pulls again. Stdlib only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# (part, a marker in the layer's created_by), first match wins. Markers are COPY destinations
# ("COPY ... in /opt/build/torch"): in the Dockerfile each part starts by copying its small
# /opt/build input, and the layers after it (its pip install, its sources) belong to it until
# the next part's marker. The worker-code RUN names /opt/worker in its build args.
PARTS = (
    ("torch", "in /opt/build/torch"),
    ("ComfyUI", "in /opt/build/constraints.txt"),
    ("custom nodes", "in /opt/build/nodes"),
    ("custom nodes", "in /opt/build/packages"),
    ("worker dependencies", "in /opt/build/worker"),
    ("models", "in /comfyui/models"),
    ("compute extras", "apt-get install -y --no-install-recommends build-essential git"),
    ("compute extras", "in /opt/build/compute"),
    ("compute extras", "runtime-init.sh --record"),
    ("worker code", "in /opt/worker/"),
    ("worker code", "in /comfyui/extra_model_paths.yaml"),
)


@dataclass(frozen=True)
class Layer:
    digest: str
    size: int
    created_by: str
    part: str


def layers(inspect: dict[str, Any]) -> list[Layer]:
    """The layers of a `buildah inspect --type image` document, oldest first."""
    manifest = json.loads(inspect["Manifest"])
    history = [h for h in inspect["Docker"]["history"] if not h.get("empty_layer")]
    blobs = manifest["layers"]
    if len(history) != len(blobs):  # an imported base has layers without history
        history = [{"created_by": "(imported base)"}] * (len(blobs) - len(history)) + history
    out, part = [], "base"
    for blob, step in zip(blobs, history, strict=True):
        created_by = " ".join(str(step.get("created_by", "")).split())
        part = _part(created_by, part)
        out.append(Layer(blob["digest"], int(blob["size"]), created_by, part))
    return out


def _part(created_by: str, previous: str) -> str:
    for part, marker in PARTS:
        if marker in created_by:
            return part
    # A layer without a marker (a COPY of sources, a chown) belongs with the step before it,
    # except in the base, which stays base until the first marker.
    return previous


def human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def report(items: list[Layer]) -> str:
    lines = [f"{'size':>9}  {'part':<20}  created by"]
    for layer in items:
        lines.append(f"{human(layer.size):>9}  {layer.part:<20}  {layer.created_by[:100]}")
    lines.append("")
    lines.append("per part:")
    totals: dict[str, int] = {}
    for layer in items:
        totals[layer.part] = totals.get(layer.part, 0) + layer.size
    for part, size in totals.items():
        lines.append(f"{human(size):>9}  {part}")
    lines.append(f"{human(sum(totals.values())):>9}  total ({len(items)} layers)")
    return "\n".join(lines)


def compare(old: list[Layer], new: list[Layer]) -> str:
    """The layers of `new` that `old` does not have: what a host holding `old` must pull."""
    known = {layer.digest for layer in old}
    changed = [layer for layer in new if layer.digest not in known]
    size = sum(layer.size for layer in changed)
    lines = [
        f"{len(changed)} of {len(new)} layers changed, {human(size)} of {human(sum(x.size for x in new))}:"
    ]
    lines += [f"{human(layer.size):>9}  {layer.part:<20}  {layer.created_by[:100]}" for layer in changed]
    lines.append(f"changed-bytes {size}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"))
    args = parser.parse_args(argv)
    if args.compare:
        old, new = (layers(json.loads(path.read_text(encoding="utf-8"))) for path in args.compare)
        print(compare(old, new))
    else:
        print(report(layers(json.load(sys.stdin))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
