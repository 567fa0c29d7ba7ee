"""Stub programs for running the container scripts for real, without ComfyUI, a GPU or Docker.

`StubBox` builds a temporary root with a `bin/` that goes first on PATH:

- ``python``: a bash stub that dispatches like the real commands start.sh and runtime-init.sh run:
  ``python <COMFYUI_PATH>/main.py ...`` starts a stub ComfyUI (a real HTTP server on loopback),
  ``python -m handler`` records the moment it was exec'd and starts a stub handler,
  ``python -m provision ...`` and ``python -c ...`` are recorded in ``calls``.
- ``jupyter``, ``git``, ``pip``: record their arguments (and, for jupyter, whether a token was set).

Everything a stub sees lands in ``record/`` for the test to read.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"

STUB_COMFYUI = r"""
import http.server, json, os, signal, sys, threading, time
record = os.environ["STUB_RECORD"]
args = sys.argv[1:]
port = int(args[args.index("--port") + 1])
mode = os.environ.get("STUB_COMFY_MODE", "ready")
# STUB_COMFY_FAIL_RESTARTS=1: only the first start comes up; every later one dies while starting.
if os.environ.get("STUB_COMFY_FAIL_RESTARTS") == "1" and os.path.exists(os.path.join(record, "comfy_pid")):
    mode = "exit"
delay = float(os.environ.get("STUB_COMFY_DELAY_S", "0.2"))

def note(name, text):
    with open(os.path.join(record, name), "a") as handle:
        handle.write(text + "\n")

def on_signal(signum, frame):
    note("comfy_signals", signal.Signals(signum).name)
    os._exit(0)

signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)
note("comfy_pid", str(os.getpid()))
note("comfy_argv", " ".join(args))
print("Total VRAM 24000 MB (stub ComfyUI)", flush=True)
if mode == "exit":
    print("Traceback (most recent call last):", flush=True)
    print("RuntimeError: CUDA error: out of memory (stub)", flush=True)
    time.sleep(delay)
    sys.exit(int(os.environ.get("STUB_COMFY_EXIT_CODE", "3")))
if mode == "hang":
    while True:
        time.sleep(1)
time.sleep(delay)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"system": {"comfyui_version": "stub"}}).encode()
        self.send_response(200 if self.path == "/system_stats" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

server = http.server.HTTPServer(("127.0.0.1", port), Handler)
note("comfy_ready_time", repr(time.time()))
print(f"To see the GUI go to: http://127.0.0.1:{port}", flush=True)
lifetime = os.environ.get("STUB_COMFY_LIFETIME_S")
if lifetime and os.environ.get("STUB_COMFY_CRASH_ONCE") == "1":
    marker = os.path.join(record, "comfy_crashed_once")
    if os.path.exists(marker):
        lifetime = None
    else:
        open(marker, "w").close()
if lifetime:
    code = int(os.environ.get("STUB_COMFY_EXIT_CODE", "0"))
    threading.Timer(float(lifetime), lambda: os._exit(code)).start()
server.serve_forever()
"""

STUB_HANDLER = r"""
import json, os, signal, sys, time
record = os.environ["STUB_RECORD"]
keys = ("COMFY_HOST", "COMFY_PID_FILE", "COMFY_READY_TIMEOUT_S", "COMFY_SUPERVISED", "WORKER_MODE")
with open(os.path.join(record, "handler.json"), "w") as handle:
    json.dump({"argv": sys.argv[1:], "env": {k: os.environ.get(k) for k in keys}, "pid": os.getpid(),
               "uid": os.getuid()}, handle)

def on_signal(signum, frame):
    with open(os.path.join(record, "handler_signals"), "a") as handle:
        handle.write(signal.Signals(signum).name + "\n")
    sys.exit(0)

signal.signal(signal.SIGTERM, on_signal)
if os.environ.get("STUB_HANDLER_LINGER") == "1":
    while True:
        time.sleep(0.1)
time.sleep(float(os.environ.get("STUB_HANDLER_LIFETIME_S", "0")))
sys.exit(int(os.environ.get("STUB_HANDLER_EXIT", "0")))
"""

STUB_PYTHON = r"""#!/usr/bin/env bash
record="$STUB_RECORD"
case "${1:-}" in
	*/main.py) exec "@REAL@" "@STUBS@/stub_comfyui.py" "${@:2}" ;;
	-m)
		case "${2:-}" in
			handler)
				printf '%s\n' "$EPOCHREALTIME" >"$record/handler_exec_time"
				exec "@REAL@" "@STUBS@/stub_handler.py" "${@:3}"
				;;
			provision)
				printf 'provision %s\n' "${*:3}" >>"$record/calls"
				exit "${STUB_PROVISION_EXIT:-0}"
				;;
		esac
		;;
	-c)
		printf 'python -c %s\n' "$2" >>"$record/calls"
		exit "${STUB_TORCH_EXIT:-0}"
		;;
