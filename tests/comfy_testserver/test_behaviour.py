"""Each `Behaviour` knob, `kill()`, and the command line."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp

from comfy_testserver import Behaviour, ComfyTestServer
from testkit.faults import deep_prompt

from .helpers import Socket, recorded_prompts, submit, wait_history

SAVE_IMAGE = recorded_prompts("01_save_image")[0]
REPO = Path(__file__).resolve().parents[2]


def sampler(steps: int) -> dict:
    body = recorded_prompts("16_ksampler_random_sd15")[0]
    body["prompt"]["3"]["inputs"]["steps"] = steps
    return body


async def refused(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(f"{url}/queue"):
            return False
    except aiohttp.ClientConnectionError:
        return True


async def test_kill_drops_sockets_and_refuses_connections(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    sock = await Socket.connect(session, server.url, "me")
    async with session.get(f"{server.url}/queue") as response:  # a kept-alive connection too
        assert response.status == 200
    await asyncio.to_thread(server.kill)
    await sock.wait_closed()
    assert sock.closed and await refused(session, server.url)
    server.stop()  # harmless after a kill


async def test_kill_on_execute_dies_mid_prompt(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    server.behaviour.kill_on_execute = True
    sock = await Socket.connect(session, server.url, "me")
    await submit(session, server.url, SAVE_IMAGE, "me")
    await sock.wait_closed()
    assert sock.summaries()[-1] == "executing(node='1')"  # the client saw the node start, then nothing
    assert await refused(session, server.url)
    assert server.executions == [] and server.killed


async def test_startup_delay_refuses_until_bound(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    server = ComfyTestServer(root=tmp_path, behaviour=Behaviour(startup_delay_s=0.3))
    started = time.monotonic()
    server.start()
    try:
        assert time.monotonic() - started < 0.2
        assert server.url.startswith("http://127.0.0.1:") and server.port > 0
        assert await refused(session, server.url)
        assert await asyncio.to_thread(server.wait_until_listening, 5)
        assert time.monotonic() - started >= 0.3
        assert not await refused(session, server.url)
    finally:
        server.stop()


async def test_ws_drop_after_messages_then_reconnect(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    server.behaviour.ws_drop_after_messages = 5
    server.behaviour.node_delay_s = 0.1
    sock = await Socket.connect(session, server.url, "me")
    prompt_id = (await submit(session, server.url, SAVE_IMAGE, "me"))["prompt_id"]
    await sock.wait_closed()  # aborted, no close frame
    # 3 status frames, then 5 frames of the prompt: start, cached, progress_state, executing, progress_state.
    assert sock.summaries()[3:] == [
        "execution_start",
        "execution_cached(nodes=[])",
        "progress_state(1:running)",
        "executing(node='1')",
        "progress_state(1:finished)",
    ]
    again = await Socket.connect(session, server.url, "me")
    await again.wait_done(prompt_id)  # the same prompt does not drop the new socket again
    await again.close()
    assert again.frames()[1] == {"type": "executing", "data": {"node": "2"}}
    assert (await wait_history(session, server.url, prompt_id))["status"]["status_str"] == "success"


async def test_ws_silent_sends_only_the_first_status(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    server.behaviour.ws_silent = True
    sock = await Socket.connect(session, server.url, "me")
    await sock.ws.send_json({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
    prompt_id = (await submit(session, server.url, SAVE_IMAGE, "me"))["prompt_id"]
    history = await wait_history(session, server.url, prompt_id)
    await asyncio.sleep(0.05)
    await sock.close()
    assert sock.summaries() == ["status(queue_remaining=0)"]
    assert history["outputs"]["2"]["images"][0]["filename"] == "probe_00001_.png"


async def test_node_and_step_delays(server: ComfyTestServer, session: aiohttp.ClientSession) -> None:
    (server.root / "models" / "checkpoints" / "probe_random_sd15.safetensors").write_bytes(b"")
    server.behaviour.node_delay_s = 0.04
    await wait_history(session, server.url, (await submit(session, server.url, SAVE_IMAGE))["prompt_id"])
    server.behaviour.node_delay_s = 0.0
    server.behaviour.step_delay_s = 0.05
    await wait_history(session, server.url, (await submit(session, server.url, sampler(4)))["prompt_id"])
    save, sample = server.executions
    assert save.finished_at - save.started_at >= 2 * 0.04
    assert sample.finished_at - sample.started_at >= 4 * 0.05
    assert sample.executed_nodes == ["4", "5", "7", "6", "3", "8", "9"]


async def test_interrupt_stops_a_sampler_at_its_next_step(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    (server.root / "models" / "checkpoints" / "probe_random_sd15.safetensors").write_bytes(b"")
    server.behaviour.step_delay_s = 0.05
    sock = await Socket.connect(session, server.url, "me")
    prompt_id = (await submit(session, server.url, sampler(100), "me"))["prompt_id"]
    await sock.wait_for(lambda s: "progress(2/100 node='3')" in s.summaries())
    async with session.post(f"{server.url}/interrupt", json={"prompt_id": prompt_id}) as response:
        assert response.status == 200
    await sock.wait_done(prompt_id)
    await sock.close()
    interrupted = next(f["data"] for f in sock.frames() if f["type"] == "execution_interrupted")
    assert (interrupted["node_id"], interrupted["node_type"]) == ("3", "KSampler")
    assert server.executions[-1].outcome == "interrupted"


async def test_history_delay(server: ComfyTestServer, session: aiohttp.ClientSession) -> None:
    server.behaviour.history_delay_s = 0.3
    sock = await Socket.connect(session, server.url, "me")
    prompt_id = (await submit(session, server.url, SAVE_IMAGE, "me"))["prompt_id"]
    await sock.wait_done(prompt_id)
    await sock.close()
    async with session.get(f"{server.url}/history/{prompt_id}") as response:
        assert await response.json() == {}
    assert server.history() == {}
    await wait_history(session, server.url, prompt_id)


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "comfy_testserver",
            "--root",
            str(tmp_path),
            "--port",
            "0",
            "--startup-delay-s",
            "0.1",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("comfy_testserver listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        with urllib.request.urlopen(f"{url}/system_stats", timeout=5) as response:
            assert response.status == 200
        assert (tmp_path / "input").is_dir() and (tmp_path / "models" / "checkpoints").is_dir()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


async def test_cli_exit_on_execute(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "comfy_testserver",
        "--root",
        str(tmp_path),
        "--port",
        "0",
        "--exit-on-execute",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    url = (await asyncio.wait_for(process.stdout.readline(), 10)).decode().split()[-1]
    sock = await Socket.connect(session, url, "me")
    await submit(session, url, SAVE_IMAGE, "me")
    assert await asyncio.wait_for(process.wait(), 10) == 1
    await sock.wait_closed()
    assert "executing(node='1')" in sock.summaries()


async def _queue(session: aiohttp.ClientSession, url: str) -> tuple[list[str], list[str]]:
    async with session.get(f"{url}/queue") as response:
        data = await response.json()
    return [i[1] for i in data["queue_running"]], [i[1] for i in data["queue_pending"]]


async def test_a_prompt_nested_past_the_recursion_limit_kills_the_prompt_worker(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    # ComfyUI's PromptQueue.get deep-copies the prompt after popping it (issue 14): the copy raises
    # RecursionError, the prompt is gone, and its prompt_worker thread dies; HTTP goes on.
    deep = deep_prompt(600)
    queued = await submit(session, server.url, deep)
    await asyncio.sleep(0.3)
    assert await _queue(session, server.url) == ([], [])
    assert server.history() == {}
    after = await submit(session, server.url, SAVE_IMAGE)
    await asyncio.sleep(0.5)
    assert await _queue(session, server.url) == ([], [after["prompt_id"]])  # never runs
    async with session.get(f"{server.url}/system_stats") as response:
        assert response.status == 200
    assert queued["prompt_id"] not in server.history()


async def test_depth_400_runs(server: ComfyTestServer, session: aiohttp.ClientSession) -> None:
    queued = await submit(session, server.url, deep_prompt(400))
    entry = await wait_history(session, server.url, queued["prompt_id"])
    assert entry["status"]["status_str"] == "success"


async def test_prompt_worker_dies_flag(server: ComfyTestServer, session: aiohttp.ClientSession) -> None:
    server.behaviour.prompt_worker_dies = True
    await submit(session, server.url, SAVE_IMAGE)
    await asyncio.sleep(0.3)
    server.behaviour.prompt_worker_dies = False  # too late: the worker is gone for good
    later = await submit(session, server.url, SAVE_IMAGE)
    await asyncio.sleep(0.5)
    assert await _queue(session, server.url) == ([], [later["prompt_id"]])
    assert server.executions == []
