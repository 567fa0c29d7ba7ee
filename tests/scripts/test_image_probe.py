"""scripts/image_probe.py, the checks test-image.sh runs inside a booted image, run here against
the real handler (`python -m handler --rp_serve_api`) and the ComfyUI test server over loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from comfy_testserver import ComfyTestServer
from tests import test_runpod_e2e as e2e
from tests import workflows as wf
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
PROBE = REPO / "scripts" / "image_probe.py"
MANIFEST = """schema = 1
[comfyui]
repo = "https://github.com/Comfy-Org/ComfyUI.git"
version = "v0.12.3"
[torch]
index_url = "https://download.pytorch.org/whl/cu128"
packages = ["torch==2.10.0"]

[[nodes]]
name = "Core-ish"
repo = "https://example.org/a.git"
commit = "{commit}"
group = "GAUSSIAN"
classes = {classes}

[[nodes]]
name = "PodOnly"
repo = "https://example.org/b.git"
commit = "{commit}"
group = "CORE"
modes = ["compute"]
classes = ["OnlyOnPods"]
"""


@pytest.fixture(scope="module")
def serve_api(shared_comfy: ComfyTestServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real handler serving RunPod's local API, as the image runs it with SERVE_API_LOCALLY
    (one per module and profile: the probes only read from it and run their own small job)."""
    port = free_port()
    process = e2e.Process(
        [sys.executable, "-m", "handler", "--rp_serve_api", "--rp_api_port", str(port)],
        e2e.worker_env(shared_comfy),
        tmp_path_factory.mktemp("serve-api") / "serve.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        e2e.wait_for_http(f"{base}/docs", process)
        yield base
    finally:
        process.stop()


def _probe(
    tmp_path: Path, api: str, comfy: ComfyTestServer, classes: list[str], log: str = ""
) -> tuple[int, str, dict]:
    (tmp_path / "manifest.toml").write_text(MANIFEST.format(commit="a" * 40, classes=json.dumps(classes)))
    (tmp_path / "workflow.json").write_text(json.dumps(wf.save_image("probe")))
    (tmp_path / "comfyui.log").write_text(log)
    done = subprocess.run(
        [
            sys.executable, str(PROBE), "serverless",
            "--api", api, "--comfy-port", comfy.address.rsplit(":", 1)[1], "--timeout-s", "30",
            "--workflow", str(tmp_path / "workflow.json"), "--manifest", str(tmp_path / "manifest.toml"),
            "--comfy-log", str(tmp_path / "comfyui.log"),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    result = json.loads(done.stdout.rsplit("probe-result ", 1)[1])
    return done.returncode, done.stdout, result


def test_a_healthy_serverless_image_passes_every_check(
    serve_api: str, shared_comfy: ComfyTestServer, tmp_path: Path
) -> None:
    status, output, result = _probe(tmp_path, serve_api, shared_comfy, ["SaveImage", "EmptyImage"])

    assert status == 0, output
    assert "ok   handler's local API answers" in output
    assert "ok   workflow.json through /runsync" in output
    assert "ok   Core-ish registers SaveImage, EmptyImage" in output
    assert "OnlyOnPods" not in output  # a pod-only node is not expected in a serverless image
    assert result["failures"] == [] and result["boot_s"] >= 0 and result["object_info_classes"] > 10


def test_a_missing_node_class_or_a_failed_import_fails_the_image(
    serve_api: str,
    shared_comfy: ComfyTestServer,
    tmp_path: Path,
) -> None:
    log = "Import times for custom nodes:\n   0.1 seconds (IMPORT FAILED): /comfyui/custom_nodes/ComfyUI-Sharp\n"
    status, output, result = _probe(
        tmp_path, serve_api, shared_comfy, ["SaveImage", "SharpPredictMissing"], log
    )

    assert status == 1
    assert "FAIL Core-ish registers SaveImage, SharpPredictMissing: missing ['SharpPredictMissing']" in output
    assert (
        "FAIL no custom node failed to import: 0.1 seconds (IMPORT FAILED): /comfyui/custom_nodes/ComfyUI-Sharp"
        in output
    )
    assert len(result["failures"]) == 2


def test_nothing_answering_is_a_failure_with_the_address_not_a_hang(tmp_path: Path) -> None:
    # Runs once, not once per test-server profile: nothing answers, no ComfyUI is involved.
    (tmp_path / "manifest.toml").write_text(MANIFEST.format(commit="a" * 40, classes="[]"))
    done = subprocess.run(
        [sys.executable, str(PROBE), "serverless", "--api", "http://127.0.0.1:9", "--timeout-s", "1",
         "--manifest", str(tmp_path / "manifest.toml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "FAIL handler's local API answers: nothing on http://127.0.0.1:9 after 1 s" in done.stdout
