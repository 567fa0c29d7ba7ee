"""Which layers of the image an edit rebuilds, worked out from the Dockerfile as a builder would.

A builder reuses a step while the step and everything before it are unchanged; a COPY counts as
changed when the bytes it copies change (Docker/BuildKit and buildah both key COPY by content).
This walks the runtime stages of the real Dockerfile with that rule, feeding it the real build
context and the real `provision layers` output, before and after an edit, and reports the first
step that must be rebuilt: everything from there on is what every RunPod host pulls again.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from provision.layers import layer_files
from provision.manifest import parse_manifest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()
CONTEXT = (
    "manifest.toml",
    "pyproject.toml",
    "provision",
    "scripts",
    "extra_model_paths.yaml",
    "handler",
    "comfy_worker",
)


@dataclass(frozen=True)
class Step:
    stage: str
    text: str


def _instructions(dockerfile: str) -> list[Step]:
    """The instructions, continuation lines joined and comment lines dropped, with their stage."""
    steps, stage, current = [], "", ""
    for line in dockerfile.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip("\\").strip() + " "
        if line.endswith("\\"):
            continue
        text, current = current.strip(), ""
        match = re.match(r"FROM \S+ AS (\S+)", text)
        if match:
            stage = match.group(1)
        steps.append(Step(stage, text))
    return steps


def _files(state: Mapping[str, bytes], prefix: str) -> bytes:
    """The bytes under a context path or layers path, in a stable order."""
    prefix = prefix.rstrip("/")
    chosen = sorted(k for k in state if k == prefix or k.startswith(prefix + "/"))
    assert chosen, f"nothing at {prefix}"
    return b"".join(k.encode() + b"\0" + state[k] for k in chosen)


def _step_input(step: Step, context: Mapping[str, bytes], layers: Mapping[str, bytes]) -> bytes:
    text = step.text
    if not text.startswith("COPY "):
        return text.encode()  # RUN, ENV, USER...: the instruction itself is the key
    words = [w for w in text.split()[1:] if not w.startswith("--chown")]
    source_stage = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
    sources = [w for w in words if not w.startswith("--")][:-1]
    if source_stage == "manifest":
        return b"".join(_files(layers, s.removeprefix("/layers/")) for s in sources)
    if source_stage == "sources":  # /src/<set>/ holds the trees of layers' sources/<set>.json
        return b"".join(_files(layers, f"sources/{Path(s).name}.json") for s in sources)
    if source_stage == "models":
        return _files(layers, "models/manifest.toml")
    assert source_stage is None, f"COPY from an unknown stage: {text}"
    return b"".join(_files(context, s) for s in sources)


def _keys(
    stage_chain: list[str], context: Mapping[str, bytes], layers: Mapping[str, bytes]
) -> list[tuple[Step, str]]:
    """Each step of the given stages (in order) with its cache key, chained like a builder's."""
    steps = [s for s in _instructions(DOCKERFILE) if s.stage in stage_chain and not s.text.startswith("FROM")]
    steps.sort(key=lambda s: stage_chain.index(s.stage))
    out, key = [], hashlib.sha256(b"base")
    for step in steps:
        key = hashlib.sha256(key.digest() + _step_input(step, context, layers))
        out.append((step, key.hexdigest()))
    return out


def _excluded(relpath: str) -> bool:
    """Whether .dockerignore's exclusions (the lines after the `!` includes) drop this path."""
    for line in (REPO / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith(("#", "!")) or pattern == "*":
            continue
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(part, pattern[3:]) for part in Path(relpath).parts):
                return True
        elif relpath == pattern.rstrip("/") or relpath.startswith(pattern.rstrip("/") + "/"):
            return True
    return False


def _context(edit: Callable[[dict[str, bytes]], None] | None = None) -> dict[str, bytes]:
    state = {}
    for name in CONTEXT:
        path = REPO / name
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        state.update(
            {
                str(f.relative_to(REPO)): f.read_bytes()
                for f in files
                if not _excluded(str(f.relative_to(REPO)))
            }
        )
    if edit is not None:
        edit(state)
    return state


def _layers(
    context: Mapping[str, bytes], tmp_path: Path, *, bake: frozenset[str] = frozenset()
) -> dict[str, bytes]:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_bytes(context["pyproject.toml"])
    manifest = parse_manifest(tomllib.loads(context["manifest.toml"].decode()))
    return {k: v.encode() for k, v in layer_files(manifest, bake_groups=bake, pyproject=pyproject).items()}


def _first_rebuilt(
    edit: Callable[[dict[str, bytes]], None], tmp_path: Path, chain: list[str], **bake: frozenset[str]
) -> Step | None:
    before_context = _context()
    after_context = _context(edit)
    before = _keys(chain, before_context, _layers(before_context, tmp_path, **bake))
    after = _keys(chain, after_context, _layers(after_context, tmp_path, **bake))
    for (step, key_before), (_, key_after) in zip(before, after, strict=True):
        if key_before != key_after:
            return step
    return None


def _replace(path: str, old: str, new: str) -> Callable[[dict[str, bytes]], None]:
    def edit(state: dict[str, bytes]) -> None:
        text = state[path].decode()
        assert old in text, (path, old)
        state[path] = text.replace(old, new, 1).encode()

    return edit


def _append(path: str, text: str) -> Callable[[dict[str, bytes]], None]:
    def edit(state: dict[str, bytes]) -> None:
        state[path] = state[path] + text.encode()

    return edit


