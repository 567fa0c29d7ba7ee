"""ComfyUI as a separate process on loopback, for fault injection: the test server or a real one.

`ComfyProcess.test_server(root)` runs `python -m comfy_testserver`; `ComfyProcess.real(...)` copies
a real ComfyUI tree (its core only, plus the fault node pack in testkit/comfy_nodes) into a temp
folder and runs it with its own Python on CPU. Both write the PID file the worker watches
(COMFY_PID_FILE), and both can be killed (SIGKILL), frozen (SIGSTOP) and thawed (SIGCONT).

`supervised=True` restarts the process on the same port whenever it exits, as start.sh's
supervision does in the image (`args_after_restart`: what later processes run, so a test can make
only the first ComfyUI misbehave; `starts` counts the processes). Without it the process stays
dead until the test calls `restart()`.

A real ComfyUI is used when `real_comfy_from_env` finds `REAL_COMFYUI_DIR` (a ComfyUI tree) and
`REAL_COMFYUI_PYTHON` (the Python that has its requirements), e.g.
`REAL_COMFYUI_DIR=/work/real/ComfyUI REAL_COMFYUI_PYTHON=/work/real/venv/bin/python`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ComfyProcess", "RealComfy", "free_port", "real_comfy_from_env"]

_REPO = Path(__file__).resolve().parents[1]
_FAULT_NODES = Path(__file__).resolve().parent / "comfy_nodes" / "worker_fault_nodes.py"


@dataclass(frozen=True)
class RealComfy:
    """Where a real ComfyUI and its Python are (never modified: the process runs on a copy)."""

    source: Path
    python: Path


def real_comfy_from_env(environ: Mapping[str, str]) -> RealComfy | None:
    """The real ComfyUI named by REAL_COMFYUI_DIR and REAL_COMFYUI_PYTHON, if both exist."""
    source, python = environ.get("REAL_COMFYUI_DIR", ""), environ.get("REAL_COMFYUI_PYTHON", "")
    if not source or not python:
        return None
    if not (Path(source) / "main.py").is_file() or not Path(python).is_file():
        return None
    return RealComfy(Path(source), Path(python))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ComfyProcess:
    """One ComfyUI process on 127.0.0.1; `root` is its install folder (COMFYUI_PATH).

    `supervised`: started again (same port, folder and PID file) each time it exits, until `stop`;
    later processes run `args_after_restart` (default: `args`).
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        root: Path,
        port: int,
        cwd: Path,
        kind: str,
        supervised: bool = False,
        args_after_restart: Sequence[str] | None = None,
    ) -> None:
        self.args = list(args)
        self.args_after_restart = list(args if args_after_restart is None else args_after_restart)
        self.root = root
        self.port = port
        self.kind = kind  # "test server" or "real ComfyUI"
        self.supervised = supervised
        self.starts = 0  # processes started so far (restarts included)
        self._cwd = cwd
        self.pid_file = root.parent / f"comfyui-{port}.pid"
        self.log_path = root.parent / f"comfyui-{port}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @classmethod
    def test_server(
        cls,
        workdir: Path,
        *flags: str,
        supervised: bool = False,
        flags_after_restart: Sequence[str] | None = None,
    ) -> ComfyProcess:
        """`python -m comfy_testserver` with one checkpoint file; `flags` as its CLI takes them
        (`flags_after_restart`: a supervised server's later processes; default: `flags`)."""
        root = workdir / "comfyui"
        (root / "models" / "checkpoints").mkdir(parents=True, exist_ok=True)
        (root / "models" / "checkpoints" / "tiny.safetensors").write_bytes(b"\0")
        port = free_port()
        base = [sys.executable, "-m", "comfy_testserver", "--root", str(root), "--port", str(port)]
        after = None if flags_after_restart is None else [*base, *flags_after_restart]
        return cls(
            [*base, *flags],
            root=root,
            port=port,
            cwd=_REPO,
            kind="test server",
            supervised=supervised,
            args_after_restart=after,
        )

    @classmethod
    def real(cls, workdir: Path, real: RealComfy) -> ComfyProcess:
        """A copy of the real ComfyUI's core (no custom nodes but the fault pack), on CPU."""
        root = workdir / "ComfyUI"
        source = real.source.resolve()

        def _skip(folder: str, names: list[str]) -> list[str]:
            here = Path(folder).resolve()
            skipped = [n for n in names if n in (".git", "__pycache__")]
            if here == source:
                skipped += [n for n in names if n in ("models", "output", "input", "temp", "user")]
            if here == source / "custom_nodes":  # other packs only slow the boot down
                skipped += [n for n in names if (here / n).is_dir()]
            return skipped

        shutil.copytree(source, root, symlinks=True, ignore=_skip)
        for folder in ("models/checkpoints", "input", "output", "temp", "user"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(_FAULT_NODES, root / "custom_nodes" / _FAULT_NODES.name)
        port = free_port()
        args = [str(real.python), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port)]
        return cls(args, root=root, port=port, cwd=root, kind="real ComfyUI")

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def pid(self) -> int:
        """The current process's id (a supervised one's changes at each restart)."""
        if self._proc is None:
            raise RuntimeError("ComfyProcess not started")
        return self._proc.pid

    def start(self, timeout_s: float = 120.0) -> ComfyProcess:
        """Start the process and wait until GET /system_stats answers (then, if supervised, watch it)."""
        self._stopping.clear()
        self._spawn(self.args)
        self.wait_until_answering(timeout_s)
        if self.supervised:
            self._watcher = threading.Thread(target=self._supervise, name="comfy-supervisor", daemon=True)
            self._watcher.start()
        return self

    def wait_until_answering(self, timeout_s: float = 30.0) -> None:
        """Poll GET /system_stats until it answers 200; a process that exits with no supervisor
        running to start the next one fails at once."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            proc = self._proc
            if self._watcher is None and proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start:\n{self.log_tail()}")
            if self.answers():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.kind} did not answer within {timeout_s} s:\n{self.log_tail()}")

    def restart(self, timeout_s: float = 120.0) -> ComfyProcess:
        """Start it again after it died (same port, folder and PID file), as start.sh does."""
        self.stop()
        return self.start(timeout_s)

    def _spawn(self, args: Sequence[str]) -> None:
        if self._log is None:
            self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            args, cwd=self._cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.starts += 1
        self.pid_file.write_text(f"{self._proc.pid}\n")

    def _supervise(self) -> None:
        """start.sh's loop: when the process exits (not stopped by us), start the next one."""
        while not self._stopping.is_set():
            proc = self._proc
            assert proc is not None
            try:
                proc.wait(0.1)
            except subprocess.TimeoutExpired:
                continue
            if self._stopping.is_set():
                return
            self._spawn(self.args_after_restart)

    def answers(self, timeout_s: float = 1.0) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/system_stats", timeout=timeout_s) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def kill(self) -> None:
        """SIGKILL: the process dies at once (its PID file stays, naming a dead process, until a
        supervised one's next process writes its own)."""
        proc = self._proc
        self._signal(signal.SIGKILL)
        if proc is not None:
            proc.wait(10)

    def freeze(self) -> None:
        """SIGSTOP: the process stops running; its sockets stay open and nothing answers."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after `freeze`."""
        self._signal(signal.SIGCONT)

    def stop(self) -> None:
        """End the process (thawed first, so SIGTERM can land), then SIGKILL if it lingers; a
        supervised one is not started again."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(10)
            self._watcher = None
        proc = self._proc
        if proc is not None and proc.poll() is None:
            self._signal(signal.SIGCONT)
            self._signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _signal(self, signum: int) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signum)

    def __enter__(self) -> ComfyProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- HTTP straight to ComfyUI (not through the worker) -----------------------------------------

    def get_json(self, path: str, timeout_s: float = 5.0) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=timeout_s) as response:
            return json.loads(response.read())

    def post_json(self, path: str, body: Any, timeout_s: float = 5.0) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                text = response.read()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def queue_ids(self, timeout_s: float = 5.0) -> tuple[list[str], list[str]]:
        """(running, pending) prompt ids from GET /queue."""
        data = self.get_json("/queue", timeout_s)
        return (
            [str(item[1]) for item in data.get("queue_running", [])],
            [str(item[1]) for item in data.get("queue_pending", [])],
        )
