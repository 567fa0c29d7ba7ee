"""Entry point: ``python -m handler`` (add ``--rp_serve_api`` for RunPod's local test server).

Builds the settings, configures logging once, runs the warm-up workflow if there is one
(WARMUP_WORKFLOW; a failure exits 1), and hands `Worker.handle` to the RunPod SDK with a
concurrency of COMFY_PIPELINE_DEPTH.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from .config import ConfigError, Settings
from .worker import Worker


def main() -> int:
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"comfy-serverless-worker: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    logging.getLogger("handler").info(
        "worker starting: ComfyUI at %s, COMFYUI_PATH=%s, job timeout %gs",
        settings.comfy_host,
        settings.comfyui_path,
        settings.timeouts.job_s,
    )
    if settings.storage is not None:
        # A bucket that cannot be used is a start-up error, not a surprise after the first job ran.
        from .errors import StorageMisconfigured
        from .storage.s3 import check_destination

        try:
            check_destination(settings.storage)
        except StorageMisconfigured as exc:
            print(f"comfy-serverless-worker: storage check failed: {exc.message}", file=sys.stderr)
            return 2
    if settings.warmup_workflow is not None:
        # Before the SDK takes jobs, so the first job finds its models loaded (docs/models.md).
        import asyncio

        from .errors import WarmupFailed
        from .warmup import run_warmup

        try:
            asyncio.run(run_warmup(settings, settings.warmup_workflow))
        except WarmupFailed as exc:
            print(f"comfy-serverless-worker: {exc.message}", file=sys.stderr)
            return 1
    # Imported here: the SDK reads its environment at import time and takes ~1 s to load.
    import runpod
    from runpod.serverless.modules.rp_logger import RunPodLogger

    RunPodLogger().set_level(settings.sdk_log_level)  # `--rp_log_level` still overrides it

    def progress_sender(job: dict[str, Any]) -> Any:
        return lambda payload: runpod.serverless.progress_update(job, payload)

    # One ComfyUI connection for the process's life; the SDK holds up to COMFY_PIPELINE_DEPTH jobs,
    # so the next job is validated, uploaded and queued while one runs (docs/throughput.md).
    # One slot fewer while a stopped prompt ComfyUI has not let go of (or a restart) holds it.
    worker = Worker(settings, progress_sender=progress_sender, keep_connection=True)
    runpod.serverless.start(
        {"handler": worker.handle, "concurrency_modifier": lambda _current: worker.capacity()}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
