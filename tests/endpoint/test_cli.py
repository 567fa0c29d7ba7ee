"""``comfy-worker`` as a user runs it: real processes, real endpoint, one clear line per mistake."""

from __future__ import annotations

import base64
import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path
from subprocess import PIPE

import pytest

from comfy_testserver import ComfyTestServer

from .. import workflows as wf
from ..conftest import png_bytes
from .conftest import KEY, REPO, Endpoint, wait_for


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}
    return subprocess.run(
        [sys.executable, "-m", "comfy_worker", *args],
        cwd=REPO,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def local(endpoint: Endpoint, key: str = KEY) -> dict[str, str]:
    return {"RUNPOD_ENDPOINT_BASE_URL": endpoint.base, "RUNPOD_ENDPOINT_ID": "local", "RUNPOD_API_KEY": key}


def test_run_saves_outputs_and_prints_a_summary(endpoint: Endpoint, tmp_path: Path) -> None:
    image = tmp_path / "input.png"
    image.write_bytes(png_bytes())
    workflow = tmp_path / "invert.json"
    workflow.write_text(
        json.dumps(
            {
                "1": {"class_type": "LoadImage", "inputs": {"image": "input.png"}},
                "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
                "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "cli"}},
                "4": {"class_type": "PreviewAny", "inputs": {"source": "done"}},
            }
        )
    )
    out = tmp_path / "outputs"
    done = cli("run", str(workflow), "--image", str(image), "--out", str(out), env=local(endpoint))
    assert done.returncode == 0, done.stderr
    saved = sorted(p.name for p in out.iterdir())
    assert saved == ["cli_00001_.png", "text_node4.txt"]
    assert (out / saved[0]).read_bytes().startswith(b"\x89PNG")
    assert (out / "text_node4.txt").read_text() == "done"
    assert "COMPLETED" in done.stdout and "saved" in done.stdout and "text from node 4: done" in done.stdout
    assert "submitted job" in done.stderr


def test_repo_simple_test_workflow_runs(endpoint: Endpoint, tmp_path: Path) -> None:
    done = cli(
        "run", str(REPO / "workflows" / "simple_test.json"), "--out", str(tmp_path), env=local(endpoint)
    )
    assert done.returncode == 0, done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["simple_test_00001_.png"]


def test_run_takes_a_request_body_keeps_subfolders_and_ends_the_bar_at_100(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    # What the app (or curl) sends: {"input": {"workflow": ..., "images": [...]}}.
    body = {
        "input": {
            "workflow": {
                "1": {"class_type": "LoadImage", "inputs": {"image": "in.png"}},
                "2": {
                    "class_type": "SaveImage",
                    "inputs": {"images": ["1", 0], "filename_prefix": "shots/day1/cli"},
                },
            },
            "images": [{"name": "in.png", "image": base64.b64encode(png_bytes()).decode()}],
        }
    }
    request = tmp_path / "request.json"
    request.write_text(json.dumps(body))
    out = tmp_path / "outputs"
    done = cli("run", str(request), "--out", str(out), env=local(endpoint))
    assert done.returncode == 0, done.stderr
    saved = out / "shots" / "day1" / "cli_00001_.png"
    assert saved.read_bytes().startswith(b"\x89PNG"), sorted(str(p) for p in out.rglob("*"))
    assert "100.0%" in done.stderr.strip().splitlines()[-1]


def test_run_says_why_a_job_cancelled_elsewhere_ended(
    endpoint: Endpoint, comfy: ComfyTestServer, tmp_path: Path
) -> None:
    comfy.behaviour.step_delay_s = 0.2
    workflow = tmp_path / "slow.json"
    workflow.write_text(json.dumps(wf.sampler(steps=200, seed=77)))
    process = subprocess.Popen(
        [sys.executable, "-m", "comfy_worker", "run", str(workflow), "--out", str(tmp_path / "o")],
        cwd=REPO,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}, **local(endpoint)},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    first = process.stderr.readline()  # "submitted job <id> to <url>"
    job_id = first.split()[2]
    client = endpoint.client()
    wait_for(lambda: client.status(job_id).status == "IN_PROGRESS", 30, "the job to start")
    client.cancel(job_id)  # from elsewhere: another terminal, the app, the console
    _, rest = process.communicate(timeout=60)
    assert process.returncode == 1
    assert f"job {job_id} CANCELLED" in rest and "cancelled before it finished" in rest
    assert "no error text" not in rest


def test_a_failed_job_prints_the_worker_error(endpoint: Endpoint, tmp_path: Path) -> None:
    workflow = tmp_path / "bad.json"
    workflow.write_text(
        json.dumps(
            {
                "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x.ckpt"}},
                "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}},
            }
        )
    )
    done = cli("run", str(workflow), "--out", str(tmp_path / "o"), env=local(endpoint))
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "FAILED" in last and "WORKFLOW_INVALID: ComfyUI rejected the workflow" in last


