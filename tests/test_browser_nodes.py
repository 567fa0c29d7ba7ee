"""Browser-only nodes (GaussianViewer) on serverless: left out when they only preview, answered at
once when their outputs are used; the .ply comes back either way. Pure planning first, then the
worker end to end against the test server's GaussianViewer over real sockets."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from comfy_testserver import ComfyTestServer
from handler.browser_nodes import KNOWN_BROWSER_NODES, browser_nodes, plan_browser_nodes
from handler.config import ConfigError, Settings
from handler.worker import Worker

from . import workflows as wf
from .conftest import make_settings

OUTPUT_CLASSES = {"SharpPredict", "GaussianViewer", "SaveImage", "PreviewAny"}


def is_output(cls: str) -> bool:
    return cls in OUTPUT_CLASSES


def test_a_preview_only_viewer_is_left_out_and_a_used_one_is_answered() -> None:
    preview = wf.splat(viewer=True)
    plan = plan_browser_nodes(preview, KNOWN_BROWSER_NODES, is_output=is_output)
    assert set(plan.workflow) == {"1", "2", "3"} and plan.removed == {"4": "GaussianViewer"}
    assert plan.answered == {} and preview["4"]["class_type"] == "GaussianViewer"  # input untouched

    used = {
        **preview,
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "v"}},
    }
    plan = plan_browser_nodes(used, KNOWN_BROWSER_NODES, is_output=is_output)
    assert plan.workflow == used and plan.removed == {}
    assert plan.answered["4"].answer_route == "/geompack/render_error"
    (note,) = plan.notes({"4": "GaussianViewer"})
    assert "node 4 (GaussianViewer)" in note and "answered at once" in note


def test_a_viewer_feeding_only_another_viewer_goes_too_but_never_the_last_output() -> None:
    chain = {
        **wf.splat(viewer=True),
        "5": {
            "class_type": "GeomPackRenderGaussian",
            "inputs": {"ply_path": ["3", 0], "extrinsics": ["4", 1]},
        },
    }
    plan = plan_browser_nodes(chain, KNOWN_BROWSER_NODES, is_output=is_output)
    assert plan.removed == {"5": "GeomPackRenderGaussian", "4": "GaussianViewer"}
    alone = {
        "1": {"class_type": "PrimitiveString", "inputs": {"value": "/x.ply"}},
        "2": {"class_type": "GaussianViewer", "inputs": {"ply_path": ["1", 0]}},
    }
    plan = plan_browser_nodes(alone, KNOWN_BROWSER_NODES, is_output=is_output)
    assert plan.removed == {} and set(plan.answered) == {"2"}  # removing it would leave no output


def test_browser_nodes_env_adds_classes_and_rejects_garbage() -> None:
    settings = Settings.from_env({"BROWSER_NODES": " MyViewer , Other3D "})
    assert settings.browser_nodes == ("MyViewer", "Other3D")
    known = browser_nodes(settings.browser_nodes)
    workflow = {
        **wf.save_image(),
        "3": {"class_type": "MyViewer", "inputs": {"image": ["1", 0]}},
        "4": {"class_type": "Other3D", "inputs": {"x": ["1", 0]}},
        "5": {"class_type": "PreviewAny", "inputs": {"source": ["4", 0]}},
    }
    plan = plan_browser_nodes(workflow, known, is_output=is_output)
    assert plan.removed == {"3": "MyViewer"} and plan.unanswered == {"4": "Other3D"}
    with pytest.raises(ConfigError, match="BROWSER_NODES=.*'My;Viewer' is not a node class name"):
        Settings.from_env({"BROWSER_NODES": "My;Viewer"})


@pytest.fixture
def slow_viewer(comfy: ComfyTestServer) -> ComfyTestServer:
    comfy.behaviour.browser_render_timeout_s = 30.0  # the real node's wait
    return comfy


def splat_files(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in result["files"] if f["filename"].endswith(".ply")]


async def test_preview_viewer_is_left_out_and_the_ply_returned(slow_viewer: ComfyTestServer) -> None:
    worker = Worker(make_settings(slow_viewer))
    started = time.monotonic()
    result = await worker.handle({"id": "v1", "input": {"workflow": wf.splat("room", viewer=True)}})
    assert "error" not in result, result
    assert time.monotonic() - started < 10.0  # not the viewer's 30 s
    (ply,) = splat_files(result)
    assert ply["node_id"] == "3" and ply["filename"].startswith("room_")
    assert base64.b64decode(ply["data"])[:4] == b"ply\n"
    (note,) = result["notes"]
    assert note.startswith("node 4 (GaussianViewer) left out")
    (queued,) = [r.json for r in slow_viewer.requests if r.method == "POST" and r.path == "/prompt"]
    assert queued is not None
    assert "4" not in queued["prompt"] and slow_viewer.executions[-1].executed_nodes == ["1", "2", "3"]


async def test_used_viewer_gets_its_render_request_answered_at_once(slow_viewer: ComfyTestServer) -> None:
    workflow = {
        **wf.splat("room", viewer=True),
        "5": {"class_type": "ExtrinsicsToPose", "inputs": {"extrinsics": ["4", 1]}},
        "6": {"class_type": "PreviewAny", "inputs": {"source": ["5", 6]}},
    }
    worker = Worker(make_settings(slow_viewer))
    started = time.monotonic()
    result = await worker.handle({"id": "v2", "input": {"workflow": workflow}})
    assert "error" not in result, result
    assert time.monotonic() - started < 10.0
    assert "4" in slow_viewer.executions[-1].executed_nodes
    (answer,) = [r for r in slow_viewer.requests if r.path == "/geompack/render_error"]
    assert answer.json is not None
    assert answer.json["request_id"].startswith("render-") and "serverless" in answer.json["error"]
    (ply,) = splat_files(result)
    assert ply["filename"].startswith("room_") and base64.b64decode(ply["data"])[:4] == b"ply\n"
    assert result["text"] == [{"node_id": "6", "text": ""}]  # no camera from a browser: empty pose
    (note,) = result["notes"]
    assert "node 4 (GaussianViewer) ran without a browser" in note


async def test_without_the_handling_the_viewer_waits_for_a_browser(slow_viewer: ComfyTestServer) -> None:
    # The contrast: a worker that does not know GaussianViewer queues it unchanged, never answers its
    # request, and the job waits out the node's timeout.
    slow_viewer.behaviour.browser_render_timeout_s = 1.0
    workflow = {
        **wf.splat("room", viewer=True),
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "view"}},
    }
    worker = Worker(make_settings(slow_viewer))
    worker.browser_nodes.clear()
    started = time.monotonic()
    result = await worker.handle({"id": "v3", "input": {"workflow": workflow}})
    assert "error" not in result and "notes" not in result
    assert time.monotonic() - started >= 1.0
    assert not [r for r in slow_viewer.requests if r.path == "/geompack/render_error"]
