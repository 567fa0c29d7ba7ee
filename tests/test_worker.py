"""The handler end to end, called directly, against the ComfyUI test server over real sockets."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from comfy_testserver import Behaviour, ComfyTestServer
from handler.config import Settings
from handler.worker import Worker

from . import workflows as wf
from .conftest import Progress, b64, make_settings, png_bytes


def post(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=5).close()


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def decode_image(entry: dict[str, Any]) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(entry["data"])))


async def test_saves_image_returns_base64_and_cleans_up(worker: Worker, comfy: ComfyTestServer) -> None:
    result = await worker.handle({"id": "job-1", "input": {"workflow": wf.save_image("probe")}})
    assert "error" not in result, result
    [image] = result["images"]
    assert image["filename"].startswith("probe_") and image["filename"].endswith(".png")
    assert image["type"] == "base64" and image["mime_type"] == "image/png"
    assert image["node_id"] == "2" and image["subfolder"] == ""
    assert image["size_bytes"] == len(base64.b64decode(image["data"]))
    picture = decode_image(image)
    assert picture.size == (16, 16) and picture.convert("RGB").getpixel((0, 0)) == (255, 0, 0)
    assert result["files"] == [] and result["text"] == []
    assert set(result["timings"]) >= {
        "validate_ms",
        "upload_ms",
        "queue_wait_ms",
        "execution_ms",
        "collect_ms",
        "total_ms",
    }
    assert result["prompt_id"] not in comfy.history()  # collected, then deleted from ComfyUI's history
    assert any(r.path == "/history" and r.method == "POST" for r in comfy.requests)
    assert "errors" not in result
    assert files_under(comfy.root / "output") == []  # the collected file is gone from the warm worker


async def test_outputs_are_read_where_comfyui_wrote_them_not_downloaded(
    worker: Worker, comfy: ComfyTestServer
) -> None:
    result = await worker.handle({"id": "job-1", "input": {"workflow": wf.save_image("inplace")}})
    assert "error" not in result, result
    assert decode_image(result["images"][0]).convert("RGB").getpixel((0, 0)) == (255, 0, 0)
    assert not any(r.path == "/view" for r in comfy.requests)  # the worker shares ComfyUI's disk


async def test_a_same_named_file_comfyui_did_not_write_for_the_prompt_is_not_returned(
    comfy: ComfyTestServer, tmp_path: Path
) -> None:
    # COMFYUI_PATH names another ComfyUI's folder, which holds an older file of the same name.
    other = tmp_path / "other-comfyui"
    (other / "output").mkdir(parents=True)
    stale = other / "output" / "twin_00001_.png"
    Image.new("RGB", (16, 16), (0, 0, 255)).save(stale)
    os.utime(stale, (1_600_000_000, 1_600_000_000))
    worker = Worker(make_settings(comfy, COMFYUI_PATH=str(other), COMFY_CLEANUP="false"))
    result = await worker.handle({"id": "job-1", "input": {"workflow": wf.save_image("twin")}})
    assert "error" not in result, result
    [image] = result["images"]
    assert image["filename"] == stale.name
    assert decode_image(image).convert("RGB").getpixel((0, 0)) == (255, 0, 0)  # ComfyUI's, via /view
    assert any(r.path == "/view" for r in comfy.requests)


async def test_uploaded_input_feeds_loadimage_and_is_removed(worker: Worker, comfy: ComfyTestServer) -> None:
    job_input = {
        "workflow": wf.invert_upload("photo.png"),
        "images": [
            {"name": "photo.png", "image": "data:image/png;base64," + b64(png_bytes(color=(200, 30, 30)))}
        ],
    }
    result = await worker.handle({"id": "job-2", "input": job_input})
    assert "error" not in result, result
    assert decode_image(result["images"][0]).convert("RGB").getpixel((1, 1)) == (55, 225, 225)
    uploads = [r for r in comfy.requests if r.path == "/upload/image"]
    assert len(uploads) == 1
    assert files_under(comfy.root / "input") == []


async def test_inputs_never_clobber_user_files_or_each_other(worker: Worker, comfy: ComfyTestServer) -> None:
    # A user's own file in input/ (a dev pod) keeps its bytes, and two jobs that send the same
    # name at once each read their own image.
    own = png_bytes(color=(1, 2, 3))
    (comfy.root / "input" / "photo.png").write_bytes(own)
    comfy.behaviour.node_delay_s = 0.1

    async def run(color: tuple[int, int, int], job_id: str) -> dict[str, Any]:
        job_input = {
            "workflow": wf.invert_upload("photo.png", prefix=job_id),
            "images": [{"name": "photo.png", "image": b64(png_bytes(color=color))}],
        }
        return await worker.handle({"id": job_id, "input": job_input})

    red, green = await asyncio.gather(run((200, 0, 0), "red"), run((0, 200, 0), "green"))
    assert decode_image(red["images"][0]).convert("RGB").getpixel((0, 0)) == (55, 255, 255)
    assert decode_image(green["images"][0]).convert("RGB").getpixel((0, 0)) == (255, 55, 255)
    assert (comfy.root / "input" / "photo.png").read_bytes() == own
    assert files_under(comfy.root / "input") == ["photo.png"]


async def test_every_output_kind_is_returned(worker: Worker, comfy: ComfyTestServer) -> None:
    result = await worker.handle({"id": "job-3", "input": {"workflow": wf.every_output_kind()}})
    assert "error" not in result, result
    images = {(i["node_id"], i["mime_type"]) for i in result["images"]}
    assert ("2", "image/png") in images and ("4", "image/webp") in images and ("12", "image/png") in images
    assert sum(1 for i in result["images"] if i["node_id"] == "2") == 3
    assert sum(1 for i in result["images"] if i["node_id"] == "12") == 3  # streamed over the WebSocket
    assert not any(i["node_id"] == "3" for i in result["images"])  # temp previews need include_temp
    files = {f["node_id"]: f for f in result["files"]}
    assert files["6"]["mime_type"] == "video/mp4" and files["6"]["subfolder"] == "video"
    assert files["8"]["mime_type"] == "video/mp4"  # VHS reports under "gifs"
    # SharpPredict with a batch of 3 writes splat_<ms>/001.ply..003.ply and reports none of them.
    splats = [f for f in result["files"] if f["node_id"] == "9"]
    assert [f["filename"] for f in splats] == ["001.ply", "002.ply", "003.ply"]
    assert all(f["mime_type"] == "application/ply" and f["subfolder"].startswith("splat_") for f in splats)
    assert files["10"]["mime_type"] == "model/gltf-binary" and files["10"]["subfolder"] == "mesh"
    assert files["11"]["mime_type"] == "audio/flac"
    assert base64.b64decode(files["9"]["data"]).startswith(b"ply")
    assert result["text"] == [{"node_id": "7", "text": "hello, world"}]
    assert files_under(comfy.root / "output") == [] and files_under(comfy.root / "temp") == []


async def test_include_temp_returns_previews(worker: Worker) -> None:
    result = await worker.handle({"id": "j", "input": {"workflow": wf.preview_only(), "include_temp": True}})
    assert "error" not in result, result
    assert len(result["images"]) == 1 and result["images"][0]["filename"].startswith("ComfyUI_temp_")


async def test_preview_only_without_include_temp_says_nothing_was_produced(worker: Worker) -> None:
    result = await worker.handle({"id": "j", "input": {"workflow": wf.preview_only()}})
    assert result["error"].startswith("NO_OUTPUTS: the workflow ran but produced no outputs")
    assert "include_temp=true" in result["error"]


async def test_same_workflow_twice_returns_outputs_both_times(worker: Worker, comfy: ComfyTestServer) -> None:
    job = {"workflow": wf.every_output_kind()}
    first = await worker.handle({"id": "a", "input": job})
    second = await worker.handle({"id": "b", "input": job})
    assert "error" not in first and "error" not in second, (first, second)
    for key in ("images", "files"):
        assert sorted(e["node_id"] for e in first[key]) == sorted(e["node_id"] for e in second[key])
    # Upstream nodes stayed cached; only the output nodes ran again.
    assert "1" not in comfy.executions[-1].executed_nodes


async def test_a_retried_job_with_the_same_id_gets_its_outputs_again(worker: Worker) -> None:
    # RunPod's /retry runs a job again under the same id: the re-run marker must still change.
    first = await worker.handle({"id": "same-id", "input": {"workflow": wf.save_image("retry")}})
    second = await worker.handle({"id": "same-id", "input": {"workflow": wf.save_image("retry")}})
    assert "error" not in first and "error" not in second, second
    assert len(second["images"]) == 1


async def test_skipped_branch_with_only_previews_left_says_no_outputs(worker: Worker) -> None:
    workflow = {
        **wf.preview_only(),
        "3": wf.empty_image(width=0),
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "bad"}},
    }
    result = await worker.handle({"id": "j", "input": {"workflow": workflow}})
    assert result["error"].startswith("NO_OUTPUTS: the workflow ran but produced no outputs")
    assert "include_temp=true" in result["error"]


async def test_without_rerun_marker_a_cached_rerun_cannot_find_cleaned_files(comfy: ComfyTestServer) -> None:
    worker = Worker(make_settings(comfy, COMFY_RERUN_OUTPUT_NODES="false"))
    assert "error" not in await worker.handle({"id": "a", "input": {"workflow": wf.save_image("c")}})
    second = await worker.handle({"id": "b", "input": {"workflow": wf.save_image("c")}})
    assert second["error"].startswith(
        "OUTPUT_FAILED: the workflow ran but none of its 1 output(s) could be fetched"
    )
    assert "not found" in second["error"]


async def test_missing_model_is_workflow_invalid_with_available_values(
    worker: Worker, comfy: ComfyTestServer
) -> None:
    result = await worker.handle({"id": "j", "input": {"workflow": wf.sampler(ckpt="sdxl.safetensors")}})
    assert result["error"].startswith(
        "WORKFLOW_INVALID: ComfyUI rejected the workflow: node 1 (CheckpointLoaderSimple)"
    )
    assert "'sdxl.safetensors' is not available" in result["error"] and "tiny.safetensors" in result["error"]
    assert comfy.queue_state() == ([], [])


async def test_unknown_node_is_workflow_invalid(worker: Worker) -> None:
    workflow = {
        "1": {"class_type": "NoSuchNode", "inputs": {}},
        **{k: v for k, v in wf.save_image().items() if k != "1"},
    }
    result = await worker.handle({"id": "j", "input": {"workflow": workflow}})
    # Found from /object_info before queueing: every missing class at once, with its node ids.
    assert result["error"].startswith("NODES_MISSING: ")
    assert "no node class NoSuchNode (node 1)" in result["error"] and "custom node" in result["error"]
    assert result["details"]["missing_classes"] == ["NoSuchNode"]


async def test_partly_broken_workflow_runs_the_valid_branch_and_reports_the_other(worker: Worker) -> None:
    workflow = {
        **wf.save_image("ok"),
        "3": wf.empty_image(width=0),
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "bad"}},
    }
    result = await worker.handle({"id": "j", "input": {"workflow": workflow}})
    assert "error" not in result, result
    assert [i["node_id"] for i in result["images"]] == ["2"]
    assert result["errors"] == [
        "skipped by ComfyUI: node 3 (EmptyImage) input 'width': Value 0 smaller than min of 1"
    ]


async def test_a_skipped_branch_reports_no_server_path_outside_comfyui(worker: Worker) -> None:
    workflow = {
        **wf.save_image("ok"),
        "3": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "/srv/team/x.safetensors"}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "5": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["3", 2]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "bad"}},
    }
    result = await worker.handle({"id": "j", "input": {"workflow": workflow}})
    assert "error" not in result and [i["node_id"] for i in result["images"]] == ["2"], result
    [problem] = result["errors"]
    assert problem.startswith("skipped by ComfyUI: node 3 (CheckpointLoaderSimple) input 'ckpt_name'")
    assert "'<server path>/x.safetensors'" in problem and "/srv/team" not in problem


async def test_execution_error_names_node_and_exception(worker: Worker, comfy: ComfyTestServer) -> None:
    job_input = {
        "workflow": wf.invert_upload("broken.png"),
        "images": [{"name": "broken.png", "image": b64(b"\x89PNG\r\n\x1a\n this is not really a png")}],
    }
    result = await worker.handle({"id": "j", "input": job_input})
    assert result["error"].startswith(
        "EXECUTION_FAILED: node 1 (LoadImage) raised PIL.UnidentifiedImageError: "
    )
    assert result["details"]["traceback"]
    assert files_under(comfy.root / "input") == [] and files_under(comfy.root / "output") == []


async def test_timeout_interrupts_and_next_job_starts_at_once(worker: Worker, comfy: ComfyTestServer) -> None:
    comfy.behaviour.step_delay_s = 0.3
    started = time.monotonic()
    result = await worker.handle({"id": "slow", "input": {"workflow": wf.sampler(steps=50), "timeout": 1}})
    assert time.monotonic() - started < 4
    assert result["error"].startswith(
        "TIMEOUT: the job did not finish within 1 s (it was running node 5 (KSampler))"
    )
    assert comfy.queue_state() == ([], [])
    assert comfy.executions[-1].outcome == "interrupted"
    comfy.behaviour.step_delay_s = 0.0
    follow_up = await worker.handle({"id": "next", "input": {"workflow": wf.save_image("after")}})
    assert "error" not in follow_up
    assert follow_up["timings"]["queue_wait_ms"] < 500


async def test_cancel_interrupts_the_prompt_and_reraises(worker: Worker, comfy: ComfyTestServer) -> None:
    comfy.behaviour.step_delay_s = 0.3
    task = asyncio.create_task(worker.handle({"id": "c", "input": {"workflow": wf.sampler(steps=50)}}))
    while not comfy.queue_state()[0]:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert comfy.queue_state() == ([], [])
    assert comfy.executions[-1].outcome == "interrupted"
    assert files_under(comfy.root / "output") == []


async def test_interrupt_from_outside_is_reported(worker: Worker, comfy: ComfyTestServer) -> None:
    comfy.behaviour.step_delay_s = 0.2
    task = asyncio.create_task(worker.handle({"id": "i", "input": {"workflow": wf.sampler(steps=50)}}))
    while not comfy.queue_state()[0]:
        await asyncio.sleep(0.05)
    await asyncio.to_thread(post, f"{comfy.url}/interrupt")  # as the ComfyUI UI's cancel button does
    result = await task
    assert result["error"].startswith(
        "INTERRUPTED: the prompt was interrupted in ComfyUI at node 5 (KSampler)"
    )


async def test_progress_updates_name_node_and_steps(
    worker: Worker, comfy: ComfyTestServer, progress: Progress
) -> None:
    comfy.behaviour.step_delay_s = 0.05
    result = await worker.handle({"id": "p", "input": {"workflow": wf.sampler(steps=5)}})
    assert "error" not in result, result
    stages = [u["stage"] for u in progress.updates]
    assert (
        stages[0] == "starting" and "queued" in stages and "running" in stages and stages[-1] == "collecting"
    )
    steps = [u for u in progress.updates if u.get("node_class") == "KSampler" and "step" in u]
    assert [u["step"] for u in steps] == [1, 2, 3, 4, 5] and {u["max_steps"] for u in steps} == {5}
    assert all(u["nodes_total"] == 7 for u in steps)


async def test_websocket_drop_reconnects_and_finishes(worker: Worker, comfy: ComfyTestServer) -> None:
    comfy.behaviour.ws_drop_after_messages = 4
    comfy.behaviour.node_delay_s = 0.1
    result = await worker.handle({"id": "d", "input": {"workflow": wf.sampler(steps=3)}})
    assert "error" not in result, result
    assert len(result["images"]) == 1


async def test_silent_websocket_falls_back_to_history(worker: Worker, comfy: ComfyTestServer) -> None:
    comfy.behaviour.ws_silent = True
    result = await worker.handle({"id": "s", "input": {"workflow": wf.save_image("quiet")}})
    assert "error" not in result, result
    assert len(result["images"]) == 1


async def test_comfy_killed_mid_job_fails_fast_and_refreshes_worker(
    worker: Worker, comfy: ComfyTestServer
) -> None:
    comfy.behaviour.kill_on_execute = True
    started = time.monotonic()
    result = await worker.handle({"id": "k", "input": {"workflow": wf.save_image("dead")}})
    assert time.monotonic() - started < 5
    assert result["error"].startswith("COMFY_CRASHED: ComfyUI stopped answering")
    assert result["refresh_worker"] is True


async def test_slow_start_is_waited_for(tmp_path: Path, comfy_profile: str) -> None:
    server = ComfyTestServer(
        root=tmp_path / "c", behaviour=Behaviour(startup_delay_s=1.0), profile=comfy_profile
    )
    server.start()
    try:
        worker = Worker(make_settings(server))
        result = await worker.handle({"id": "w", "input": {"workflow": wf.save_image("late")}})
        assert "error" not in result, result
        assert result["timings"]["ready_ms"] >= 500
    finally:
        server.stop()


async def test_comfy_never_up_is_unavailable(tmp_path: Path, unused_tcp_port: int) -> None:
    settings = Settings.from_env(
        {
            "COMFY_HOST": f"127.0.0.1:{unused_tcp_port}",
            "COMFY_READY_TIMEOUT_S": "0.5",
            "COMFYUI_PATH": str(tmp_path),
        }
    )
    result = await Worker(settings).handle({"id": "u", "input": {"workflow": wf.save_image()}})
    assert result["error"].startswith(
        f"COMFY_UNAVAILABLE: ComfyUI at 127.0.0.1:{unused_tcp_port} did not answer within 0.5 s"
    )
    assert "COMFY_HOST" in result["error"] and "COMFY_READY_TIMEOUT_S" in result["error"]


async def test_comfy_dead_at_startup_fails_at_once(tmp_path: Path, unused_tcp_port: int) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pid_file = tmp_path / "comfy.pid"
    pid_file.write_text(str(dead.pid))
    settings = Settings.from_env(
        {
            "COMFY_HOST": f"127.0.0.1:{unused_tcp_port}",
            "COMFY_PID_FILE": str(pid_file),
            "COMFY_READY_TIMEOUT_S": "60",
            "COMFYUI_PATH": str(tmp_path),
        }
    )
    started = time.monotonic()
    result = await Worker(settings).handle({"id": "x", "input": {"workflow": wf.save_image()}})
    assert time.monotonic() - started < 2
    assert result["error"].startswith("COMFY_CRASHED: ComfyUI is not running (the process in")
    assert result["refresh_worker"] is True


async def test_api_key_reaches_comfy_but_never_the_result(
    comfy: ComfyTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    worker = Worker(make_settings(comfy, COMFY_ORG_API_KEY="comfyui-env-secret-1"))
    workflow = {"1": {"class_type": "NoSuchNode", "inputs": {"k": "comfyui-job-secret-2"}}}
    result = await worker.handle(
        {"id": "k", "input": {"workflow": wf.save_image(), "comfy_org_api_key": "comfyui-job-secret-2"}}
    )
    prompt = next(r for r in comfy.requests if r.path == "/prompt" and r.method == "POST")
    assert prompt.json is not None
    assert prompt.json["extra_data"] == {"api_key_comfy_org": "comfyui-job-secret-2"}
    assert "comfyui-job-secret-2" not in str(result)
    failed = await worker.handle(
        {"id": "k2", "input": {"workflow": workflow, "comfy_org_api_key": "comfyui-job-secret-2"}}
    )
    assert "comfyui-job-secret-2" not in str(failed)
    assert "comfyui-env-secret-1" not in caplog.text and "comfyui-job-secret-2" not in caplog.text


async def test_refresh_worker_setting_marks_every_result(comfy: ComfyTestServer) -> None:
    worker = Worker(make_settings(comfy, REFRESH_WORKER="true"))
    ok = await worker.handle({"id": "r", "input": {"workflow": wf.save_image()}})
    bad = await worker.handle({"id": "r2", "input": {"workflow": 5}})
    assert ok["refresh_worker"] is True and bad["refresh_worker"] is True


async def test_invalid_input_never_touches_comfy(worker: Worker, comfy: ComfyTestServer) -> None:
    before = len(comfy.requests)
    result = await worker.handle({"id": "v", "input": {"workflow": {"nodes": [], "links": []}}})
    assert result["error"].startswith("INVALID_INPUT: input.workflow is a UI-format export")
    assert len(comfy.requests) == before


def test_no_temp_files_are_left_behind(
    tmp_path: Path, comfy: ComfyTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The job's temp folder goes under this test's own folder, not the /tmp other work shares.
    own_tmp = tmp_path / "tmp"
    own_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(own_tmp))
    made: list[str] = []
    real_mkdtemp = tempfile.mkdtemp

    def watched_mkdtemp(*args: Any, **kwargs: Any) -> str:
        made.append(real_mkdtemp(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", watched_mkdtemp)
    worker = Worker(make_settings(comfy))
    result = asyncio.run(worker.handle({"id": "t", "input": {"workflow": wf.every_output_kind()}}))
    assert "error" not in result, result
    assert [Path(p).parent for p in made] == [own_tmp]  # the job did use a temp folder here
    assert list(own_tmp.iterdir()) == []
