"""Backlog benchmark: how busy one worker keeps ComfyUI (run: ``python -m bench.backlog_bench``).

The local endpoint (``comfy-worker serve``) with ONE real runpod SDK worker process running our
handler; a backlog of jobs of the same cost (each with its own seed or colour, so ComfyUI's cache
cannot skip it) submitted at once through ``/run``. Printed per job length, for
``COMFY_PIPELINE_DEPTH`` 2 and, as the baseline in the same run, 1:

- jobs/s over the span from the first job-take to the last result (from /status: delayTime is the
  time in the queue, executionTime the time from the take to the result);
- ComfyUI's busy share of that span: the sum of the prompts' execution windows (execution_start ..
  execution_success stamps in their /history entries), divided by the span.

Against the ComfyUI test server by default (its own process; KSampler steps of 50 ms, so a 2-step
job executes in ~0.1 s and a 20-step one in ~1 s), or against a running ComfyUI when
``COMFY_HOST`` is set (``COMFYUI_PATH``: its folder, else asked from ComfyUI): there the jobs are
EmptyImage -> ImageBlur -> SaveImage, sized to take ~0.1 s and ~1 s on a 2-core CPU (their
measured execution is printed). The worker deletes each prompt's history entry once done, so the
entries are read through a recording pass-through (bench/history_tap.py) whose own cost per
request is measured and printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from ._common import start_module, stop_module
from .busy_share import JobSpan, busy_seconds, execution_window, span_of
from .history_tap import HistoryTap

__all__ = ["BacklogResult", "main", "measure"]

STEP_S = 0.05  # the test server's KSampler step
KINDS = ("short", "long")
TEST_SERVER_STEPS = {"short": 2, "long": 20}
# EmptyImage side and ImageBlur radius: ~0.1 s and ~1 s on the 2-core CI-class CPU (ComfyUI 0.3.64).
REAL_BLUR = {"short": (1344, 4), "long": (1856, 15)}
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}


def sampler_job(kind: str, index: int) -> dict[str, Any]:
    """The test server's job: KSampler with ``TEST_SERVER_STEPS[kind]`` steps, its own seed."""
    return {
        "workflow": {
            "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "bench.safetensors"}},
            "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["1", 1]}},
            "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
            "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
            "5": {
                "class_type": "KSampler",
                "inputs": {
                    "model": ["1", 0],
                    "seed": index,
                    "steps": TEST_SERVER_STEPS[kind],
                    "cfg": 7.0,
                    "sampler_name": "euler",
                    "scheduler": "normal",
                    "positive": ["2", 0],
                    "negative": ["3", 0],
                    "latent_image": ["4", 0],
                    "denoise": 1.0,
                },
            },
            "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
            "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "backlog"}},
        }
    }


def blur_job(kind: str, index: int) -> dict[str, Any]:
    """A real ComfyUI's job: core image nodes only, no model; its own colour."""
    side, radius = REAL_BLUR[kind]
    return {
        "workflow": {
            "1": {
                "class_type": "EmptyImage",
                "inputs": {"width": side, "height": side, "batch_size": 1, "color": index % 0xFFFFFF},
            },
            "2": {
                "class_type": "ImageBlur",
                "inputs": {"image": ["1", 0], "blur_radius": radius, "sigma": 1.0},
            },
            "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "backlog"}},
        }
    }


@dataclass(frozen=True)
class BacklogResult:
    jobs: int
    span_s: float
    busy_s: float
    execution_median_s: float

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.span_s

    @property
    def busy_share(self) -> float:
        return self.busy_s / self.span_s


async def run_backlog(
    api: str, tap: HistoryTap, inputs: list[dict[str, Any]], wait_s: float = 600.0
) -> BacklogResult:
    """Submit every input at once through /run, wait for all, and measure the span."""
    async with aiohttp.ClientSession() as http:
        submitted: list[tuple[float, str]] = []
        for job_input in inputs:
            before = time.time()
            async with http.post(f"{api}/run", json={"input": job_input}) as response:
                body = await response.json()
            if response.status != 200:
                raise RuntimeError(f"/run refused the job: {body}")
            submitted.append(((before + time.time()) / 2, str(body["id"])))
        statuses = []
        deadline = time.monotonic() + wait_s
        for _, job_id in submitted:
            while True:
                async with http.get(f"{api}/status/{job_id}", params={"wait": "30000"}) as response:
                    status = await response.json()
                if status["status"] in FINAL:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"job {job_id} did not finish within {wait_s:g} s")
            if status["status"] != "COMPLETED":
                raise RuntimeError(f"job {job_id} {status['status']}: {status.get('error')}")
            statuses.append(status)
    spans = [JobSpan.from_status(at, status) for (at, _), status in zip(submitted, statuses, strict=True)]
    start, end = span_of(spans)
    windows = [execution_window(await tap.history(s["output"]["prompt_id"])) for s in statuses]
    return BacklogResult(
        jobs=len(inputs),
        span_s=end - start,
        busy_s=busy_seconds(windows, start, end),
        execution_median_s=statistics.median(hi - lo for lo, hi in windows),
    )


