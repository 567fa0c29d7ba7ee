"""provision layers and provision sources: the per-layer build inputs and the source trees.

Run through the real command line (`python -m provision ...`), with real git against local
repositories for the clone path and plain folders for SOURCES_DIR.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provision.layers import layer_files
from provision.manifest import load_manifest, parse_manifest
from testkit.helpers import commit_files, git

REPO = Path(__file__).resolve().parents[2]
MANIFEST = """schema = 1

[comfyui]
repo = "{comfy_repo}"
version = "{comfy_ref}"

[torch]
index_url = "https://download.pytorch.org/whl/cu128"
packages = ["torch==2.10.0", "torchvision==0.25.0"]

[[packages]]
spec = "sageattention==1.0.6"
group = "CORE"

[[nodes]]
name = "NodeA"
repo = "{node_repo}"
commit = "{node_commit}"
group = "GAUSSIAN"
classes = ["NodeAClass"]

[[nodes]]
name = "NoReqs"
repo = "{node_repo}"
commit = "{node_commit}"
group = "GAUSSIAN"
requirements = false

[[nodes]]
name = "PodOnly"
repo = "{node_repo}"
commit = "{node_commit}"
group = "CORE"
modes = ["compute"]

[[models]]
name = "weights"
group = "GAUSSIAN"
url = "https://example.org/w.pt"
folder = "sharp"
sha256 = "{sha}"
size = 10
"""


def _manifest_text(**values: str) -> str:
    defaults = {
        "comfy_repo": "https://github.com/Comfy-Org/ComfyUI.git",
        "comfy_ref": "v0.12.3",
        "node_repo": "https://example.org/node.git",
        "node_commit": "a" * 40,
        "sha": "b" * 64,
    }
    return MANIFEST.format(**{**defaults, **values})


def _provision(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "provision", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _write_layers(folder: Path) -> None:
    """`provision layers` of folder/manifest.toml into folder/layers."""
    done = _provision("--manifest", "manifest.toml", "layers", "--out", "layers", cwd=folder)
    assert done.returncode == 0, done.stderr


def _sources(name: str, sources_dir: Path | str, *, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`provision sources` for one layers file (comfyui, nodes or compute) into src/<name>."""
    return _provision(
        "sources",
        f"layers/sources/{name}.json",
        "--dest",
        f"src/{name}",
        "--sources-dir",
        str(sources_dir),
        cwd=cwd,
    )


