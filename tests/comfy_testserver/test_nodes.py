"""The stand-in nodes write what their real counterparts write and report it the same way."""

from __future__ import annotations

import json
import struct
from typing import Any

import aiohttp
from PIL import Image

from comfy_testserver import ComfyTestServer

from .helpers import Socket, submit, wait_history


def image(batch: int = 2) -> dict:
    return {
        "class_type": "EmptyImage",
        "inputs": {"width": 16, "height": 8, "batch_size": batch, "color": 0x336699},
    }


WORKFLOW = {
    "1": image(),
    "2": {"class_type": "SharpPredict", "inputs": {"model": ["7", 0], "image": ["1", 0], "output_prefix": "splat"}},
    "7": {"class_type": "LoadSharpModel", "inputs": {"device": "cpu"}},
    "3": {
        "class_type": "VHS_VideoCombine",
        "inputs": {"images": ["1", 0], "frame_rate": 8.0, "loop_count": 0, "filename_prefix": "vhs",
                   "format": "video/h264-mp4", "pingpong": False, "save_output": True},
    },
    "4": {"class_type": "SaveAudio", "inputs": {"audio": ["1", 0], "filename_prefix": "audio/sound"}},
    "5": {"class_type": "SaveGLB", "inputs": {"mesh": ["1", 0], "filename_prefix": "mesh/model"}},
    "6": {"class_type": "SaveAnimatedPNG", "inputs": {"images": ["1", 0], "filename_prefix": "apng", "fps": 4.0,
                                                      "compress_level": 4}},
}  # fmt: skip


async def test_stand_ins_write_real_looking_files(
    server: ComfyTestServer, session: aiohttp.ClientSession
) -> None:
    (server.root / "models" / "sharp").mkdir(parents=True)
    (server.root / "models" / "sharp" / "sharp_2572gikvuh.pt").write_bytes(b"\0")
    sock = await Socket.connect(session, server.url, "me")
    prompt_id = (await submit(session, server.url, {"prompt": WORKFLOW}, "me"))["prompt_id"]
    await sock.wait_done(prompt_id)
    history = await wait_history(session, server.url, prompt_id)
    output = server.root / "output"

    assert "2" not in history["outputs"]  # SharpPredict reports nothing: the file is only on disk
    (folder,) = output.glob("splat_*")  # a batch of two: a folder of numbered splats
    assert folder.name[len("splat_") :].isdigit()
    assert [p.read_bytes()[:4] for p in sorted(folder.iterdir())] == [b"ply\n", b"ply\n"]

    (gif,) = history["outputs"]["3"]["gifs"]
    assert {k: gif[k] for k in ("filename", "subfolder", "type", "format", "frame_rate", "workflow")} == {
        "filename": "vhs_00001.mp4", "subfolder": "", "type": "output", "format": "video/h264-mp4",
        "frame_rate": 8.0, "workflow": "vhs_00001.png",
    }  # fmt: skip
    assert gif["fullpath"] == str(output / "vhs_00001.mp4") and (output / "vhs_00001.png").is_file()
    assert (output / "vhs_00001.mp4").read_bytes()[4:8] == b"ftyp"

    assert history["outputs"]["4"] == {"audio": [{"filename": "sound_00001_.flac", "subfolder": "audio",
                                                  "type": "output"}]}  # fmt: skip
    assert (output / "audio" / "sound_00001_.flac").read_bytes()[:4] == b"fLaC"
    assert history["outputs"]["5"] == {
        "3d": [{"filename": "model_00001_.glb", "subfolder": "mesh", "type": "output"}]
    }
    glb = (output / "mesh" / "model_00001_.glb").read_bytes()
    magic, version, length = struct.unpack("<4sII", glb[:12])
    assert (magic, version, length) == (b"glTF", 2, len(glb))
    json_length = struct.unpack("<I", glb[12:16])[0]
    assert json.loads(glb[20 : 20 + json_length])["asset"]["version"] == "2.0"

    assert history["outputs"]["6"] == {"images": [{"filename": "apng_00001_.png", "subfolder": "", "type": "output"}],
                                       "animated": [True]}  # fmt: skip
    with Image.open(output / "apng_00001_.png") as apng:
        assert apng.format == "PNG"  # identical frames collapse into one, as with the real node

    async with session.get(
        f"{server.url}/view", params={"filename": "model_00001_.glb", "subfolder": "mesh"}
    ) as r:
        assert r.headers["Content-Type"] == "model/gltf-binary"
    async with session.get(
        f"{server.url}/view", params={"filename": "sound_00001_.flac", "subfolder": "audio"}
    ) as r:
        assert r.headers["Content-Type"] == "audio/flac"

    # Run again: everything is cached; the cached SharpPredict still gets an `executed` (output null).
    mark = len(sock.messages)
    second = (await submit(session, server.url, {"prompt": WORKFLOW}, "me"))["prompt_id"]
    await sock.wait_done(second)
    await sock.close()
    executed = {
        f["data"]["node"]: f["data"]["output"] for f in sock.frames()[mark:] if f["type"] == "executed"
    }
    assert executed["2"] is None and executed["4"] == history["outputs"]["4"]
    assert server.executions[-1].executed_nodes == []
    assert len(list(output.glob("splat_*"))) == 1


async def test_load_audio_feeds_save_audio(server: ComfyTestServer, session: aiohttp.ClientSession) -> None:
    (server.root / "input" / "clip.wav").write_bytes(b"RIFF" + bytes(400))
    prompt: dict[str, dict[str, Any]] = {
        "1": {"class_type": "LoadAudio", "inputs": {"audio": "clip.wav"}},
        "2": {"class_type": "SaveAudio", "inputs": {"audio": ["1", 0], "filename_prefix": "a"}},
    }
    async with session.get(f"{server.url}/object_info/LoadAudio") as response:
        assert (await response.json())["LoadAudio"]["input"]["required"]["audio"][0] == ["clip.wav"]
    history = await wait_history(
        session, server.url, (await submit(session, server.url, {"prompt": prompt}))["prompt_id"]
    )
    assert history["outputs"]["2"]["audio"][0]["filename"] == "a_00001_.flac"
    prompt["1"]["inputs"]["audio"] = "missing.wav"
    async with session.post(f"{server.url}/prompt", json={"prompt": prompt}) as response:
        body = await response.json()
    assert body["node_errors"]["1"]["errors"][0]["details"] == "audio - Invalid audio file: missing.wav"
