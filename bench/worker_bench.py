"""Worker benchmarks (run: ``python -m bench.worker_bench``).

1. Per-job overhead: 50 trivial jobs (EmptyImage 64x64 -> SaveImage) through ``Worker.handle``,
   wall time minus ComfyUI's own execution window (the history entry's execution_start and
   execution_success stamps). Baseline in the same run: a bare protocol client that keeps one
   aiohttp session and one WebSocket across all its jobs and does only POST /prompt -> wait for
   the end on the socket -> GET /history -> GET /view -> base64. Printed: both, and the ratio of
   their medians. The worker runs as `python -m handler` does: one kept connection, outputs read
   where ComfyUI wrote them (it shares ComfyUI's disk), and the files and history entry removed
   just after each result (handler/after_result.py), so that housekeeping overlaps the next job.
   The worker deletes each prompt's history entry, so both go through a recording pass-through
   (bench/history_tap.py; its cost per request is printed and each side's requests per job with it).
2. A 100 MB output returned as base64: time and peak extra memory (ru_maxrss growth in a fresh
   process), against a baseline that reads the file and base64-encodes it in one call.

Against the ComfyUI test server (its own process, so it does not share our interpreter), or, for
part 1 only, against a running ComfyUI when ``COMFY_HOST`` is set (``COMFYUI_PATH``: its folder,
else asked from ComfyUI).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from ._common import free_port, p95, peak_rss_mb
from .busy_share import execution_window
from .history_tap import HistoryTap

REPO = Path(__file__).resolve().parents[1]
TRIVIAL = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 255}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "bench"}},
}
BIG_INPUT = "bench_noise.png"
BIG = {
    "1": {"class_type": "LoadImage", "inputs": {"image": BIG_INPUT}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "bench_big"}},
}


class TestServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "comfy_testserver", "--root", str(root), "--port", str(self.port)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening" not in line:
            raise RuntimeError(f"test server did not start: {line!r}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def worker_env(comfy_host: str, root: str) -> dict[str, str]:
    return {"COMFY_HOST": comfy_host, "COMFYUI_PATH": root, "COMFY_LOG_LEVEL": "WARNING"}


def trivial(color: int) -> dict[str, Any]:
    workflow: dict[str, Any] = json.loads(json.dumps(TRIVIAL))
    workflow["1"]["inputs"]["color"] = color  # no two jobs alike: every job executes
    return workflow


@dataclass
class Overheads:
    values: list[float]  # seconds per job: wall minus ComfyUI's execution window
    requests_per_job: float  # HTTP requests through the tap (the WebSocket not counted)


async def bench_worker_overhead(tap: HistoryTap, root: str, jobs: int, *, settle: bool) -> Overheads:
    """``settle``: let each job's housekeeping (run just after its result) finish before the next
    job starts, outside the timed window: in a pipelined worker it overlaps the next job's
    execution in ComfyUI. Without it, jobs run back to back and the housekeeping competes with the
    next job's own wall time."""
    from handler.config import Settings
    from handler.worker import Worker

    # As `python -m handler` runs it: one ComfyUI connection kept for the worker's life.
    worker = Worker(Settings.from_env(worker_env(tap.address, root)), keep_connection=True)
    try:
        await worker.handle({"id": "bench-warmup", "input": {"workflow": trivial(7_000_000)}})
        await worker.settle()
        overheads, requests_before = [], tap.requests
        for index in range(jobs):
            started = time.perf_counter()
            job = {"id": f"bench-{index}", "input": {"workflow": trivial(index + (0 if settle else jobs))}}
            result = await worker.handle(job)
            wall = time.perf_counter() - started
            assert "error" not in result, result
            if settle:
                await worker.settle()
            start, end = execution_window(await tap.history(result["prompt_id"]))
            overheads.append(wall - (end - start))
        await worker.settle()  # the last job's housekeeping, counted in its requests
        requests = tap.requests - requests_before
    finally:
        await worker.aclose()
    return Overheads(overheads, requests / jobs)


async def bench_bare_client(tap: HistoryTap, root: str, jobs: int) -> Overheads:
    """The least a client can do per job, keeping one session and one WebSocket for all jobs.
    What its jobs leave in ComfyUI (files, history entries) is removed after the timed runs."""
    overheads = []
    made: dict[str, list[dict[str, str]]] = {}  # prompt id -> its images
    base = f"http://{tap.address}"
    client_id = str(uuid.uuid4())
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"ws://{tap.address}/ws", params={"clientId": client_id}) as ws,
    ):
        requests_before = tap.requests
        for index in range(-1, jobs):  # -1: warm-up, not counted
            prompt_id = str(uuid.uuid4())
            started = time.perf_counter()
            body = {"prompt": trivial(100_000 + index), "client_id": client_id, "prompt_id": prompt_id}
            async with http.post(f"{base}/prompt", json=body) as response:
                response.raise_for_status()
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    frame = json.loads(message.data)
                    data = frame.get("data", {})
                    if (
                        frame["type"] == "executing"
                        and data.get("node") is None
                        and data.get("prompt_id") == prompt_id
                    ):
                        break
            async with http.get(f"{base}/history/{prompt_id}") as response:
                history = (await response.json())[prompt_id]
            made[prompt_id] = history["outputs"]["2"]["images"]
            for image in history["outputs"]["2"]["images"]:
                async with http.get(f"{base}/view", params=image) as response:
                    base64.b64encode(await response.read())
            wall = time.perf_counter() - started
            start, end = execution_window(history)
            if index >= 0:
                overheads.append(wall - (end - start))
            else:
                requests_before = tap.requests
        requests = tap.requests - requests_before
        async with http.post(f"{base}/history", json={"delete": list(made)}) as response:
            response.raise_for_status()
    for images in made.values():
        for image in images:
            Path(root, image["type"], image["subfolder"], image["filename"]).unlink(missing_ok=True)
    return Overheads(overheads, requests / jobs)


