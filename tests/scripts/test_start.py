"""scripts/start.sh, run for real with stub ComfyUI, handler and JupyterLab (testkit/stubs.py)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from handler.comfy.process import process_exists
from testkit.stubs import SCRIPTS, StubBox


def test_serverless_waits_for_comfyui_then_execs_the_handler(box: StubBox) -> None:
    # COMFY_RESTART_MAX=0: no supervision, start.sh becomes the handler (exec).
    result = box.run("serverless", env=box.env(STUB_COMFY_DELAY_S="0.3", COMFY_RESTART_MAX="0"))

    assert result.returncode == 0, result.stderr
    comfy_pid = box.read("comfy_pid")
    handler = box.handler()
    assert handler["env"]["COMFY_HOST"] == f"127.0.0.1:{box.port}"
    assert handler["env"]["WORKER_MODE"] == "serverless"
    pid_file = handler["env"]["COMFY_PID_FILE"]
    assert pid_file == box.env()["COMFY_PID_FILE"]
    assert Path(pid_file).read_text().strip() == comfy_pid.strip()  # the PID file names ComfyUI
    assert process_exists(int(comfy_pid))  # ComfyUI keeps running beside the handler
    assert handler["argv"] == []  # no local API unless asked
    assert "ComfyUI is ready" in result.stdout
    # The handler started after ComfyUI answered, not before.
    assert float(box.read("handler_exec_time")) >= float(box.read("comfy_ready_time"))


def test_serverless_listens_on_loopback_only_and_installs_nothing(box: StubBox) -> None:
    result = box.run("serverless", env=box.env(COMFY_ARGS="--use-sage-attention --fast"))

    assert result.returncode == 0, result.stderr
    log = (box.root / "log" / "comfyui.log").read_text()
    assert "To see the GUI" in log  # ComfyUI's output is kept for the failure tail
    assert box.read("comfy_argv").split() == [
        "--listen",
        "127.0.0.1",
        "--port",
        str(box.port),
        "--use-sage-attention",
        "--fast",
    ]
    # No git clone, no pip install, no provisioning at boot: nothing was called at all.
    assert box.calls() == []


def test_the_mode_comes_from_worker_mode_when_no_argument_is_given(box: StubBox) -> None:
    result = box.run(env=box.env(WORKER_MODE="serverless"))

    assert result.returncode == 0, result.stderr
    assert box.handler()["env"]["WORKER_MODE"] == "serverless"


def test_serve_api_locally_passes_rp_serve_api(box: StubBox) -> None:
    result = box.run("serverless", env=box.env(SERVE_API_LOCALLY="true", RP_API_PORT="8123"))

    assert result.returncode == 0, result.stderr
    assert box.handler()["argv"] == ["--rp_serve_api", "--rp_api_host", "0.0.0.0", "--rp_api_port", "8123"]


def test_comfyui_dying_at_start_fails_fast_with_its_log(box: StubBox) -> None:
    started = time.monotonic()
    result = box.run("serverless", env=box.env(STUB_COMFY_MODE="exit", STUB_COMFY_DELAY_S="0.1"))
    elapsed = time.monotonic() - started

    assert result.returncode == 1
    assert elapsed < 5  # not the 20 s readiness timeout
    assert "ComfyUI exited with status 3 before it was ready" in result.stderr
    assert "| RuntimeError: CUDA error: out of memory (stub)" in result.stderr  # the log tail
    assert box.handler() is None


def test_readiness_timeout_fails_with_the_log_and_stops_comfyui(box: StubBox) -> None:
    started = time.monotonic()
    result = box.run("serverless", env=box.env(STUB_COMFY_MODE="hang", COMFY_READY_TIMEOUT_S="0.6"))
    elapsed = time.monotonic() - started

    assert result.returncode == 2
    assert 0.6 <= elapsed < 5
    assert "did not answer on port" in result.stderr
    assert "COMFY_READY_TIMEOUT_S=0.6" in result.stderr
    assert "| Total VRAM 24000 MB (stub ComfyUI)" in result.stderr
    assert box.wait_for("comfy_signals").strip() == "SIGTERM"
    assert box.handler() is None


def test_sigterm_while_waiting_is_forwarded_to_comfyui(box: StubBox) -> None:
    proc = box.start("serverless", env=box.env(STUB_COMFY_MODE="hang"))
    box.wait_for("comfy_pid")
    time.sleep(0.2)  # let start.sh enter its wait loop

    os.kill(proc.pid, signal.SIGTERM)
    result = box.finish(proc, timeout=10)

    assert result.returncode == 143
    assert box.wait_for("comfy_signals").strip() == "SIGTERM"
    assert "received SIGTERM" in result.stdout
    assert not os.path.exists(box.env()["COMFY_PID_FILE"])
    assert box.handler() is None


def test_compute_keeps_comfyui_in_front_with_jupyterlab_beside_it(box: StubBox) -> None:
    env = box.env(JUPYTER_TOKEN="s3cret-token", STUB_COMFY_LIFETIME_S="1.0", STUB_COMFY_EXIT_CODE="0")
    started = time.monotonic()
    result = box.run("compute", env=env)

    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 1.0  # start.sh stayed until ComfyUI exited
    calls = box.calls()
    jupyter = [c for c in calls if c.startswith("jupyter ")]
    assert jupyter and "--port=8189" in jupyter[0] and jupyter[0].endswith("token=set")
    assert "s3cret-token" not in jupyter[0]  # the token never appears on a command line
    assert box.wait_for("jupyter_signals").strip() == "TERM"  # stopped with ComfyUI
    assert box.handler() is None  # compute runs no handler unless SERVE_API_LOCALLY
    assert box.read("comfy_argv").split()[:2] == ["--listen", "0.0.0.0"]


def test_compute_without_a_token_never_starts_jupyterlab_open(box: StubBox) -> None:
    env = box.env(STUB_COMFY_LIFETIME_S="0.5")
    result = box.run("compute", env=env)

    assert result.returncode == 0, result.stderr
    assert not [c for c in box.calls() if c.startswith("jupyter ")]
    assert "JupyterLab not started: JUPYTER_TOKEN is not set" in result.stderr


@pytest.mark.parametrize("off", ["false", "0", "no", "OFF"])
def test_jupyter_enabled_off_in_any_spelling_keeps_jupyterlab_off(box: StubBox, off: str) -> None:
    # JupyterLab is a shell on the pod: "0" once left it running because only "false" was understood.
    env = box.env(STUB_COMFY_LIFETIME_S="0.3", JUPYTER_ENABLED=off, JUPYTER_TOKEN="t" * 32)
    result = box.run("compute", env=env)

    assert result.returncode == 0, result.stderr
    assert not [c for c in box.calls() if c.startswith("jupyter ")]
    assert "starting JupyterLab" not in result.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="RUN_AS_ROOT only matters when started as root")
@pytest.mark.parametrize("on", ["true", "1", "yes"])
def test_run_as_root_in_any_spelling_keeps_root(box: StubBox, on: str) -> None:
    # "1" once dropped to WORKER_USER anyway, because only the literal "true" was understood.
    result = box.run("serverless", env=box.env(RUN_AS_ROOT=on, WORKER_USER="nobody"))

    assert result.returncode == 0, result.stderr
    assert "dropping root" not in result.stdout
    assert box.handler()["uid"] == 0


def test_compute_runs_runtime_init_once(box: StubBox) -> None:
    env = box.env(STUB_COMFY_LIFETIME_S="0.3", JUPYTER_ENABLED="false")
    first = box.run("compute", env=env)
    installs_first = [c for c in box.calls() if c.startswith("provision install")]
    second = box.run("compute", env=env)
    installs_second = [c for c in box.calls() if c.startswith("provision install")]

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert installs_first  # the first boot installs what the image lacks
    assert installs_second == installs_first  # the second finds the marker
    assert "nothing to do" in second.stdout


def test_compute_with_serve_api_locally_runs_the_handler_beside_comfyui(box: StubBox) -> None:
    env = box.env(
        SERVE_API_LOCALLY="true",
        STUB_COMFY_LIFETIME_S="1.5",
        STUB_HANDLER_LINGER="1",
        JUPYTER_ENABLED="false",
    )
    result = box.run("compute", env=env)

    assert result.returncode == 0, result.stderr
    assert box.handler()["argv"][0] == "--rp_serve_api"
    assert box.wait_for("handler_signals").strip() == "SIGTERM"  # stopped when ComfyUI exited


def test_sigterm_in_compute_mode_stops_comfyui_and_jupyterlab(box: StubBox) -> None:
    proc = box.start("compute", env=box.env(JUPYTER_TOKEN="t" * 32))
    box.wait_for("comfy_ready_time")
    box.wait_for("calls")
    time.sleep(0.2)

    os.kill(proc.pid, signal.SIGTERM)
    result = box.finish(proc, timeout=10)

    assert result.returncode == 143
    assert box.wait_for("comfy_signals").strip() == "SIGTERM"
    assert box.wait_for("jupyter_signals").strip() == "TERM"


def test_a_crashed_comfyui_on_a_pod_keeps_jupyterlab_up_to_fix_it(box: StubBox) -> None:
    env = box.env(JUPYTER_TOKEN="t" * 32, STUB_COMFY_LIFETIME_S="0.5", STUB_COMFY_EXIT_CODE="3")
    proc = box.start("compute", env=env)
    box.wait_for("comfy_ready_time")
    time.sleep(1.5)  # ComfyUI is gone by now
    assert proc.poll() is None  # the pod stays up...
    assert box.read("jupyter_signals") == ""  # ...with JupyterLab still running

    os.kill(proc.pid, signal.SIGTERM)
    result = box.finish(proc, timeout=10)
    assert result.returncode == 143
    assert "JupyterLab stays up on port 8189 so you can fix it" in result.stderr
    assert box.wait_for("jupyter_signals").strip() == "TERM"


def test_a_failed_model_download_stops_the_serverless_boot(box: StubBox) -> None:
    env = box.env(DOWNLOAD_GAUSSIAN="true", STUB_PROVISION_EXIT="1")
    result = box.run("serverless", env=env)

    assert result.returncode == 1
    assert "refusing to serve jobs without their models" in result.stderr
    # Failed models alone do not fail a --keep-going run (docs/models.md); an exit 1 means
    # DOWNLOAD_STRICT=true or a status file that could not be written.
    assert box.calls() == ["provision download --keep-going"]
    assert box.handler() is None


def test_models_download_while_comfyui_boots(box: StubBox) -> None:
    result = box.run("serverless", env=box.env(DOWNLOAD_ALL="true"))

    assert result.returncode == 0, result.stderr
    assert box.calls() == ["provision download --keep-going"]
    assert box.handler() is not None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("COMFY_READY_TIMEOUT_S", "soon", "COMFY_READY_TIMEOUT_S=soon is not a number of seconds"),
        ("COMFY_PORT", "http", "COMFY_PORT=http is not a port number"),
        ("SERVE_API_LOCALLY", "maybe", "SERVE_API_LOCALLY=maybe is not a boolean"),
        ("JUPYTER_ENABLED", "nope", "JUPYTER_ENABLED=nope is not a boolean"),
        ("RUN_AS_ROOT", "sure", "RUN_AS_ROOT=sure is not a boolean"),
        ("COMFY_READY_POLL_MS", "0", "COMFY_READY_POLL_MS=0 is not a whole number"),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(
    box: StubBox, name: str, value: str, message: str
) -> None:
    result = box.run("serverless", env=box.env(**{name: value}))

    assert result.returncode == 1
    assert message in result.stderr
    assert not box.read("comfy_pid")  # refused before starting anything


def test_missing_comfyui_is_explained(box: StubBox) -> None:
    (box.comfyui / "main.py").unlink()
    result = box.run("serverless", env=box.env())

    assert result.returncode == 1
    assert "ComfyUI is not installed at COMFYUI_PATH=" in result.stderr


def test_healthcheck_reflects_comfyui(box: StubBox) -> None:
    assert box.run("healthcheck", env=box.env()).returncode == 1  # nothing listening yet
    proc = box.start("compute", env=box.env(JUPYTER_ENABLED="false"))
    box.wait_for("comfy_ready_time")

    assert box.run("healthcheck", env=box.env()).returncode == 0
    proc.terminate()


def test_any_other_command_runs_as_given(box: StubBox) -> None:
    result = box.run("echo", "hello from the image", env=box.env())

    assert result.returncode == 0
    assert result.stdout == "hello from the image\n"


def _source(function_call: str) -> subprocess.CompletedProcess[str]:
    script = f'source "{SCRIPTS / "start.sh"}"; {function_call}'
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=10, check=False)


def test_functions_can_be_sourced_one_at_a_time() -> None:
    assert _source('_seconds_to_us 1.5; echo "$REPLY"').stdout == "1500000\n"
    assert _source('_seconds_to_us 300; echo "$REPLY"').stdout == "300000000\n"
    assert _source('_seconds_to_us 0.000001; echo "$REPLY"').stdout == "1\n"
    # Sourcing runs nothing: no ComfyUI, no handler.
    assert _source("true").stdout == ""


def test_http_ready_is_false_on_a_closed_port() -> None:
    from testkit.stubs import free_port

    assert _source(f"comfy_http_ready 127.0.0.1 {free_port()}").returncode == 1


def test_file_env_reads_secrets_and_refuses_both(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("from-a-file\n")
    read = _source(f'JUPYTER_TOKEN_FILE="{secret}"; start_file_env JUPYTER_TOKEN; echo "$JUPYTER_TOKEN"')
    both = _source(f'JUPYTER_TOKEN=x JUPYTER_TOKEN_FILE="{secret}" start_file_env JUPYTER_TOKEN')

    assert read.stdout == "from-a-file\n"
    assert both.returncode == 1 and "both JUPYTER_TOKEN and JUPYTER_TOKEN_FILE are set" in both.stderr


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None or not Path("/usr/bin/python3").exists(),
    reason="needs root, setpriv and a system python3 the unprivileged user can run",
)
def test_started_as_root_it_hands_the_volume_over_and_runs_as_the_worker_user() -> None:
    # Not tmp_path: pytest's base folder is private to root, and the worker user must reach the stubs.
    root = Path(tempfile.mkdtemp(prefix="start-root-", dir="/tmp"))
    root.chmod(0o755)
    box = StubBox(root, python="/usr/bin/python3")
    try:
        nobody = pwd.getpwnam("nobody")
        for folder in (box.record, root / "log", root / "run"):
            folder.mkdir(exist_ok=True)
            os.chown(folder, nobody.pw_uid, nobody.pw_gid)
        volume = root / "runpod-volume"
        (volume / "models" / "loras").mkdir(parents=True)  # root-owned, as RunPod mounts it
        (volume / "models" / "loras" / "mine.safetensors").write_bytes(b"x")
        env = box.env(RUN_AS_ROOT="false", WORKER_USER="nobody", MODEL_VOLUMES=str(volume))
        # The scripts run from a copy in the root: the checkout may sit under a folder the worker
        # user cannot enter (a clone in /root or in a private temporary folder).
        scripts = root / "scripts"
        shutil.copytree(SCRIPTS, scripts)

        result = box.run("serverless", env=env, script=str(scripts / "start.sh"))

        assert result.returncode == 0, result.stderr
        assert "dropping root: running as nobody" in result.stdout
        assert box.handler()["uid"] == nobody.pw_uid  # the handler (and ComfyUI) run unprivileged
        assert (volume / "models").stat().st_uid == nobody.pw_uid
        assert (volume / "models" / "loras").stat().st_uid == nobody.pw_uid
        assert (volume / "models" / "loras" / "mine.safetensors").stat().st_uid == 0  # files untouched
    finally:
        box.close()
        shutil.rmtree(root, ignore_errors=True)


def test_a_failed_runtime_init_is_reported_but_the_pod_still_starts(box: StubBox) -> None:
    env = box.env(STUB_PROVISION_EXIT="1", STUB_COMFY_LIFETIME_S="0.3", JUPYTER_ENABLED="false")
    result = box.run("compute", env=env)

    assert result.returncode == 0, result.stderr
    assert "runtime-init.sh failed (see above); starting ComfyUI with what is installed" in result.stderr
    assert box.read("comfy_ready_time")
