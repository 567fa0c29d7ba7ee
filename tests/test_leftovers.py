"""What a dead worker process left in ComfyUI's history and output folder is removed by the next
worker process on that ComfyUI (handler/leftovers.py); a person's prompts and a live worker's are
never touched; prompts it left queued or running are stopped (handler/comfy/recovery.py). Test server
over real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from comfy_testserver import ComfyTestServer
from handler.comfy.client_ids import uploads_extra
from handler.worker import Worker

from . import workflows as wf
from .conftest import make_settings, png_bytes


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


async def finished(comfy: ComfyTestServer, prompt_ids: list[str]) -> None:
    while not all(prompt_id in comfy.history() for prompt_id in prompt_ids):
        await asyncio.sleep(0.02)


async def test_a_dead_workers_finished_prompts_leave_history_and_disk_but_no_one_elses(
    comfy: ComfyTestServer,
) -> None:
    dead = f"comfy-worker-{dead_pid()}-0123456789ab"
    alive = f"comfy-worker-{os.getppid()}-0123456789ab"  # pytest's parent: alive throughout
    queued = {
        "dead_image": (dead, wf.save_image("dead")),
        "dead_splat": (dead, wf.splat("deadsplat")),  # SharpPredict reports nothing: found on disk
        "user": ("ui-user", wf.save_image("user")),
        "alive": (alive, wf.save_image("alive")),
    }
    # What each job uploaded, as a worker names it in the prompt's extra_data; a name not shaped
    # like a job's upload (<8 hex>-<name>) is never removed, whoever names it.
    uploads = {
        "dead_image": ["0badf00d-dead.png", "photo.png"],
        "user": ["1badf00d-user.png"],
        "alive": ["2badf00d-alive.png"],
    }
    for names in uploads.values():
        for name in names:
            (comfy.root / "input" / name).write_bytes(png_bytes())
    ids = {name: str(uuid.uuid4()) for name in queued}
    for name, (client_id, workflow) in queued.items():
        body = {"prompt": workflow, "client_id": client_id, "prompt_id": ids[name]}
        post(f"{comfy.url}/prompt", {**body, "extra_data": uploads_extra(uploads.get(name, []))})
    await finished(comfy, list(ids.values()))
    before = files_under(comfy.root / "output")
    assert any(f.startswith("deadsplat") and f.endswith(".ply") for f in before), before

    worker = Worker(make_settings(comfy), keep_connection=True)
    try:
        result = await worker.handle({"id": "new", "input": {"workflow": wf.save_image("new")}})
        assert "error" not in result, result
        await worker.settle()
    finally:
        await worker.aclose()
    history = comfy.history()
    assert ids["dead_image"] not in history and ids["dead_splat"] not in history
    assert ids["user"] in history and ids["alive"] in history
    left = files_under(comfy.root / "output")
    assert not any(f.startswith(("dead_", "deadsplat")) for f in left), left
    assert sorted(f.split("_")[0] for f in left) == ["alive", "user"]
    assert files_under(comfy.root / "input") == ["1badf00d-user.png", "2badf00d-alive.png", "photo.png"]


async def test_with_cleanup_off_a_dead_workers_files_stay_but_its_history_goes(
    comfy: ComfyTestServer,
) -> None:
    dead = f"comfy-worker-{dead_pid()}-0123456789ab"
    prompt_id = str(uuid.uuid4())
    post(f"{comfy.url}/prompt", {"prompt": wf.save_image("kept"), "client_id": dead, "prompt_id": prompt_id})
    await finished(comfy, [prompt_id])
    worker = Worker(make_settings(comfy, COMFY_CLEANUP="false"))
    assert "error" not in await worker.handle({"id": "n", "input": {"workflow": wf.save_image("n")}})
    assert prompt_id not in comfy.history()
    assert [f for f in files_under(comfy.root / "output") if f.startswith("kept")] != []


async def test_queued_and_running_prompts_of_a_dead_worker_are_stopped_at_start_but_not_a_users(
    comfy: ComfyTestServer,
) -> None:
    comfy.behaviour.step_delay_s = 0.2
    # Canonical UUIDs: today's ComfyUI refuses any other client-supplied prompt_id.
    left_run, left_wait, user, sibling = (str(uuid.uuid4()) for _ in range(4))
    dead = f"comfy-worker-{dead_pid()}-0123456789ab"
    alive_sibling = f"comfy-worker-{os.getppid()}-0123456789ab"  # pytest's parent: alive
    for name in ("0badf00d-running.png", "1badf00d-waiting.png"):  # what the dead worker's jobs uploaded
        (comfy.root / "input" / name).write_bytes(png_bytes())
    post(
        f"{comfy.url}/prompt",
        {
            "prompt": wf.sampler(steps=40),
            "client_id": dead,
            "prompt_id": left_run,
            "extra_data": uploads_extra(["0badf00d-running.png"]),
        },
    )
    while not comfy.queue_state()[0]:
        await asyncio.sleep(0.02)
    post(
        f"{comfy.url}/prompt",
        {
            "prompt": wf.save_image("l"),
            "client_id": dead,
            "prompt_id": left_wait,
            "extra_data": uploads_extra(["1badf00d-waiting.png"]),
        },
    )
    post(f"{comfy.url}/prompt", {"prompt": wf.save_image("u"), "client_id": "ui-user", "prompt_id": user})
    post(
        f"{comfy.url}/prompt",
        {"prompt": wf.save_image("s"), "client_id": alive_sibling, "prompt_id": sibling},
    )
    worker = Worker(make_settings(comfy), keep_connection=True)
    try:
        result = await worker.handle({"id": "new", "input": {"workflow": wf.save_image("new")}})
        assert "error" not in result, result
        outcomes = {e.prompt_id: e.outcome for e in comfy.executions}
        assert outcomes[left_run] == "interrupted"
        assert left_wait not in outcomes  # removed from the queue, never run
        assert outcomes[user] == "success" and outcomes[sibling] == "success"
        await worker.settle()
        assert files_under(comfy.root / "input") == []  # both jobs' uploads, once ComfyUI let go
    finally:
        await worker.aclose()
