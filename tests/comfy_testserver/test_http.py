"""HTTP endpoints against transcripts 00 (server info) and 02 (uploads), plus history/free/queue basics."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from typing import Any

import aiohttp
from PIL import Image
from PIL.PngImagePlugin import PngImageFile

from comfy_testserver import ComfyTestServer

from .helpers import Socket, recorded_http, recorded_prompts, recorded_summary, submit, wait_history


def _rgb(pixel: Any) -> tuple[int, int, int]:
    red, green, blue = pixel[:3]
    return (red, green, blue)


async def fetch(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any, bytes]:
    async with session.request(method, url, **kwargs) as response:
        return response.status, response.headers, await response.read()


async def test_00_informational_endpoints(server: ComfyTestServer, session: aiohttp.ClientSession) -> None:
    (server.root / "models" / "upscale_models" / "probe_tiny_compact_x2.safetensors").write_bytes(b"\0")
    Image.new("RGB", (768, 768), "white").save(server.root / "input" / "example.png")
    for event in recorded_http("00_server_info"):
        request, expected = event["request"], event["response"]
        if request["path"] == "/object_info":
            continue  # summarised in the transcript; checked below
        status, headers, body = await fetch(
            session,
            request["method"],
            server.url + request["path"],
            params=request.get("query"),
            json=request.get("json"),
        )
        label = event.get("label", request["path"])
        assert status == expected["status"], label
        assert headers.get("Content-Type") == expected["headers"].get("Content-Type"), label
        if "json" in expected and request["path"] not in ("/system_stats", "/api/system_stats"):
            assert json.loads(body) == expected["json"], label
        elif "json" in expected:
            assert _shape(json.loads(body)) == _shape(expected["json"]), label
        elif request["path"] == "/view" and status == 200:
            assert headers["Content-Disposition"] == expected["headers"]["Content-Disposition"]
        elif request["path"] != "/":
            assert body == b"", label


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value[:1]]
    return type(value).__name__


async def test_00_object_info_entries(server: ComfyTestServer, session: aiohttp.ClientSession) -> None:
    Image.new("RGB", (8, 8)).save(server.root / "input" / "example.png")
    summary = next(e for e in recorded_http("00_server_info") if e["request"]["path"] == "/object_info")[
        "response"
    ]
    status, _, body = await fetch(session, "GET", f"{server.url}/object_info")
    info = json.loads(body)
    assert status == 200
    for name, entry in summary["example_entries"].items():
        assert info[name] == entry, name
    for entry in info.values():
        assert set(entry) <= set(summary["entry_keys_union"])
    ours_out = {name for name, entry in info.items() if entry["output_node"]}
    # The stand-ins; SaveAudio was not loaded on the recording server (no torchaudio); the fault
    # pack's saving node (testkit/comfy_nodes) was not installed there.
    assert ours_out - set(summary["output_node_classes"]) == {
        "SharpPredict",
        "GaussianViewer",
        "VHS_VideoCombine",
        "SaveAudio",
        "FaultFixedNameSave",
    }
    status, _, body = await fetch(session, "GET", f"{server.url}/api/object_info/KSampler")
    assert status == 200 and list(json.loads(body)) == ["KSampler"]


async def test_00_websocket_handshakes(server: ComfyTestServer, session: aiohttp.ClientSession) -> None:
    named = await Socket.connect(session, server.url, "some-client")
    anonymous = await Socket.connect(session, server.url)
    flagged = await Socket.connect(
        session, server.url, "flags", feature_flags={"supports_preview_metadata": True}
    )
    for sock in (named, anonymous, flagged):
        await sock.close()
    assert named.frames() == [
        {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "some-client"}}
    ]
    sid = anonymous.frames()[0]["data"]["sid"]
    assert len(sid) == 32 and int(sid, 16) >= 0
    assert flagged.summaries() == recorded_summary("00_server_info", "ws_feature_flags")
    assert flagged.frames()[1]["data"] == {"supports_preview_metadata": True, "max_upload_size": 104857600}


async def test_02_upload_semantics_and_load_image(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    name = "02_upload_loadimage_invert"
    for event in recorded_http(name):
        request, expected = event["request"], event["response"]
        if request["path"] != "/upload/image":
            continue
        data, content_type = multipart(request["multipart"])
        status, _, body = await fetch(
            session, "POST", f"{server.url}/upload/image", data=data, headers={"Content-Type": content_type}
        )
        assert status == expected["status"], event["label"]
        assert (json.loads(body) if body else None) == expected.get("json"), event["label"]
    view = next(e for e in recorded_http(name) if e["request"]["path"] == "/view")
    status, headers, body = await fetch(session, "GET", f"{server.url}/view", params=view["request"]["query"])
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert hashlib.sha256(body).hexdigest() == view["response"]["body"]["sha256"]
    assert sorted(p.relative_to(server.root).as_posix() for p in server.root.rglob("*.png")) == [
        "input/probe_sub/probe_upload_71d5977a.png",
        "input/probe_upload_71d5977a (1).png",
        "input/probe_upload_71d5977a.png",
        "temp/probe_upload_71d5977a.png",
    ]

    sock = await Socket.connect(session, server.url, "uploader")
    for body_json in recorded_prompts(name):
        await sock.wait_done((await submit(session, server.url, body_json, "uploader"))["prompt_id"])
    await sock.close()
    assert sock.summaries() == recorded_summary(name)
    with Image.open(server.root / "output" / "probe_invert_00001_.png") as inverted:
        original = Image.open(server.root / "input" / "probe_upload_71d5977a.png").convert("RGB")
        assert inverted.getpixel((3, 3)) == tuple(255 - c for c in _rgb(original.getpixel((3, 3))))


def multipart(fields: dict[str, Any]) -> tuple[bytes, str]:
    """A form body written by hand: aiohttp's FormData would percent-encode `../` in file names,
    while the recorder (python-requests) sent them raw."""
    boundary = "----comfytestboundary"
    body = b""
    for name, part in fields.items():
        body += f"--{boundary}\r\n".encode()
        if part["kind"] == "file":
            body += (
                f'Content-Disposition: form-data; name="{name}"; filename="{part["filename"]}"\r\n'
                f"Content-Type: {part['content_type']}\r\n\r\n"
            ).encode()
            body += base64.b64decode(part["content"]["base64"]) + b"\r\n"
        else:
            body += f'Content-Disposition: form-data; name="{name}"\r\n\r\n{part["value"]}\r\n'.encode()
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


async def test_view_variants(server: ComfyTestServer, session: aiohttp.ClientSession) -> None:
    Image.new("RGBA", (10, 6), (10, 20, 30, 128)).save(server.root / "output" / "a.png")
    (server.root / "output" / "sub").mkdir()
    (server.root / "output" / "sub" / "page.html").write_text("<html></html>")
    base = f"{server.url}/view"
    status, headers, body = await fetch(
        session, "GET", base, params={"filename": "a.png", "preview": "webp;70"}
    )
    assert (status, headers["Content-Type"]) == (200, "image/webp")
    assert Image.open(io.BytesIO(body)).format == "WEBP"
    status, headers, body = await fetch(session, "GET", base, params={"filename": "a.png", "channel": "a"})
    assert (status, headers["Content-Type"]) == (200, "image/png")
    assert Image.open(io.BytesIO(body)).getpixel((0, 0)) == (0, 0, 0, 128)
    status, headers, _ = await fetch(
        session, "GET", base, params={"filename": "page.html", "subfolder": "sub"}
    )
    assert (status, headers["Content-Type"]) == (200, "application/octet-stream")
    status, _, _ = await fetch(session, "GET", base, params={"filename": "a.png", "subfolder": "../input"})
    assert status == 403
    status, _, _ = await fetch(session, "GET", base, params={"filename": "a.png", "type": "nonsense"})
    assert status == 400
    status, _, _ = await fetch(session, "GET", base)
    assert status == 404


async def test_large_file_is_streamed(server: ComfyTestServer, session: aiohttp.ClientSession) -> None:
    chunk = bytes(range(256)) * 4096  # 1 MiB
    with open(server.root / "output" / "big.mp4", "wb") as handle:
        for _ in range(120):
            handle.write(chunk)
    digest = hashlib.sha256()
    async with session.get(f"{server.url}/view", params={"filename": "big.mp4"}) as response:
        assert response.headers["Content-Type"] == "video/mp4"
        assert int(response.headers["Content-Length"]) == 120 * len(chunk)
        async for piece in response.content.iter_chunked(1 << 20):
            digest.update(piece)
    assert digest.hexdigest() == hashlib.sha256(chunk * 120).hexdigest()


async def test_history_listing_delete_and_clear(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    body = recorded_prompts("01_save_image")[0]
    ids = [(await submit(session, server.url, body))["prompt_id"] for _ in range(3)]
    for prompt_id in ids:
        await wait_history(session, server.url, prompt_id)
    _, _, listing = await fetch(session, "GET", f"{server.url}/history", params={"max_items": "2"})
    assert list(json.loads(listing)) == ids[1:]
    status, headers, empty = await fetch(session, "POST", f"{server.url}/history", json={"delete": [ids[0]]})
    assert (status, empty, headers.get("Content-Type")) == (200, b"", None)
    assert list(server.history()) == ids[1:]
    await fetch(session, "POST", f"{server.url}/api/history", json={"clear": True})
    assert server.history() == {}
    assert [r.path for r in server.requests if r.method == "POST"][-2:] == ["/history", "/history"]


async def test_requests_are_recorded(server: ComfyTestServer, session: aiohttp.ClientSession) -> None:
    await fetch(session, "GET", f"{server.url}/api/queue", params={"a": "1"})
    await fetch(session, "POST", f"{server.url}/interrupt")
    await fetch(session, "POST", f"{server.url}/free", json={"free_memory": True})
    assert [(r.method, r.path, r.query, r.json) for r in server.requests] == [
        ("GET", "/queue", {"a": "1"}, None),
        ("POST", "/interrupt", {}, None),
        ("POST", "/free", {}, {"free_memory": True}),
    ]


async def test_15_client_chosen_prompt_id_and_extra_pnginfo(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    first = recorded_prompts("15_request_options_and_queue_ops")[0]
    response = await submit(session, server.url, first)
    assert response["prompt_id"] == first["prompt_id"] == "b4efd125-7cd3-4341-97f0-9dde636cc469"
    history = await wait_history(session, server.url, first["prompt_id"])
    assert history["prompt"][3] == {"extra_pnginfo": {"workflow": {"note": "probe"}}}
    with Image.open(server.root / "output" / "probe_opts_00001_.png") as image:
        assert isinstance(image, PngImageFile)
        assert json.loads(image.text["workflow"]) == {"note": "probe"}
        assert json.loads(image.text["prompt"]) == first["prompt"]
