"""``comfy-worker check``: nodes and models a workflow needs, against the recorded node list and
manifest.toml, or against a running ComfyUI's /object_info (the test server, over a real socket)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comfy_testserver import ComfyTestServer
from comfy_worker import cli

from . import workflows as wf

REPO = Path(__file__).resolve().parents[1]


def check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(["check", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize(
    "name", ["sharp_splat", "sharp_splat_viewer", "qwen_edit_sharp", "qwen_edit_sharp_viewer"]
)
def test_the_gaussian_workflows_are_ready_for_the_image(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, out = check(capsys, str(REPO / "workflows" / f"{name}.json"))
    assert code == 0, out
    assert "SharpPredict" in out and "ComfyUI-Sharp (manifest.toml)" in out and "ready to deploy" in out


def test_missing_nodes_and_models_are_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    workflow = {
        **wf.splat(),
        "2": {"class_type": "LoadSharpModel", "inputs": {"device": "cpu", "checkpoint_path": ""}},
        "7": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "sd/dreamshaper_8.safetensors"},
        },
        "8": {"class_type": "ImpactWildcardEncode", "inputs": {}},
    }
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(workflow))
    manifest = tmp_path / "manifest.toml"
    manifest.write_text('[[nodes]]\nname = "ComfyUI-Sharp"\n')  # no models, no GaussianViewer
    code, out = check(capsys, str(path), "--manifest", str(manifest))
    assert code == 1
    assert "MISSING  ImpactWildcardEncode" in out and "node 8" in out
    assert "model 'sd/dreamshaper_8.safetensors' (node 7 CheckpointLoaderSimple.ckpt_name)" in out
    assert "model 'sharp_2572gikvuh.pt' (node 2 LoadSharpModel.checkpoint_path)" in out  # the default file
    code, out = check(capsys, str(path), "--manifest", str(manifest), "--json")
    report = json.loads(out)
    assert report["ok"] is False and list(report["missing_classes"]) == ["ImpactWildcardEncode"]


def test_against_a_running_comfyui_uses_its_object_info(
    capsys: pytest.CaptureFixture[str], comfy: ComfyTestServer, tmp_path: Path
) -> None:
    good = tmp_path / "good.json"
    splat = {
        "20": wf.sharp_model(),
        "21": {"class_type": "SharpPredict", "inputs": {"model": ["20", 0], "image": ["6", 0]}},
    }
    good.write_text(json.dumps({**wf.sampler(ckpt="tiny.safetensors"), **splat}))
    code, out = check(capsys, str(good), "--comfy-url", comfy.url)
    assert code == 0, out
    assert f"checked against the ComfyUI at {comfy.url}" in out
    assert "custom node ComfyUI-Sharp" in out and "KSampler" in out
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({**wf.sampler(ckpt="sdxl.safetensors"), "9": {"class_type": "UNETLoader", "inputs": {}}})
    )
    code, out = check(capsys, str(bad), "--comfy-url", comfy.url)
    assert code == 1
    assert "MISSING  UNETLoader" in out and "model 'sdxl.safetensors'" in out and "does not list it" in out


def test_unreadable_input_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ui_export = tmp_path / "ui.json"
    ui_export.write_text(json.dumps({"nodes": [], "links": []}))
    code, out = check(capsys, str(ui_export))
    assert code == 2 and "UI-format workflow" in out and "Export (API)" in out
    code, out = check(capsys, str(ui_export.with_name("none.json")), "--comfy-url", "http://127.0.0.1:9")
    assert code == 2 and "cannot read" in out
    good = REPO / "workflows" / "sharp_splat.json"
    code, out = check(capsys, str(good), "--comfy-url", "http://127.0.0.1:9")
    assert code == 2 and "is ComfyUI running there?" in out
