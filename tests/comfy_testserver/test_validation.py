"""Every request of transcript 09 gets the recorded status code and body (ids aside)."""

from __future__ import annotations

import copy
from typing import Any

import aiohttp

from comfy_testserver import ComfyTestServer

from .helpers import Socket, recorded_http, recorded_summary, submit, transcript, wait_history

NAME = "09_validation_errors"


async def send(
    session: aiohttp.ClientSession, url: str, request: dict[str, Any], client_id: str
) -> tuple[int, str, Any]:
    if "raw_body" in request:
        kwargs: dict[str, Any] = {"data": request["raw_body"].encode(), "headers": request.get("headers", {})}
    else:
        body = copy.deepcopy(request["json"])
        if "client_id" in body:
            body["client_id"] = client_id
        kwargs = {"json": body}
    async with session.post(f"{url}/prompt", **kwargs) as response:
        text = await response.text()
        content_type = response.headers.get("Content-Type", "")
        return response.status, content_type, (await response.json()) if "json" in content_type else text


async def test_every_recorded_case(server: ComfyTestServer, session: aiohttp.ClientSession) -> None:
    cases = [e for e in recorded_http(NAME) if e["request"]["path"] == "/prompt"]
    assert len(cases) == 20  # 16 rejected, 1 partially valid, 3 malformed
    sock = await Socket.connect(session, server.url, "validator")
    accepted = []
    for case in cases:
        label, expected = case["label"], case["response"]
        status, content_type, body = await send(session, server.url, case["request"], "validator")
        assert status == expected["status"], label
        assert content_type == expected["headers"]["Content-Type"], label
        if status == 200:
            assert body["node_errors"] == expected["json"]["node_errors"], label
            accepted.append(body)
        elif "json" in expected:
            assert body == expected["json"], label
        else:
            assert body == expected["text"], label
    (run,) = accepted
    # Every parseable POST consumed a number: 16 rejections came before the accepted prompt.
    assert run["number"] == 16
    await sock.wait_done(run["prompt_id"])
    await sock.close()
    assert sock.summaries() == recorded_summary(NAME)
    history = await wait_history(session, server.url, run["prompt_id"])
    assert list(history["outputs"]) == ["6"]
    async with session.get(f"{server.url}/queue") as response:
        assert await response.json() == {"queue_running": [], "queue_pending": []}


async def test_missing_model_lists_the_files_that_exist(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    (server.root / "models" / "checkpoints" / "tiny.safetensors").write_bytes(b"\0")
    case = next(e for e in recorded_http(NAME) if e.get("label", "").startswith("missing model file"))
    status, _, body = await send(session, server.url, case["request"], "x")
    error = body["node_errors"]["1"]["errors"][0]
    assert status == 400 and error["type"] == "value_not_in_list"
    assert error["details"] == "ckpt_name: 'sd_xl_base_1.0.safetensors' not in ['tiny.safetensors']"
    assert error["extra_info"]["input_config"][0] == ["tiny.safetensors"]


async def test_link_to_unknown_node_deeper_in_the_graph(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    prompt = {
        "1": {"class_type": "ImageInvert", "inputs": {"image": ["99", 0]}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }
    async with session.post(f"{server.url}/prompt", json={"prompt": prompt}) as response:
        body = await response.json()
    assert response.status == 400 and body["error"]["details"] == ""
    (error,) = body["node_errors"]["1"]["errors"]
    assert (error["type"], error["details"], error["extra_info"]["exception_type"]) == (
        "exception_during_inner_validation",
        "'99'",
        "KeyError",
    )


async def test_widget_values_are_converted_like_comfyui(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    prompt = copy.deepcopy(transcript("01_save_image")["events"][3]["request"]["json"]["prompt"])
    prompt["1"]["inputs"]["width"] = "32"
    response = await submit(session, server.url, {"prompt": prompt})
    history = await wait_history(session, server.url, response["prompt_id"])
    assert history["prompt"][2]["1"]["inputs"]["width"] == 32
