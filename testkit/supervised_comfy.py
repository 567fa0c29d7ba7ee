"""The ComfyUI test server as a supervised subprocess, the way start.sh runs ComfyUI in the image.

`SupervisedComfy` runs ``python -m comfy_testserver`` in its own process, writes that process's
id to a PID file (what COMFY_PID_FILE names) and, like start.sh's supervision, starts a new one
on the same port when it exits. A process can be frozen for real (SIGSTOP) and thawed (SIGCONT),
which a server in a thread cannot. Used by the liveness tests (tests/test_liveness.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["SupervisedComfy"]

_REPO = Path(__file__).resolve().parents[1]
_START_TIMEOUT_S = 30.0


class SupervisedComfy:
    """A test-server process restarted whenever it exits (``restart=False``: left dead).

    ``args`` go to the first process; ``args_after_restart`` (default: the same) to later ones,
    so a test can make only the first ComfyUI misbehave.
    """

    def __init__(
        self,
        root: Path,
        pid_file: Path,
        *,
        args: Sequence[str] = (),
        args_after_restart: Sequence[str] | None = None,
        restart: bool = True,
    ) -> None:
        self.root = root
        self.pid_file = pid_file
        self.port = _free_port()
        self._args = list(args)
        self._args_after = list(args if args_after_restart is None else args_after_restart)
        self._restart = restart
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self.starts = 0
        self.log = root.parent / f"comfy-{self.port}.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> SupervisedComfy:
        self._spawn(self._args)
        self.wait_until_answering()
        self._watcher = threading.Thread(target=self._watch, name="supervised-comfy", daemon=True)
        self._watcher.start()
        return self

    def freeze(self) -> None:
        """SIGSTOP: the process keeps its port (connections are accepted) and answers nothing."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGCONT)

    def wait_until_answering(self, timeout_s: float = _START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{self.address}/system_stats", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"the test server did not answer within {timeout_s} s; see {self.log}")

    def stop(self) -> None:
        self._stopping.set()
        process = self._process
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)  # a frozen process acts on SIGKILL too, but be sure
            process.kill()
            process.wait(10)
        if self._watcher is not None:
            self._watcher.join(10)

    def __enter__(self) -> SupervisedComfy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _spawn(self, args: Sequence[str]) -> None:
        command = [sys.executable, "-m", "comfy_testserver", "--root", str(self.root)]
        command += ["--port", str(self.port)]
        with self.log.open("ab") as log:
            self._process = subprocess.Popen([*command, *args], cwd=_REPO, stdout=log, stderr=log)
        self.starts += 1
        self.pid_file.write_text(f"{self._process.pid}\n", encoding="utf-8")

    def _watch(self) -> None:
        while not self._stopping.is_set():
            process = self._process
            assert process is not None
            try:
                process.wait(0.1)
            except subprocess.TimeoutExpired:
                continue
            if self._stopping.is_set() or not self._restart:
                return
            self._spawn(self._args_after)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