def test_status_health_and_cancel(endpoint: Endpoint) -> None:
    job_id = endpoint.client().run(
        {"workflow": {"1": {"class_type": "PreviewAny", "inputs": {"source": "x"}}}}
    )
    endpoint.client().wait(job_id, timeout_s=30)
    status = cli("status", job_id, env=local(endpoint))
    assert status.returncode == 0 and json.loads(status.stdout)["status"] == "COMPLETED"
    health = cli("health", env=local(endpoint))
    assert json.loads(health.stdout)["workers"]["ready"] == 2
    cancel = cli("cancel", job_id, env=local(endpoint))
    assert cancel.returncode == 0 and cancel.stdout.strip() == f"job {job_id} COMPLETED"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "missing.json"], "comfy-worker: workflow file 'missing.json' not found"),
        (["run", "{workflow}", "--image", "nope.png"], "comfy-worker: input file 'nope.png' not found"),
        (["run", "{ui}"], "input.workflow is a UI-format export (it has 'nodes' and 'links')"),
        (["run", "{broken}"], "is not valid JSON"),
    ],
)
def test_local_mistakes_are_one_line_before_anything_is_sent(
    tmp_path: Path, args: list[str], message: str
) -> None:
    files = {"workflow": tmp_path / "w.json", "ui": tmp_path / "ui.json", "broken": tmp_path / "b.json"}
    files["workflow"].write_text(json.dumps({"1": {"class_type": "PreviewAny", "inputs": {"source": "x"}}}))
    files["ui"].write_text(json.dumps({"last_node_id": 3, "nodes": [], "links": []}))
    files["broken"].write_text("{oops")
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    done = cli(*argv, env={"RUNPOD_ENDPOINT_ID": "x", "RUNPOD_ENDPOINT_BASE_URL": "http://127.0.0.1:9/v2"})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert "Traceback" not in done.stderr


def test_bad_flags_exit_2() -> None:
    done = cli("run")
    assert done.returncode == 2 and "the following arguments are required: workflow" in done.stderr
    done = cli("serve", "--workers", "0")
    assert done.returncode == 2 and "must be at least 1" in done.stderr


def test_wrong_key_and_wrong_endpoint(endpoint: Endpoint, tmp_path: Path) -> None:
    workflow = tmp_path / "w.json"
    workflow.write_text(json.dumps({"1": {"class_type": "PreviewAny", "inputs": {"source": "x"}}}))
    wrong_key = cli("run", str(workflow), env=local(endpoint, key="nope"))
    assert wrong_key.returncode == 1
    assert (
        wrong_key.stderr.strip()
        == "comfy-worker: the API key was refused (HTTP 401): check RUNPOD_API_KEY or --api-key"
    )
    wrong_id = cli("health", env={**local(endpoint), "RUNPOD_ENDPOINT_ID": "other"})
    assert wrong_id.returncode == 1 and "not found (HTTP 404) at endpoint 'other'" in wrong_id.stderr


def test_no_endpoint_id_and_no_endpoint_answering() -> None:
    # Runs once, not once per test-server profile: the CLI stops before any endpoint or ComfyUI.
    no_id = cli("health", env={"RUNPOD_ENDPOINT_BASE_URL": "http://127.0.0.1:9/v2"})
    assert no_id.returncode == 1
    assert no_id.stderr.strip() == "comfy-worker: no endpoint id: pass --endpoint or set RUNPOD_ENDPOINT_ID"
    env = {"RUNPOD_ENDPOINT_BASE_URL": "http://127.0.0.1:9/v2", "RUNPOD_ENDPOINT_ID": "local"}
    down = cli("health", env={**env, "RUNPOD_API_KEY": KEY})
    assert (
        down.returncode == 1 and "cannot reach http://127.0.0.1:9/v2: is the endpoint running?" in down.stderr
    )


def test_run_converts_a_splat_and_prints_the_notes(endpoint: Endpoint, tmp_path: Path) -> None:
    from .. import workflows as wf

    workflow = tmp_path / "splat.json"
    workflow.write_text(json.dumps(wf.splat("room", viewer=True)))
    out = tmp_path / "outputs"
    done = cli(
        "run", str(workflow), "--out", str(out), "--convert", "spz", "--keep-original", env=local(endpoint)
    )
    assert done.returncode == 0, done.stderr
    saved = sorted(p.suffix for p in out.iterdir())
    assert saved == [".ply", ".spz"]
    assert "note: node 4 (GaussianViewer) left out" in done.stdout and "converted to room_" in done.stdout
    wrong = cli("run", str(workflow), "--keep-original", env=local(endpoint))
    assert wrong.returncode == 2 and "--keep-original only makes sense with --convert" in wrong.stderr


