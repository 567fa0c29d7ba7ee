"""WARMUP_WORKFLOW: one run at boot so the first job pays no model loading; a failing warm-up stops the boot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from comfy_testserver import Behaviour, ComfyTestServer
from handler.errors import WarmupFailed
from handler.warmup import load_warmup_input, run_warmup
from handler.worker import Worker

from . import workflows as wf
from .conftest import make_settings
from .test_runpod_e2e import Process, http_json, wait_for_http, worker_env

LOAD_S = 1.0  # what the test server makes the first use of a model file cost


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


async def test_after_a_warmup_the_first_job_pays_no_model_load(
    comfy: ComfyTestServer, tmp_path: Path
) -> None:
    comfy.behaviour.model_load_delay_s = LOAD_S
    warmup = _write(tmp_path / "warmup.json", {"input": {"workflow": wf.sampler(seed=1, prefix="warm")}})
    settings = make_settings(comfy, WARMUP_WORKFLOW=str(warmup))

    warm_s = await run_warmup(settings, settings.warmup_workflow)  # type: ignore[arg-type]
    first = await Worker(settings).handle({"id": "job-1", "input": {"workflow": wf.sampler(seed=7)}})

    assert warm_s >= LOAD_S  # the warm-up paid the load...
    assert "error" not in first, first
    assert first["timings"]["execution_ms"] < LOAD_S * 1000 / 2  # ...so the first job did not
    assert not [p for p in _files(comfy.root / "output") if p.name.startswith("warm")]  # cleaned up


async def test_without_a_warmup_the_first_job_pays_it(tmp_path: Path, comfy_profile: str) -> None:
    # The baseline: the same first job on a cold server.
    behaviour = Behaviour(model_load_delay_s=LOAD_S)
    with ComfyTestServer(root=tmp_path / "cold", behaviour=behaviour, profile=comfy_profile) as cold:
        (cold.root / "models" / "checkpoints" / "tiny.safetensors").write_bytes(b"\0")
        first = await Worker(make_settings(cold)).handle(
            {"id": "job-1", "input": {"workflow": wf.sampler(seed=7)}}
        )
        second = await Worker(make_settings(cold)).handle(
            {"id": "job-2", "input": {"workflow": wf.sampler(seed=8)}}
        )

    assert first["timings"]["execution_ms"] >= LOAD_S * 1000
    assert second["timings"]["execution_ms"] < LOAD_S * 1000 / 2


async def test_a_warmup_that_fails_in_comfyui_names_the_error(comfy: ComfyTestServer, tmp_path: Path) -> None:
    warmup = _write(tmp_path / "warmup.json", wf.sampler(ckpt="missing.safetensors"))  # a bare workflow
    settings = make_settings(comfy)

    with pytest.raises(WarmupFailed) as caught:
        await run_warmup(settings, warmup)

    assert caught.value.code == "WARMUP_FAILED"
    assert f"WARMUP_WORKFLOW={warmup} failed: WORKFLOW_INVALID" in caught.value.message
    assert "missing.safetensors" in caught.value.message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file; put it in the image or on the network volume"),
        ("{oops", "is not valid JSON"),
        ({"nodes": [], "links": []}, "this is ComfyUI's UI format; save it with 'Export (API)'"),
        ([1, 2], 'expected an API-format workflow, {"workflow": ...}'),
    ],
)
def test_a_bad_warmup_file_says_what_is_wrong(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "warmup.json"
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        _write(path, content)

    with pytest.raises(WarmupFailed) as caught:
        load_warmup_input(path)

    assert message in caught.value.message and "unset WARMUP_WORKFLOW" in caught.value.message


def test_the_three_file_shapes_give_the_same_job_input(tmp_path: Path) -> None:
    workflow = wf.save_image("x")
    shapes = [{"input": {"workflow": workflow}}, {"workflow": workflow}, workflow]
    assert [load_warmup_input(_write(tmp_path / f"{i}.json", s)) for i, s in enumerate(shapes)] == [
        {"workflow": workflow}
    ] * 3


def test_the_worker_process_warms_up_before_serving_and_a_failure_stops_it(
    comfy: ComfyTestServer, tmp_path: Path, unused_tcp_port: int
) -> None:
    comfy.behaviour.model_load_delay_s = LOAD_S
    bad = _write(tmp_path / "bad.json", wf.sampler(ckpt="missing.safetensors"))
    failed = Process(
        [sys.executable, "-m", "handler", "--rp_serve_api", "--rp_api_port", str(unused_tcp_port)],
        worker_env(comfy, WARMUP_WORKFLOW=str(bad)),
        tmp_path / "bad.log",
    )
    try:
        assert failed.proc.wait(60) == 1
    finally:
        failed.stop()
    assert f"the warm-up workflow WARMUP_WORKFLOW={bad} failed: WORKFLOW_INVALID" in failed.output()

    good = _write(tmp_path / "good.json", {"workflow": wf.sampler(seed=1)})
    worker = Process(
        [sys.executable, "-m", "handler", "--rp_serve_api", "--rp_api_port", str(unused_tcp_port)],
        worker_env(comfy, WARMUP_WORKFLOW=str(good)),
        tmp_path / "good.log",
    )
    base = f"http://127.0.0.1:{unused_tcp_port}"
    try:
        wait_for_http(f"{base}/docs", worker)
        reply = http_json("POST", f"{base}/runsync", {"input": {"workflow": wf.sampler(seed=9)}})
    finally:
        worker.stop()
    assert "warm-up: done in" in worker.output()
    assert reply["status"] == "COMPLETED", reply
    assert reply["output"]["timings"]["execution_ms"] < LOAD_S * 1000 / 2
