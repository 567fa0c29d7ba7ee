"""Big input by URL vs base64 (run: ``python -m bench.input_url_bench [--mb 500]``).

One job each way, through the whole worker (``Worker.handle``) against the ComfyUI test server
(its upload limit raised, as ``--max-upload-size`` does for ComfyUI), each in a fresh process so
its RSS high-water mark is that job's alone:

- base64: the job JSON (the input base64-encoded, as a client must send it without URLs) is read
  and parsed, as the RunPod SDK does with the request body, then handled;
- url: the job names the file on a local HTTP server; the worker streams it to disk and uploads it.

Prints wall time and peak extra RSS of both. RunPod itself would refuse the base64 job (its /run
body limit is 10 MB): the base64 line is the in-process cost only, the baseline to beat.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ._common import free_port, peak_rss_mb

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 255}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "bench_in"}},
}
CHUNK = 8 * 1024 * 1024


def make_input(path: Path, size: int) -> None:
    """A file whose bytes say PNG, of ``size`` bytes (random-ish, so nothing compresses it)."""
    block = os.urandom(CHUNK)
    with path.open("wb") as sink:
        sink.write(b"\x89PNG\r\n\x1a\n")
        written = 8
        while written < size:
            piece = block[: min(CHUNK, size - written)]
            sink.write(piece)
            written += len(piece)


def write_base64_job(source: Path, job_path: Path) -> None:
    """The job JSON a client would send with the file inline, written without holding it in memory."""
    with source.open("rb") as src, job_path.open("w", encoding="ascii") as out:
        out.write(json.dumps({"workflow": WORKFLOW})[:-1] + ', "images": [{"name": "big.png", "image": "')
        while chunk := src.read(3 * 1024 * 1024):  # a multiple of 3: no padding mid-stream
            out.write(base64.b64encode(chunk).decode("ascii"))
        out.write('"}]}')


def serve(root: str, source: str) -> None:
    """The ComfyUI test server and a file server, in this process until stdin closes."""
    from aiohttp import web

    from comfy_testserver.harness import ComfyTestServer

    file_port = free_port()
    ready = threading.Event()

    def files() -> None:
        async def send(request: web.Request) -> web.FileResponse:
            return web.FileResponse(source)

        app = web.Application()
        app.router.add_get("/big.png", send)
        loop = asyncio.new_event_loop()
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", file_port).start())
        ready.set()
        loop.run_forever()

    threading.Thread(target=files, daemon=True).start()
    ready.wait(10)
    with ComfyTestServer(root=Path(root), max_upload_mb=4096) as server:  # ComfyUI: --max-upload-size 4096
        print(f"listening {server.address} http://127.0.0.1:{file_port}/big.png", flush=True)
        sys.stdin.read()


def child(mode: str, comfy: str, root: str, source: str) -> None:
    """One job in a fresh process; prints a JSON line with its time and peak extra RSS."""
    from handler.config import Settings
    from handler.worker import Worker

    settings = Settings.from_env(
        {
            "COMFY_HOST": comfy,
            "COMFYUI_PATH": root,
            "COMFY_LOG_LEVEL": "WARNING",
            "COMFY_MAX_INPUT_BYTES": str(4 * 1024**3),
            "INPUT_URL_ALLOWLIST": "127.0.0.1",
        }
    )
    worker = Worker(settings)
    before = peak_rss_mb()
    started = time.perf_counter()
    if mode == "base64":
        with open(source, encoding="ascii") as handle:
            job_input: Any = json.load(handle)
    else:
        job_input = {"workflow": WORKFLOW, "images": [{"name": "big.png", "url": source}]}
    result = asyncio.run(worker.handle({"id": f"bench-{mode}", "input": job_input}))
    elapsed = time.perf_counter() - started
    if "error" in result:
        raise SystemExit(f"{mode} job failed: {result['error']}")
    print(json.dumps({"seconds": elapsed, "peak_extra_mb": peak_rss_mb() - before, **result["timings"]}))


def run_child(mode: str, comfy: str, root: Path, source: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.input_url_bench", "--child", mode, comfy, str(root), source],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=int, default=500, help="input size in MB (default 500)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.serve:
        serve(*args.serve)
        return
    with tempfile.TemporaryDirectory(prefix="bench-input-url-") as tmp:
        root, source, job = Path(tmp) / "comfyui", Path(tmp) / "big.png", Path(tmp) / "job.json"
        make_input(source, args.mb * 1_000_000)
        write_base64_job(source, job)
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.input_url_bench", "--serve", str(root), str(source)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert server.stdout is not None
            line = server.stdout.readline().split()
            if not line or line[0] != "listening":
                raise RuntimeError(f"servers did not start: {line!r}")
            comfy, url = line[1], line[2]
            by_url = run_child("url", comfy, root, url)
            inline = run_child("base64", comfy, root, str(job))
        finally:
            assert server.stdin is not None
            server.stdin.close()
            server.wait(20)
    print(f"{args.mb} MB input, one job through the worker against the ComfyUI test server:")
    for name, row in (("by URL", by_url), ("base64 (baseline)", inline)):
        print(
            f"  {name:18} whole job {row['seconds']:6.2f} s   inputs stage {row['upload_ms'] / 1000:6.2f} s   "
            f"peak extra RSS {row['peak_extra_mb']:8.1f} MB"
        )
    print(
        f"  time ratio base64/URL {inline['seconds'] / by_url['seconds']:.2f}x   memory ratio "
        f"{inline['peak_extra_mb'] / max(by_url['peak_extra_mb'], 1.0):.1f}x"
    )


if __name__ == "__main__":
    main()
