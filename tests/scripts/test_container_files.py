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


def test_one_dockerfile_two_modes_on_a_plain_os_base_that_the_nvidia_runtime_still_equips() -> None:
    for arg in ("BUILD_MODE=serverless", 'COMFYUI_VERSION=""', 'BAKE_MODELS=""', "CUDA_IMAGE=ubuntu:24.04"):
        assert f"ARG {arg}" in DOCKERFILE
    assert "FROM runtime-${BUILD_MODE} AS final" in DOCKERFILE
    base = _stage("base")
    # Without a CUDA base image these are what make the NVIDIA runtime mount the driver, and
    # refuse a host too old for the CUDA 12.8 wheels, as nvidia/cuda images do.
    for variable in (
        "NVIDIA_VISIBLE_DEVICES=all",
        "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
        'NVIDIA_REQUIRE_CUDA="cuda>=12.8"',
    ):
        assert variable in base
    assert 'CMD ["compute"]' in _stage("runtime-compute")
    assert 'CMD ["serverless"]' in _stage("runtime-serverless")


def test_serverless_installs_nothing_at_boot_and_pods_get_their_tools() -> None:
    serverless = _stage("runtime-serverless")
    assert "git" not in serverless and "pip" not in serverless and "runtime-init" not in serverless
    runtime = _stage("runtime")
    assert "apt-get install" not in runtime and "git " not in runtime
    compute = _stage("extras-compute")
    assert "build-essential git" in compute and "jupyterlab>=4.4,<5" in compute
    assert "/src/compute/" in compute  # ComfyUI-Manager, pods only
    instructions = [line for line in _stage("extras-serverless").splitlines() if line and line[0] != "#"]
    assert instructions == []  # nothing on top of the shared layers
    assert "FROM extras-${BUILD_MODE} AS runtime" in DOCKERFILE


def test_the_worker_is_copied_last_not_pip_installed_into_the_venv() -> None:
    runtime = _stage("runtime")
    assert "pip install /opt/worker" not in DOCKERFILE and "pip install -e" not in DOCKERFILE
    # Every install is in the stages below the one that copies the code.
    assert "pip install -" not in runtime and "pip install -" in _stage("deps")
    assert DOCKERFILE.index("COPY handler /opt/worker/handler") > DOCKERFILE.rindex("pip install ")
    assert "comfy_serverless_worker.pth" in runtime


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
    copied: set[str] = set()
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


def test_the_workflow_tests_builds_boots_then_pushes_both_tags_to_ghcr() -> None:
    workflow = _yaml(REPO / ".github" / "workflows" / "docker-build.yml")
    jobs = workflow["jobs"]
    test_steps = [str(step.get("run", "")) for step in jobs["test"]["steps"]]
    # The checks themselves are .ci/checks, which .ci/run ends with too (tests/test_ci.py runs it).
    assert any(".venv/bin/pip install -e '.[test]'" in run for run in test_steps)
    assert "bash .ci/checks" in test_steps
    image = jobs["image"]
    assert image["needs"] == "test" and image["permissions"]["packages"] == "write"
    names = [step.get("name", step.get("uses", "")) for step in image["steps"]]
    steps = {step.get("name", step.get("uses", "")): step for step in image["steps"]}
    # Each image is booted and checked by the same script as on a developer machine, then pushed.
    order = ["Build serverless", "Test serverless", "Build compute", "Test compute", "Push"]
    positions = [next(i for i, name in enumerate(names) if name.startswith(prefix)) for prefix in order]
    assert positions == sorted(positions)
    assert "scripts/test-image.sh serverless" in steps[names[positions[1]]]["run"]
    assert "scripts/test-image.sh compute" in steps[names[positions[3]]]["run"]
    assert steps[names[positions[4]]]["if"] == "github.event_name != 'pull_request'"
    serverless, compute = steps["Build serverless"]["with"], steps["Build compute"]["with"]
    assert serverless["load"] is True and compute["load"] is True and "push" not in serverless
    assert (
        "BUILD_MODE=serverless" in serverless["build-args"] and "BUILD_MODE=compute" in compute["build-args"]
    )
    assert serverless["cache-from"] == compute["cache-from"]  # one cache for both modes
    assert steps["Log in to GHCR"]["with"]["password"] == "${{ secrets.GITHUB_TOKEN }}"
    assert "value=serverless" in steps["Tags and labels (serverless)"]["with"]["tags"]
    assert "value=latest" in steps["Tags and labels (compute)"]["with"]["tags"]
    for step in [*jobs["test"]["steps"], *image["steps"]]:
        if "uses" in step:
            assert re.fullmatch(r"[\w./-]+@[0-9a-f]{40}", step["uses"]), step["uses"]  # pinned to a commit
