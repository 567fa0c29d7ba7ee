"""``comfy-worker``: run workflows on a RunPod endpoint (real or local), and serve a local one.

    comfy-worker serve --comfy-host 127.0.0.1:8188 --workers 2
    comfy-worker run workflows/simple_test.json --image input.png --out outputs/
    comfy-worker run flow.json --image-url photo.png=https://example.com/p.png --out outputs/
    comfy-worker status <job id> | cancel <job id> | health
    comfy-worker check workflows/sharp_splat.json [--comfy-url http://127.0.0.1:8188]

Every failure is one clear line on stderr and a non-zero exit (2 for usage, 1 for the rest).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from .client import DEFAULT_BASE_URL, EndpointClient, EndpointError, JobStatus, file_input, url_input

__all__ = ["main", "progress_text"]

EXIT_FAILED = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A problem the user can fix; printed as one line."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"comfy-worker: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except EndpointError as exc:
        print(f"comfy-worker: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="comfy-worker", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve RunPod's API locally with real worker processes")
    serve.add_argument(
        "--comfy-host",
        action="append",
        default=None,
        help="ComfyUI host:port; repeat to give each worker its own (default $COMFY_HOST or 127.0.0.1:8188)",
    )
    serve.add_argument("--comfyui-path", help="ComfyUI's folder for the workers (default $COMFYUI_PATH)")
    serve.add_argument("--workers", type=_positive_int, default=1)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--endpoint-id", default="local")
    serve.add_argument(
        "--api-key",
        default=os.environ.get("COMFY_WORKER_API_KEY"),
        help="require 'Authorization: Bearer KEY' (default $COMFY_WORKER_API_KEY; none: no auth)",
    )
    serve.add_argument("--retention-s", type=float, default=1800.0, help="keep finished jobs this long")
    serve.add_argument("--quiet", action="store_true", help="do not echo the workers' logs")
    serve.add_argument(
        "--webhook-allow",
        default="",
        help="comma-separated hosts/IPs/CIDRs that webhooks may call although not public "
        "(e.g. 127.0.0.1 for an app on this machine); by default only public addresses",
    )
    serve.add_argument(
        "--local-s3",
        action="store_true",
        help="start an in-memory S3 bucket on loopback (moto) and send the workers' uploads there, "
        "so outputs too big to return inline (a 66 MB splat) come back as s3_url",
    )
    serve.add_argument(
        "--local-s3-port", type=int, default=0, help="port for --local-s3 (default: any free one)"
    )
    serve.set_defaults(func=_serve)

    def endpoint_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--endpoint", help="endpoint id (default $RUNPOD_ENDPOINT_ID)")
        sub.add_argument("--api-key", help="API key (default $RUNPOD_API_KEY)")
        sub.add_argument(
            "--base-url",
            help=f"API base (default $RUNPOD_ENDPOINT_BASE_URL or {DEFAULT_BASE_URL}; "
            "local: http://127.0.0.1:8000/v2)",
        )

    run = commands.add_parser("run", help="submit a workflow, show progress, save its outputs")
    run.add_argument(
        "workflow", type=Path, help="API-format workflow JSON (ComfyUI: Workflow > Export (API))"
    )
    run.add_argument(
        "--image",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="input file, uploaded under its file name for LoadImage (repeatable)",
    )
    run.add_argument(
        "--image-url",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="input the worker downloads itself (http(s) or s3://bucket/key), stored as NAME for "
        "LoadImage; for files over RunPod's 10 MB request limit (repeatable)",
    )
    run.add_argument(
        "--out", type=Path, default=Path("outputs"), help="folder for the outputs (default ./outputs)"
    )
    run.add_argument("--timeout", type=float, help="the job's deadline in seconds (input.timeout)")
    run.add_argument("--output", choices=("base64", "s3", "auto"), help="where outputs go (input.output)")
    run.add_argument("--include-temp", action="store_true", help="also return PreviewImage outputs")
    run.add_argument(
        "--convert", choices=("spz", "splat"), help="return Gaussian-splat .ply outputs as SPZ or .splat"
    )
    run.add_argument("--keep-original", action="store_true", help="with --convert: return the .ply too")
    run.add_argument("--wait-timeout", type=float, default=None, help="stop waiting after this many seconds")
    run.add_argument(
        "--s3-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="JSON file with RunPod's s3Config ({accessId, accessSecret, bucketName, endpointUrl}): "
        "this job's outputs go to that bucket (default $COMFY_WORKER_S3_CONFIG)",
    )
    endpoint_options(run)
    run.set_defaults(func=_run)

    for name, func, text in (("status", _status, "show a job's status"), ("cancel", _cancel, "cancel a job")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("job_id")
        endpoint_options(sub)
        sub.set_defaults(func=func)
    health = commands.add_parser("health", help="show the endpoint's job and worker counts")
    endpoint_options(health)
    health.set_defaults(func=_health)

    check = commands.add_parser(
        "check", help="before deploying: are the workflow's nodes and models in the image?"
    )
    check.add_argument("workflow", type=Path, help="API-format workflow JSON")
    check.add_argument("--comfy-url", help="check against a running ComfyUI's /object_info instead")
    check.add_argument(
        "--node-list",
        type=Path,
        help="node list from `python -m provision record-nodes` (default: the one for the pinned versions)",
    )
    check.add_argument("--manifest", type=Path, help="manifest.toml (default: the repo's)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(func=_check)
    return parser


def _check(args: argparse.Namespace) -> int:
    from .preflight import (
        DEFAULT_NODE_LIST,
        check_workflow,
        load_workflow,
        provided_by_object_info,
        provided_offline,
    )

    try:
        workflow = load_workflow(args.workflow)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {args.workflow}: {exc}") from None
    if args.comfy_url:
        provided = provided_by_object_info(_object_info(args.comfy_url), args.comfy_url)
    else:
        node_list = args.node_list or DEFAULT_NODE_LIST
        manifest = args.manifest or Path(__file__).resolve().parents[1] / "manifest.toml"
        try:
            provided = provided_offline(
                json.loads(node_list.read_text(encoding="utf-8")), manifest.read_text(encoding="utf-8")
            )
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read the node list {node_list} or manifest {manifest}: {exc}") from None
    report = check_workflow(workflow, provided)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print("\n".join(report.lines()))
    return 0 if report.ok else EXIT_FAILED


def _object_info(url: str) -> dict[str, Any]:
    import urllib.error
    import urllib.request

    target = url.rstrip("/") + "/object_info"
    try:
        with urllib.request.urlopen(target, timeout=60) as response:
            data = json.loads(response.read())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {target} ({exc}); is ComfyUI running there?") from None
    if not isinstance(data, dict):
        raise CliError(f"{target} did not answer with ComfyUI's node definitions")
    return data


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _client(args: argparse.Namespace) -> EndpointClient:
    return EndpointClient.from_env(endpoint_id=args.endpoint, api_key=args.api_key, base_url=args.base_url)


# --- serve ---------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    try:
        from .endpoint.local_s3 import LocalS3Unavailable
        from .endpoint.serve import serve
        from .endpoint.server import EndpointConfig
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith(__package__ or "comfy_worker"):
            raise
        # The worker image leaves the emulator out (.dockerignore): it is a development tool.
        raise CliError(
            "the local endpoint (comfy-worker serve) is not installed here; the worker image leaves "
            "it out. Run it from a checkout: pip install -e . && comfy-worker serve"
        ) from None
    from handler.config import ConfigError, parse_allowlist

    logging.basicConfig(
        level=os.environ.get("COMFY_WORKER_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s endpoint: %(message)s",
    )
    hosts = tuple(args.comfy_host or [os.environ.get("COMFY_HOST", "127.0.0.1:8188")])
    comfyui_path = args.comfyui_path or os.environ.get("COMFYUI_PATH") or None
    if comfyui_path is None:
        comfyui_path = str(_find_comfyui_path(hosts))
        print(f"ComfyUI's folder (asked from {hosts[0]}): {comfyui_path}", flush=True)
    elif not Path(comfyui_path, "output").is_dir():
        raise CliError(
            f"--comfyui-path {comfyui_path} has no output/ folder: give the folder ComfyUI runs in"
        )
    env = {"COMFYUI_PATH": comfyui_path}
    try:
        webhook_allow = parse_allowlist(args.webhook_allow, "--webhook-allow")
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    config = EndpointConfig(
        endpoint_id=args.endpoint_id,
        api_key=args.api_key,
        workers=args.workers,
        comfy_hosts=hosts,
        retention_s=args.retention_s,
        worker_env=env,
        echo_worker_logs=not args.quiet,
        webhook_allow=webhook_allow,
    )
    try:
        asyncio.run(
            serve(
                config,
                host=args.host,
                port=args.port,
                local_s3_port=args.local_s3_port if args.local_s3 else None,
            )
        )
    except LocalS3Unavailable as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    return 0


def _find_comfyui_path(hosts: tuple[str, ...]) -> Path:
    """The one folder all the ComfyUIs run in (each worker reads it as COMFYUI_PATH)."""
    from .endpoint.comfy_folder import ComfyFolderUnknown, find_comfyui_path

    try:
        folders = {find_comfyui_path(host) for host in hosts}
    except ComfyFolderUnknown as exc:
        raise CliError(str(exc)) from None
    if len(folders) > 1:
        names = ", ".join(sorted(str(f) for f in folders))
        raise CliError(f"the ComfyUIs run in different folders ({names}): start one endpoint per folder")
    return folders.pop()


# --- run -----------------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    job_input = _job_input(args)
    s3_config = _s3_config(args.s3_config or os.environ.get("COMFY_WORKER_S3_CONFIG") or None)
    client = _client(args)
    job_id = client.run(job_input, s3Config=s3_config)
    print(f"submitted job {job_id} to {client.url}", file=sys.stderr)
    bar = _ProgressBar(sys.stderr)
    try:
        final = client.wait(job_id, timeout_s=args.wait_timeout, on_progress=bar.update)
    except KeyboardInterrupt:
        bar.close()
        client.cancel(job_id)
        print(
            f"cancelled job {job_id}: RunPod will not run or return it; if it had started, ComfyUI "
            "stops at the next interruptible point (an uninterruptible node runs to its end first)",
            file=sys.stderr,
        )
        return 130
    bar.finish(final)
    return _report(client, final, args.out)


def _job_input(args: argparse.Namespace) -> dict[str, Any]:
    from handler.errors import JobInputError
    from handler.job import JobLimits, parse_job_input

    if not args.workflow.is_file():
        raise CliError(f"workflow file {str(args.workflow)!r} not found")
    try:
        workflow = json.loads(args.workflow.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CliError(f"{args.workflow} is not valid JSON ({exc})") from None
    except OSError as exc:
        raise CliError(f"cannot read {args.workflow}: {exc.strerror}") from None
    extra: dict[str, Any] = {}
    if isinstance(workflow, dict) and isinstance(workflow.get("input"), dict):
        # A RunPod request body ({"input": {"workflow": ..., "images": ...}}), as the app accepts.
        body = workflow["input"]
        if not isinstance(body.get("workflow"), dict):
            raise CliError(f'{args.workflow} is a request body whose "input" has no "workflow" object')
        workflow = body["workflow"]
        extra = {k: v for k, v in body.items() if k != "workflow"}
    images = list(extra.pop("images", []) or [])
    for path in args.image:
        if not path.is_file():
            raise CliError(f"input file {str(path)!r} not found")
        images.append(file_input(path))
    for spec in args.image_url:
        name, sep, url = spec.partition("=")
        if not sep or not name.strip() or not url.strip():
            raise CliError(
                f"--image-url {spec!r} must look like NAME=URL, e.g. photo.png=https://example.com/p.png"
            )
        images.append(url_input(name.strip(), url.strip()))
    job_input: dict[str, Any] = {"workflow": workflow, **extra}
    if images:
        job_input["images"] = images
    if args.timeout is not None:
        job_input["timeout"] = args.timeout
    if args.output:
        job_input["output"] = args.output
    if args.include_temp:
        job_input["include_temp"] = True
    if args.keep_original and not args.convert:
        raise CliError("--keep-original only makes sense with --convert spz or --convert splat")
    if args.convert:
        job_input["convert"] = {"ply": args.convert, "keep_original": args.keep_original}
    try:  # the worker's own checks, so a bad file fails here with the same words, not after queueing
        parse_job_input(job_input, JobLimits(max_input_bytes=10**12, default_timeout_s=1.0))
    except JobInputError as exc:
        raise CliError(f"{args.workflow}: {exc.message}") from None
    return job_input


def _s3_config(path: Path | str | None) -> dict[str, Any] | None:
    """RunPod's ``s3Config`` from a JSON file, checked as the worker checks it (the secret stays in
    the file: nothing here prints it)."""
    from handler.errors import JobInputError
    from handler.job import parse_s3_config

    if path is None:
        return None
    file = Path(path)
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(
            f"s3Config file {str(file)!r} not found (--s3-config / COMFY_WORKER_S3_CONFIG)"
        ) from None
    except OSError as exc:
        raise CliError(f"cannot read the s3Config file {file}: {exc.strerror}") from None
    except ValueError as exc:
        raise CliError(f"the s3Config file {file} is not valid JSON ({exc})") from None
    try:
        parse_s3_config(raw, defaults=None)
    except JobInputError as exc:
        raise CliError(f"{file}: {exc.message}") from None
    return dict(raw)


def _report(client: EndpointClient, final: JobStatus, out: Path) -> int:
    timing = f"queued {final.delay_ms or 0} ms, ran {final.execution_ms or 0} ms"
    if not final.ok:
        reason = final.error or {
            "CANCELLED": "cancelled before it finished (a /cancel request, or the endpoint)",
            "TIMED_OUT": "stopped at the endpoint's execution timeout (policy.executionTimeout)",
        }.get(final.status, "the endpoint gave no error text")
        print(f"job {final.id} {final.status} ({timing}): {reason}", file=sys.stderr)
        return EXIT_FAILED
    output = final.output if isinstance(final.output, dict) else {}
    saved = client.save_outputs(output, out)
    print(f"job {final.id} COMPLETED ({timing})")
    for path in saved:
        print(f"  saved {path} ({path.stat().st_size} bytes)")
    for text in output.get("text", []):
        print(f"  text from node {text.get('node_id')}: {text.get('text')}")
    if not saved:
        print("  no outputs (a workflow that only previews needs --include-temp)")
    for problem in output.get("errors", []):
        print(f"  warning: {problem}")
    for note in output.get("notes", []):
        print(f"  note: {note}")
    timings = output.get("timings") or {}
    if timings:
        print("  timings: " + ", ".join(f"{k} {v}" for k, v in timings.items()))
    return 0


def progress_text(progress: dict[str, Any]) -> str:
    """The bar's words for one progress payload, e.g. ``running CheckpointLoaderSimple (node 1):
    loading model sd15.safetensors, 37 s``, ``running KSampler (node 5) step 7/20, 12 s`` or
    ``waiting: queued behind another job in this worker``."""
    text = str(progress.get("stage", ""))
    if progress.get("node_class"):
        text += f" {progress['node_class']} (node {progress.get('node')})"
    if progress.get("max_steps"):
        text += f" step {progress.get('step')}/{progress['max_steps']}"
    if progress.get("activity"):
        text += f": {progress['activity']}"
    if isinstance(progress.get("node_elapsed_s"), int | float):
        text += f", {progress['node_elapsed_s']:.0f} s"
    return text


class _ProgressBar:
    """One line, redrawn in place on a terminal; a line per change elsewhere (CI logs).

    Between the worker's updates (a node can run for minutes without one) the line keeps moving:
    on a terminal a spinner and the time since the last update are redrawn twice a second; in a
    log, a "still ..." line is added every 30 s.
    """

    WIDTH = 30
    SPINNER = "|/-\\"
    TICK_S = 0.5  # terminal redraw between updates
    QUIET_S = 30.0  # log line between updates

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._drawn = False
        self._started = self._changed = time.monotonic()
        self._percent = 0.0
        self._text = "waiting for the job"
        self._ticks = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="progress-bar", daemon=True)
        self._ticker.start()

    def finish(self, final: JobStatus) -> None:
        """A completed job ends the bar at 100%; any other end leaves it where it stopped."""
        self._stop.set()
        if final.ok:
            self._draw(100.0, "done")
        self.close()

    def update(self, status: JobStatus) -> None:
        progress = status.progress
        if progress is None:
            text = status.status
            percent = self._percent
        else:
            percent = float(progress.get("percent") or 0.0)
            text = progress_text(progress)
            if progress.get("stage") == "waiting":  # held by a worker, its prompt not started yet
                text = f"{status.status}, {text}"
        self._draw(percent, text)

    def _draw(self, percent: float, text: str) -> None:
        with self._lock:
            # Never backwards, whatever order the updates arrive in.
            self._percent = max(self._percent, min(percent, 100.0))
            self._text, self._changed = text, time.monotonic()
            self._write(self._line(" ", ""))

    def _tick(self) -> None:
        while not self._stop.wait(self.TICK_S if self._tty else self.QUIET_S):
            with self._lock:
                if self._stop.is_set():
                    return
                self._ticks += 1
                quiet = time.monotonic() - self._changed
                if self._tty:
                    spinner = self.SPINNER[self._ticks % len(self.SPINNER)]
                    self._write(self._line(spinner, f" ({quiet:.0f}s since the last update)"))
                else:
                    self._write(self._line("~", f" (still; {quiet:.0f}s since the last update)"))

    def _line(self, spinner: str, suffix: str) -> str:
        filled = int(self.WIDTH * self._percent / 100)
        elapsed = time.monotonic() - self._started
        bar = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}]"
        return f"{bar} {self._percent:5.1f}% {elapsed:5.0f}s {spinner} {self._text}{suffix}"

    def _write(self, line: str) -> None:
        if self._tty:
            width = max(40, shutil.get_terminal_size((100, 20)).columns - 1)
            self._stream.write("\r" + line.ljust(width)[:width])
            self._drawn = True
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self._drawn:
                self._stream.write("\n")
                self._stream.flush()
                self._drawn = False


# --- status, cancel, health ----------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    status = _client(args).status(args.job_id)
    print(json.dumps(_summary(status.raw), indent=2))
    return 0 if status.status != "FAILED" else EXIT_FAILED


def _cancel(args: argparse.Namespace) -> int:
    status = _client(args).cancel(args.job_id)
    print(f"job {status.id} {status.status}")
    return 0


def _health(args: argparse.Namespace) -> int:
    print(json.dumps(_client(args).health(), indent=2))
    return 0


def _summary(body: dict[str, Any]) -> dict[str, Any]:
    """The status body with base64 data shortened, so a terminal is not flooded."""
    output = body.get("output")
    if isinstance(output, dict):
        short = dict(output)
        for key in ("images", "files"):
            short[key] = [
                {**e, "data": f"<{len(e.get('data', ''))} chars>"} if e.get("type") == "base64" else e
                for e in output.get(key, [])
            ]
        return {**body, "output": short}
    return body
