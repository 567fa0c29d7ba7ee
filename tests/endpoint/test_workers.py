"""The worker pool reads its workers' output whatever they print."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from comfy_worker.endpoint.workers import WorkerPool, WorkerProcess


async def no_exit(worker: WorkerProcess, code: int) -> None:
    raise AssertionError("not expected")


async def test_a_line_longer_than_the_reader_limit_does_not_stop_the_echo(capsys: Any) -> None:
    # The SDK prints whole job outputs at DEBUG; a 200 KB line once ended the reader and the
    # full pipe then froze the worker.
    script = "import sys; print('x' * 200_000); print('after the long line'); sys.stdout.flush()"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
    )
    pool = WorkerPool(
        count=1, comfy_hosts=["h:1"], internal_url="http://x", token="t", env={}, on_exit=no_exit
    )
    worker = pool.workers["worker-1"]
    await asyncio.wait_for(pool._read_output(worker, process), 10)
    await process.wait()
    assert worker.log_tail[-1] == "after the long line"
    assert worker.log_tail[-2].endswith("(198000 more characters)")
    assert "[worker-1] after the long line" in capsys.readouterr().out