def test_serve_where_the_endpoint_is_left_out_says_so(tmp_path: Path) -> None:
    # The worker image ships handler/ and comfy_worker/ without endpoint/ (.dockerignore); copy them so.
    import shutil

    shutil.copytree(
        REPO / "comfy_worker",
        tmp_path / "comfy_worker",
        ignore=shutil.ignore_patterns("endpoint", "__pycache__"),
    )
    shutil.copytree(REPO / "handler", tmp_path / "handler", ignore=shutil.ignore_patterns("__pycache__"))
    # As in the image: no editable install that would find the checkout's endpoint/ instead.
    code = (
        "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'Editable' not in repr(f)]; "
        "from comfy_worker.cli import main; sys.exit(main(['serve', '--port', '0']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().startswith(
        "comfy-worker: the local endpoint (comfy-worker serve) is not installed"
    )
    assert "Traceback" not in result.stderr


def test_the_app_servers_name_for_the_base_url_works_too(endpoint: Endpoint) -> None:
    env = {"RUNPOD_BASE_URL": endpoint.base, "RUNPOD_ENDPOINT_ID": "local", "RUNPOD_API_KEY": KEY}
    done = cli("health", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["workers"]["ready"] == 2


def test_the_bar_keeps_moving_while_a_node_runs_without_updates(
    endpoint: Endpoint, comfy: ComfyTestServer, tmp_path: Path
) -> None:
    # Two sampler steps of 3 s each: ComfyUI has nothing new to say for seconds at a time.
    comfy.behaviour.step_delay_s = 3.0
    workflow = tmp_path / "slow.json"
    workflow.write_text(json.dumps(wf.sampler(steps=2, seed=5)))
    primary, secondary = pty.openpty()  # a terminal, where the bar redraws in place
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}, **local(endpoint)}
    process = subprocess.Popen(
        [sys.executable, "-m", "comfy_worker", "run", str(workflow), "--out", str(tmp_path / "o")],
        cwd=REPO,
        env={**env, "COLUMNS": "160"},
        stdout=subprocess.DEVNULL,
        stderr=secondary,
    )
    os.close(secondary)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the CLI closed the terminal: it has exited
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        reader.join(5)
        os.close(primary)
    seen = b"".join(chunks)
    assert code == 0, seen.decode(errors="replace")
    frames = [f.strip() for f in seen.decode(errors="replace").replace("\n", "\r").split("\r") if f.strip()]
    # Frames drawn while one step runs: a turning spinner, and a percentage that moves with time
    # (the worker sends one about every second while ComfyUI is silent, issue 15).
    quiet = [f for f in frames if "since the last update" in f and "step 1/2" in f]
    assert len(quiet) >= 3, frames
    assert len({f.split()[3] for f in quiet}) >= 2, quiet  # the spinner after "42.0%  7s"
    percents = [float(f.split("]")[1].split("%")[0]) for f in quiet]
    assert len(set(percents)) >= 2 and percents == sorted(percents), quiet  # moving, never back
    assert any("100.0%" in f and "done" in f for f in frames), frames[-3:]


def test_run_shows_a_job_held_behind_another_in_its_worker_as_in_progress_and_waiting(
    comfy: ComfyTestServer, tmp_path: Path
) -> None:
    # One worker holding two jobs at once (the default depth; the shared endpoint runs depth 1).
    server = Endpoint(comfy, tmp_path / "serve.log", workers=1, env={"COMFY_PIPELINE_DEPTH": "2"})
    try:
        comfy.behaviour.step_delay_s = 0.15
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}, **local(server)}
        runs = []
        # The short job runs 3.6 s: longer than the CLI's longest poll gap (3 s) while nothing changes.
        for name, steps in (("long", 30), ("short", 24)):
            workflow = tmp_path / f"{name}.json"
            workflow.write_text(json.dumps(wf.sampler(steps=steps, prefix=name)))
            command = [
                sys.executable,
                "-m",
                "comfy_worker",
                "run",
                str(workflow),
                "--out",
                str(tmp_path / name),
            ]
            runs.append(subprocess.Popen(command, cwd=REPO, env=env, text=True, stdout=PIPE, stderr=PIPE))
            if name == "long":
                wait_for(lambda: comfy.queue_state()[0], 30, "the long job to run in ComfyUI")
        (long_out, long_err), (short_out, short_err) = (run.communicate(timeout=90) for run in runs)
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
        server.close()
    assert [run.returncode for run in runs] == [0, 0], (long_err, short_err)
    assert "COMPLETED" in long_out and "COMPLETED" in short_out
    lines = short_err.splitlines()  # not a terminal: one line per change
    waiting = [
        i
        for i, line in enumerate(lines)
        if "IN_PROGRESS, waiting: queued behind another job in this worker" in line
    ]
    running = [i for i, line in enumerate(lines) if "running" in line]
    assert waiting and running and waiting[-1] < running[0], lines
    assert " 0.0% " in lines[waiting[0]]
    assert "waiting" not in long_err
