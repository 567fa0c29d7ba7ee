"""scripts/build-image.sh and scripts/test-image.sh run for real, with stub `buildah` and `docker`
programs that record what they are asked and answer like the real ones.

The real builds and boots (minutes, gigabytes) are not part of the test suite; their output is
quoted in docs/container.md. What is checked here is the scripts' own logic: the engine they pick,
the command lines they build, the sources they stage, and how they judge a boot.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASIC_TOOLS = (
    "bash", "cat", "cp", "date", "dirname", "basename", "find", "mkdir", "rm", "tee", "git", "mktemp",
    "awk", "grep", "sleep", "seq", "tail", "cut", "xargs", "ls", "env", "timeout", "readlink", "python3",
)  # fmt: skip

STUB_BUILDAH = r"""#!/bin/bash
printf '%s\n' "$*" >>"$STUB_RECORD/buildah"
if [[ "$1" == bud ]]; then
	# What the build context's .sources/ holds while the build runs.
	ls -A "${@: -1}/.sources" >"$STUB_RECORD/sources-during-build"
	exit "${STUB_BUILD_STATUS:-0}"
fi
"""

STUB_DOCKER = r"""#!/bin/bash
printf '%s\n' "$*" >>"$STUB_RECORD/docker"
case "$1" in
	info) exit "${STUB_DOCKER_INFO_STATUS:-0}" ;;
	create) if [[ "$*" == *RUN_AS_ROOT=true* ]]; then echo "ctr$(date +%N)-root"; else echo "ctr$(date +%N)"; fi ;;
	exec) printf 'ok   probe (stub)\nprobe-result {"failures": []}\n'; exit "${STUB_PROBE_STATUS:-0}" ;;
	top)
		user=1000
		[[ "$2" == *-root ]] && user=0  # RUN_AS_ROOT=true: all of it runs as root
		printf 'PID UID COMM\n100 0 tini\n101 %s bash\n102 %s python\n' "${STUB_SECOND_UID:-$user}" "$user" ;;
	image) echo 123456 ;;
	history) printf '1GB\tRUN pip install torch\n' ;;
esac
"""


def _bin(tmp_path: Path, **stubs: str) -> Path:
    """A PATH folder with the basic tools and the given stubs, and nothing else."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in BASIC_TOOLS:
        found = shutil.which(tool)
        if found:
            (folder / tool).symlink_to(found)
    for name, script in stubs.items():
        path = folder / name
        path.write_text(script)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return folder


def _context(tmp_path: Path) -> Path:
    """A copy of what the build reads, so no test writes into the checkout."""
    context = tmp_path / "context"
    (context / ".sources").mkdir(parents=True)
    (context / ".sources" / "README.md").write_text("kept\n")
    return context


