"""The Gaussian-splat stand-ins behave as ComfyUI-Sharp and comfyui-GaussianViewer do at the
manifest's commits: file naming, PLY layout, `ui` shapes, and GaussianViewer's browser handshake."""

from __future__ import annotations

import base64
import io
import json
import struct
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from comfy_testserver import ComfyTestServer
from comfy_testserver.nodes.gaussians import SPLAT_PROPERTIES

from .helpers import Socket, submit, wait_history


@pytest.fixture
def sharp_server(server: ComfyTestServer) -> ComfyTestServer:
    (server.root / "models" / "sharp").mkdir(parents=True)
    (server.root / "models" / "sharp" / "sharp_2572gikvuh.pt").write_bytes(b"\0")
    server.behaviour.browser_render_timeout_s = 5.0
    return server


def splat_workflow(batch: int = 1, /, **extra: Any) -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 24, "height": 16, "batch_size": batch, "color": 0x336699}},
        "2": {"class_type": "LoadSharpModel", "inputs": {"device": "cpu"}},
        "3": {"class_type": "SharpPredict", "inputs": {"model": ["2", 0], "image": ["1", 0], "output_prefix": "room"}},
        "5": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}},
        **extra,
    }  # fmt: skip


VIEWER: dict[str, Any] = {
    "class_type": "GaussianViewer",
    "inputs": {"ply_path": ["3", 0], "extrinsics": ["3", 1], "intrinsics": ["3", 2]},
}


def read_ply(path: Path) -> tuple[list[str], int, bytes]:
    data = path.read_bytes()
    header, _, body = data.partition(b"end_header\n")
    lines = header.decode("ascii").splitlines()
    return lines, int(lines[2].split()[-1]), body


async def run(
    server: ComfyTestServer, session: aiohttp.ClientSession, workflow: dict[str, Any]
) -> dict[str, Any]:
    prompt_id = (await submit(session, server.url, {"prompt": workflow}))["prompt_id"]
    return await wait_history(session, server.url, prompt_id, timeout=10)


