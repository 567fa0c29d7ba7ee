"""``python -m provision``: commands, exit statuses and messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import provision.__main__ as cli
from provision.errors import InstallError

REPO = Path(__file__).resolve().parents[2]
MANIFEST = str(REPO / "manifest.toml")


def test_groups_lists_what_each_group_brings(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--manifest", MANIFEST, "groups"], environ={}) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "GAUSSIAN: 2 node(s), 0 package(s), 6 model(s) of 2.9 GiB or more, DOWNLOAD_GAUSSIAN=true" in out


def test_plan_shows_targets_and_checks(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["--manifest", MANIFEST, "plan", "--groups", "GAUSSIAN", "--root", str(tmp_path)]
    assert cli.main(argv, environ={}) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert f"{tmp_path}/sharp/sharp_2572gikvuh.pt  [2.6 GiB, sha256 pinned]" in out
    assert (
        f"{tmp_path}/loras/Qwen-Image-Edit-2509-Lightning-4steps-V1.0-bf16.safetensors  [size unknown, NO sha256"
        in (out)
    )


def test_download_with_nothing_enabled_does_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--manifest", MANIFEST, "download"], environ={}) == cli.EXIT_OK
    assert "no model group enabled" in capsys.readouterr().err


def test_bad_settings_and_manifests_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["--manifest", MANIFEST, "download"], environ={"DOWNLOAD_ALL": "sure"}) == cli.EXIT_CONFIG
    assert "DOWNLOAD_ALL='sure': use true or false" in capsys.readouterr().err
    assert cli.main(["--manifest", str(tmp_path / "none.toml"), "groups"], environ={}) == cli.EXIT_CONFIG
    assert cli.main(["--manifest", MANIFEST, "install", "nodes", "--groups", "NOPE"], environ={}) == 2


def test_install_commands_use_the_selected_groups(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli, "install_nodes", lambda nodes, path, **kw: seen.update(nodes=nodes, path=path))
    monkeypatch.setattr(cli, "install_comfyui", lambda spec, dest, **kw: seen.update(dest=dest, **kw))

    argv = ["--manifest", MANIFEST, "install", "nodes", "--groups", "GAUSSIAN", "--dest", str(tmp_path)]
    assert cli.main(argv, environ={}) == cli.EXIT_OK
    assert [n.name for n in seen["nodes"]] == ["ComfyUI-Sharp", "comfyui-GaussianViewer"]
    assert seen["path"] == tmp_path

    assert cli.main(["--manifest", MANIFEST, "install", "comfyui", "--version", "latest"], environ={}) == 0
    assert seen["dest"] == Path("/comfyui") and seen["version"] == "latest"


def test_an_install_failure_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise InstallError("installing PyTorch", command=["pip"], returncode=1)

    monkeypatch.setattr(cli, "install_torch", fail)
    assert cli.main(["--manifest", MANIFEST, "install", "torch"], environ={}) == cli.EXIT_FAILED


def test_the_manifest_defaults_to_provision_manifest(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli.main(["groups"], environ={"PROVISION_MANIFEST": str(tmp_path / "x.toml")}) == cli.EXIT_CONFIG
    assert "x.toml: file not found" in capsys.readouterr().err
    assert cli.DEFAULT_MANIFEST == REPO / "manifest.toml"
