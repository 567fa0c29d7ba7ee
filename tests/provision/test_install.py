"""provision.install: real git against local repositories; pip commands recorded, not run."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from provision.errors import InstallError
from provision.install import (
    install_comfyui,
    install_nodes,
    install_packages,
    install_torch,
    latest_release_tag,
    subprocess_runner,
)
from provision.manifest import ComfyUISpec, NodeSpec, PackageSpec, TorchSpec
from testkit.helpers import commit_files, git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

TORCH = TorchSpec(index_url="https://download.pytorch.org/whl/cu128", packages=("torch==2.9.1",))


class Recorder:
    """Runs git for real; records pip (and everything else) instead of running it."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self.constraints: list[str] = []

    def __call__(self, command: Sequence[str], *, what: str, capture: bool = False) -> str:
        self.commands.append(list(command))
        if command[0] == "git":
            return subprocess_runner(command, what=what, capture=capture)
        if "-c" in command:
            self.constraints.append(Path(command[command.index("-c") + 1]).read_text())
        return ""

    def pip(self) -> list[list[str]]:
        return [c[c.index("pip") + 1 :] for c in self.commands if "pip" in c]

    def git(self, verb: str) -> list[list[str]]:
        return [c for c in self.commands if c[0] == "git" and verb in c]


@pytest.fixture
def node_repo(tmp_path: Path) -> tuple[str, list[str]]:
    """A local repository with two commits (the second adds requirements.txt) and tags."""
    repo = tmp_path / "upstream"
    commit_files(repo, {"__init__.py": "NODE_CLASS_MAPPINGS = {}\n"}, message="first", tag="v0.9.0")
    commit_files(
        repo, {"requirements.txt": "plyfile>=1\n", "main.py": "# ComfyUI stand-in\n"}, message="second"
    )
    git("tag", "v0.10.1", cwd=repo)
    git("tag", "v0.10.1-rc1", cwd=repo)
    commits = git("log", "--format=%H", cwd=repo).split()
    return f"file://{repo}", commits


def test_nodes_are_checked_out_at_their_commit_with_torch_pinned(
    tmp_path: Path, node_repo: tuple[str, list[str]]
) -> None:
    url, (newest, oldest) = node_repo
    comfyui = tmp_path / "comfyui"
    nodes = [
        NodeSpec("NodeA", url, newest, "G", requirements=True),
        NodeSpec("NodeB", url, oldest, "G", requirements=True),
    ]
    recorder = Recorder()

    changed = install_nodes(nodes, comfyui, torch=TORCH, python="py", run=recorder)

    assert changed == ["NodeA", "NodeB"]
    assert git("rev-parse", "HEAD", cwd=comfyui / "custom_nodes" / "NodeA").strip() == newest
    assert git("rev-parse", "HEAD", cwd=comfyui / "custom_nodes" / "NodeB").strip() == oldest
    # NodeB's commit has no requirements.txt: one pip call, for NodeA, with torch as a constraint.
    assert recorder.pip() == [
        [
            "install",
            "-r",
            str(comfyui / "custom_nodes" / "NodeA" / "requirements.txt"),
            "-c",
            recorder.pip()[0][-1],
        ]
    ]
    assert recorder.constraints == ["torch==2.9.1\n"]


def test_a_node_already_at_its_commit_is_left_alone(tmp_path: Path, node_repo: tuple[str, list[str]]) -> None:
    url, (newest, _) = node_repo
    comfyui = tmp_path / "comfyui"
    node = NodeSpec("NodeA", url, newest, "G")
    install_nodes([node], comfyui, torch=TORCH, run=Recorder())
    again = Recorder()

    assert install_nodes([node], comfyui, torch=TORCH, run=again) == []
    assert again.git("fetch") == [] and again.pip() == []


def test_a_new_pin_moves_an_existing_checkout(tmp_path: Path, node_repo: tuple[str, list[str]]) -> None:
    url, (newest, oldest) = node_repo
    comfyui = tmp_path / "comfyui"
    install_nodes([NodeSpec("NodeA", url, oldest, "G")], comfyui, torch=TORCH, run=Recorder())

    assert install_nodes([NodeSpec("NodeA", url, newest, "G")], comfyui, torch=TORCH, run=Recorder()) == [
        "NodeA"
    ]
    assert git("rev-parse", "HEAD", cwd=comfyui / "custom_nodes" / "NodeA").strip() == newest


def test_a_folder_that_is_not_a_checkout_is_never_clobbered(
    tmp_path: Path, node_repo: tuple[str, list[str]]
) -> None:
    url, (newest, _) = node_repo
    mine = tmp_path / "comfyui" / "custom_nodes" / "NodeA"
    mine.mkdir(parents=True)
    (mine / "my_work.py").write_text("precious\n")

    with pytest.raises(InstallError, match="exists and is not a git checkout; move it away"):
        install_nodes(
            [NodeSpec("NodeA", url, newest, "G")], tmp_path / "comfyui", torch=TORCH, run=Recorder()
        )
    assert (mine / "my_work.py").read_text() == "precious\n"


def test_comfyui_latest_is_the_highest_release_tag(tmp_path: Path, node_repo: tuple[str, list[str]]) -> None:
    url, (newest, _) = node_repo
    recorder = Recorder()

    assert latest_release_tag(url, run=recorder) == "v0.10.1"  # not v0.9.0 (string order), not the rc
    commit = install_comfyui(
        ComfyUISpec(url, "v0.9.0"), tmp_path / "comfyui", version="latest", torch=TORCH, run=recorder
    )

    assert commit == newest
    assert recorder.pip()[-1][:3] == ["install", "-r", str(tmp_path / "comfyui" / "requirements.txt")]
    record = (tmp_path / "comfyui" / ".provision" / "comfyui.json").read_text()
    assert '"ref": "v0.10.1"' in record and newest in record


def test_comfyui_defaults_to_the_manifest_version(tmp_path: Path, node_repo: tuple[str, list[str]]) -> None:
    url, (_, oldest) = node_repo
    assert install_comfyui(ComfyUISpec(url, "v0.9.0"), tmp_path / "c", torch=TORCH, run=Recorder()) == oldest


def test_torch_and_packages_use_the_manifest_index_and_pins() -> None:
    recorder = Recorder()
    install_torch(TORCH, python="py", run=recorder)
    install_packages([PackageSpec("sageattention==1.0.6", "CORE")], torch=TORCH, python="py", run=recorder)
    install_packages([], torch=TORCH, run=recorder)

    assert recorder.commands[0] == [
        "py",
        "-m",
        "pip",
        "install",
        "--index-url",
        TORCH.index_url,
        "torch==2.9.1",
    ]
    assert recorder.commands[1][-1] == "sageattention==1.0.6" and "-c" in recorder.commands[1]
    assert len(recorder.commands) == 2


def test_a_failing_command_names_itself(tmp_path: Path) -> None:
    with pytest.raises(InstallError) as caught:
        subprocess_runner(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], what="reading", capture=True)
    assert "reading: `git -C" in str(caught.value) and "exited with 128" in str(caught.value)