async def measure(
    *,
    comfy_host: str,
    comfyui_path: str | None,
    make_job: Callable[[str, int], dict[str, Any]],
    kinds: list[str],
    depths: list[int],
    jobs: int,
    logs: Path,
) -> dict[tuple[str, int], BacklogResult]:
    """For each depth, one endpoint with one worker; for each kind, a warm-up job, then the backlog."""
    results: dict[tuple[str, int], BacklogResult] = {}
    async with HistoryTap(comfy_host) as tap:
        hop_ms = await tap.hop_cost_ms()
        print(f"  (the history tap adds {hop_ms:.2f} ms per request, median)", flush=True)
        seed = int(time.time()) % 1_000_000 * 1000
        for depth in depths:
            args = ["comfy_worker", "serve", "--comfy-host", tap.address, "--workers", "1", "--port", "0"]
            args += ["--quiet", *(["--comfyui-path", comfyui_path] if comfyui_path else [])]
            env = {"COMFY_PIPELINE_DEPTH": str(depth)}
            process, url = await asyncio.to_thread(
                start_module,
                args,
                r"listening on (http://\S+) .*1 worker\(s\) ready",
                logs / f"serve{depth}.log",
                env,
            )
            try:
                api = f"{url}/v2/local"
                for kind in kinds:
                    seed += 10_000
                    await run_backlog(api, tap, [make_job(kind, seed - 1)])  # warm-up: not counted
                    inputs = [make_job(kind, seed + index) for index in range(jobs)]
                    results[kind, depth] = await run_backlog(api, tap, inputs)
            finally:
                await asyncio.to_thread(stop_module, process)
    return results


def report(results: dict[tuple[str, int], BacklogResult], kinds: list[str], depths: list[int]) -> None:
    print(f"  {'job':6} {'depth':>5} {'execution (median)':>19} {'jobs/s':>7} {'busy share':>11} {'span':>8}")
    for kind in kinds:
        for depth in depths:
            result = results[kind, depth]
            baseline = "  baseline" if depth == 1 and len(depths) > 1 else ""
            print(
                f"  {kind if depth == depths[0] else '':6} {depth:>5} {result.execution_median_s * 1000:>16.0f} ms "
                f"{result.jobs_per_s:>7.2f} {result.busy_share:>11.2f} {result.span_s:>7.1f}s{baseline}"
            )
    print(
        "  (targets: busy share >= 0.95 for the long jobs at depth 2, >= 0.80 for the short ones at the depth"
        " docs/throughput.md gives for ~0.1 s jobs, e.g. --depths 14 2 1)"
    )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"  (load average at the end: {load} on {os.cpu_count()} CPUs: other work slows ComfyUI too)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20, help="jobs in each backlog (default 20)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 1], help="COMFY_PIPELINE_DEPTH values")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="backlog-bench-") as tmp:
        logs = Path(tmp)
        comfy_host = os.environ.get("COMFY_HOST")
        if comfy_host:
            print(
                f"backlog of {args.jobs} jobs, 1 SDK worker, ComfyUI at {comfy_host} (EmptyImage -> ImageBlur):"
            )
            results = asyncio.run(
                measure(
                    comfy_host=comfy_host,
                    comfyui_path=os.environ.get("COMFYUI_PATH"),
                    make_job=blur_job,
                    kinds=args.kinds,
                    depths=args.depths,
                    jobs=args.jobs,
                    logs=logs,
                )
            )
        else:
            root = logs / "comfy"
            (root / "models" / "checkpoints").mkdir(parents=True)
            (root / "models" / "checkpoints" / "bench.safetensors").write_bytes(b"\0")
            server, server_url = start_module(
                ["comfy_testserver", "--root", str(root), "--port", "0", "--step-delay-s", str(STEP_S)],
                r"listening on (http://\S+)",
                logs / "comfy.log",
            )
            try:
                steps = ", ".join(f"{kind} {TEST_SERVER_STEPS[kind]}" for kind in args.kinds)
                print(
                    f"backlog of {args.jobs} jobs, 1 SDK worker, ComfyUI test server "
                    f"(KSampler steps of {STEP_S * 1000:.0f} ms: {steps}):"
                )
                results = asyncio.run(
                    measure(
                        comfy_host=server_url.removeprefix("http://"),
                        comfyui_path=str(root),
                        make_job=sampler_job,
                        kinds=args.kinds,
                        depths=args.depths,
                        jobs=args.jobs,
                        logs=logs,
                    )
                )
            finally:
                stop_module(server)
        report(results, args.kinds, args.depths)


if __name__ == "__main__":
    main()
