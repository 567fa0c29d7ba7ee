"""Queue and interrupt semantics of transcripts 11, 15 and 17, replayed with slow nodes.

The recorded prompts chain 1024 <-> 2048 px lanczos resizes to be slow; here the images are
shrunk and `node_delay_s` provides the slowness. Interrupts are sent at the same point of the
run as in the recording (while the same node executes), so the same node gets interrupted.
Where a `status` frame's position depended on when another request arrived, sequences are
compared without status frames.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import aiohttp

from comfy_testserver import ComfyTestServer

from .helpers import (
    Socket,
    recorded_http,
    recorded_prompts,
    recorded_summary,
    submit,
    wait_history,
    without_status,
)

_SIZES = {1024: 48, 2048: 96}


def shrunk(body: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(body)
    for node in body["prompt"].values():
        for key in ("width", "height"):
            if key in node["inputs"]:
                node["inputs"][key] = _SIZES.get(node["inputs"][key], node["inputs"][key])
    return body


def executing(node: str, since: int = 0) -> Any:
    """Predicate: the socket got `executing(node)` among its frames from index `since` on."""
    return lambda sock: f"executing(node='{node}')" in sock.summaries()[since:]


async def post_json(session: aiohttp.ClientSession, url: str, body: Any = None) -> tuple[int, bytes]:
    async with session.post(url, json=body) if body is not None else session.post(url) as response:
        return response.status, await response.read()


async def test_11_interrupt_delete_and_idle_interrupt(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    name = "11_interrupt"
    server.behaviour.node_delay_s = 0.15
    a, b, c, d, e = (shrunk(body) for body in recorded_prompts(name))
    sock = await Socket.connect(session, server.url, "me")
    id_a = (await submit(session, server.url, a, "me"))["prompt_id"]
    id_b = (await submit(session, server.url, b, "me"))["prompt_id"]
    id_c = (await submit(session, server.url, c, "me"))["prompt_id"]
    await sock.wait_for(executing("11"))

    async with session.get(f"{server.url}/queue") as response:
        queue = await response.json()
    assert [item[1] for item in queue["queue_running"]] == [id_a]
    assert sorted(item[1] for item in queue["queue_pending"]) == sorted([id_b, id_c])
    assert queue["queue_running"][0][3:] == [{"client_id": "me"}, ["2"]]
    assert await post_json(session, f"{server.url}/interrupt", {"prompt_id": id_b}) == (200, b"")
    assert await post_json(session, f"{server.url}/queue", {"delete": [id_b]}) == (200, b"")
    assert server.queue_state() == ([id_a], [id_c])
    assert await post_json(session, f"{server.url}/interrupt", {"prompt_id": id_a}) == (200, b"")
    await sock.wait_done(id_c)

    mark = len(sock.messages)
    id_d = (await submit(session, server.url, d, "me"))["prompt_id"]
    await sock.wait_for(executing("10", since=mark))
    assert await post_json(session, f"{server.url}/interrupt") == (200, b"")
    await sock.wait_done(id_d)
    assert await post_json(session, f"{server.url}/interrupt", {}) == (200, b"")  # idle: no effect
    server.behaviour.node_delay_s = 0.0
    id_e = (await submit(session, server.url, e, "me"))["prompt_id"]
    await sock.wait_done(id_e)
    await sock.close()

    ours, recorded = sock.summaries(), recorded_summary(name)
    assert without_status(ours) == without_status(recorded)
    assert ours[ours.index("execution_interrupted") :][:4] == [
        "execution_interrupted",
        "status(queue_remaining=1)",
        "executing(node=None)",
        "status(queue_remaining=1)",
    ]
    history_a = await wait_history(session, server.url, id_a)
    recorded_a = next(
        iter(
            next(e for e in recorded_http(name) if e.get("label") == "history of interrupted prompt A")[
                "response"
            ]["json"].values()
        )
    )
    assert history_a["status"]["status_str"] == "error" and history_a["status"]["completed"] is False
    assert history_a["outputs"] == {} and history_a["meta"] == {}
    last = history_a["status"]["messages"][-1]
    assert last[0] == "execution_interrupted" and last[1]["node_id"] == "12"
    assert sorted(last[1]["executed"]) == sorted(recorded_a["status"]["messages"][-1][1]["executed"])
    async with session.get(f"{server.url}/history/{id_b}") as response:
        assert await response.json() == {}
    assert [r.outcome for r in server.executions] == ["interrupted", "success", "interrupted", "success"]


async def test_15_front_clear_and_reconnect_during_a_run(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    name = "15_request_options_and_queue_ops"
    first, slow, back, front, slow2, pending1, pending2 = recorded_prompts(name)
    sock = await Socket.connect(session, server.url, "me")
    await sock.wait_done((await submit(session, server.url, first, "me"))["prompt_id"])

    server.behaviour.node_delay_s = 0.05
    slow_id = (await submit(session, server.url, shrunk(slow), "me"))["prompt_id"]
    back_reply = await submit(session, server.url, back, "me")
    front_reply = await submit(session, server.url, front, "me")
    assert (back_reply["number"], front_reply["number"]) == (2, -3)  # front: negative, runs first
    assert server.queue_state() == ([slow_id], [front_reply["prompt_id"], back_reply["prompt_id"]])
    await sock.wait_done(back_reply["prompt_id"])
    assert [r.prompt_id for r in server.executions[1:]] == [
        slow_id,
        front_reply["prompt_id"],
        back_reply["prompt_id"],
    ]

    server.behaviour.node_delay_s = 0.1
    slow2_id = (await submit(session, server.url, shrunk(slow2), "me"))["prompt_id"]
    cleared = [(await submit(session, server.url, body, "me"))["prompt_id"] for body in (pending1, pending2)]
    await sock.wait_for(executing("11", since=len(sock.messages) - 8))
    assert await post_json(session, f"{server.url}/queue", {"clear": True}) == (200, b"")
    assert server.queue_state() == ([slow2_id], [])
    await sock.wait_for(lambda s: s.summaries()[-1] == "status(queue_remaining=1)")
    await sock.close()
    again = await Socket.connect(session, server.url, "me")
    await again.wait_done(slow2_id)
    await again.close()

    recorded_first = recorded_summary(name, "02889aac-062b-4b8f-8f82-ec960a138c28")
    assert without_status(sock.summaries()) == without_status(recorded_first)
    status, current = again.frames()[:2]
    assert status["data"] == {"status": {"exec_info": {"queue_remaining": 1}}, "sid": "me"}
    assert current["type"] == "executing" and list(current["data"]) == ["node"]
    ours, recorded = again.summaries(), recorded_summary(name, "reconnected_same_clientId")
    marker = "executing(node='12')"
    assert ours[ours.index(marker) + 1 :] == recorded[recorded.index(marker) + 1 :]
    for prompt_id in cleared:
        async with session.get(f"{server.url}/history/{prompt_id}") as response:
            assert await response.json() == {}
    assert await post_json(session, f"{server.url}/history", {"delete": [first["prompt_id"]]}) == (200, b"")
    async with session.get(f"{server.url}/history/{first['prompt_id']}") as response:
        assert await response.json() == {}


async def test_17_without_client_id(server: ComfyTestServer, session: aiohttp.ClientSession) -> None:
    name = "17_no_client_id_interrupt_and_error"
    slow, failing = recorded_prompts(name)
    a = await Socket.connect(session, server.url, "client-a")
    n = await Socket.connect(session, server.url)
    server.behaviour.node_delay_s = 0.08
    slow_id = (await submit(session, server.url, shrunk(slow)))["prompt_id"]
    await n.wait_for(
        lambda s: (
            s.summaries()[-1:]
            == ["progress_state(1:finished,10:finished,11:finished,12:finished,13:running)"]
        )
    )
    assert await post_json(session, f"{server.url}/interrupt") == (200, b"")
    await wait_history(session, server.url, slow_id)

    upload = next(e for e in recorded_http(name) if e["request"]["path"] == "/upload/image")
    part = upload["request"]["multipart"]["image"]
    form = aiohttp.FormData()
    form.add_field("image", base64.b64decode(part["content"]["base64"]), filename=part["filename"])
    form.add_field("overwrite", "true")
    async with session.post(f"{server.url}/upload/image", data=form) as response:
        assert await response.json() == upload["response"]["json"]
    failed_id = (await submit(session, server.url, failing))["prompt_id"]
    history = await wait_history(session, server.url, failed_id)
    await n.wait_for(lambda s: len(s.messages) == len(recorded_summary(name, "N")))
    for sock in (a, n):
        await sock.close()
    assert a.summaries() == recorded_summary(name, "A")
    assert n.summaries() == recorded_summary(name, "N")
    assert history["status"]["status_str"] == "error" and history["outputs"] == {}
    error = history["status"]["messages"][-1]
    assert error[0] == "execution_error" and error[1]["exception_type"] == "PIL.UnidentifiedImageError"
    assert history["prompt"][3] == {}
