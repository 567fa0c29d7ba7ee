"""A worker holding a prompt ComfyUI has not let go of takes one job fewer (`Worker.capacity`, the
SDK's concurrency_modifier): the job it cannot start stays in the endpoint's queue, where another
worker could take it, instead of waiting inside this one. Real SDK worker, real local endpoint."""

from __future__ import annotations

import time
from pathlib import Path

from comfy_testserver import ComfyTestServer

from .. import workflows as wf
from .conftest import Endpoint, wait_for


def test_a_worker_holding_an_orphan_prompt_takes_one_job_fewer(
    comfy: ComfyTestServer, tmp_path: Path
) -> None:
    server = Endpoint(
        comfy,
        tmp_path / "serve.log",
        workers=1,
        env={"COMFY_PIPELINE_DEPTH": "2", "COMFY_INTERRUPT_SETTLE_S": "30"},
    )
    try:
        client = server.client()
        comfy.behaviour.node_delay_s = 5.0
        comfy.behaviour.uninterruptible = True
        stuck = client.wait(client.run({"workflow": wf.save_image("orphan"), "timeout": 1}), timeout_s=30)
        assert stuck.status == "FAILED" and "has NOT let go of it" in (stuck.error or ""), stuck
        comfy.behaviour.node_delay_s = 0.0
        comfy.behaviour.uninterruptible = False
        orphan_running = comfy.queue_state()[0]
        assert orphan_running, "the orphan should still be running in ComfyUI"

        jobs = [client.run({"workflow": wf.save_image(name)}) for name in ("b", "c")]
        wait_for(lambda: any(client.status(j).status == "IN_PROGRESS" for j in jobs), what="a job taken")
        # While ComfyUI still runs the orphan, the worker (depth 2) holds one job, not two.
        samples = 0
        while comfy.queue_state()[0] == orphan_running:
            statuses = sorted(client.status(j).status for j in jobs)
            if comfy.queue_state()[0] != orphan_running:
                break  # it ended while we asked: the worker may take the second now
            assert statuses == ["IN_PROGRESS", "IN_QUEUE"], statuses
            samples += 1
            time.sleep(0.1)
        assert samples >= 3, "the orphan ended before the worker's intake could be watched"
        results = [client.wait(j, timeout_s=30) for j in jobs]
        assert all(r.ok for r in results), results
    finally:
        server.close()
