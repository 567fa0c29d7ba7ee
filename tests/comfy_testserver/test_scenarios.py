"""Recorded runs replayed: the same requests must produce the same WebSocket message sequence.

Each test sends the transcript's POST /prompt bodies over real HTTP, listens like the recorder
did, and compares our frames with the transcript's `ws_message_summary` (node ids and order
included, unless the real server's order was not fixed: 05 and 07).
"""

from __future__ import annotations

import base64
import io
import json
import struct
from pathlib import Path
from typing import Any

import aiohttp
from PIL import Image

from comfy_testserver import Behaviour, ComfyTestServer

from .helpers import (
    Socket,
    kinds,
    new_id,
    recorded_http,
    recorded_prompts,
    recorded_summary,
    submit,
    transcript,
    wait_history,
)


async def run_one_client(
    server: ComfyTestServer,
    session: aiohttp.ClientSession,
    name: str,
    *,
    feature_flags: dict[str, Any] | None = None,
) -> tuple[Socket, list[str]]:
    """Connect one client, submit every prompt of `name` in turn, wait for each to finish."""
    client = new_id()
    sock = await Socket.connect(session, server.url, client, feature_flags=feature_flags)
    prompt_ids = []
    for body in recorded_prompts(name):
        prompt_id = (await submit(session, server.url, body, client))["prompt_id"]
        await sock.wait_done(prompt_id)
        prompt_ids.append(prompt_id)
    await sock.close()
    return sock, prompt_ids


def normalise(value: Any, ids: dict[str, str]) -> Any:
    """Replace prompt/client ids and timestamps so recorded and live entries compare equal."""
    if isinstance(value, dict):
        return {ids.get(k, k): ("<ts>" if k == "timestamp" else normalise(v, ids)) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, ids) for v in value]
    return ids.get(value, value) if isinstance(value, str) else value


def recorded_history(name: str, index: int = 0) -> dict[str, Any]:
    entries = [
        e["response"]["json"]
        for e in recorded_http(name)
        if e["request"]["path"].startswith("/history/") and e["response"]["json"]
    ]
    return next(iter(entries[index].values()))


def assert_same_history(live: dict[str, Any], recorded: dict[str, Any]) -> None:
    live_ids = {live["prompt"][1]: "<prompt>", live["prompt"][3].get("client_id", ""): "<client>"}
    rec_ids = {recorded["prompt"][1]: "<prompt>", recorded["prompt"][3].get("client_id", ""): "<client>"}
    live, recorded = normalise(live, live_ids), normalise(recorded, rec_ids)
    live["prompt"][0] = recorded["prompt"][0] = "<number>"
    # outputs_to_execute comes from a set in ComfyUI: its order is arbitrary.
    live["prompt"][4], recorded["prompt"][4] = sorted(live["prompt"][4]), sorted(recorded["prompt"][4])
    for entry in (live, recorded):  # PreviewImage's 5 letters are random
        for output in entry["outputs"].values():
            for image in output.get("images", []):
                if image["type"] == "temp":
                    image["filename"] = image["filename"][:13] + "xxxxx" + image["filename"][18:]
    assert live == recorded


