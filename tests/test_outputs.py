"""Output discovery from recorded history entries and from output-folder changes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from handler.comfy.folders import ComfyFolders
from handler.outputs import FileRef, TextOutput, collect_outputs, execution_window, new_files
from handler.workflow import output_prefixes

from .conftest import recorded


def history_outputs(name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for event in recorded(name)["events"]:
        if event["kind"] == "http" and event["request"]["path"].startswith("/history/"):
            body = event["response"].get("json") or {}
            found.extend(entry["outputs"] for entry in body.values())
    return found


def test_batch_save_and_preview_and_subfolder() -> None:
    outputs = history_outputs("04_batch_and_multiple_outputs")[0]
    without_temp = collect_outputs(outputs, include_temp=False)
    with_temp = collect_outputs(outputs, include_temp=True)
    saved = [f for f in without_temp.files if f.folder_type == "output"]
    assert len(saved) == 5  # 4 from SaveImage + 1 from the probe_dir branch
    assert {f.subfolder for f in saved} == {"", "probe_dir"}
    assert without_temp.skipped_temp == 4
    assert len(with_temp.files) == 9
    assert [f.folder_type for f in with_temp.files].count("temp") == 4


def test_preview_only_workflow_has_only_temp_files() -> None:
    outputs = history_outputs("03_preview_image_temp")[0]
    assert collect_outputs(outputs, include_temp=False).files == []
    assert [f.folder_type for f in collect_outputs(outputs, include_temp=True).files] == ["temp"]


def test_animated_and_video_outputs_are_files() -> None:
    animated = collect_outputs(history_outputs("05_animated_webp_png")[0], include_temp=False)
    assert sorted(f.filename.rsplit(".", 1)[1] for f in animated.files) == ["png", "webp"]
    mp4, webm = (collect_outputs(h, include_temp=False).files for h in history_outputs("06_video"))
    assert [(f.subfolder, f.filename) for f in mp4] == [("video", "probe_video_00001_.mp4")]
    assert [f.filename for f in webm] == ["probe_webm_00001_.webm"]


def test_text_outputs_keep_their_node() -> None:
    outputs = history_outputs("07_text_ui_output")[0]
    texts = collect_outputs(outputs, include_temp=False).texts
    assert texts and all(isinstance(t, TextOutput) for t in texts)
    assert any(t.text == "hello, world" for t in texts)


def test_websocket_image_workflow_has_empty_history_outputs() -> None:
    outputs = history_outputs("08_websocket_binary_images")[0]
    found = collect_outputs(outputs, include_temp=True)
    assert found.files == [] and found.texts == []


def test_any_key_with_filename_entries_counts_and_duplicates_and_inputs_are_dropped() -> None:
    outputs = {
        "9": {
            "gifs": [
                {"filename": "v_00001.mp4", "subfolder": "", "type": "output", "format": "video/h264-mp4"}
            ]
        },
        "10": {
            "3d": [{"filename": "m.glb", "subfolder": "mesh", "type": "output"}],
            "images": [{"filename": "m.glb", "subfolder": "mesh", "type": "output"}],
        },
        "11": {"images": [{"filename": "in.png", "subfolder": "", "type": "input"}], "animated": [True]},
        "12": {"audio": [{"filename": "a.flac", "type": "output"}], "text": ["hi", 3]},
        "13": "not a dict",
    }
    found = collect_outputs(outputs, include_temp=False)
    assert found.files == [
        FileRef("9", "v_00001.mp4", "", "output"),
        FileRef("10", "m.glb", "mesh", "output"),
        FileRef("12", "a.flac", "", "output"),
    ]
    assert found.texts == [TextOutput("12", "hi")]


def test_malformed_outputs_are_ignored() -> None:
    assert collect_outputs(None, include_temp=True).files == []
    assert (
        collect_outputs({"1": {"images": [None, {"filename": ""}, {"filename": 5}]}}, include_temp=True).files
        == []
    )


def test_new_files_are_only_the_unreported_files_that_appeared() -> None:
    before = {"old.ply": (10, 1), "keep/a.png": (5, 1)}
    after = {
        "old.ply": (20, 2),
        "keep/a.png": (5, 1),
        "splat_1700000000.ply": (99, 3),
        "ComfyUI_00001_.png": (4, 3),
    }
    assert new_files(before, after, reported=["ComfyUI_00001_.png"]) == ["splat_1700000000.ply"]


def test_new_files_can_be_limited_to_the_execution_window() -> None:
    after = {"mine.ply": (1, 5_000_000), "before_start.ply": (1, 900_000), "after_end.ply": (1, 9_000_000)}
    assert new_files({}, after, reported=[], written_between=(1_000_000, 8_000_000)) == ["mine.ply"]


def test_execution_window_from_recorded_history() -> None:
    entry = next(
        e
        for e in recorded("01_save_image")["events"]
        if e["kind"] == "http" and e["request"]["path"].startswith("/history/")
    )
    history = next(iter(entry["response"]["json"].values()))
    window = execution_window(history)
    assert window is not None
    start, end = window
    assert 0 < end - start < 10_000_000_000  # a few ms of a real run, in ns
    assert execution_window({"status": {"messages": [["execution_start", {"timestamp": 5}]]}}) is None
    assert execution_window({}) is None


def test_files_written_in_a_window_are_found_by_prefix_without_looking_at_other_files(tmp_path: Path) -> None:
    out = tmp_path / "output"
    (out / "splats" / "scene_17_batch").mkdir(parents=True)
    (out / "elsewhere").mkdir()
    for path, mtime_s in {
        "splats/scene_17.ply": 10,  # ours: in the window
        "splats/scene_17_batch/001.ply": 11,  # ours: a folder named by the prefix, searched whole
        "splats/scene_old.ply": 1,  # the prefix's, but written before the window
        "splats/other_17.ply": 10,  # in the window, but another prefix
        "elsewhere/scene_17.ply": 10,
    }.items():
        (out / path).write_bytes(b"ply\n")
        os.utime(out / path, ns=(mtime_s * 10**9, mtime_s * 10**9))
    folders = ComfyFolders(tmp_path)
    window = (5 * 10**9, 20 * 10**9)
    assert sorted(folders.written_between(window, ["splats/scene"])) == [
        "splats/scene_17.ply",
        "splats/scene_17_batch/001.ply",
    ]
    assert sorted(folders.written_between(window, [])) == [
        "elsewhere/scene_17.ply",
        "splats/other_17.ply",
        "splats/scene_17.ply",
        "splats/scene_17_batch/001.ply",
    ]
    assert folders.written_between(window, ["missing/x"]) == {}


def test_output_prefixes_are_clean_relative_paths_of_the_silent_nodes_strings() -> None:
    workflow = {
        "9": {"class_type": "SharpPredict", "inputs": {"output_prefix": "splats/scene", "model": ["13", 0]}},
        "10": {"class_type": "X", "inputs": {"a": "/etc/passwd", "b": "../up", "c": "", "d": "./here\\x"}},
        "11": {"class_type": "SaveImage", "inputs": {"filename_prefix": "not_silent"}},
    }
    assert output_prefixes(workflow, ["9", "10"]) == ["here/x", "splats/scene"]
