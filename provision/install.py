"""Build-time installs from the manifest: ComfyUI at a pinned ref, PyTorch, custom nodes, pip packages.

Each function is idempotent: a node already checked out at its pinned commit, with its
requirements installed, is left alone, so runtime-init.sh can call them on every boot cheaply.
Commands run through a `Runner` (git and pip as subprocesses), so tests can record them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import InstallError
from .manifest import ComfyUISpec, NodeSpec, PackageSpec, TorchSpec

__all__ = [
    "Runner",
    "checkout",
    "install_comfyui",
    "install_nodes",
    "install_packages",
    "install_torch",
    "latest_release_tag",
    "subprocess_runner",
]

Runner = Callable[..., str]
STATE_DIR = ".provision"  # under COMFYUI_PATH: what was installed, for humans and for idempotence


def subprocess_runner(command: Sequence[str], *, what: str, capture: bool = False) -> str:
    """Run a command, its output going to ours (or captured); raise InstallError on failure."""
    print(f"+ {' '.join(command)}", file=sys.stderr, flush=True)
    result = subprocess.run(list(command), check=False, text=True, capture_output=capture)
    if result.returncode != 0:
        if capture:
            sys.stderr.write(result.stdout + result.stderr)
        raise InstallError(what, command=list(command), returncode=result.returncode)
    return result.stdout if capture else ""


def latest_release_tag(repo: str, *, run: Runner = subprocess_runner) -> str:
    """The highest ``vX.Y.Z`` tag of `repo` (what COMFYUI_VERSION=latest means)."""
    output = run(["git", "ls-remote", "--tags", "--refs", repo], what="listing ComfyUI's tags", capture=True)
    best: tuple[tuple[int, ...], str] | None = None
    for line in output.splitlines():
        tag = line.rpartition("refs/tags/")[2].strip()
        parts = tag.removeprefix("v").split(".")
        if tag.startswith("v") and len(parts) == 3 and all(p.isdigit() for p in parts):
            key = tuple(int(p) for p in parts)
            if best is None or key > best[0]:
                best = (key, tag)
    if best is None:
        raise InstallError("no vX.Y.Z release tag found", command=["git", "ls-remote", repo], returncode=0)
    return best[1]


def install_comfyui(
    spec: ComfyUISpec,
    dest: Path,
    *,
    version: str = "",
    torch: TorchSpec,
    python: str = sys.executable,
    run: Runner = subprocess_runner,
) -> str:
    """Check ComfyUI out at `version` (default: the manifest's) and install its requirements.

    Returns the commit checked out. ``version="latest"`` resolves to the newest release tag.
    """
    ref = version.strip() or spec.version
    if ref == "latest":
        ref = latest_release_tag(spec.repo, run=run)
    commit = checkout(dest, spec.repo, ref, what="ComfyUI", run=run)
    with _constraints(torch) as constraints:
        run(
            [python, "-m", "pip", "install", "-r", str(dest / "requirements.txt"), "-c", constraints],
            what="installing ComfyUI's requirements",
        )
    _record(dest, "comfyui.json", {"repo": spec.repo, "ref": ref, "commit": commit})
    print(f"ComfyUI {ref} ({commit[:12]}) in {dest}", file=sys.stderr)
    return commit


def install_torch(torch: TorchSpec, *, python: str = sys.executable, run: Runner = subprocess_runner) -> None:
    run(
        [python, "-m", "pip", "install", "--index-url", torch.index_url, *torch.packages],
        what="installing PyTorch",
    )


def install_packages(
    packages: Sequence[PackageSpec],
    *,
    torch: TorchSpec,
    python: str = sys.executable,
    run: Runner = subprocess_runner,
) -> None:
    if not packages:
        return
    with _constraints(torch) as constraints:
        run(
            [python, "-m", "pip", "install", "-c", constraints, *(p.spec for p in packages)],
            what="installing the manifest's pip packages",
        )


def install_nodes(
    nodes: Sequence[NodeSpec],
    comfyui_path: Path,
    *,
    torch: TorchSpec,
    python: str = sys.executable,
    run: Runner = subprocess_runner,
) -> list[str]:
    """Check each node out at its commit and install its requirements; return the names changed."""
    changed = []
    for node in nodes:
        dest = comfyui_path / "custom_nodes" / node.name
        state_file = f"node-{node.name}.json"
        state = _read_record(comfyui_path, state_file)
        if state.get("commit") == node.commit and _head(dest, run=run) == node.commit:
            print(f"{node.name}: already at {node.commit[:12]}", file=sys.stderr)
            continue
        checkout(dest, node.repo, node.commit, what=node.name, run=run)
        requirements = dest / "requirements.txt"
        if node.requirements and requirements.is_file():
            with _constraints(torch) as constraints:
                run(
                    [python, "-m", "pip", "install", "-r", str(requirements), "-c", constraints],
                    what=f"installing {node.name}'s requirements",
                )
        _record(comfyui_path, state_file, {"repo": node.repo, "commit": node.commit})
        changed.append(node.name)
    return changed


def _head(dest: Path, *, run: Runner) -> str | None:
    if not (dest / ".git").exists():
        return None
    try:
        return run(
            ["git", "-C", str(dest), "rev-parse", "HEAD"], what="reading a checkout", capture=True
        ).strip()
    except InstallError:
        return None


def checkout(dest: Path, repo: str, ref: str, *, what: str, run: Runner) -> str:
    """Fetch only `ref` (tag, branch or commit) into `dest` and check it out detached."""
    if not (dest / ".git").exists():
        if dest.exists() and any(dest.iterdir()):
            raise InstallError(
                f"{dest} exists and is not a git checkout; move it away so {what} can be installed",
                command=["git", "init", str(dest)],
                returncode=1,
            )
        dest.mkdir(parents=True, exist_ok=True)
        run(["git", "init", "--quiet", str(dest)], what=f"creating {what}'s checkout")
        run(["git", "-C", str(dest), "remote", "add", "origin", repo], what=f"adding {what}'s remote")
    run(
        ["git", "-C", str(dest), "fetch", "--quiet", "--depth", "1", "origin", ref],
        what=f"fetching {what} {ref}",
    )
    run(
        ["git", "-C", str(dest), "checkout", "--quiet", "--detach", "FETCH_HEAD"], what=f"checking out {what}"
    )
    return run(
        ["git", "-C", str(dest), "rev-parse", "HEAD"], what=f"reading {what}'s commit", capture=True
    ).strip()


@contextmanager
def _constraints(torch: TorchSpec) -> Iterator[str]:
    with tempfile.NamedTemporaryFile("w", prefix="torch-constraints-", suffix=".txt") as handle:
        handle.write(torch.constraints())
        handle.flush()
        yield handle.name


def _record(comfyui_path: Path, name: str, payload: dict[str, str]) -> None:
    directory = comfyui_path / STATE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def _read_record(comfyui_path: Path, name: str) -> dict[str, str]:
    try:
        data = json.loads((comfyui_path / STATE_DIR / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
