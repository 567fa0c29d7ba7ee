"""GaussianViewer on serverless: job time with the viewer against the same job without it
(run: ``python -m bench.gaussian_bench``).

The user's pipeline (EmptyImage photo -> LoadSharpModel -> SharpPredict) through ``Worker.handle``
against the ComfyUI test server, whose GaussianViewer waits 30 s for a browser like the real node:

- baseline: the pipeline without a viewer;
- preview viewer: + GaussianViewer whose outputs feed nothing (the worker leaves it out);
- used viewer: + GaussianViewer -> SaveImage (the worker answers its render request at once);
- unhandled (once, ``--unhandled``): the used viewer with the worker's handling switched off,
  i.e. what every job cost before: it waits out the node's 30 s.

Target: each viewer variant within 1 s of the baseline (median over ``--jobs`` jobs).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from comfy_testserver import Behaviour, ComfyTestServer
from handler.config import Settings
from handler.worker import Worker

Workflow = dict[str, dict[str, Any]]


def pipeline(viewer: str) -> Workflow:
    workflow: Workflow = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 96, "height": 64, "batch_size": 1, "color": 0x336699},
        },
        "2": {"class_type": "LoadSharpModel", "inputs": {"device": "cpu"}},
        "3": {
            "class_type": "SharpPredict",
            "inputs": {"model": ["2", 0], "image": ["1", 0], "output_prefix": "bench"},
        },
    }
    if viewer != "none":
        workflow["4"] = {
            "class_type": "GaussianViewer",
            "inputs": {"ply_path": ["3", 0], "extrinsics": ["3", 1], "intrinsics": ["3", 2]},
        }
    if viewer == "used":
        workflow["5"] = {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "view"}}
    return workflow


async def time_jobs(worker: Worker, workflow: Workflow, jobs: int) -> list[float]:
    times = []
    for index in range(jobs):
        started = time.perf_counter()
        result = await worker.handle({"id": f"bench-{index}", "input": {"workflow": workflow}})
        times.append(time.perf_counter() - started)
        if "error" in result:
            raise SystemExit(f"job failed: {result['error']}")
        if not any(f["filename"].endswith(".ply") for f in result["files"]):
            raise SystemExit("job returned no .ply")
    return times


async def main(jobs: int, unhandled: bool, grid: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "comfyui"
        with ComfyTestServer(
            root=root, behaviour=Behaviour(browser_render_timeout_s=30.0, sharp_grid=grid)
        ) as server:
            (root / "models" / "sharp").mkdir(parents=True)
            (root / "models" / "sharp" / "sharp_2572gikvuh.pt").write_bytes(b"\0")
            settings = Settings.from_env({"COMFY_HOST": server.address, "COMFYUI_PATH": str(root)})
            worker = Worker(settings)
            await time_jobs(worker, pipeline("none"), 1)  # warm-up
            rows = {
                name: await time_jobs(worker, pipeline(name), jobs) for name in ("none", "preview", "used")
            }
            if unhandled:
                worker.browser_nodes.clear()
                rows["unhandled"] = await time_jobs(worker, pipeline("used"), 1)
    base = statistics.median(rows["none"])
    print(f"splat of {2 * grid * grid} gaussians, {jobs} jobs per row, median job time (s)")
    print(f"{'workflow':<42}{'median':>9}{'max':>9}{'vs baseline':>13}")
    labels = {
        "none": "baseline: no viewer",
        "preview": "GaussianViewer, preview only (left out)",
        "used": "GaussianViewer -> SaveImage (answered)",
        "unhandled": "GaussianViewer, handling off (before)",
    }
    for name, times in rows.items():
        median = statistics.median(times)
        print(f"{labels[name]:<42}{median:>9.3f}{max(times):>9.3f}{median - base:>+13.3f}")
    worst = max(statistics.median(rows[n]) - base for n in ("preview", "used"))
    print(f"target: viewer within 1 s of baseline -> {'met' if worst < 1.0 else 'MISSED'} (+{worst:.3f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--grid", type=int, default=128, help="SharpPredict writes 2*grid^2 gaussians")
    parser.add_argument(
        "--unhandled", action="store_true", help="also time one job without the handling (30 s)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.unhandled, args.grid))