esac
printf 'python %s\n' "$*" >>"$record/calls"
"""

STUB_JUPYTER = r"""#!/usr/bin/env bash
printf 'jupyter %s token=%s\n' "$*" "${JUPYTER_TOKEN:+set}" >>"$STUB_RECORD/calls"
trap 'printf "TERM\n" >>"$STUB_RECORD/jupyter_signals"; exit 0' TERM
while :; do sleep 0.1; done
"""

STUB_RECORDER = r"""#!/usr/bin/env bash
printf '%s %s\n' "$(basename "$0")" "$*" >>"$STUB_RECORD/calls"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StubBox:
    """A temporary root with stub programs first on PATH; see the module docstring."""

    def __init__(self, root: Path, *, python: str = sys.executable) -> None:
        self.root = root
        self.bin = root / "bin"
        self.record = root / "record"
        self.stubs = root / "stubs"
        self.comfyui = root / "comfyui"
        for folder in (self.bin, self.record, self.stubs, self.comfyui):
            folder.mkdir(parents=True, exist_ok=True)
        (self.comfyui / "main.py").write_text("# stands in for ComfyUI's main.py\n")
        (self.stubs / "stub_comfyui.py").write_text(textwrap.dedent(STUB_COMFYUI))
        (self.stubs / "stub_handler.py").write_text(textwrap.dedent(STUB_HANDLER))
        self._program("python", STUB_PYTHON.replace("@REAL@", python).replace("@STUBS@", str(self.stubs)))
        self._program("jupyter", STUB_JUPYTER)
        for name in ("git", "pip"):
            self._program(name, STUB_RECORDER)
        self.port = free_port()
        self.procs: list[subprocess.Popen[str]] = []
        self._runs = 0

    def _program(self, name: str, text: str) -> None:
        path = self.bin / name
        path.write_text(text)
        path.chmod(0o755)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.root),
            "LANG": "C.UTF-8",
            "STUB_RECORD": str(self.record),
            "COMFYUI_PATH": str(self.comfyui),
            "COMFY_PORT": str(self.port),
            "COMFY_PID_FILE": str(self.root / "run" / "comfyui.pid"),
            "COMFY_LOG_FILE": str(self.root / "log" / "comfyui.log"),
            "COMFY_READY_TIMEOUT_S": "20",
            "RUN_AS_ROOT": "true",  # the suite may run as root; never drop to another user here
            "WORKER_BUILD_INFO": str(self.root / "BUILD_INFO"),
            "JUPYTER_ROOT": str(self.root),
        }
        env.update(extra)
        return env

    def start(self, *args: str, env: Mapping[str, str], script: str = "start.sh") -> subprocess.Popen[str]:
        """Start a script; its output goes to files, since ComfyUI outlives an exec'd handler
        and would hold a pipe open."""
        self._runs += 1
        self.stdout_path = self.root / f"stdout.{self._runs}"
        self.stderr_path = self.root / f"stderr.{self._runs}"
        path = Path(script) if os.path.isabs(script) else SCRIPTS / script
        with self.stdout_path.open("w") as out, self.stderr_path.open("w") as err:
            proc = subprocess.Popen(
                ["bash", str(path), *args],
                env=dict(env),
                stdout=out,
                stderr=err,
                text=True,
                start_new_session=True,  # one process group: teardown stops every stub it started
            )
        self.procs.append(proc)
        return proc

    def finish(self, proc: subprocess.Popen[str], timeout: float = 20) -> subprocess.CompletedProcess[str]:
        proc.wait(timeout=timeout)
        return subprocess.CompletedProcess(
            proc.args, proc.returncode, self.stdout_path.read_text(), self.stderr_path.read_text()
        )

    def run(
        self, *args: str, env: Mapping[str, str], script: str = "start.sh", timeout: float = 20
    ) -> subprocess.CompletedProcess[str]:
        return self.finish(self.start(*args, env=env, script=script), timeout=timeout)

    def calls(self) -> list[str]:
        path = self.record / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def read(self, name: str) -> str:
        path = self.record / name
        return path.read_text() if path.exists() else ""

    def handler(self) -> dict:
        return json.loads(self.read("handler.json") or "null")

    def wait_for(self, name: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.read(name)
            if text:
                return text
            time.sleep(0.02)
        raise AssertionError(f"{name} never appeared in {self.record}")

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
