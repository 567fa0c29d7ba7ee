"""Time to error per fault: kill, freeze, resume ComfyUI, kill its prompt runner, a node past the
deadline, a silent WebSocket, out of memory, each during one worker job.

    python -m bench.faults_bench [--deadline-s 15] [--real] [--only NAME ...]

Each fault gets a fresh ComfyUI process (the test server; with --real also a copy of the real
ComfyUI named by REAL_COMFYUI_DIR and REAL_COMFYUI_PYTHON) and one job through the handler
(`Worker.handle`) with the product's default waits (COMFY_HTTP_TIMEOUT_S 30, COMFY_WS_IDLE_S 5,
COMFY_INTERRUPT_SETTLE_S 10); only the job's deadline is set. The baseline row is the same job
without a fault. Columns: the error code; what the result says about the prompt and where it
really was just after (GET /queue; "unknown" when ComfyUI cannot answer); refresh_worker; seconds
from the fault to the result (for the stuck node: from the deadline); the code of a job sent next.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
from pathlib import Path

from testkit.comfy_process import ComfyProcess, RealComfy, real_comfy_from_env
from testkit.faults import FAULTS, FaultReport, report_table, run_fault


async def _one(name: str, workdir: Path, real: RealComfy | None, deadline_s: float) -> FaultReport:
    comfy = ComfyProcess.real(workdir, real) if real else ComfyProcess.test_server(workdir)
    comfy.start(300.0 if real else 30.0)
    try:
        return await run_fault(FAULTS[name], comfy, deadline_s=deadline_s, next_deadline_s=deadline_s)
    finally:
        comfy.stop()


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deadline-s", type=float, default=15.0, help="each job's timeout (default 15)")
    parser.add_argument(
        "--real", action="store_true", help="also against REAL_COMFYUI_DIR/REAL_COMFYUI_PYTHON"
    )
    parser.add_argument("--only", nargs="*", choices=sorted(FAULTS), help="run these faults only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    targets: list[RealComfy | None] = [None]
    if args.real:
        real = real_comfy_from_env(os.environ)
        if real is None:
            parser.error("--real needs REAL_COMFYUI_DIR (a ComfyUI tree) and REAL_COMFYUI_PYTHON")
        targets.append(real)
    names = args.only or list(FAULTS)
    for target in targets:
        kind = f"real ComfyUI ({target.source})" if target else "ComfyUI test server"
        print(f"\n{kind}, job deadline {args.deadline_s:g} s, default waits", flush=True)
        reports = []
        for name in names:
            with tempfile.TemporaryDirectory(prefix="faults-bench-") as workdir:
                reports.append(await _one(name, Path(workdir), target, args.deadline_s))
            print(f"  done: {name}", flush=True)
        print(report_table(reports), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
