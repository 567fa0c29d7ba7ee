"""`.ci/checks`, the one list of checks both CI definitions run, run for real with stub tools."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .scripts.test_container_files import _yaml

REPO = Path(__file__).resolve().parents[1]
TOOLS = ["ruff", "mypy", "shellcheck", "hadolint", "check-jsonschema", "pytest", "npm"]


def _venv(tmp_path: Path, *, failing: str = "") -> tuple[Path, Path]:
    """A venv whose tools only note how they were called (and `failing` exits 1)."""
    venv, record = tmp_path / "venv", tmp_path / "calls"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text(f'export PATH="{venv / "bin"}:$PATH"\n')
    for tool in TOOLS:
        stub = venv / "bin" / tool
        status = 1 if tool == failing else 0
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{record}"\nexit {status}\n')
        stub.chmod(0o755)
    return venv, record


def _run_checks(venv: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VENV": str(venv), "CHROMIUM": "/bin/true"}
    return subprocess.run(
        ["bash", str(REPO / ".ci" / "checks")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_check_runs_in_order(tmp_path: Path) -> None:
    venv, record = _venv(tmp_path)
    result = _run_checks(venv)
    assert result.returncode == 0, result.stderr
    calls = [call.strip() for call in record.read_text().splitlines()]
    assert [call.split()[0] for call in calls] == [
        "ruff",
        "ruff",
        "mypy",
        "shellcheck",
        "hadolint",
        "check-jsonschema",
        "check-jsonschema",
        "pytest",
        "npm",
        "npm",
    ]
    assert calls[1] == "ruff format --check ."
    assert calls[2] == "mypy"  # the files and strictness come from pyproject.toml
    linted = calls[3].split()
    assert {"scripts/start.sh", "app/scripts/test-all.sh", ".ci/run", ".ci/checks"} <= set(linted)
    assert calls[-1] == "npm --prefix app run test:all"  # the studio app's whole suite


@pytest.mark.parametrize("failing", ["ruff", "mypy", "pytest"])
def test_a_failing_check_fails_the_run_and_names_itself(tmp_path: Path, failing: str) -> None:
    venv, record = _venv(tmp_path, failing=failing)
    result = _run_checks(venv)
    assert result.returncode != 0
    last = record.read_text().splitlines()[-1]
    assert last.startswith(failing)  # nothing ran after it
    assert result.stderr.splitlines()[-1].startswith(f"== {failing}")


def test_both_ci_definitions_end_in_the_same_checks() -> None:
    workflow = _yaml(REPO / ".github" / "workflows" / "docker-build.yml")
    runs = [str(step.get("run", "")) for step in workflow["jobs"]["test"]["steps"]]
    assert runs[-1] == "bash .ci/checks"
    ci_run = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert ci_run[-3:] == ["exec bash .ci/checks", "}", 'main "$@"']
