"""Whether ComfyUI's process is still alive, from the PID file start.sh writes (COMFY_PID_FILE)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

__all__ = ["comfy_pid", "comfy_process_dead", "comfy_process_stopped", "kill_comfy", "process_exists"]


def comfy_pid(pid_file: Path | None) -> int | None:
    """The PID the file names now (start.sh rewrites it when it restarts ComfyUI), if readable."""
    if pid_file is None:
        return None
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return pid if pid > 0 else None


def comfy_process_dead(pid_file: Path | None) -> bool:
    """True only when the PID file names a process that no longer exists.

    No PID file configured, not written yet, or unreadable: we cannot tell, so False, and the
    caller falls back to HTTP checks.
    """
    pid = comfy_pid(pid_file)
    if pid is None:
        return False
    return not process_exists(pid) or _is_zombie(pid)


def process_exists(pid: int) -> bool:
    """Whether a process with this id exists on this machine (another user's too; a zombie too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def _is_zombie(pid: int) -> bool:
    # A child that exited but was not reaped still answers kill(0); /proc tells the truth.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


# -- liveness and restarts (issue 14) -------------------------------------------------------------


def comfy_process_stopped(pid_file: Path | None) -> bool:
    """True when ComfyUI's process is stopped (SIGSTOP, a debugger): it can answer nothing.

    /proc/<pid>/stat state ``T`` (stopped) or ``t`` (stopped by a tracer). Unknown: False.
    """
    pid = comfy_pid(pid_file)
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] in (["T"], ["t"])


def kill_comfy(pid_file: Path | None) -> int | None:
    """SIGKILL ComfyUI's process (a supervisor such as start.sh starts a new one); the pid killed.

    SIGKILL, not SIGTERM: the process this is used on is frozen or stuck in a node, and a stopped
    process acts on SIGKILL alone. None when there was no process to kill.
    """
    pid = comfy_pid(pid_file)
    if pid is None:
        return None
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return None
    except PermissionError:
        return None
    return pid
