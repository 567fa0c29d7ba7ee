"""Command line: run the fake ComfyUI in the foreground until SIGINT/SIGTERM.

    python -m comfy_testserver --root DIR [--profile 0.3.64|current] [--host 127.0.0.1]
        [--port 8188] [--node-delay-s F] [--step-delay-s F] [--startup-delay-s F]
        [--model-load-delay-s F] [--loading-activity] [--max-upload-size MB] [--exit-on-execute]

Prints `comfy_testserver listening on http://HOST:PORT` once the port accepts connections.
`--exit-on-execute` ends the process with `os._exit(1)` as the first node starts executing, for
tests of a ComfyUI that dies mid-job.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from .behaviour import Behaviour
from .harness import ComfyTestServer
from .profiles import DEFAULT_PROFILE, PROFILES

__all__ = ["main"]


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m comfy_testserver", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", type=Path, required=True, help="install directory (input/, output/, models/)"
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=DEFAULT_PROFILE,
        help="the ComfyUI version to speak: 0.3.64 (recorded) or current (PROFILES.md)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--node-delay-s", type=float, default=0.0)
    parser.add_argument("--step-delay-s", type=float, default=0.0)
    parser.add_argument("--startup-delay-s", type=float, default=0.0)
    parser.add_argument(
        "--model-load-delay-s", type=float, default=0.0, help="paid once per model file (first use)"
    )
    parser.add_argument(
        "--loading-activity",
        action="store_true",
        help="current profile: progress_state carries activity=loading during model loads (PR #16202)",
    )
    parser.add_argument(
        "--max-upload-size", type=float, default=100.0, help="MB, as ComfyUI's --max-upload-size"
    )
    parser.add_argument(
        "--browser-render-timeout-s",
        type=float,
        default=30.0,
        help="how long GaussianViewer waits for a browser's render (the real node: 30)",
    )
    parser.add_argument(
        "--exit-on-execute", action="store_true", help="os._exit(1) when the first node starts executing"
    )
    return parser.parse_args(argv)


def _exit_now(prompt_id: str, node_id: str) -> None:
    logging.getLogger(__name__).warning("--exit-on-execute: dying at node %s of %s", node_id, prompt_id)
    sys.stderr.flush()
    os._exit(1)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    behaviour = Behaviour(
        node_delay_s=args.node_delay_s,
        step_delay_s=args.step_delay_s,
        startup_delay_s=args.startup_delay_s,
        model_load_delay_s=args.model_load_delay_s,
        loading_activity=args.loading_activity,
        browser_render_timeout_s=args.browser_render_timeout_s,
    )
    server = ComfyTestServer(
        args.root,
        args.host,
        args.port,
        behaviour,
        profile=args.profile,
        max_upload_mb=args.max_upload_size,
        on_node_start=_exit_now if args.exit_on_execute else None,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    server.start()
    # Waiting in short slices keeps the main thread responsive to signals during a startup delay.
    while not stop.is_set() and not server.wait_until_listening(0.1):
        if not server.alive:
            return 1
    if not stop.is_set():
        print(f"comfy_testserver listening on {server.url}", flush=True)
    while not stop.wait(0.2):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
