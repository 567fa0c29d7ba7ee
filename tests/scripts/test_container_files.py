"""What can be checked of the image without a Docker engine: the Dockerfile's promises, the build
context, extra_model_paths.yaml, docker-compose.yml and the workflow."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from provision.manifest import load_manifest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()

# Every model folder current ComfyUI registers (folder_paths.py), plus the legacy names it maps.
COMFYUI_MODEL_FOLDERS = {
    "checkpoints", "configs", "loras", "vae", "vae_approx", "text_encoders", "clip", "diffusion_models",
    "unet", "clip_vision", "style_models", "embeddings", "diffusers", "controlnet", "gligen",
    "upscale_models", "latent_upscale_models", "hypernetworks", "photomaker", "classifiers",
    "model_patches", "audio_encoders", "background_removal", "frame_interpolation",
    "geometry_estimation", "optical_flow", "detection",
}  # fmt: skip


def _yaml(path: Path) -> Any:
    try:
        from ruamel.yaml import YAML  # comes with check-jsonschema

        return YAML(typ="safe").load(path.read_text())
    except ImportError:
        yaml = pytest.importorskip("yaml")
        return yaml.safe_load(path.read_text())


def _stage(name: str) -> str:
    """The instructions of one build stage."""
    match = re.search(rf"^FROM \S+ AS {name}\n(.*?)(?=^FROM |\Z)", DOCKERFILE, re.M | re.S)
    assert match, f"no stage {name}"
    return match.group(1)


def test_one_dockerfile_two_modes_pinned_comfyui_and_optional_baked_models() -> None:
    for arg in ("BUILD_MODE=serverless", 'COMFYUI_VERSION=""', 'BAKE_MODELS=""', "CUDA_IMAGE=nvidia/cuda:"):
        assert f"ARG {arg}" in DOCKERFILE
    assert "FROM runtime-${BUILD_MODE} AS final" in DOCKERFILE
    assert "runtime" in DOCKERFILE and "cudnn-runtime" in DOCKERFILE
    assert 'CMD ["compute"]' in _stage("runtime-compute")
    assert 'CMD ["serverless"]' in _stage("runtime-serverless")


def test_nodes_and_packages_are_installed_at_build_time_and_serverless_installs_nothing_at_boot() -> None:
    builder = _stage("builder")
    for step in ("install torch", "install comfyui", "install nodes", "install packages"):
        assert f"python -m provision {step}" in builder
    serverless = _stage("runtime-serverless")
    assert "git" not in serverless and "pip" not in serverless and "runtime-init" not in serverless
    runtime = _stage("runtime")
    assert "apt-get install" not in runtime  # git and compilers stay in the builder


def test_the_project_is_installed_from_source_not_editable() -> None:
    assert "python -m pip install /opt/worker/src" in _stage("builder")
    assert "pip install -e" not in DOCKERFILE


def test_security_habits() -> None:
    assert "chmod 777" not in DOCKERFILE
    assert not re.search(r"(curl|wget)[^\n]*\|\s*(ba)?sh", DOCKERFILE)  # no curl | sh
    assert "--mount=type=secret,id=hf_token" in DOCKERFILE  # the HF token is in no layer
    assert "HF_TOKEN=" not in DOCKERFILE.replace("env=HF_TOKEN", "")
    assert "useradd --uid 1000" in DOCKERFILE
    assert re.search(
        # /bin/bash explicitly: the root healthcheck must not find bash on the user-writable venv PATH
        r"^HEALTHCHECK .*\n\s+CMD \[\"/bin/bash\", \"/opt/worker/scripts/start.sh\", \"healthcheck\"\]",
        DOCKERFILE,
        re.M,
    )
    assert 'ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/opt/worker/scripts/start.sh"]' in DOCKERFILE
    assert "STOPSIGNAL SIGTERM" in DOCKERFILE
    for label in ("title", "description", "licenses", "version", "revision"):
        assert f"org.opencontainers.image.{label}=" in DOCKERFILE


def test_every_apt_install_cleans_its_lists_in_the_same_layer() -> None:
    for run in re.findall(r"^RUN .*?(?<!\\)\n", DOCKERFILE, re.M | re.S):
        if "apt-get install" in run:
            assert "--no-install-recommends" in run and "rm -rf /var/lib/apt/lists/*" in run, run


def test_the_build_context_holds_exactly_what_the_dockerfile_copies() -> None:
    allowed = {
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = set()
    for line in re.findall(r"^COPY (.*)$", DOCKERFILE, re.M):
        if "--from=" in line:
            continue
        sources = [part for part in line.split() if not part.startswith("--")][:-1]
        copied.update(Path(source).parts[0] for source in sources)
    assert copied == allowed
    assert all((REPO / name).exists() for name in copied)


def test_extra_model_paths_cover_every_comfyui_folder_on_both_volumes() -> None:
    config = _yaml(REPO / "extra_model_paths.yaml")
    assert {section["base_path"] for section in config.values()} == {"/runpod-volume/", "/workspace/"}
    manifest_folders = {
        m.folder for m in load_manifest(REPO / "manifest.toml").models if not m.link_into_comfyui
    }
    for name, section in config.items():
        folders = {key for key in section if key != "base_path"} | {"t2i_adapter"}
        assert folders >= COMFYUI_MODEL_FOLDERS, (name, COMFYUI_MODEL_FOLDERS - folders)
        assert manifest_folders <= folders
        for key, value in section.items():
            if key != "base_path":
                assert all(path.startswith("models/") for path in value.split()), (key, value)


def test_compose_runs_either_mode_on_a_gpu_without_an_open_jupyterlab() -> None:
    compose = _yaml(REPO / "docker-compose.yml")
    services = compose["services"]
    assert {name: s["build"]["args"]["BUILD_MODE"] for name, s in services.items()} == {
        "compute": "compute",
        "serverless": "serverless",
    }
    for service in services.values():
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"]
        assert all(port.startswith("127.0.0.1:") for port in service["ports"])
    assert services["compute"]["environment"]["JUPYTER_TOKEN"] == "${JUPYTER_TOKEN:-}"
    assert services["serverless"]["environment"]["SERVE_API_LOCALLY"] == "true"


def test_the_workflow_tests_then_builds_both_tags_to_ghcr() -> None:
    workflow = _yaml(REPO / ".github" / "workflows" / "docker-build.yml")
    jobs = workflow["jobs"]
    test_steps = " ".join(str(step.get("run", "")) for step in jobs["test"]["steps"])
    assert ".venv/bin/pip install -e '.[test]'" in test_steps and ".venv/bin/pytest" in test_steps
    for linter in ("shellcheck", "hadolint", "check-jsonschema"):
        assert linter in test_steps
    build = jobs["build"]
    assert build["needs"] == "test"
    assert build["permissions"]["packages"] == "write"
    assert {(m["mode"], m["tag"]) for m in build["strategy"]["matrix"]["include"]} == {
        ("compute", "latest"),
        ("serverless", "serverless"),
    }
    steps = {step.get("name", step.get("uses", "")): step for step in build["steps"]}
    assert steps["Log in to GHCR"]["with"]["password"] == "${{ secrets.GITHUB_TOKEN }}"
    push = steps["Build and push"]["with"]
    assert "BUILD_MODE=${{ matrix.mode }}" in push["build-args"]
    assert "cache-from" in push and "cache-to" in push
    tags = steps["Tags and labels"]["with"]["tags"]
    assert "type=sha" in tags and "${{ matrix.tag }}" in tags
    for step in [*jobs["test"]["steps"], *build["steps"]]:
        if "uses" in step:
            assert re.fullmatch(r"[\w./-]+@[0-9a-f]{40}", step["uses"]), step["uses"]  # pinned to a commit
