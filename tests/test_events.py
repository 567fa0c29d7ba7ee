"""WebSocket frames from the recordings parse into the events the tracker relies on."""

from __future__ import annotations

import json
import struct

from handler.comfy import events as ev

from .conftest import png_bytes, recorded


def recorded_text_frames(name: str) -> list[dict]:
    return [e["json"] for e in recorded(name)["events"] if e["kind"] == "ws_recv" and e["frame"] == "text"]


def test_normal_run_sequence_from_recording() -> None:
    parsed = [ev.parse_text_frame(json.dumps(frame)) for frame in recorded_text_frames("01_save_image")]
    kinds = [type(p).__name__ for p in parsed]
    assert kinds[:1] == ["Status"] and isinstance(parsed[0], ev.Status) and parsed[0].sid
    assert kinds[-3:] == ["ExecutionSuccess", "Status", "Executing"]
    final = parsed[-1]
    assert isinstance(final, ev.Executing) and final.node is None and final.prompt_id
    executed = next(p for p in parsed if isinstance(p, ev.Executed))
    assert executed.output["images"][0]["filename"] == "probe_00001_.png"


def test_error_and_interrupt_from_recordings() -> None:
    errors = [ev.parse_text_frame(json.dumps(f)) for f in recorded_text_frames("10_execution_error")]
    error = next(e for e in errors if isinstance(e, ev.ExecutionError))
    assert error.data["exception_type"] == "PIL.UnidentifiedImageError"
    stops = [ev.parse_text_frame(json.dumps(f)) for f in recorded_text_frames("11_interrupt")]
    assert any(isinstance(e, ev.ExecutionInterrupted) and e.data.get("node_id") for e in stops)


def test_progress_from_recording() -> None:
    parsed = [ev.parse_text_frame(json.dumps(f)) for f in recorded_text_frames("14_progress_upscale_model")]
    progress = [p for p in parsed if isinstance(p, ev.Progress)]
    assert [p.value for p in progress] == list(range(1, 10)) and {p.max for p in progress} == {9}


def test_reconnect_executing_frame_without_prompt_id() -> None:
    event = ev.parse_text_frame('{"type": "executing", "data": {"node": "12"}}')
    assert event == ev.Executing(prompt_id=None, node="12")


def test_binary_frames() -> None:
    image = png_bytes()
    plain = ev.parse_binary_frame(struct.pack(">II", 1, 2) + image)
    assert plain == ev.BinaryImage("image/png", image)
    meta = json.dumps({"node_id": "2", "prompt_id": "p", "image_type": "image/png"}).encode()
    with_meta = ev.parse_binary_frame(struct.pack(">II", 4, len(meta)) + meta + image)
    assert with_meta == ev.BinaryImage("image/png", image, node="2", prompt_id="p")
    text = ev.parse_binary_frame(struct.pack(">II", 3, 1) + b"5" + b"width: 40")
    assert text == ev.BinaryText("5", "width: 40")


def test_garbage_is_ignored_not_raised() -> None:
    assert isinstance(ev.parse_text_frame("not json"), ev.Ignored)
    assert isinstance(ev.parse_text_frame("[1]"), ev.Ignored)
    assert isinstance(ev.parse_text_frame('{"type": "x", "data": {}}'), ev.Ignored)
    assert isinstance(ev.parse_binary_frame(b"\x00"), ev.Ignored)
    assert isinstance(ev.parse_binary_frame(struct.pack(">II", 4, 3) + b"{{{"), ev.Ignored)
    assert isinstance(ev.parse_binary_frame(struct.pack(">II", 9, 0)), ev.Ignored)


def test_browser_requests_are_recognised_by_their_request_id() -> None:
    # comfyui-GaussianViewer's render request, as PromptServer.send_sync broadcasts it (no prompt_id).
    frame = {"type": "geompack_render_request", "data": {"request_id": "render-0123456789abcdef", "node_id": "4",
                                                         "ply_file": "sharp_1.ply", "output_resolution": 2048}}  # fmt: skip
    event = ev.parse_text_frame(json.dumps(frame))
    assert event == ev.BrowserRequest("geompack_render_request", "render-0123456789abcdef", "4")
    assert event.prompt_id is None
    odd = ev.parse_text_frame(json.dumps({"type": "custom", "data": {"request_id": 7}}))
    assert isinstance(odd, ev.Ignored)


def test_progress_state_keeps_each_nodes_state_and_activity() -> None:
    frame = {
        "type": "progress_state",
        "data": {
            "prompt_id": "p1",
            "nodes": {
                "1": {"value": 0.0, "max": 1.0, "state": "running", "node_id": "1", "activity": "loading"},
                "2": {"value": 1, "max": 1, "state": "finished", "node_id": "2"},
                "3": "not a node",
            },
        },
    }
    event = ev.parse_text_frame(json.dumps(frame))
    assert event == ev.ProgressState(
        "p1", (ev.NodeState("1", "running", "loading"), ev.NodeState("2", "finished", None))
    )