async def test_01_save_image_sequence_history_and_view(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    sock, (prompt_id,) = await run_one_client(server, session, "01_save_image")
    assert sock.summaries() == recorded_summary("01_save_image")
    history = await wait_history(session, server.url, prompt_id)
    assert_same_history(history, recorded_history("01_save_image"))
    for event in recorded_http("01_save_image"):
        if event["request"]["path"] != "/view":
            continue
        async with session.get(f"{server.url}/view", params=event["request"]["query"]) as response:
            body = await response.read()
            expected = event["response"]
            assert response.status == expected["status"]
            for header in ("Content-Type", "Content-Disposition"):
                assert response.headers.get(header) == expected["headers"].get(header), header
            with Image.open(io.BytesIO(body)) as image:
                assert [image.format, image.mode, list(image.size)] == [
                    expected["body"]["image"][k] for k in ("pil_format", "mode", "size")
                ]


async def test_03_preview_goes_to_temp(server: ComfyTestServer, session: aiohttp.ClientSession) -> None:
    sock, (prompt_id,) = await run_one_client(server, session, "03_preview_image_temp")
    assert sock.summaries() == recorded_summary("03_preview_image_temp")
    history = await wait_history(session, server.url, prompt_id)
    assert_same_history(history, recorded_history("03_preview_image_temp"))
    (image,) = history["outputs"]["2"]["images"]
    assert image["filename"].startswith("ComfyUI_temp_") and image["filename"].endswith("_00001_.png")
    assert (server.root / "temp" / image["filename"]).is_file()


async def test_04_batch_and_subfolder_outputs(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    sock, (prompt_id,) = await run_one_client(server, session, "04_batch_and_multiple_outputs")
    assert sock.summaries() == recorded_summary("04_batch_and_multiple_outputs")
    history = await wait_history(session, server.url, prompt_id)
    assert_same_history(history, recorded_history("04_batch_and_multiple_outputs"))
    assert (server.root / "output" / "probe_dir" / "sub_probe_00001_.png").is_file()


async def test_05_animated_outputs(server: ComfyTestServer, session: aiohttp.ClientSession) -> None:
    sock, (prompt_id,) = await run_one_client(server, session, "05_animated_webp_png")
    # ComfyUI orders independent outputs by set iteration; only the shape of the run is fixed.
    assert kinds(sock.summaries()) == kinds(recorded_summary("05_animated_webp_png"))
    history = await wait_history(session, server.url, prompt_id)
    assert_same_history(history, recorded_history("05_animated_webp_png"))
    with Image.open(server.root / "output" / "probe_anim_00001_.webp") as webp:
        assert webp.format == "WEBP" and getattr(webp, "n_frames", 1) >= 2


async def test_06_video_outputs(server: ComfyTestServer, session: aiohttp.ClientSession) -> None:
    sock, prompt_ids = await run_one_client(server, session, "06_video")
    assert sock.summaries() == recorded_summary("06_video")
    for index, prompt_id in enumerate(prompt_ids):
        assert_same_history(
            await wait_history(session, server.url, prompt_id), recorded_history("06_video", index)
        )
    async with session.get(
        f"{server.url}/view", params={"filename": "probe_video_00001_.mp4", "subfolder": "video"}
    ) as response:
        assert response.headers["Content-Type"] == "video/mp4"
        assert (await response.read())[4:8] == b"ftyp"
    async with session.get(f"{server.url}/view", params={"filename": "probe_webm_00001_.webm"}) as response:
        assert response.headers["Content-Type"] == "video/webm"
        assert (await response.read())[:4] == bytes.fromhex("1a45dfa3")


async def test_07_text_outputs_and_binary_text_frame(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    sock, (prompt_id,) = await run_one_client(server, session, "07_text_ui_output")
    ours, recorded = sock.summaries(), recorded_summary("07_text_ui_output")
    # The two branches ran in a different order in two recording sessions; compare the frames,
    # and the one place where the binary TEXT frame has to be.
    assert sorted(kinds(ours)) == sorted(kinds(recorded))
    assert {s for s in ours if not s.startswith("progress_state")} == {
        s for s in recorded if not s.startswith("progress_state")
    }
    assert ours[ours.index("executing(node='5')") + 1] == "binary:TEXT"
    (text_frame,) = [m.data for m in sock.messages if m.type == aiohttp.WSMsgType.BINARY]
    assert struct.unpack(">II", text_frame[:8]) == (3, 1)
    assert text_frame[8:].decode() == "5width: 40, height: 24\n batch size: 2"
    history = await wait_history(session, server.url, prompt_id)
    assert history["outputs"] == {"3": {"text": ["hello, world"]}, "6": {"text": ["40"]}}


async def test_08_websocket_images_plain_and_with_metadata(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    name = "08_websocket_binary_images"
    plain_body, metadata_body = recorded_prompts(name)
    plain = await Socket.connect(session, server.url, "plain")
    first = await submit(session, server.url, plain_body, "plain")
    await plain.wait_done(first["prompt_id"])
    await plain.close()
    meta = await Socket.connect(
        session, server.url, "meta", feature_flags={"supports_preview_metadata": True}
    )
    second = await submit(session, server.url, metadata_body, "meta")
    await meta.wait_done(second["prompt_id"])
    await meta.close()
    assert plain.summaries() == recorded_summary(name, "plain_client")
    assert meta.summaries() == recorded_summary(name, "metadata_client")
    frames = [m.data for m in plain.messages if m.type == aiohttp.WSMsgType.BINARY]
    assert all(struct.unpack(">II", f[:8]) == (1, 2) and len(f) - 8 > 0 for f in frames)
    with Image.open(io.BytesIO(frames[0][8:])) as image:
        assert (image.format, image.size) == ("PNG", (32, 16))
    (meta_frame, *_) = [m.data for m in meta.messages if m.type == aiohttp.WSMsgType.BINARY]
    event, length = struct.unpack(">II", meta_frame[:8])
    metadata = json.loads(meta_frame[8 : 8 + length])
    assert (event, length) == (4, 165)  # json.dumps default separators, as recorded
    assert metadata == {
        "node_id": "2",
        "prompt_id": second["prompt_id"],
        "display_node_id": "2",
        "parent_node_id": None,
        "real_node_id": "2",
        "image_type": "image/png",
    }
    for prompt_id in (first["prompt_id"], second["prompt_id"]):
        history = await wait_history(session, server.url, prompt_id)
        assert history["outputs"] == {} and history["meta"] == {}


async def test_10_execution_error(server: ComfyTestServer, session: aiohttp.ClientSession) -> None:
    name = "10_execution_error"
    upload = recorded_http(name)[0]["request"]["multipart"]["image"]
    form = aiohttp.FormData()
    form.add_field("image", base64.b64decode(upload["content"]["base64"]), filename=upload["filename"])
    form.add_field("overwrite", "true")
    async with session.post(f"{server.url}/upload/image", data=form) as response:
        assert await response.json() == recorded_http(name)[0]["response"]["json"]
    sock, (prompt_id,) = await run_one_client(server, session, name)
    assert sock.summaries() == recorded_summary(name)
    error = next(f["data"] for f in sock.frames() if f["type"] == "execution_error")
    recorded_error = next(
        e["json"]["data"]
        for e in transcript(name)["events"]
        if e["kind"] == "ws_recv" and e.get("json", {}).get("type") == "execution_error"
    )
    assert error.keys() == recorded_error.keys()
    assert (error["node_id"], error["node_type"], error["exception_type"]) == (
        "3",
        "LoadImage",
        "PIL.UnidentifiedImageError",
    )
    assert sorted(error["executed"]) == sorted(recorded_error["executed"])
    assert error["exception_message"] == (
        f"cannot identify image file '{server.root.resolve() / 'input' / upload['filename']}'\n"
    )
    assert error["current_inputs"] == recorded_error["current_inputs"]
    assert sorted(error["current_outputs"]) == sorted(recorded_error["current_outputs"])
    assert error["traceback"] and all(isinstance(t, str) and t.endswith("\n") for t in error["traceback"])
    history = await wait_history(session, server.url, prompt_id)
    recorded_entry = recorded_history(name)
    assert history["status"]["status_str"] == "error" and history["status"]["completed"] is False
    assert [m[0] for m in history["status"]["messages"]] == [
        m[0] for m in recorded_entry["status"]["messages"]
    ]
    assert history["outputs"] == recorded_entry["outputs"] and history["meta"] == recorded_entry["meta"]


async def test_12_cache_rerun_partial_and_free(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    name = "12_cached_rerun"
    client = new_id()
    sock = await Socket.connect(session, server.url, client)
    prompts = recorded_prompts(name)
    outputs = []
    for index, body in enumerate(prompts):
        if index == 3:
            async with session.post(
                f"{server.url}/free", json={"free_memory": True, "unload_models": True}
            ) as r:
                assert r.status == 200
        prompt_id = (await submit(session, server.url, body, client))["prompt_id"]
        await sock.wait_done(prompt_id)
        outputs.append((await wait_history(session, server.url, prompt_id))["outputs"])
    await sock.close()
    assert sock.summaries() == recorded_summary(name)
    names = [o["2"]["images"][0]["filename"] for o in outputs]
    assert names == [
        "probe_cache_00001_.png",
        "probe_cache_00001_.png",
        "probe_cache_other_00001_.png",
        "probe_cache_00002_.png",
    ]
    assert sorted(p.name for p in (server.root / "output").iterdir()) == sorted(set(names))
    assert [r.executed_nodes for r in server.executions] == [["1", "2"], [], ["2"], ["1", "2"]]


async def test_13_routing_by_client_id(server: ComfyTestServer, session: aiohttp.ClientSession) -> None:
    name = "13_client_id_routing"
    a = await Socket.connect(session, server.url, "client-a")
    b = await Socket.connect(session, server.url, "client-b")
    n = await Socket.connect(session, server.url)
    assert len(n.frames()[0]["data"]["sid"]) == 32
    recorded_a = "cdf04adc-8b43-4be4-9ecf-566a32ad0f51"  # socket A's clientId in the recording
    for body in recorded_prompts(name):
        client = "client-a" if body.get("client_id") == recorded_a else body.get("client_id")  # or "nobody"
        response = await submit(session, server.url, body, client)
        await wait_history(session, server.url, response["prompt_id"])
        await n.wait_for(lambda s: s.summaries()[-1] == "status(queue_remaining=0)")
    await a.close()
    again = await Socket.connect(session, server.url, "client-a")
    for sock in (b, n, again):
        await sock.close()
    assert a.summaries() == recorded_summary(name, "A")
    assert b.summaries() == recorded_summary(name, "B")
    assert n.summaries() == recorded_summary(name, "N")
    assert again.summaries() == recorded_summary(name, "A_reconnected")


async def test_14_tiled_upscale_progress(server: ComfyTestServer, session: aiohttp.ClientSession) -> None:
    (server.root / "models" / "upscale_models" / "probe_tiny_compact_x2.safetensors").write_bytes(b"\0")
    sock, (prompt_id,) = await run_one_client(server, session, "14_progress_upscale_model")
    assert sock.summaries() == recorded_summary("14_progress_upscale_model")
    assert_same_history(
        await wait_history(session, server.url, prompt_id), recorded_history("14_progress_upscale_model")
    )


async def test_16_txt2img_plain_metadata_and_cached(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    await replay_16(server, session, "16_ksampler_random_sd15")


async def test_16_latent2rgb_previews(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    with ComfyTestServer(root=tmp_path / "c", behaviour=Behaviour(preview_method="latent2rgb")) as server:
        frames = await replay_16(server, session, "16_ksampler_random_sd15_previews_latent2rgb")
    for frame in frames:
        event = struct.unpack(">I", frame[:4])[0]
        offset = 8 if event == 1 else 8 + struct.unpack(">I", frame[4:8])[0]
        with Image.open(io.BytesIO(frame[offset:])) as image:
            assert (image.format, image.size) == ("JPEG", (512, 512))


async def replay_16(server: ComfyTestServer, session: aiohttp.ClientSession, name: str) -> list[bytes]:
    (server.root / "models" / "checkpoints" / "probe_random_sd15.safetensors").write_bytes(b"\0")
    first, second, third = recorded_prompts(name)
    plain = await Socket.connect(session, server.url, "plain")
    await plain.wait_done((await submit(session, server.url, first, "plain"))["prompt_id"])
    await plain.close()
    meta = await Socket.connect(
        session, server.url, "meta", feature_flags={"supports_preview_metadata": True}
    )
    for body in (second, third):
        await meta.wait_done((await submit(session, server.url, body, "meta"))["prompt_id"])
    await meta.close()
    assert plain.summaries() == recorded_summary(name, "plain_client")
    assert meta.summaries() == recorded_summary(name, "metadata_client")
    return [m.data for s in (plain, meta) for m in s.messages if m.type == aiohttp.WSMsgType.BINARY]
