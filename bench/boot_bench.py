"""Container boot benchmarks, no Docker or GPU needed (run: ``python -m bench.boot_bench``).

1. Boot overhead of scripts/start.sh (serverless mode) with a stub ComfyUI that starts answering
   after a fixed delay: the time from "ComfyUI answers" (the stub notes when it starts listening)
   to "handler exec'd" (the stub python notes when ``python -m handler`` is run). Baselines in
   the same run, same stubs and delays: the usual ``until curl ...; do sleep 1; done`` loop, and
   the same loop with ``sleep 0.05``.
2. download_models.sh fetching N files from a loopback server, against sequential ``curl`` of the
   same files (without and with ``sha256sum``), and a re-run of download_models.sh (which must
   download nothing). The server gives each connection a first-byte latency and a bandwidth cap,
   as a CDN does; ``--rate-mib 0`` removes the cap to show the raw overhead.

Stubs and the server are the test suite's (testkit/stubs.py, testkit/fileserver.py).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from testkit.fileserver import Fault, FileServer
from testkit.helpers import payload, sha256, write_manifest
from testkit.stubs import SCRIPTS, StubBox

REPO = Path(__file__).resolve().parents[1]

SLEEP_LOOP = """\
set -euo pipefail
mkdir -p "$(dirname "$COMFY_LOG_FILE")"
python "$COMFYUI_PATH/main.py" --listen 127.0.0.1 --port "$COMFY_PORT" >"$COMFY_LOG_FILE" 2>&1 &
until curl -fsS -o /dev/null "http://127.0.0.1:$COMFY_PORT/system_stats"; do sleep {interval}; done
exec python -m handler
"""


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def _stats(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return (
        f"  {label:34} median {_ms(statistics.median(ordered))}   p90 {_ms(p90)}   "
        f"max {_ms(ordered[-1])}   (n={len(ordered)})"
    )


def bench_boot(runs: int, base_delay_s: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-boot-") as tmp:
        root = Path(tmp)
        scripts = {}
        for name, interval in (("sleep1", "1"), ("sleep005", "0.05")):
            scripts[name] = root / f"baseline_{name}.sh"
            scripts[name].write_text(SLEEP_LOOP.format(interval=interval))
        candidates: dict[str, str] = {
            "start.sh (bash /dev/tcp, 20 ms)": str(SCRIPTS / "start.sh"),
            "curl + sleep 0.05 loop": str(scripts["sleep005"]),
            "curl + sleep 1 loop (baseline)": str(scripts["sleep1"]),
        }
        ready_to_handler: dict[str, list[float]] = {name: [] for name in candidates}
        launch_to_handler: dict[str, list[float]] = {name: [] for name in candidates}
        rng = random.Random(7)
        for run in range(runs):
            # A different ComfyUI start-up time each run (same for every candidate), so a poll
            # loop's phase does not flatter or punish it.
            delay = base_delay_s + rng.random()
            for name, script in candidates.items():
                box = StubBox(root / f"run{run}-{abs(hash(name))}")
                try:
                    env = box.env(STUB_COMFY_DELAY_S=f"{delay:.3f}")
                    launched = time.time()
                    result = box.run("serverless", env=env, script=script, timeout=30)
                    if result.returncode != 0:
                        raise RuntimeError(f"{name} failed: {result.stderr}")
                    handler_at = float(box.read("handler_exec_time"))
                    ready_at = float(box.read("comfy_ready_time"))
                    ready_to_handler[name].append(handler_at - ready_at)
                    launch_to_handler[name].append(handler_at - launched - delay)
                finally:
                    box.close()
        window = f"{base_delay_s:g}-{base_delay_s + 1:g} s"
        print(f"1. ComfyUI ready -> handler exec'd ({runs} boots, ComfyUI ready after {window})")
        for name in candidates:
            print(_stats(name, ready_to_handler[name]))
        print("   launch -> handler, minus ComfyUI's own start-up delay (stub Python start included):")
        for name in candidates:
            print(_stats(name, launch_to_handler[name]))


def _timed(action: Callable[[], subprocess.CompletedProcess[str]]) -> float:
    started = time.monotonic()
    result = action()
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"{result.args}: {result.stderr[-2000:]}")
    return elapsed


def bench_downloads(
    files: int, size_mib: float, rate_mib: float, latency_ms: float, concurrency: int
) -> None:
    size = int(size_mib * 2**20)
    fault = Fault(
        first_byte_delay_s=latency_ms / 1000, rate_bytes_per_s=rate_mib * 2**20 if rate_mib else None
    )
    with tempfile.TemporaryDirectory(prefix="bench-dl-") as tmp, FileServer() as server:
        root = Path(tmp)
        models = []
        for index in range(files):
            name = f"/m/model_{index:02d}.safetensors"
            data = payload(size)
            server.files[name] = data
            server.faults[name] = fault
            models.append({"url": server.url(name), "folder": "loras", "sha256": sha256(data)})
        manifest = write_manifest(root / "manifest.toml", models)
        env = {
            "PATH": os.environ["PATH"],
            "PYTHON": sys.executable,
            "PROVISION_MANIFEST": str(manifest),
            "MODELS_ROOT": str(root / "models"),
            "COMFYUI_PATH": str(root / "comfyui"),
            "DOWNLOAD_ALL": "true",
            "DOWNLOAD_CONCURRENCY": str(concurrency),
            "DOWNLOAD_PROGRESS_INTERVAL_S": "3600",
        }

        def ours() -> subprocess.CompletedProcess[str]:
            command = ["bash", str(SCRIPTS / "download_models.sh")]
            return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)

        def curl(verify: bool) -> Callable[[], subprocess.CompletedProcess[str]]:
            out = root / ("curl-verify" if verify else "curl")
            out.mkdir()
            lines = [f'curl -fsS -o "{out}/{i}" "{m["url"]}"' for i, m in enumerate(models)]
            if verify:
                lines += [
                    f'echo "{m["sha256"]}  {out}/{i}" | sha256sum --check --quiet'
                    for i, m in enumerate(models)
                ]
            script = root / f"{out.name}.sh"
            script.write_text("set -euo pipefail\n" + "\n".join(lines) + "\n")
            return lambda: subprocess.run(
                ["bash", str(script)], capture_output=True, text=True, timeout=600, check=False
            )

        total = files * size
        cap = f"{rate_mib:g} MiB/s per connection" if rate_mib else "no bandwidth cap"
        print(
            f"2. {files} files x {size_mib:g} MiB = {total / 2**20:.0f} MiB from loopback "
            f"({latency_ms:g} ms to first byte, {cap})"
        )
        rows = [
            ("sequential curl (baseline)", _timed(curl(False))),
            ("sequential curl + sha256sum", _timed(curl(True))),
            (f"download_models.sh (x{concurrency}, verified)", _timed(ours)),
        ]
        requests_before = len(server.requests)
        rows.append(("download_models.sh re-run", _timed(ours)))
        rerun_requests = len(server.requests) - requests_before
        baseline = rows[0][1]
        for label, seconds in rows:
            speed = (
                f"{total / 2**20 / seconds:8.1f} MiB/s"
                if "re-run" not in label
                else f"{rerun_requests:4d} requests"
            )
            print(f"  {label:36} {seconds:7.2f} s   {speed}   {baseline / seconds:5.1f}x the baseline")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10, help="boots per candidate (default 10)")
    parser.add_argument("--ready-delay", type=float, default=1.0, help="stub ComfyUI start-up, s (+0..1 s)")
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--size-mib", type=float, default=8.0)
    parser.add_argument("--rate-mib", type=float, default=40.0, help="per-connection cap; 0 = none")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=4, help="DOWNLOAD_CONCURRENCY (default 4)")
    parser.add_argument("--skip-boot", action="store_true")
    parser.add_argument("--skip-downloads", action="store_true")
    args = parser.parse_args()
    print(
        textwrap.dedent(f"""\
        boot_bench: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs
    """)
    )
    if not args.skip_boot:
        bench_boot(args.runs, args.ready_delay)
        print()
    if not args.skip_downloads:
        bench_downloads(args.files, args.size_mib, args.rate_mib, args.latency_ms, args.concurrency)
        if args.rate_mib:
            bench_downloads(args.files, args.size_mib, 0, 0, args.concurrency)


if __name__ == "__main__":
    main()
