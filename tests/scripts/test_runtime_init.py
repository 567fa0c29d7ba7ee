"""scripts/runtime-init.sh, run for real with a stub python that records what it is asked to install."""

from __future__ import annotations

from pathlib import Path

from testkit.stubs import REPO, StubBox

SCRIPT = "runtime-init.sh"


def _installs(box: StubBox) -> list[str]:
    return [c for c in box.calls() if c.startswith(("provision", "python -c"))]


def _manifest_copy(box: StubBox) -> Path:
    path = box.root / "manifest.toml"
    path.write_text((REPO / "manifest.toml").read_text())
    return path


def test_first_boot_installs_then_the_marker_skips_everything(box: StubBox) -> None:
    (box.comfyui / "main.py").unlink()  # a plain pod: no ComfyUI yet
    env = box.env(WORKER_MODE="compute")

    first = box.run(env=env, script=SCRIPT)
    calls_first = _installs(box)
    second = box.run(env=env, script=SCRIPT)

    assert first.returncode == 0, first.stderr
    assert calls_first == [
        f"provision install comfyui --dest {box.comfyui}",
        "python -c import torch",
        f"provision install nodes --dest {box.comfyui} --groups ALL",
        "provision install packages --groups ALL",
    ]
    marker = box.comfyui / ".provision" / "runtime-init.done"
    assert len(marker.read_text().strip()) == 64
    assert second.returncode == 0
    assert _installs(box) == calls_first  # nothing more was run
    assert "nothing to do" in second.stdout


def test_an_image_that_has_comfyui_only_checks_nodes_and_packages(box: StubBox) -> None:
    result = box.run(env=box.env(WORKER_MODE="compute"), script=SCRIPT)

    assert result.returncode == 0, result.stderr
    assert not [c for c in _installs(box) if "install comfyui" in c]


def test_missing_torch_is_installed(box: StubBox) -> None:
    result = box.run(env=box.env(WORKER_MODE="compute", STUB_TORCH_EXIT="1"), script=SCRIPT)

    assert result.returncode == 0, result.stderr
    assert "provision install torch" in _installs(box)


def test_comfyui_use_latest_moves_to_the_newest_release_and_has_its_own_marker(box: StubBox) -> None:
    env = box.env(WORKER_MODE="compute")
    box.run(env=env, script=SCRIPT)
    before = len(_installs(box))

    result = box.run(env={**env, "COMFYUI_USE_LATEST": "true"}, script=SCRIPT)

    assert result.returncode == 0, result.stderr
    assert _installs(box)[before] == f"provision install comfyui --dest {box.comfyui} --version latest"


def test_a_changed_manifest_runs_it_again(box: StubBox) -> None:
    manifest = _manifest_copy(box)
    env = box.env(WORKER_MODE="compute", PROVISION_MANIFEST=str(manifest))
    box.run(env=env, script=SCRIPT)
    before = len(_installs(box))

    manifest.write_text(manifest.read_text() + "\n# a new node would go here\n")
    result = box.run(env=env, script=SCRIPT)

    assert result.returncode == 0
    assert len(_installs(box)) > before


def test_a_new_image_runs_it_again(box: StubBox) -> None:
    env = box.env(WORKER_MODE="compute")
    (box.root / "BUILD_INFO").write_text("vcs_ref=aaa\n")
    box.run(env=env, script=SCRIPT)
    before = len(_installs(box))

    (box.root / "BUILD_INFO").write_text("vcs_ref=bbb\n")
    box.run(env=env, script=SCRIPT)

    assert len(_installs(box)) > before


def test_force_ignores_the_marker_and_record_only_writes_it(box: StubBox) -> None:
    env = box.env(WORKER_MODE="compute")
    recorded = box.run("--record", env=env, script=SCRIPT)
    skipped = box.run(env=env, script=SCRIPT)
    forced = box.run("--force", env=env, script=SCRIPT)

    assert recorded.returncode == skipped.returncode == forced.returncode == 0
    assert "nothing to do" in skipped.stdout
    assert len([c for c in _installs(box) if "install nodes" in c]) == 1  # only --force installed


def test_a_failed_install_writes_no_marker(box: StubBox) -> None:
    env = box.env(WORKER_MODE="compute", STUB_PROVISION_EXIT="1")
    result = box.run(env=env, script=SCRIPT)

    assert result.returncode == 1
    assert not (box.comfyui / ".provision" / "runtime-init.done").exists()


def test_the_marker_lives_where_runtime_init_marker_says(box: StubBox) -> None:
    marker = box.root / "workspace" / ".runtime-init.done"
    result = box.run(env=box.env(WORKER_MODE="compute", RUNTIME_INIT_MARKER=str(marker)), script=SCRIPT)

    assert result.returncode == 0
    assert marker.exists()


def test_serverless_refuses_to_install_at_boot(box: StubBox) -> None:
    result = box.run(env=box.env(WORKER_MODE="serverless"), script=SCRIPT)

    assert result.returncode == 1
    assert "runtime-init.sh is for compute pods" in result.stderr
    assert box.calls() == []


def test_bad_flag_is_refused(box: StubBox) -> None:
    result = box.run(env=box.env(WORKER_MODE="compute", COMFYUI_USE_LATEST="sometimes"), script=SCRIPT)

    assert result.returncode == 1
    assert "COMFYUI_USE_LATEST=sometimes is not a boolean" in result.stderr