def make_noise_png(path: Path, target_bytes: int) -> None:
    from PIL import Image

    side = int((target_bytes / 3) ** 0.5)
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(path, compress_level=1)


def big_output_child(mode: str, address: str, root: str) -> None:
    """Runs in a fresh process so ru_maxrss measures only this path."""
    before = peak_rss_mb()
    started = time.perf_counter()
    if mode == "worker":
        from handler.config import Settings
        from handler.worker import Worker

        settings = Settings.from_env(
            {
                "COMFY_HOST": address,
                "COMFYUI_PATH": root,
                "COMFY_CLEANUP": "false",
                "COMFY_LOG_LEVEL": "WARNING",
                "COMFY_HTTP_TIMEOUT_S": "120",
                # The point is the cost of a big inline result, so lift the guard RunPod's limit needs.
                "RESULT_MAX_BYTES": str(400 * 1024 * 1024),
            }
        )
        before = peak_rss_mb()
        started = time.perf_counter()
        result = asyncio.run(
            Worker(settings).handle({"id": "big", "input": {"workflow": BIG, "timeout": 600}})
        )
        assert "error" not in result, result["error"]
        size = result["images"][0]["size_bytes"]
        encoded = len(result["images"][0]["data"])
        collect_ms = result["timings"]["collect_ms"]
    else:
        output = next(Path(root, "output").glob("bench_big_*.png"))
        data = output.read_bytes()
        text = base64.b64encode(data).decode("ascii")
        size, encoded, collect_ms = len(data), len(text), (time.perf_counter() - started) * 1000
    elapsed = time.perf_counter() - started
    peak = peak_rss_mb()
    print(
        json.dumps(
            {
                "mode": mode,
                "size": size,
                "encoded": encoded,
                "seconds": elapsed,
                "collect_ms": collect_ms,
                "peak_extra_mb": peak - before,
            }
        )
    )


def run_child(mode: str, server: TestServer) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.worker_bench", "--child", mode, server.address, str(server.root)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    numbers: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return numbers


def report_overhead(
    jobs: int, ours: Overheads, back_to_back: Overheads, bare: Overheads, hop_ms: float
) -> None:
    print(f"per-job overhead over {jobs} trivial jobs (wall time minus ComfyUI's execution window):")
    rows = (
        ("worker", ours, "housekeeping between jobs, as it overlaps the next execution when pipelined"),
        ("worker, b2b", back_to_back, "back to back: housekeeping competes with the next job"),
        ("bare persistent", bare, "no validation, no cleanup"),
    )
    for name, measured, note in rows:
        values = measured.values
        median_ms, p95_ms = statistics.median(values) * 1000, p95(values) * 1000
        print(
            f"  {name:16} median {median_ms:7.1f} ms   p95 {p95_ms:7.1f} ms   "
            f"({measured.requests_per_job:.1f} HTTP requests per job; {note})"
        )
    for name, measured in (("worker", ours), ("worker, b2b", back_to_back)):
        ratio = statistics.median(measured.values) / statistics.median(bare.values)
        extra_ms = (statistics.median(measured.values) - statistics.median(bare.values)) * 1000
        print(f"  {name + ' / bare':20} {ratio:5.2f}x (extra: median {extra_ms:.1f} ms)")
    print(f"  (all through the history tap, which adds {hop_ms:.2f} ms per request, median)")


def report_big(worker: dict[str, Any], baseline: dict[str, Any]) -> None:
    print(
        f"{worker['size'] / 1e6:.1f} MB output returned as base64 ({worker['encoded'] / 1e6:.1f} MB of text):"
    )
    print(
        f"  worker    collect {worker['collect_ms'] / 1000:6.2f} s   whole job {worker['seconds']:6.2f} s   "
        f"peak extra RSS {worker['peak_extra_mb']:7.1f} MB"
    )
    print(
        f"  baseline  read + b64encode {baseline['seconds']:6.2f} s   "
        f"peak extra RSS {baseline['peak_extra_mb']:7.1f} MB"
    )


async def overhead(comfy_host: str, root: str, jobs: int) -> None:
    async with HistoryTap(comfy_host) as tap:
        hop_ms = await tap.hop_cost_ms()
        ours = await bench_worker_overhead(tap, root, jobs, settle=True)
        back_to_back = await bench_worker_overhead(tap, root, jobs, settle=False)
        bare = await bench_bare_client(tap, root, jobs)
    report_overhead(jobs, ours, back_to_back, bare, hop_ms)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--big-mb", type=int, default=100)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        big_output_child(*args.child)
        return
    comfy_host = os.environ.get("COMFY_HOST")
    if comfy_host:
        from comfy_worker.endpoint.comfy_folder import find_comfyui_path

        root = os.environ.get("COMFYUI_PATH") or str(find_comfyui_path(comfy_host))
        print(f"ComfyUI at {comfy_host} ({root}); the big-output part runs only against the test server")
        asyncio.run(overhead(comfy_host, root, args.jobs))
        return
    with tempfile.TemporaryDirectory(prefix="bench-comfy-") as tmp:
        server = TestServer(Path(tmp))
        try:
            asyncio.run(overhead(server.address, str(server.root), args.jobs))
            make_noise_png(Path(tmp) / "input" / BIG_INPUT, args.big_mb * 1024 * 1024)
            report_big(run_child("worker", server), run_child("baseline", server))
        finally:
            server.close()


if __name__ == "__main__":
    main()
