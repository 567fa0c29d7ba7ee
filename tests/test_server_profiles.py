"""COMFY_TESTSERVER_PROFILE: which test server profiles the server-backed tests run against."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _collect(profile: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMFY")}
    if profile is not None:
        env["COMFY_TESTSERVER_PROFILE"] = profile
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_secrets.py",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _ids(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.split("::", 1)[1] for line in done.stdout.splitlines() if "::" in line]


@pytest.mark.timeout(180)  # a fresh interpreter collecting: imports boto3, moto, runpod
def test_the_variable_limits_server_backed_tests_to_one_profile() -> None:
    only = _ids(_collect("current"))
    assert "test_worker_trace_keeps_redacted_text_out_of_the_debug_log[current]" in only
    assert "test_short_secret_never_rewrites_field_values_that_merely_contain_it" in only  # no server: once
    assert not [name for name in only if name.endswith("[0.3.64]")]
    # (Without the variable both run: every server-backed test id in this suite ends in [0.3.64] or [current].)
