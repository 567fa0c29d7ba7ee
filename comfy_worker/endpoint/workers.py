"""The local endpoint's worker processes: the unmodified runpod SDK loop running our handler.

Each worker is ``python -m handler`` with the environment RunPod gives a real worker
(``RUNPOD_WEBHOOK_GET_JOB``, ``RUNPOD_WEBHOOK_POST_OUTPUT``, ``RUNPOD_WEBHOOK_PING``,
``RUNPOD_POD_ID``, ``RUNPOD_AI_API_KEY``) pointing back at this endpoint. A worker that exits is
reported (its job fails, not lost) and started again, as RunPod replaces a dead worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["WorkerPool", "WorkerProcess"]

logger = logging.getLogger(__name__)

RESTART_DELAY_S = 0.5
EXIT_POLL_S = 0.2
READ_CHUNK_BYTES = 64 * 1024
MAX_ECHO_CHARS = 2000
LOG_TAIL_LINES = 40


@dataclass
class WorkerProcess:
    id: str
    comfy_host: str
    process: asyncio.subprocess.Process | None = None
    state: str = "initializing"  # initializing | idle | running | unhealthy
    restarts: int = 0
    stops: list[str] = field(default_factory=list)
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    log_tail: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_TAIL_LINES))
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def request_stop(self, job_id: str) -> None:
        self.stops.append(job_id)
        self.stop_event.set()


ExitHandler = Callable[[WorkerProcess, int], Awaitable[None]]


class WorkerPool:
    def __init__(
        self,
        *,
        count: int,
        comfy_hosts: list[str],
        internal_url: str,
        token: str,
        env: Mapping[str, str],
        on_exit: ExitHandler,
        echo_logs: bool = True,
        python_args: tuple[str, ...] = ("-m", "handler"),
    ) -> None:
        self.workers = {
            f"worker-{index + 1}": WorkerProcess(f"worker-{index + 1}", comfy_hosts[index % len(comfy_hosts)])
            for index in range(count)
        }
        self._internal_url = internal_url
        self._token = token
        self._env = dict(env)
        self._on_exit = on_exit
        self._echo = echo_logs
        self._python_args = python_args
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    async def start(self) -> None:
        for worker in self.workers.values():
            await self._spawn(worker)

    async def wait_ready(self, timeout_s: float) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(*(w.ready.wait() for w in self.workers.values()))
        except TimeoutError:
            return False
        return True

    def counts(self) -> dict[str, int]:
        states = [w.state for w in self.workers.values()]
        return {
            "idle": states.count("idle"),
            "initializing": states.count("initializing"),
            "ready": states.count("idle") + states.count("running"),
            "running": states.count("running"),
            "throttled": 0,
            "unhealthy": states.count("unhealthy"),
        }

    async def restart(self, worker: WorkerProcess) -> None:
        """Stop a worker gracefully (RunPod's stopPod / refresh_worker); the monitor starts it again."""
        if worker.process is not None and worker.process.returncode is None:
            worker.state = "unhealthy"
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        procs = [w.process for w in self.workers.values() if w.process and w.process.returncode is None]
        for process in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = asyncio.get_running_loop().time() + 10
        while any(p.returncode is None for p in procs) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(EXIT_POLL_S)
        for process in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # stragglers, and each worker's heartbeat child
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def worker_env(self, worker: WorkerProcess) -> dict[str, str]:
        base = f"{self._internal_url}/internal"
        return {
            **os.environ,
            **self._env,
            "COMFY_HOST": worker.comfy_host,
            # The SDK appends "&job_in_progress=..." and derives job-stop from "/job-take/".
            "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/{worker.id}?gpu=local",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/{worker.id}?id=$ID",
            "RUNPOD_WEBHOOK_PING": f"{base}/ping/{worker.id}",
            "RUNPOD_PING_INTERVAL": "2000",
            "RUNPOD_POD_ID": worker.id,
            "RUNPOD_AI_API_KEY": self._token,
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
            "RUNPOD_SKIP_GPU_CHECK": "true",
            "PYTHONUNBUFFERED": "1",
        }

    async def _spawn(self, worker: WorkerProcess) -> None:
        worker.state, worker.ready = "initializing", asyncio.Event()
        worker.stops.clear()
        worker.process = await asyncio.create_subprocess_exec(
            sys.executable,
            *self._python_args,
            env=self.worker_env(worker),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # our Ctrl-C is not theirs: close() stops them in order
        )
        task = asyncio.create_task(self._watch(worker, worker.process))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self, worker: WorkerProcess, process: asyncio.subprocess.Process) -> None:
        reader = asyncio.create_task(self._read_output(worker, process))
        # Not process.wait(): on Python 3.11 it also waits for the pipes to close, and the SDK's
        # heartbeat child outlives a killed worker holding our pipe open. Poll the exit instead.
        while process.returncode is None:
            await asyncio.sleep(EXIT_POLL_S)
        code = process.returncode
        # End the heartbeat child with its group, so it stops pinging for a worker that is gone.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        try:
            await asyncio.wait_for(reader, 2.0)
        except TimeoutError:
            reader.cancel()
        if self._closing:
            return
        worker.state = "unhealthy"
        logger.warning("%s exited with code %s; starting it again", worker.id, code)
        await self._on_exit(worker, code)
        await asyncio.sleep(RESTART_DELAY_S)
        if not self._closing:
            worker.restarts += 1
            await self._spawn(worker)

    async def _read_output(self, worker: WorkerProcess, process: asyncio.subprocess.Process) -> None:
        """Echo the worker's output line by line, whatever the line length.

        Not ``async for line in stdout``: a line over the reader's 64 KiB limit (the SDK logs whole
        job outputs at DEBUG) would end the loop, the pipe would fill and the worker would hang.
        """
        assert process.stdout is not None
        pending, dropped = b"", 0
        while chunk := await process.stdout.read(READ_CHUNK_BYTES):
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                self._echo_line(worker, raw, dropped)
                dropped = 0
            if len(pending) > MAX_ECHO_CHARS:  # keep the start of a huge line, count the rest
                dropped += len(pending) - MAX_ECHO_CHARS
                pending = pending[:MAX_ECHO_CHARS]
        if pending:
            self._echo_line(worker, pending, dropped)

    def _echo_line(self, worker: WorkerProcess, raw: bytes, dropped: int = 0) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip()
        extra = dropped + max(0, len(line) - MAX_ECHO_CHARS)
        if extra:
            line = f"{line[:MAX_ECHO_CHARS]} ... ({extra} more characters)"
        worker.log_tail.append(line)
        if self._echo:
            print(f"[{worker.id}] {line}", flush=True)