NEW_MODEL = """
[[models]]
name = "a new model"
group = "{group}"
url = "https://example.org/new-model.safetensors"
folder = "loras"
sha256 = "{sha}"
""".replace("{sha}", "ab" * 32)
# The stages each image is built through, in order (the final stage only picks one).
SERVERLESS = ["deps", "extras-serverless", "runtime", "runtime-serverless"]
COMPUTE = ["deps", "extras-compute", "runtime", "runtime-compute"]


def _index(step: Step | None, chain: list[str]) -> int:
    steps = [s for s in _instructions(DOCKERFILE) if s.stage in chain and not s.text.startswith("FROM")]
    assert step is not None
    return steps.index(step)


def _last_install(chain: list[str]) -> int:
    """The last step that installs packages or copies models: the heavy layers end there."""
    steps = [s for s in _instructions(DOCKERFILE) if s.stage in chain and not s.text.startswith("FROM")]
    heavy = [i for i, s in enumerate(steps) if "pip install" in s.text or "--from=models" in s.text]
    return heavy[-1]


@pytest.mark.parametrize(
    "edit",
    [
        _append("handler/worker.py", "\n# an edit\n"),
        _append("comfy_worker/cli.py", "\n# an edit\n"),
        _append("provision/download.py", "\n# an edit\n"),
        _append("scripts/start.sh", "\n# an edit\n"),
        _append("manifest.toml", "\n# a comment\n"),
        _append("manifest.toml", NEW_MODEL.format(group="GAUSSIAN")),
    ],
    ids=["handler", "comfy_worker", "provision", "start.sh", "a manifest comment", "a new model"],
)
def test_a_code_or_model_entry_edit_rebuilds_only_the_worker_code_layers(
    edit: Callable[[dict[str, bytes]], None], tmp_path: Path
) -> None:
    for chain in (SERVERLESS, COMPUTE):
        step = _first_rebuilt(edit, tmp_path, chain)
        assert step is not None
        # torch, ComfyUI, nodes, the worker's dependencies and, on pods, the compute extras are kept
        assert _index(step, chain) > _last_install(chain), step.text
        assert step.stage == "runtime" and step.text.startswith("COPY ") and "--from" not in step.text


def test_the_local_endpoint_is_not_in_the_image_but_the_client_and_cli_are() -> None:
    context = _context()
    assert "comfy_worker/cli.py" in context and "comfy_worker/client.py" in context
    assert not [name for name in context if name.startswith("comfy_worker/endpoint/")]
    assert not [name for name in context if name.endswith(".pyc")]


def test_an_edit_of_the_local_endpoint_rebuilds_nothing(tmp_path: Path) -> None:
    def edit(state: dict[str, bytes]) -> None:
        path = REPO / "comfy_worker" / "endpoint" / "server.py"
        if not _excluded("comfy_worker/endpoint/server.py"):
            state["comfy_worker/endpoint/server.py"] = path.read_bytes() + b"# edited\n"

    for chain in (SERVERLESS, COMPUTE):
        assert _first_rebuilt(edit, tmp_path, chain) is None


def test_readme_and_tests_are_not_in_the_image_at_all() -> None:
    assert "README.md" not in DOCKERFILE.split("# ----")[-1]  # no step copies it
    ignore = (REPO / ".dockerignore").read_text()
    assert "!README.md" not in ignore and "!tests" not in ignore


def test_a_node_pin_rebuilds_from_the_nodes_keeping_torch_and_comfyui(tmp_path: Path) -> None:
    step = _first_rebuilt(
        _replace("manifest.toml", "4600f45e2de8d55b7a6dcbd9970c534c7affb1a2", "0" * 40), tmp_path, SERVERLESS
    )
    assert step is not None and step.text.startswith("COPY --from=sources") and "/src/nodes/" in step.text


def test_a_torch_pin_rebuilds_from_torch(tmp_path: Path) -> None:
    step = _first_rebuilt(
        _replace("manifest.toml", '"torch==2.10.0"', '"torch==2.10.1"'), tmp_path, SERVERLESS
    )
    assert step is not None and step.text.startswith("COPY --from=manifest /layers/torch ")


def test_the_comfyui_ref_rebuilds_from_comfyui_keeping_torch(tmp_path: Path) -> None:
    step = _first_rebuilt(
        _replace("manifest.toml", 'version = "v0.12.3"', 'version = "v0.12.4"'), tmp_path, SERVERLESS
    )
    assert step is not None and "/src/comfyui/" in step.text


def test_a_new_worker_dependency_rebuilds_only_the_dependency_and_code_layers(tmp_path: Path) -> None:
    step = _first_rebuilt(
        _replace("pyproject.toml", '"boto3>=1.36,<2"', '"boto3>=1.37,<2"'), tmp_path, SERVERLESS
    )
    assert step is not None and step.text.startswith("COPY --from=manifest /layers/worker ")


def test_baked_models_are_fetched_again_only_when_their_entries_change(tmp_path: Path) -> None:
    gaussian = frozenset({"GAUSSIAN"})
    node_edit = _replace("manifest.toml", "5da86e75904c59af545e986b23610ea958eb9aa1", "1" * 40)
    code_edit = _append("handler/worker.py", "\n# an edit\n")
    model_edit = _append("manifest.toml", NEW_MODEL.format(group="GAUSSIAN"))
    # The models stage's own input: only the baked entries.
    for edit, changes in ((node_edit, False), (code_edit, False), (model_edit, True)):
        before, after = _context(), _context(edit)
        baked_before = _layers(before, tmp_path, bake=gaussian)["models/manifest.toml"]
        baked_after = _layers(after, tmp_path, bake=gaussian)["models/manifest.toml"]
        assert (baked_before != baked_after) is changes
