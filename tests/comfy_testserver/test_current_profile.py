"""The `current` profile (today's ComfyUI, PROFILES.md) against the `0.3.64` one, over real sockets."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from comfy_testserver import Behaviour, ComfyTestServer

from .helpers import Socket, new_id, submit, wait_history

REPO = Path(__file__).resolve().parents[2]


def save_image(width: int = 64, height: int = 48, prefix: str = "probe") -> dict[str, Any]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": width, "height": height, "batch_size": 1, "color": 0xFF0000},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


def sampler(steps: int = 2) -> dict[str, Any]:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["1", 1]}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "4": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["1", 0],
                "seed": 1,
                "steps": steps,
                "cfg": 7.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "positive": ["2", 0],
                "negative": ["2", 0],
                "latent_image": ["3", 0],
                "denoise": 1.0,
            },
        },
        "5": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["1", 2]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "s"}},
    }


@pytest.fixture
def current(tmp_path: Path) -> Iterator[ComfyTestServer]:
    with ComfyTestServer(root=tmp_path / "current", profile="current") as running:
        (running.root / "models" / "checkpoints" / "tiny.safetensors").write_bytes(b"\0")
        yield running


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url) as response:
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, body


async def post(session: aiohttp.ClientSession, url: str, body: Any = None) -> tuple[int, Any]:
    async with session.post(url, json=body) as response:
        answer = (
            await response.json() if response.content_type == "application/json" else await response.text()
        )
        return response.status, answer


async def wait_running(server: ComfyTestServer, prompt_id: str) -> None:
    async def _wait() -> None:
        while prompt_id not in server.queue_state()[0]:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(_wait(), 5)


# --- detecting the version -------------------------------------------------------------------------


async def test_version_and_features_tell_the_profiles_apart(
    current: ComfyTestServer, server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    _, stats = await get(session, f"{current.url}/system_stats")
    system = stats["system"]
    assert system["comfyui_version"] == "0.38.1" and system["os"] == "linux"
    assert system["required_frontend_version"] == "1.53.6" and system["deploy_environment"] == "local-git"
    assert {"name": "comfyui-frontend-package", "installed": "1.53.6", "required": "1.53.6"} in system[
        "comfy_package_versions"
    ]
    _, old_stats = await get(session, f"{server.url}/system_stats")
    assert old_stats["system"]["comfyui_version"] == "0.3.64" and old_stats["system"]["os"] == "posix"
    assert "comfy_package_versions" not in old_stats["system"]

    _, features = await get(session, f"{current.url}/features")
    assert features["assets"] is True and features["supports_model_type_tags"] is True
    assert features["max_upload_size"] == 104857600 and features["node_replacements"] is True
    _, old_features = await get(session, f"{server.url}/features")
    assert old_features == {"supports_preview_metadata": True, "max_upload_size": 104857600}

    sock = await Socket.connect(
        session, current.url, "flags", feature_flags={"supports_preview_metadata": True}
    )
    assert sock.frames()[1] == {"type": "feature_flags", "data": features}
    await sock.close()


# --- /api/jobs ---------------------------------------------------------------------------------------


async def test_job_routes_exist_only_in_the_current_profile_and_only_under_api(
    current: ComfyTestServer, server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    for path in ("/api/jobs", "/api/api/jobs"):
        status, body = await get(session, current.url + path)
        assert status == 200 and body == {
            "jobs": [],
            "pagination": {"offset": 0, "limit": None, "total": 0, "has_more": False},
        }
    assert (await get(session, f"{current.url}/jobs")) == (404, "")
    # 0.3.64 has no such routes: its static file route answers, as recorded from the real server.
    assert (await get(session, f"{server.url}/api/jobs")) == (404, "")
    assert (await get(session, f"{server.url}/api/jobs/{new_id()}")) == (404, "")
    assert (await post(session, f"{server.url}/api/jobs/{new_id()}/cancel"))[0] == 405


async def test_a_job_is_pending_then_in_progress_then_completed_with_its_outputs(
    current: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    current.behaviour.node_delay_s = 0.3
    first = (await submit(session, current.url, {"prompt": save_image()}, "me"))["prompt_id"]
    second = (await submit(session, current.url, {"prompt": save_image(8, 8)}, "me"))["prompt_id"]
    await wait_running(current, first)

    status, running = await get(session, f"{current.url}/api/jobs/{first}")
    assert status == 200 and running["status"] == "in_progress"
    assert running["workflow"]["prompt"] == save_image()
    assert isinstance(running["create_time"], int) and running["outputs_count"] == 0
    assert (await get(session, f"{current.url}/history/{first}"))[1] == {}  # history cannot tell
    _, pending = await get(session, f"{current.url}/api/jobs/{second}")
    assert pending["status"] == "pending" and pending["priority"] == 1

    current.behaviour.node_delay_s = 0.0
    await wait_history(session, current.url, second)
    _, done = await get(session, f"{current.url}/api/jobs/{first}")
    assert done["status"] == "completed" and done["outputs_count"] == 1
    assert done["execution_end_time"] >= done["execution_start_time"] >= done["create_time"]
    entry = done["outputs"]["2"]["images"][0]
    assert entry["metadata"] == {"kind": "image", "width": 64, "height": 48}
    assert done["preview_output"] == {**entry, "nodeId": "2", "mediaType": "images"}
    assert done["execution_status"]["status_str"] == "success" and "execution_error" not in done

    _, listed = await get(session, f"{current.url}/api/jobs?status=completed&sort_order=asc")
    assert [job["id"] for job in listed["jobs"]] == [first, second]
    assert "outputs" not in listed["jobs"][0]
    _, page = await get(session, f"{current.url}/api/jobs?limit=1&offset=1")
    assert len(page["jobs"]) == 1 and page["pagination"] == {
        "offset": 1,
        "limit": 1,
        "total": 2,
        "has_more": False,
    }
    assert (await get(session, f"{current.url}/api/jobs/{new_id()}")) == (404, {"error": "Job not found"})


async def test_failed_job_carries_its_execution_error(
    current: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    workflow = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "gone.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }
    (current.root / "input" / "gone.png").write_bytes(b"not a png")  # passes validation, fails to load
    prompt_id = (await submit(session, current.url, {"prompt": workflow}, "me"))["prompt_id"]
    await wait_history(session, current.url, prompt_id)
    _, job = await get(session, f"{current.url}/api/jobs/{prompt_id}")
    assert job["status"] == "failed"
    assert job["execution_error"]["node_id"] == "1" and job["execution_error"]["node_type"] == "LoadImage"
    _, failed = await get(session, f"{current.url}/api/jobs?status=failed")
    assert [item["id"] for item in failed["jobs"]] == [prompt_id]


async def test_cancel_dequeues_a_pending_job_and_interrupts_a_running_one(
    current: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    current.behaviour.step_delay_s = 0.2
    running = (await submit(session, current.url, {"prompt": sampler(steps=50)}, "me"))["prompt_id"]
    pending = (await submit(session, current.url, {"prompt": save_image()}, "me"))["prompt_id"]
    await wait_running(current, running)

    assert await post(session, f"{current.url}/api/jobs/{pending}/cancel") == (200, {"cancelled": True})
    assert current.queue_state() == ([running], [])
    assert await post(session, f"{current.url}/api/jobs/{running}/cancel") == (200, {"cancelled": True})
    await wait_history(session, current.url, running)
    _, job = await get(session, f"{current.url}/api/jobs/{running}")
    assert job["status"] == "cancelled"
    assert (await get(session, f"{current.url}/api/jobs/{pending}"))[0] == 404  # never ran

    assert await post(session, f"{current.url}/api/jobs/{running}/cancel") == (200, {"cancelled": False})
    assert await post(session, f"{current.url}/api/jobs/{new_id()}/cancel") == (200, {"cancelled": False})


async def test_batch_cancel_refuses_ids_that_are_not_canonical_uuids(
    current: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    good = new_id()
    status, body = await post(session, f"{current.url}/api/jobs/cancel", {"job_ids": [good, "ABC", 7]})
    assert status == 400 and body == {"error": "job_ids contains invalid id(s)", "invalid_ids": ["ABC", "7"]}
    assert await post(session, f"{current.url}/api/jobs/cancel", {"job_ids": "x"}) == (
        400,
        {"error": "job_ids must be a list"},
    )
    assert await post(session, f"{current.url}/api/jobs/cancel", {"job_ids": [good]}) == (
        200,
        {"cancelled": False},
    )


async def test_job_list_rejects_bad_parameters(
    current: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    status, body = await get(session, f"{current.url}/api/jobs?status=done")
    assert status == 400 and body["error"].startswith("Invalid status value(s): done. Valid values: pending")
    assert (await get(session, f"{current.url}/api/jobs?limit=0"))[1] == {
        "error": "limit must be a positive integer"
    }
    assert (await get(session, f"{current.url}/api/jobs?sort_by=name"))[0] == 400


# --- POST /prompt --------------------------------------------------------------------------------------


@pytest.mark.parametrize("prompt_id", ["my-job-1", "3F2504E0-4F89-11D3-9A0C-0305E82C3301", 5])
async def test_a_client_prompt_id_must_be_a_canonical_uuid(
    current: ComfyTestServer, server: ComfyTestServer, session: aiohttp.ClientSession, prompt_id: Any
) -> None:
    body = {"prompt": save_image(), "prompt_id": prompt_id}
    status, answer = await post(session, f"{current.url}/prompt", body)
    assert status == 400 and answer["error"]["type"] == "invalid_prompt_id" and answer["node_errors"] == {}
    assert current.queue_state() == ([], [])
    status, answer = await post(session, f"{server.url}/prompt", body)  # 0.3.64 takes anything
    assert status == 200 and answer["prompt_id"] == str(prompt_id)


async def test_a_null_prompt_id_is_minted_and_a_canonical_one_kept(
    current: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    status, answer = await post(session, f"{current.url}/prompt", {"prompt": save_image(), "prompt_id": None})
    assert status == 200 and len(answer["prompt_id"]) == 36
    mine = new_id()
    assert (await post(session, f"{current.url}/prompt", {"prompt": save_image(), "prompt_id": mine}))[1][
        "prompt_id"
    ] == mine


async def test_comfy_org_keys_sit_in_the_sensitive_slot_today_and_in_the_queue_in_0_3_64(
    current: ComfyTestServer, server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    for running, shown in ((current, False), (server, True)):
        running.behaviour.node_delay_s = 0.3
        extra = {"api_key_comfy_org": "comfyui-secret", "auth_token_comfy_org": "tok"}
        blocker = (await submit(session, running.url, {"prompt": save_image(prefix="a")}, "me"))["prompt_id"]
        body = {"prompt": save_image(prefix="b"), "extra_data": dict(extra)}
        prompt_id = (await submit(session, running.url, body, "me"))["prompt_id"]
        await wait_running(running, blocker)
        _, queue = await get(session, f"{running.url}/queue")
        assert [len(item) for item in queue["queue_pending"]] == [5]
        pending_extra = queue["queue_pending"][0][3]
        assert ("api_key_comfy_org" in pending_extra and "auth_token_comfy_org" in pending_extra) is shown
        running.behaviour.node_delay_s = 0.0
        entry = await wait_history(session, running.url, prompt_id)
        assert "comfyui-secret" not in str(entry) and "tok" not in str(
            entry["prompt"][3]
        )  # both drop it there
    _, job = await get(session, f"{current.url}/api/jobs/{prompt_id}")
    assert "comfyui-secret" not in str(job)


async def test_create_time_is_stamped_on_accepted_prompts_only_today(
    current: ComfyTestServer, server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    entry = await wait_history(
        session, current.url, (await submit(session, current.url, {"prompt": save_image()}))["prompt_id"]
    )
    assert set(entry["prompt"][3]) == {"create_time"} and entry["prompt"][3]["create_time"] > 1.7e12
    old = await wait_history(
        session, server.url, (await submit(session, server.url, {"prompt": save_image()}))["prompt_id"]
    )
    assert old["prompt"][3] == {}


# --- outputs and uploads -------------------------------------------------------------------------------


async def test_outputs_carry_media_metadata_and_asset_ids_in_executed_and_history(
    current: ComfyTestServer, server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    sock = await Socket.connect(session, current.url, "me")
    prompt_id = (await submit(session, current.url, {"prompt": save_image()}, "me"))["prompt_id"]
    await sock.wait_done(prompt_id)
    executed = next(f["data"]["output"] for f in sock.frames() if f["type"] == "executed")
    (entry,) = executed["images"]
    assert entry["metadata"] == {"kind": "image", "width": 64, "height": 48}
    assert entry["preview_id"] == entry["id"] and len(entry["id"]) == 36
    history = await wait_history(session, current.url, prompt_id)
    assert history["outputs"]["2"]["images"] == [entry]

    # A cached re-run replays the same entry, asset id included.
    again = (await submit(session, current.url, {"prompt": save_image()}, "me"))["prompt_id"]
    await sock.wait_done(again)
    replay = [f["data"]["output"] for f in sock.frames() if f["type"] == "executed"]
    assert replay[-1]["images"] == [entry]
    await sock.close()

    old = await wait_history(
        session, server.url, (await submit(session, server.url, {"prompt": save_image()}))["prompt_id"]
    )
    assert set(old["outputs"]["2"]["images"][0]) == {"filename", "subfolder", "type"}


async def test_video_outputs_carry_duration_fps_and_frame_count(
    current: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    workflow = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 32, "height": 16, "batch_size": 6, "color": 0},
        },
        "2": {"class_type": "CreateVideo", "inputs": {"images": ["1", 0], "fps": 8.0}},
        "3": {
            "class_type": "SaveVideo",
            "inputs": {"video": ["2", 0], "filename_prefix": "video/v", "format": "auto", "codec": "auto"},
        },
    }
    entry = await wait_history(
        session, current.url, (await submit(session, current.url, {"prompt": workflow}))["prompt_id"]
    )
    (video,) = entry["outputs"]["3"]["images"]
    assert video["metadata"] == {
        "kind": "video",
        "width": 32,
        "height": 16,
        "duration": 0.75,
        "fps": 8.0,
        "frame_count": 6,
    }


async def test_upload_answers_an_asset_record_today(
    current: ComfyTestServer, server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(buffer, format="PNG")
    png = buffer.getvalue()

    async def upload(url: str) -> dict[str, Any]:
        form = aiohttp.FormData()
        form.add_field("image", png, filename="in.png", content_type="image/png")
        async with session.post(f"{url}/upload/image", data=form) as response:
            assert response.status == 200
            answer: dict[str, Any] = await response.json()
            return answer

    answer = await upload(current.url)
    asset = answer.pop("asset")
    assert answer == {"name": "in.png", "subfolder": "", "type": "input"}
    assert asset["name"] == "in.png" and asset["size"] == len(png) and asset["mime_type"] == "image/png"
    assert asset["tags"] == ["input"] and asset["asset_hash"] is None
    assert (await upload(current.url))["asset"]["id"] == asset["id"]  # same file, same asset
    assert await upload(server.url) == {"name": "in.png", "subfolder": "", "type": "input"}


# --- execution -------------------------------------------------------------------------------------------


async def test_cache_keeps_an_earlier_prompts_nodes_today(
    current: ComfyTestServer, server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    cached_nodes: dict[str, list[str]] = {}
    for name, running in (("current", current), ("0.3.64", server)):
        sock = await Socket.connect(session, running.url, "me")
        for workflow in (save_image(prefix="a"), save_image(8, 8, prefix="b"), save_image(prefix="a")):
            prompt_id = (await submit(session, running.url, {"prompt": workflow}, "me"))["prompt_id"]
            await sock.wait_done(prompt_id)
        cached = [f["data"]["nodes"] for f in sock.frames() if f["type"] == "execution_cached"]
        cached_nodes[name] = cached[-1]
        await sock.close()
    assert cached_nodes == {"current": ["1", "2"], "0.3.64": []}


def loading_frames(sock: Socket, node_id: str) -> list[dict[str, Any]]:
    return [f["data"]["nodes"][node_id] for f in sock.frames() if f["type"] == "progress_state"]


async def test_a_model_load_shows_the_loader_running_at_zero_and_nothing_else(
    current: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    current.behaviour.model_load_delay_s = 0.3
    sock = await Socket.connect(session, current.url, "me")
    prompt_id = (await submit(session, current.url, {"prompt": sampler()}, "me"))["prompt_id"]
    await sock.wait_done(prompt_id)
    states = loading_frames(sock, "1")
    assert [(s["state"], s["value"], s["max"]) for s in states][:2] == [
        ("running", 0.0, 1.0),
        ("finished", 1.0, 1.0),
    ]
    assert not any("activity" in s for s in states)
    await sock.close()


async def test_loading_activity_marks_the_load_when_asked_for(
    current: ComfyTestServer, server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    for running in (current, server):
        running.behaviour.model_load_delay_s = 0.2
        running.behaviour.loading_activity = True
    (server.root / "models" / "checkpoints" / "tiny.safetensors").write_bytes(b"\0")
    sock = await Socket.connect(session, current.url, "me")
    prompt_id = (await submit(session, current.url, {"prompt": sampler()}, "me"))["prompt_id"]
    await sock.wait_done(prompt_id)
    activities = [s.get("activity") for s in loading_frames(sock, "1")]
    assert activities[:3] == [None, "loading", None]
    again = (await submit(session, current.url, {"prompt": sampler(steps=3)}, "me"))["prompt_id"]
    await sock.wait_done(again)
    later = [f for f in sock.frames() if f["type"] == "progress_state" and f["data"]["prompt_id"] == again]
    assert not any("activity" in node for f in later for node in f["data"]["nodes"].values())  # loaded
    await sock.close()

    old = await Socket.connect(session, server.url, "me")
    old_id = (await submit(session, server.url, {"prompt": sampler()}, "me"))["prompt_id"]
    await old.wait_done(old_id)
    assert not any("activity" in s for s in loading_frames(old, "1"))  # no such field in 0.3.64
    await old.close()


@pytest.mark.parametrize("profile", ["0.3.64", "current"])
async def test_out_of_memory_fails_the_node_and_unloads_every_model(
    tmp_path: Path, session: aiohttp.ClientSession, profile: str
) -> None:
    load_s = 0.3
    behaviour = Behaviour(model_load_delay_s=load_s, loading_activity=True, out_of_memory_class="KSampler")
    with ComfyTestServer(root=tmp_path / profile, behaviour=behaviour, profile=profile) as running:
        (running.root / "models" / "checkpoints" / "tiny.safetensors").write_bytes(b"\0")
        sock = await Socket.connect(session, running.url, "me")
        failed = (await submit(session, running.url, {"prompt": sampler()}, "me"))["prompt_id"]
        await sock.wait_done(failed)
        error = next(f["data"] for f in sock.frames() if f["type"] == "execution_error")
        assert error["node_type"] == "KSampler" and error["exception_type"] == "torch.OutOfMemoryError"
        assert error["exception_message"].startswith("CUDA out of memory.")
        assert "This error means you ran out of memory on your GPU." in error["exception_message"]
        assert running.behaviour.out_of_memory_class is None  # fired once

        # The loader's output stays cached, but its weights were unloaded: the sampler loads them again.
        retried = (await submit(session, running.url, {"prompt": sampler(steps=3)}, "me"))["prompt_id"]
        await sock.wait_done(retried)
        record = running.executions[-1]
        assert record.outcome == "success" and "1" not in record.executed_nodes
        assert record.finished_at - record.started_at >= load_s
        frames = [
            f for f in sock.frames() if f["type"] == "progress_state" and f["data"]["prompt_id"] == retried
        ]
        sampler_activities = {
            f["data"]["nodes"]["4"].get("activity") for f in frames if "4" in f["data"]["nodes"]
        }
        assert sampler_activities == ({None, "loading"} if profile == "current" else {None})
        await sock.close()


def test_cli_profile_flag_serves_the_job_routes(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "comfy_testserver",
            "--root",
            str(tmp_path),
            "--port",
            "0",
            "--profile",
            "current",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip().rsplit(" ", 1)[1]
        with urllib.request.urlopen(f"{url}/api/jobs", timeout=5) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"{url}/system_stats", timeout=5) as response:
            assert b'"comfyui_version": "0.38.1"' in response.read()
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
    bad = subprocess.run(
        [sys.executable, "-m", "comfy_testserver", "--root", str(tmp_path), "--profile", "0.40"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "invalid choice: '0.40'" in bad.stderr


def test_an_unknown_profile_name_is_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match="unknown comfy_testserver profile 'latest': choose one of 0.3.64, current"
    ):
        ComfyTestServer(root=tmp_path, profile="latest")


def test_version_probe_on_a_0_3_64_server_gets_a_plain_404(server: ComfyTestServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{server.url}/api/jobs/{new_id()}", timeout=5)
    caught.value.close()
    assert caught.value.code == 404


@pytest.mark.parametrize(
    ("node", "message", "class_type", "title"),
    [
        (
            {"class_type": "NoSuchNode", "inputs": {}},
            "Node 'NoSuchNode' not found. The custom node may not be installed.",
            "NoSuchNode",
            "NoSuchNode",
        ),
        (
            {"class_type": "NoSuchNode", "inputs": {}, "_meta": {"title": "My loader"}},
            "Node 'My loader' not found. The custom node may not be installed.",
            "NoSuchNode",
            "My loader",
        ),
        (
            {"inputs": {}},
            "Node 'ID #9' has no class_type. The workflow may be corrupted or a custom node is missing.",
            None,
            None,
        ),
    ],
)
async def test_a_missing_node_type_names_the_node(
    current: ComfyTestServer,
    server: ComfyTestServer,
    session: aiohttp.ClientSession,
    node: dict[str, Any],
    message: str,
    class_type: str | None,
    title: str | None,
) -> None:
    body = {"prompt": {**save_image(), "9": node}}
    status, answer = await post(session, f"{current.url}/prompt", body)
    assert status == 400 and answer == {
        "error": {
            "type": "missing_node_type",
            "message": message,
            "details": "Node ID '#9'",
            "extra_info": {"node_id": "9", "class_type": class_type, "node_title": title},
        },
        "node_errors": {},
    }
    _, old = await post(session, f"{server.url}/prompt", body)
    assert old["error"]["type"] == "invalid_prompt"
