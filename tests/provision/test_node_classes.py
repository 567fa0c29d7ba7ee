"""``python -m provision record-nodes``: the node classes ComfyUI and the manifest's nodes provide,
read statically, and the committed list for the pinned versions."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

import provision.__main__ as cli
from provision.node_classes import classes_in_source

REPO = Path(__file__).resolve().parents[2]
MANIFEST = str(REPO / "manifest.toml")
COMMITTED = REPO / "comfy_worker" / "node_classes.json"


def test_every_registration_style_is_found() -> None:
    source = """
from .viewer import NODE_CLASS_MAPPINGS as VIEWER_MAPPINGS
NODE_CLASS_MAPPINGS = {"LoadThing": LoadThing, **VIEWER_MAPPINGS}
NODE_CLASS_MAPPINGS["Added"] = Added
NODE_CLASS_MAPPINGS.update({"Updated": Updated})
EXTRA_NODE_CLASS_MAPPINGS: dict = {"Annotated": X}
class V3(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="TextEncodeV3", inputs=[])
class Sub(V3):
    NODE_ID = "SubNode"
class Hook:
    NodeId = 'HookNode'
def f(schema):
    schema.node_id = "Patched"
NODE_DISPLAY_NAME_MAPPINGS = {"NotAClass": "x"}
"""
    assert classes_in_source(source) == {
        "LoadThing", "Added", "Updated", "Annotated", "TextEncodeV3", "SubNode", "HookNode", "Patched"
    }  # fmt: skip
    assert classes_in_source("def broken(:\n") == set()


def make_comfyui(root: Path) -> Path:
    (root / "comfy_extras").mkdir(parents=True)
    (root / "nodes.py").write_text('NODE_CLASS_MAPPINGS = {"KSampler": K, "LoadImage": L}\n')
    (root / "comfy_extras" / "nodes_qwen.py").write_text(
        'x = io.Schema(node_id="TextEncodeQwenImageEditPlus")\n'
    )
    (root / "comfyui_version.py").write_text('__version__ = "0.3.64"\n')
    (root / "tests").mkdir()
    (root / "tests" / "test_x.py").write_text('NODE_CLASS_MAPPINGS = {"TestOnly": T}\n')
    custom = root / "custom_nodes"
    (custom / "ComfyUI-Sharp" / "nodes").mkdir(parents=True)
    (custom / "ComfyUI-Sharp" / "nodes" / "predict.py").write_text(
        'NODE_CLASS_MAPPINGS = {"SharpPredict": S}\n'
    )
    (custom / "comfyui-GaussianViewer").mkdir()
    (custom / "comfyui-GaussianViewer" / "__init__.py").write_text(
        'NODE_CLASS_MAPPINGS = {"GaussianViewer": G}\n'
    )
    (custom / "websocket_image_save.py").write_text('NODE_CLASS_MAPPINGS = {"SaveImageWebsocket": W}\n')
    (custom / "SomeoneElses").mkdir()
    (custom / "SomeoneElses" / "n.py").write_text('NODE_CLASS_MAPPINGS = {"NotInManifest": N}\n')
    return root


def test_record_nodes_writes_core_and_manifest_nodes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    comfyui = make_comfyui(tmp_path / "comfyui")
    assert (
        cli.main(
            ["--manifest", MANIFEST, "record-nodes", "--comfyui", str(comfyui), "--mode", "serverless"],
            environ={},
        )
        == cli.EXIT_OK
    )
    written = json.loads((comfyui / ".provision" / "node_classes.json").read_text())
    assert written["comfyui"] == {
        "version": "0.3.64",
        "classes": ["KSampler", "LoadImage", "SaveImageWebsocket", "TextEncodeQwenImageEditPlus"],
    }
    assert written["nodes"]["ComfyUI-Sharp"]["classes"] == ["SharpPredict"]
    assert written["nodes"]["comfyui-GaussianViewer"]["commit"] == "5da86e75904c59af545e986b23610ea958eb9aa1"
    assert "SomeoneElses" not in written["nodes"]
    assert "node classes written to" in capsys.readouterr().err


def test_record_nodes_names_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    comfyui = make_comfyui(tmp_path / "comfyui")
    (comfyui / "custom_nodes" / "comfyui-GaussianViewer" / "__init__.py").unlink()
    (comfyui / "custom_nodes" / "comfyui-GaussianViewer").rmdir()
    assert cli.main(["--manifest", MANIFEST, "record-nodes", "--comfyui", str(comfyui)], environ={}) == 1
    err = capsys.readouterr().err
    assert "comfyui-GaussianViewer" in err and "python -m provision install nodes" in err
    # Without --mode every manifest node must be there, ComfyUI-Manager (pods only) included.
    assert "ComfyUI-Manager" in err
    assert cli.main(["--manifest", MANIFEST, "record-nodes", "--comfyui", str(tmp_path)], environ={}) == 2
    assert "is not a ComfyUI folder" in capsys.readouterr().err


def test_the_committed_list_matches_the_manifests_pins() -> None:
    # The serverless image's list. Regenerate after changing a node pin:
    # python -m provision record-nodes --comfyui <tree> --mode serverless --out comfy_worker/node_classes.json
    recorded = json.loads(COMMITTED.read_text())
    nodes = tomllib.loads(Path(MANIFEST).read_text())["nodes"]
    pins = {n["name"]: n["commit"] for n in nodes if "serverless" in n.get("modes", ["serverless"])}
    assert {name: entry["commit"] for name, entry in recorded["nodes"].items()} == pins
    assert {"SharpPredict", "LoadSharpModel"} <= set(recorded["nodes"]["ComfyUI-Sharp"]["classes"])
    assert "GaussianViewer" in recorded["nodes"]["comfyui-GaussianViewer"]["classes"]
    assert {"KSampler", "TextEncodeQwenImageEditPlus", "SaveImageWebsocket"} <= set(
        recorded["comfyui"]["classes"]
    )