async def test_sharp_predict_writes_a_timestamped_3dgs_ply_and_reports_nothing(
    sharp_server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    before = int(time.time() * 1000)
    history = await run(sharp_server, session, splat_workflow())
    assert "3" not in history["outputs"]  # OUTPUT_NODE without `ui`: the worker must find the file on disk
    (ply,) = (sharp_server.root / "output").glob("room_*.ply")
    assert before <= int(ply.stem[len("room_") :]) <= int(time.time() * 1000)
    assert history["outputs"]["5"] == {"text": [str(ply)]}  # ply_path is the absolute path
    lines, count, body = read_ply(ply)
    assert lines[:3] == ["ply", "format binary_little_endian 1.0", f"element vertex {count}"]
    assert lines[3:] == [f"property float {name}" for name in SPLAT_PROPERTIES]
    assert count == 2 * 16 * 16 and len(body) == count * 14 * 4
    first = struct.unpack_from("<14f", body)
    assert first[-4:] == (1.0, 0.0, 0.0, 0.0)  # identity quaternion


async def test_sharp_predict_batch_writes_a_numbered_folder(
    sharp_server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    history = await run(sharp_server, session, splat_workflow(3))
    (folder,) = (sharp_server.root / "output").glob("room_*")
    assert folder.is_dir() and sorted(p.name for p in folder.iterdir()) == ["001.ply", "002.ply", "003.ply"]
    assert history["outputs"]["5"] == {"text": [str(folder)]}


async def test_load_sharp_model_without_the_checkpoint_fails_like_an_offline_download(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    history = await run(server, session, splat_workflow())
    error = next(m[1] for m in history["status"]["messages"] if m[0] == "execution_error")
    assert error["node_type"] == "LoadSharpModel" and "urlopen error" in error["exception_message"]


async def test_gaussian_viewer_asks_the_browser_and_uses_its_render(
    sharp_server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    sock = await Socket.connect(session, sharp_server.url, "browser")
    workflow = splat_workflow(
        **{
            "4": VIEWER,
            "6": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "view"}},
        }
    )
    prompt_id = (await submit(session, sharp_server.url, {"prompt": workflow}, "someone-else"))["prompt_id"]
    # Broadcast: a socket that did not queue the prompt gets the request too.
    await sock.wait_for(lambda s: any(f["type"] == "geompack_render_request" for f in s.frames()))
    request = next(f["data"] for f in sock.frames() if f["type"] == "geompack_render_request")
    ply = next((sharp_server.root / "output").glob("room_*.ply"))
    assert request["node_id"] == "4" and request["request_id"].startswith("render-")
    assert request["ply_file"] == ply.name and request["type"] == "output" and request["subfolder"] == ""
    assert request["output_resolution"] == 3072  # aspect 24:16 from SHARP's intrinsics
    rendered = io.BytesIO()
    Image.new("RGB", (30, 20), (10, 200, 30)).save(rendered, format="PNG")
    data_url = "data:image/png;base64," + base64.b64encode(rendered.getvalue()).decode()
    async with session.post(
        f"{sharp_server.url}/geompack/render_result",
        json={"request_id": request["request_id"], "image": data_url},
    ) as response:
        assert response.status == 200 and await response.json() == {"status": "ok"}
    history = await wait_history(session, sharp_server.url, prompt_id)
    await sock.close()

    ui = history["outputs"]["4"]
    assert {k: ui[k] for k in ("ply_file", "filename", "subfolder", "type")} == {
        "ply_file": [ply.name], "filename": [ply.name], "subfolder": [""], "type": ["output"],
    }  # fmt: skip
    assert ui["file_size_mb"] == [round(ply.stat().st_size / 1048576, 2)]
    assert ui["extrinsics"] == [[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]]
    assert "overlay_image" not in ui
    (saved,) = history["outputs"]["6"]["images"]
    with Image.open(sharp_server.root / "output" / saved["filename"]) as img:
        assert img.size == (30, 20)  # the browser's render flows downstream
    (render_file,) = (sharp_server.root / "output").glob(f"gaussian-{ply.stem}-render-*.png")
    assert render_file.read_bytes() == rendered.getvalue()


async def test_gaussian_viewer_without_a_browser_waits_its_timeout_then_returns_a_placeholder(
    sharp_server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    sharp_server.behaviour.browser_render_timeout_s = 0.6
    workflow = splat_workflow(
        **{
            "4": {**VIEWER, "inputs": {**VIEWER["inputs"], "image": ["1", 0]}},
            "6": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "view"}},
        }
    )
    started = time.monotonic()
    history = await run(sharp_server, session, workflow)
    assert time.monotonic() - started >= 0.6
    (overlay,) = history["outputs"]["4"]["overlay_image"]
    assert overlay.startswith("gaussian_overlay_") and (sharp_server.root / "output" / overlay).is_file()
    (saved,) = history["outputs"]["6"]["images"]
    with Image.open(sharp_server.root / "output" / saved["filename"]) as img:
        assert img.size == (3072, 2048) and img.getextrema() == ((0, 0), (0, 0), (0, 0))


async def test_gaussian_viewer_returns_at_once_on_a_render_error(
    sharp_server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    sharp_server.behaviour.browser_render_timeout_s = 30.0
    sock = await Socket.connect(session, sharp_server.url, "me")
    started = time.monotonic()
    prompt_id = (await submit(session, sharp_server.url, {"prompt": splat_workflow(**{"4": VIEWER})}, "me"))[
        "prompt_id"
    ]
    await sock.wait_for(lambda s: any(f["type"] == "geompack_render_request" for f in s.frames()))
    request_id = next(
        f["data"]["request_id"] for f in sock.frames() if f["type"] == "geompack_render_request"
    )
    async with session.post(f"{sharp_server.url}/geompack/render_error", json={}) as response:
        assert response.status == 400 and (await response.json())["reason"] == "missing request_id"
    async with session.post(
        f"{sharp_server.url}/geompack/render_error", json={"request_id": request_id, "error": "no browser"}
    ) as response:
        assert response.status == 200
    await sock.wait_done(prompt_id)
    await sock.close()
    assert time.monotonic() - started < 5.0
    history = await wait_history(session, sharp_server.url, prompt_id)
    assert history["status"]["status_str"] == "success" and "ply_file" in history["outputs"]["4"]


async def test_gaussian_viewer_reports_a_missing_file_in_its_ui(
    sharp_server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    workflow = {
        "1": {"class_type": "PrimitiveString", "inputs": {"value": "/nowhere/x.ply"}},
        "4": {"class_type": "GaussianViewer", "inputs": {"ply_path": ["1", 0]}},
    }
    history = await run(sharp_server, session, workflow)
    assert history["outputs"]["4"] == {"error": ["File not found: /nowhere/x.ply"]}


REAL_INFO = json.loads(
    (
        Path(__file__).resolve().parents[2] / "comfy_testserver" / "recorded" / "gaussian_object_info.json"
    ).read_text()
)["object_info"]


@pytest.mark.parametrize(
    "name", ["LoadSharpModel", "SharpPredict", "LoadImageWithExif", "GaussianViewer", "ExtrinsicsToPose"]
)
async def test_stand_in_definitions_match_the_real_nodes(
    server: ComfyTestServer, session: aiohttp.ClientSession, name: str
) -> None:
    async with session.get(f"{server.url}/object_info/{name}") as response:
        ours = (await response.json())[name]
    real = REAL_INFO[name]
    for key in ("output", "output_name", "output_node", "python_module", "category", "display_name"):
        assert ours[key] == real[key], key
    assert ours["input_order"] == real["input_order"]
    for section in ("required", "optional"):
        for input_name, spec in real["input"].get(section, {}).items():
            mine = ours["input"][section][input_name]
            assert mine[0] == spec[0] or isinstance(spec[0], list), input_name  # type (lists: file names)
            options = spec[1] if len(spec) > 1 else {}
            for option in ("default", "min", "max", "forceInput"):
                assert (mine[1] if len(mine) > 1 else {}).get(option) == options.get(option), (
                    input_name,
                    option,
                )


async def test_viewer_handshake_and_ui_match_the_recording(
    sharp_server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    recording = json.loads(
        (
            Path(__file__).resolve().parents[2] / "comfy_testserver" / "recorded" / "18_gaussian_viewer.json"
        ).read_text()
    )
    real_request = next(f["data"] for f in recording["ws_frames"] if f["type"] == "geompack_render_request")
    real_ui = recording["history_outputs"]["4"]
    sharp_server.behaviour.browser_render_timeout_s = 0.2
    Image.new("RGB", (640, 480), (90, 120, 150)).save(sharp_server.root / "input" / "photo.png")
    workflow = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "photo.png"}},
        "2": {"class_type": "LoadSharpModel", "inputs": {"device": "cpu", "checkpoint_path": ""}},
        "3": {"class_type": "SharpPredict", "inputs": {"model": ["2", 0], "image": ["1", 0], "focal_length_mm": 30.0, "output_prefix": "sharp"}},
        "4": {"class_type": "GaussianViewer", "inputs": {"ply_path": ["3", 0], "extrinsics": ["3", 1], "intrinsics": ["3", 2], "image": ["1", 0]}},
    }  # fmt: skip
    sock = await Socket.connect(session, sharp_server.url, "recorder")
    prompt_id = (await submit(session, sharp_server.url, {"prompt": workflow}, "recorder"))["prompt_id"]
    await sock.wait_done(prompt_id)
    await sock.close()
    ours = next(f["data"] for f in sock.frames() if f["type"] == "geompack_render_request")
    assert list(ours) == list(real_request)
    for key in (
        "node_id",
        "subfolder",
        "type",
        "output_resolution",
        "output_aspect_ratio",
        "extrinsics",
        "camera_state",
    ):
        assert ours[key] == real_request[key], key
    flat = lambda m: [v for row in m for v in row]  # noqa: E731
    assert flat(ours["intrinsics"]) == pytest.approx(
        flat(real_request["intrinsics"])
    )  # same photo and focal length
    history = await wait_history(session, sharp_server.url, prompt_id)
    assert "3" not in history["outputs"] and "3" not in recording["history_outputs"]
    ui = history["outputs"]["4"]
    assert list(ui) == list(real_ui)
    assert flat(ui["intrinsics"][0]) == pytest.approx(flat(real_ui["intrinsics"][0]))
    assert ui["overlay_image"][0].startswith("gaussian_overlay_") and len(ui["overlay_image"][0]) == len(
        real_ui["overlay_image"][0]
    )
