"""scripts/export-sources.sh (a source tree from a partial git snapshot) and scripts/image_layers.py
(an image's layers per Dockerfile part, and what changed between two builds), run for real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from testkit.helpers import commit_files, git

REPO = Path(__file__).resolve().parents[2]


def _export(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "export-sources.sh"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_partial_snapshot_exports_without_its_missing_blobs_and_records_the_commit(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    files: dict[str, str | bytes] = {
        "nodes.py": "NODE_CLASS_MAPPINGS = {}\n",
        "assets/big.png": b"\x89PNG large asset",
    }
    commit = commit_files(upstream, files, tag="v1.2.3")
    blob = git("rev-parse", "HEAD:assets/big.png", cwd=upstream).strip()
    (upstream / ".git" / "objects" / blob[:2] / blob[2:]).unlink()  # what a partial snapshot lacks

    done = _export(str(upstream / ".git"), "v1.2.3", str(tmp_path / "out" / "MyNode"))

    assert done.returncode == 0, done.stderr
    tree = tmp_path / "out" / "MyNode"
    assert (tree / "nodes.py").read_text() == "NODE_CLASS_MAPPINGS = {}\n"
    assert not (tree / "assets" / "big.png").exists()
    assert (tree / ".source-commit").read_text() == commit + "\n"
    assert "WARNING: assets/big.png is not in the snapshot; left out" in done.stderr
    assert "invalid object" not in done.stderr  # git's own repeat of that warning is dropped


def test_export_refuses_an_unknown_ref_and_a_non_empty_destination(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    commit_files(upstream, {"a": "a\n"})

    unknown = _export(str(upstream), "v9.9.9", str(tmp_path / "dest"))
    assert unknown.returncode == 1 and f"{upstream} has no commit for v9.9.9" in unknown.stderr

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    full = _export(str(upstream), "HEAD", str(tmp_path / "full"))
    assert full.returncode == 1 and "is not empty" in full.stderr

    usage = _export(str(upstream))
    assert usage.returncode == 2 and "usage: export-sources.sh GIT_DIR REF DEST" in usage.stderr


def _inspect(layers: list[tuple[str, int, str]]) -> dict[str, object]:
    """A `buildah inspect --type image` document with these (digest, size, created_by) layers."""
    manifest = {"layers": [{"digest": d, "size": s} for d, s, _ in layers]}
    history: list[dict[str, object]] = [{"created_by": c} for _, _, c in layers]
    history.insert(2, {"created_by": "/bin/sh -c #(nop) USER 1000:1000", "empty_layer": True})
    return {"Manifest": json.dumps(manifest), "Docker": {"history": history}}


LAYERS = [
    ("sha256:os", 200_000_000, "/bin/sh"),
    ("sha256:apt", 300_000_000, "/bin/sh -c set -eux; apt-get update"),
    ("sha256:torchlist", 4_000, "/bin/sh -c #(nop) COPY dir:abc in /opt/build/torch"),
    ("sha256:torch", 5_000_000_000, "/bin/sh -c set -eux; pip install -r /opt/build/torch/requirements.txt"),
    ("sha256:constraints", 1_000, "/bin/sh -c #(nop) COPY file:c in /opt/build/constraints.txt"),
    ("sha256:comfysrc", 16_000_000, "/bin/sh -c #(nop) COPY dir:def in /comfyui/ "),
    ("sha256:nodelist", 1_000, "/bin/sh -c #(nop) COPY dir:e in /opt/build/nodes"),
    ("sha256:nodesrc", 5_000_000, "/bin/sh -c #(nop) COPY dir:f in /comfyui/ "),
    (
        "sha256:nodereqs",
        200_000_000,
        "/bin/sh -c pip install -r /tmp/extra.txt -c /opt/build/constraints.txt",
    ),
    ("sha256:workerlist", 1_000, "/bin/sh -c #(nop) COPY dir:w in /opt/build/worker"),
    ("sha256:deps", 90_000_000, "/bin/sh -c pip install -r /opt/build/worker/requirements.txt"),
    ("sha256:code1", 300_000, "/bin/sh -c #(nop) COPY dir:111 in /opt/worker/handler"),
]


def _layers_tool(*args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "image_layers.py"), *args],
        input=stdin, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def test_layers_are_summed_per_part_of_the_dockerfile() -> None:
    output = _layers_tool(stdin=json.dumps(_inspect(LAYERS)))
    totals = output.split("per part:")[1]
    assert "500.0 MB  base" in totals
    assert "5.0 GB  torch" in totals
    assert "16.0 MB  ComfyUI" in totals and "205.0 MB  custom nodes" in totals
    assert "90.0 MB  worker dependencies" in totals
    assert "300.0 KB  worker code" in totals
    assert "5.8 GB  total (12 layers)" in totals


def test_a_code_change_is_measured_as_the_layers_a_host_pulls_again(tmp_path: Path) -> None:
    new = [*LAYERS[:-1], ("sha256:code2", 310_000, "/bin/sh -c #(nop) COPY dir:222 in /opt/worker/handler")]
    (tmp_path / "old.json").write_text(json.dumps(_inspect(LAYERS)))
    (tmp_path / "new.json").write_text(json.dumps(_inspect(new)))

    output = _layers_tool("--compare", str(tmp_path / "old.json"), str(tmp_path / "new.json"))

    assert output.startswith("1 of 12 layers changed, 310.0 KB of 5.8 GB:")
    assert "worker code" in output and output.strip().endswith("changed-bytes 310000")