def test_layer_inputs_split_the_manifest_so_each_layer_sees_only_its_entries(tmp_path: Path) -> None:
    (tmp_path / "manifest.toml").write_text(_manifest_text())
    out = tmp_path / "layers"

    done = _provision(
        "--manifest", "manifest.toml", "layers", "--out", str(out), "--pyproject", str(REPO / "pyproject.toml"),
        cwd=tmp_path,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert (out / "torch" / "requirements.txt").read_text() == "torch==2.10.0\ntorchvision==0.25.0\n"
    assert (out / "torch" / "index-url").read_text() == "https://download.pytorch.org/whl/cu128\n"
    assert (out / "constraints.txt").read_text() == "torch==2.10.0\ntorchvision==0.25.0\n"
    comfyui = json.loads((out / "sources" / "comfyui.json").read_text())
    assert comfyui == [
        {"name": "ComfyUI", "path": "", "repo": "https://github.com/Comfy-Org/ComfyUI.git", "ref": "v0.12.3"}
    ]
    shared = json.loads((out / "sources" / "nodes.json").read_text())
    assert [n["name"] for n in shared] == ["NodeA", "NoReqs"]  # PodOnly is not in the serverless image
    assert [n["name"] for n in json.loads((out / "sources" / "compute.json").read_text())] == ["PodOnly"]
    # requirements = false keeps a node's requirements.txt out of the install.
    assert (
        out / "nodes" / "requirements.txt"
    ).read_text() == "-r /comfyui/custom_nodes/NodeA/requirements.txt\n"
    assert (
        out / "compute" / "requirements.txt"
    ).read_text() == "-r /comfyui/custom_nodes/PodOnly/requirements.txt\n"
    assert (out / "packages" / "requirements.txt").read_text() == "sageattention==1.0.6\n"
    worker = (out / "worker" / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("runpod") for line in worker) and any(
        line.startswith("boto3") for line in worker
    )
    assert "[[models]]" not in (out / "models" / "manifest.toml").read_text()  # nothing baked
    assert "torch from https://download.pytorch.org/whl/cu128" in done.stderr


def test_a_model_or_package_edit_leaves_the_torch_comfyui_and_node_inputs_unchanged() -> None:
    before = layer_files(parse_manifest(_toml(_manifest_text())))
    after = layer_files(parse_manifest(_toml(_manifest_text(sha="c" * 64))))
    assert before == after  # models not baked: no layer input changes at all

    baked_before = layer_files(parse_manifest(_toml(_manifest_text())), bake_groups=frozenset({"GAUSSIAN"}))
    baked_after = layer_files(
        parse_manifest(_toml(_manifest_text(sha="c" * 64))), bake_groups=frozenset({"GAUSSIAN"})
    )
    assert {k for k in baked_before if baked_before[k] != baked_after[k]} == {"models/manifest.toml"}

    moved_node = layer_files(parse_manifest(_toml(_manifest_text(node_commit="d" * 40))))
    assert {k for k in before if before[k] != moved_node[k]} == {"sources/nodes.json", "sources/compute.json"}


def test_the_baked_models_manifest_is_a_manifest_of_just_those_models(tmp_path: Path) -> None:
    files = layer_files(parse_manifest(_toml(_manifest_text())), bake_groups=frozenset({"GAUSSIAN"}))
    (tmp_path / "models.toml").write_text(files["models/manifest.toml"])
    baked = load_manifest(tmp_path / "models.toml")
    original = parse_manifest(_toml(_manifest_text())).models
    assert baked.models == original


def test_torch_from_pips_own_index_when_the_pytorch_index_is_out_of_reach() -> None:
    files = layer_files(parse_manifest(_toml(_manifest_text())), torch_index_url="default")
    assert files["torch/index-url"] == "default\n"


def test_an_unknown_mode_or_a_bad_classes_list_names_the_entry(tmp_path: Path) -> None:
    bad_mode = _manifest_text().replace('modes = ["compute"]', 'modes = ["pod"]')
    (tmp_path / "manifest.toml").write_text(bad_mode)
    done = _provision("--manifest", "manifest.toml", "groups", cwd=tmp_path)
    assert done.returncode == 2
    assert "[[nodes]] #3 'PodOnly' modes: unknown mode 'pod' (modes: serverless, compute)" in done.stderr

    (tmp_path / "manifest.toml").write_text(
        _manifest_text().replace('classes = ["NodeAClass"]', "classes = []")
    )
    done = _provision("--manifest", "manifest.toml", "groups", cwd=tmp_path)
    assert done.returncode == 2 and "classes: must be a non-empty list of strings" in done.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_sources_are_cloned_at_their_pins_and_recorded(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    commit = commit_files(upstream, {"requirements.txt": "plyfile\n"}, tag="v1.0.0")
    (tmp_path / "manifest.toml").write_text(_manifest_text(comfy_ref="v1.0.0", node_commit=commit))
    _write_layers(tmp_path)
    for entries in (tmp_path / "layers" / "sources").glob("*.json"):  # the manifest takes https only
        data = [{**e, "repo": f"file://{upstream}"} for e in json.loads(entries.read_text())]
        entries.write_text(json.dumps(data))
    empty_sources = tmp_path / "context-sources"
    empty_sources.mkdir()
    (empty_sources / "README.md").write_text("only this\n")  # what the build context always holds

    for name in ("comfyui", "nodes"):
        done = _provision(
            "sources", f"layers/sources/{name}.json", "--dest", f"src/{name}", "--sources-dir", str(empty_sources),
            cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    assert (tmp_path / "src" / "comfyui" / "requirements.txt").is_file()
    assert (
        git("rev-parse", "HEAD", cwd=tmp_path / "src" / "nodes" / "custom_nodes" / "NodeA").strip() == commit
    )
    record = json.loads((tmp_path / "src" / "nodes" / ".provision" / "sources-nodes.json").read_text())
    assert [(r["name"], r["origin"], r["commit"], r["matches_pin"]) for r in record] == [
        ("NodeA", "git", commit, True),
        ("NoReqs", "git", commit, True),
    ]


def test_sources_from_a_folder_need_no_git_and_say_which_commit_they_are(tmp_path: Path) -> None:
    (tmp_path / "manifest.toml").write_text(_manifest_text())
    _write_layers(tmp_path)
    sources = tmp_path / "sources"
    (sources / "ComfyUI" / "comfy").mkdir(parents=True)
    (sources / "ComfyUI" / "main.py").write_text("# comfy\n")
    (sources / "ComfyUI" / ".source-commit").write_text("e" * 40 + "\n")
    for node in ("NodeA", "NoReqs"):
        (sources / node).mkdir()
        (sources / node / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
        (sources / node / ".source-commit").write_text("a" * 40 + "\n")
    (sources / "NoReqs" / ".source-commit").write_text("f" * 40 + "\n")  # not the pinned commit

    comfy = _sources("comfyui", "sources", cwd=tmp_path)
    nodes = _sources("nodes", "sources", cwd=tmp_path)

    assert comfy.returncode == 0 and nodes.returncode == 0, comfy.stderr + nodes.stderr
    assert (tmp_path / "src" / "comfyui" / "main.py").read_text() == "# comfy\n"
    assert f"ComfyUI: from SOURCES_DIR, commit {'e' * 40} (manifest pins v0.12.3)" in comfy.stderr
    assert "the pin v0.12.3 is a tag or branch" in comfy.stderr  # cannot be checked offline: said so
    assert f"NodeA: from SOURCES_DIR, commit {'a' * 40}" in nodes.stderr
    assert "WARNING: NoReqs is not the manifest's pin" in nodes.stderr
    assert "WARNING: NodeA" not in nodes.stderr
    assert (tmp_path / "src" / "nodes" / "custom_nodes" / "NoReqs" / "__init__.py").is_file()


def test_a_sources_folder_missing_an_entry_stops_the_build_naming_it(tmp_path: Path) -> None:
    (tmp_path / "manifest.toml").write_text(_manifest_text())
    _write_layers(tmp_path)
    (tmp_path / "sources" / "ComfyUI").mkdir(parents=True)

    done = _sources("nodes", "sources", cwd=tmp_path)

    assert done.returncode == 1
    assert "SOURCES_DIR has no NodeA/" in done.stderr and "scripts/export-sources.sh" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_repository_manifest_keeps_comfyui_manager_on_pods_only() -> None:
    files = layer_files(load_manifest(REPO / "manifest.toml"))
    pod_only = [n["name"] for n in json.loads(files["sources/compute.json"])]
    shared = [n["name"] for n in json.loads(files["sources/nodes.json"])]
    assert pod_only == ["ComfyUI-Manager"]
    assert "ComfyUI-Manager" not in shared and {"ComfyUI-Sharp", "comfyui-GaussianViewer"} <= set(shared)


def _toml(text: str) -> dict[str, object]:
    import tomllib

    return tomllib.loads(text)