def _run(script: str, tmp_path: Path, path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    record = tmp_path / "record"
    record.mkdir(exist_ok=True)
    full_env = {
        "PATH": str(path),
        "HOME": str(tmp_path),
        "STUB_RECORD": str(record),
        "CONTEXT_DIR": str(_context(tmp_path))
        if not (tmp_path / "context").exists()
        else str(tmp_path / "context"),
        "VCS_REF": "abc123",
        "PIP_CERT_FILE": "",
        **env,
    }
    return subprocess.run(
        ["bash", str(REPO / "scripts" / script), *args],
        env=full_env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _recorded(tmp_path: Path, name: str) -> list[str]:
    path = tmp_path / "record" / name
    return path.read_text().splitlines() if path.exists() else []


def test_without_a_docker_daemon_buildah_builds_both_images_with_cache_and_chroot(tmp_path: Path) -> None:
    path = _bin(tmp_path, buildah=STUB_BUILDAH, docker=STUB_DOCKER)
    cert = tmp_path / "ca.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")

    done = _run("build-image.sh", tmp_path, path, STUB_DOCKER_INFO_STATUS="1", PIP_CERT_FILE=str(cert),
                TORCH_INDEX_URL="default", BAKE_MODELS="GAUSSIAN")  # fmt: skip

    assert done.returncode == 0, done.stderr
    serverless, compute = _recorded(tmp_path, "buildah")
    for line, mode, tag in (
        (serverless, "serverless", "comfy-worker:serverless"),
        (compute, "compute", "comfy-worker:latest"),
    ):
        assert line.startswith("bud --isolation chroot --network host --layers --format docker ")
        assert f"--build-arg BUILD_MODE={mode} " in line and f"--tag {tag} " in line
        assert "--build-arg TORCH_INDEX_URL=default " in line and "--build-arg BAKE_MODELS=GAUSSIAN " in line
        assert f"--secret id=pip_cert,src={cert} " in line and "--build-arg VCS_REF=abc123 " in line
        assert "CUDA_IMAGE" not in line  # the Dockerfile's default base
    assert "done: serverless compute; check them with scripts/test-image.sh both" in done.stderr


def test_a_docker_daemon_is_used_when_it_answers(tmp_path: Path) -> None:
    path = _bin(tmp_path, buildah=STUB_BUILDAH, docker=STUB_DOCKER)
    done = _run("build-image.sh", tmp_path, path, "serverless", HF_TOKEN="secret-token-value")
    assert done.returncode == 0, done.stderr
    [line] = [line for line in _recorded(tmp_path, "docker") if line.startswith("buildx")]
    assert line.startswith("buildx build --load ") and "--secret id=hf_token,env=HF_TOKEN " in line
    assert "secret-token-value" not in done.stderr + done.stdout + line  # the token is never printed
    assert _recorded(tmp_path, "buildah") == []


def test_sources_dir_trees_are_in_the_context_during_the_build_and_gone_after(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    for name in ("ComfyUI", "ComfyUI-Sharp"):
        (sources / name).mkdir(parents=True)
        (sources / name / ".source-commit").write_text(f"{name[-1] * 40}\n")
    path = _bin(tmp_path, buildah=STUB_BUILDAH)

    done = _run("build-image.sh", tmp_path, path, "serverless", SOURCES_DIR=str(sources))

    assert done.returncode == 0, done.stderr
    assert _recorded(tmp_path, "sources-during-build") == ["ComfyUI", "ComfyUI-Sharp", "README.md"]
    assert sorted(os.listdir(tmp_path / "context" / ".sources")) == ["README.md"]
    assert f"sources: ComfyUI from {sources}/ComfyUI/ (commit {'I' * 40})" in done.stderr


def test_no_builder_at_all_says_what_to_install(tmp_path: Path) -> None:
    done = _run("build-image.sh", tmp_path, _bin(tmp_path))
    assert done.returncode == 1
    assert "no image builder: no Docker daemon answers and buildah is not installed" in done.stderr
    assert "apt-get install buildah" in done.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["sideways"], {}, "unknown mode 'sideways'"),
        ([], {"SOURCES_DIR": "/nonexistent/sources"}, "SOURCES_DIR=/nonexistent/sources is not a folder"),
        ([], {"PIP_CERT_FILE": "/nonexistent/ca.pem"}, "PIP_CERT_FILE=/nonexistent/ca.pem cannot be read"),
        ([], {"BUILDER": "podman"}, "BUILDER=podman is not docker, buildah or auto"),
        ([], {"CUDA_IMAGE": "debian-stand-in"}, "CUDA_IMAGE=debian-stand-in needs buildah"),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    path = _bin(tmp_path, buildah=STUB_BUILDAH, docker=STUB_DOCKER)
    done = _run("build-image.sh", tmp_path, path, *args, **env)
    assert done.returncode != 0 and message in done.stderr, done.stderr
    assert not [
        line for line in _recorded(tmp_path, "docker") + _recorded(tmp_path, "buildah") if "build" in line
    ]


def test_a_failed_build_stops_with_its_status_and_a_hint(tmp_path: Path) -> None:
    path = _bin(tmp_path, buildah=STUB_BUILDAH)
    done = _run("build-image.sh", tmp_path, path, STUB_BUILD_STATUS="3")
    assert done.returncode == 3
    assert "the serverless build failed (status 3" in done.stderr and "PIP_CERT_FILE" in done.stderr
    assert len(_recorded(tmp_path, "buildah")) == 1  # compute is not attempted after a failure


def test_the_image_test_boots_each_mode_without_network_and_judges_it(tmp_path: Path) -> None:
    path = _bin(tmp_path, docker=STUB_DOCKER)
    results = tmp_path / "results"

    done = _run("test-image.sh", tmp_path, path, RESULTS_DIR=str(results), BOOT_TIMEOUT_S="30")

    assert done.returncode == 0, done.stdout + done.stderr
    creates = [line for line in _recorded(tmp_path, "docker") if line.startswith("create")]
    assert len(creates) == 3  # serverless, compute, compute as root
    serverless, compute, compute_root = creates
    for line in creates:
        assert "--network none" in line and "--env COMFY_ARGS=--cpu" in line
    assert "--env SERVE_API_LOCALLY=true" in serverless and serverless.endswith(
        "comfy-worker:serverless serverless"
    )
    assert "--env JUPYTER_TOKEN=" in compute and "RUN_AS_ROOT" not in compute
    assert "--env RUN_AS_ROOT=true" in compute_root
    assert done.stdout.count("ok   every process but PID 1 runs as uid 1000") == 2
    assert done.stdout.count("ok   every process but PID 1 runs as uid 0") == 1  # RUN_AS_ROOT=true
    assert "FAIL" not in done.stdout
    assert any(line.startswith("kill --signal TERM") for line in _recorded(tmp_path, "docker"))


def test_a_process_running_as_root_fails_the_image_test(tmp_path: Path) -> None:
    path = _bin(tmp_path, docker=STUB_DOCKER)
    done = _run(
        "test-image.sh", tmp_path, path, "serverless", RESULTS_DIR=str(tmp_path / "r"), STUB_SECOND_UID="0"
    )
    assert done.returncode == 1
    assert "FAIL every process but PID 1 runs as uid 1000: bash(pid 101, uid 0)" in done.stdout
    assert "1 check(s) failed" in done.stderr


def test_a_failing_probe_fails_the_image_test(tmp_path: Path) -> None:
    path = _bin(tmp_path, docker=STUB_DOCKER)
    done = _run(
        "test-image.sh", tmp_path, path, "serverless", RESULTS_DIR=str(tmp_path / "r"), STUB_PROBE_STATUS="1"
    )
    assert done.returncode == 1
    assert "FAIL serverless: probe inside the container" in done.stdout
