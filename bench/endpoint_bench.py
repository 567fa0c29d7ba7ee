"""Local endpoint benchmark (run: ``python -m bench.endpoint_bench [--jobs 200]``).

Against one ComfyUI test server (its own process), for 1, 2 and 4 worker processes: 200 trivial
jobs submitted at once through ``/runsync`` (50 clients), printing throughput and p50/p95
latency. Then the endpoint's own overhead per job: 30 jobs one at a time, the client's wall time
minus the handler's own ``timings.total_ms``, which leaves the endpoint's HTTP hops and the SDK's
job-take/job-done round trip. ComfyUI runs one prompt at a time, so more workers overlap only
the work around it (upload, fetch, encode, the hops).

The runpod SDK's worker loop sleeps 1 s after taking a job before it asks for another, so one
worker finishes at most about one trivial job per second, locally as on RunPod; real workflows
take seconds to minutes, and that floor disappears behind them.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from comfy_worker.client import EndpointClient

from ._common import p95
from ._common import start_module as start
from ._common import stop_module as stop


def trivial(index: int) -> dict[str, Any]:
    return {
        "workflow": {
            "1": {
                "class_type": "EmptyImage",
                "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": index},
            },
            "2": {
                "class_type": "SaveImage",
                "inputs": {"images": ["1", 0], "filename_prefix": f"bench{index}"},
            },
        }
    }


def run_load(client: EndpointClient, jobs: int, clients: int) -> tuple[float, list[float]]:
    def one(index: int) -> float:
        started = time.perf_counter()
        status = client.runsync(trivial(index), wait_ms=120_000)
        if not status.ok:
            raise RuntimeError(f"job failed: {status.error or status.status}")
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        latencies = list(pool.map(one, range(jobs)))
    return time.perf_counter() - started, latencies


def overhead(client: EndpointClient, jobs: int) -> list[float]:
    values = []
    for index in range(jobs):
        # After each job the SDK's worker loop sleeps 1 s before it asks for the next one (the same
        # on RunPod); spacing the jobs leaves that cadence out and measures the hops alone.
        time.sleep(1.2)
        started = time.perf_counter()
        status = client.runsync(trivial(10_000 + index))
        wall = time.perf_counter() - started
        values.append(wall - status.output["timings"]["total_ms"] / 1000)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="endpoint-bench-") as tmp:
        root = Path(tmp)
        comfy, comfy_url = start(
            ["comfy_testserver", "--root", str(root / "comfy"), "--port", "0"],
            r"listening on (http://\S+)",
            root / "comfy.log",
        )
        comfy_host = comfy_url.removeprefix("http://")
        try:
            print(f"{args.jobs} trivial jobs through the local endpoint, {args.clients} concurrent clients:")
            for workers in args.workers:
                endpoint, url = start(
                    [
                        "comfy_worker",
                        "serve",
                        "--comfy-host",
                        comfy_host,
                        "--comfyui-path",
                        str(root / "comfy"),
                        "--workers",
                        str(workers),
                        "--port",
                        "0",
                        "--quiet",
                    ],
                    r"listening on (http://\S+) ",
                    root / f"endpoint{workers}.log",
                )
                try:
                    client = EndpointClient("local", None, base_url=f"{url}/v2", timeout_s=130)
                    client.runsync(trivial(-1))  # warm up: first job pays imports and connections
                    wall, latencies = run_load(client, args.jobs, args.clients)
                    p50_ms, p95_ms = statistics.median(latencies) * 1000, p95(latencies) * 1000
                    print(
                        f"  {workers} worker(s): {args.jobs / wall:6.1f} jobs/s   p50 {p50_ms:7.0f} ms   p95 {p95_ms:7.0f} ms"
                    )
                    if workers == args.workers[0]:
                        own = overhead(client, 30)
                finally:
                    stop(endpoint)
            median_ms, p95_ms = statistics.median(own) * 1000, p95(own) * 1000
            print(
                f"endpoint overhead per job (one at a time, wall time minus handler total_ms, {len(own)} jobs):"
            )
            print(
                f"  median {median_ms:.1f} ms, p95 {p95_ms:.1f} ms (HTTP hops + SDK job-take/job-done round trip)"
            )
        finally:
            stop(comfy)


if __name__ == "__main__":
    main()
