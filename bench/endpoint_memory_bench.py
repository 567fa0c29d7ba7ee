"""Local endpoint memory after N large jobs complete: inputs dropped (ours) vs kept for the retention.

    python -m bench.endpoint_memory_bench [--jobs 10] [--mb 15]

Issue 14 saw 810 MB RSS after ten 60 MB jobs: the endpoint kept every request body for the
30-minute retention. Jobs are submitted over HTTP to an in-process endpoint (no workers) and then
finished through the job store, as job-done does; RSS is read once the garbage collector ran.
The baseline runs the same with `Job.drop_input` turned off (the behaviour before the fix).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import warnings
from pathlib import Path

import aiohttp
from aiohttp import web

from comfy_worker.endpoint import jobs
from comfy_worker.endpoint.serve import app_runner
from comfy_worker.endpoint.server import EndpointConfig, LocalEndpoint

KEY = "bench"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (not Linux?)")


async def run(job_count: int, size_mb: int) -> float:
    """RSS growth in MB after ``job_count`` completed jobs of ``size_mb`` each."""
    config = EndpointConfig(api_key=KEY, workers=0)
    endpoint = LocalEndpoint(config)
    app = endpoint.app()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        app["internal_url"] = "http://127.0.0.1:1"
    runner = app_runner(app, config)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/v2/local/runsync?wait=0"
    gc.collect()
    before = rss_mb()
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as session:
            for index in range(job_count):
                padding = f"{index:02d}" + "A" * (size_mb * 1024 * 1024 - 2)
                body = json.dumps(
                    {"input": {"workflow": {}, "images": [{"name": "a.png", "image": padding}]}}
                )
                del padding
                async with session.post(url, data=body) as response:
                    job_id = (await response.json())["id"]
                del body
                job = endpoint.store.take("worker-1")
                assert job is not None and job.id == job_id
                endpoint.store.finish(job, {"output": {"images": []}})
        gc.collect()
        return rss_mb() - before
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument(
        "--mb", type=int, default=15, help="size of each request (at most 20: /runsync's limit)"
    )
    args = parser.parse_args()
    asyncio.run(run(2, args.mb))  # warm-up: imports, buffers and the allocator's high water
    ours = asyncio.run(run(args.jobs, args.mb))
    original = jobs.Job.drop_input
    jobs.Job.drop_input = lambda self: 0  # type: ignore[method-assign]
    try:
        kept = asyncio.run(run(args.jobs, args.mb))
    finally:
        jobs.Job.drop_input = original  # type: ignore[method-assign]
    print(f"{args.jobs} completed jobs of {args.mb} MB on the local endpoint, RSS growth after gc:")
    print(f"  inputs dropped on completion (ours): {ours:7.1f} MB")
    print(f"  inputs kept for the retention (before): {kept:7.1f} MB")


if __name__ == "__main__":
    main()
