"""Run the local endpoint until SIGINT/SIGTERM (``comfy-worker serve``)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import socket

from aiohttp import web

from .local_s3 import LocalS3, start_local_s3
from .server import EndpointConfig, LocalEndpoint

__all__ = ["app_runner", "serve"]


async def serve(
    config: EndpointConfig,
    *,
    host: str,
    port: int,
    ready_timeout_s: float = 120.0,
    local_s3_port: int | None = None,
) -> None:
    """Serve until a signal; with ``local_s3_port`` (0: any free port) also run a local S3 bucket."""
    local_s3: LocalS3 | None = None
    if local_s3_port is not None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
        local_s3 = start_local_s3("127.0.0.1", local_s3_port)
        env = {**(config.worker_env or {}), **local_s3.worker_env()}
        config = dataclasses.replace(config, worker_env=env)
    try:
        await _serve(config, host=host, port=port, ready_timeout_s=ready_timeout_s, local_s3=local_s3)
    finally:
        if local_s3 is not None:
            local_s3.stop()


def app_runner(app: web.Application, config: EndpointConfig) -> web.AppRunner:
    """The endpoint's runner: slow or silent clients are closed after ``client_idle_s``.

    handler_cancellation: a long-poll whose worker died stops waiting, so it cannot take a job.
    """
    # keepalive_timeout also closes a connection that never completes its request headers
    # (aiohttp's default waits an hour).
    return web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        handler_cancellation=True,
        keepalive_timeout=config.client_idle_s,
        # After an answer to an unfinished body, wait this long for the rest, not 10 s.
        lingering_time=config.client_idle_s,
    )


async def _serve(
    config: EndpointConfig, *, host: str, port: int, ready_timeout_s: float, local_s3: LocalS3 | None
) -> None:
    # Bind first so workers can be told the real port, even when port 0 asked for any free one.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    actual_port = sock.getsockname()[1]
    worker_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    endpoint = LocalEndpoint(config)
    app = endpoint.app()
    app["internal_url"] = f"http://{worker_host}:{actual_port}"
    runner = app_runner(app, config)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        assert endpoint.pool is not None
        ready = await endpoint.pool.wait_ready(ready_timeout_s)
        url = f"http://{worker_host}:{actual_port}/v2/{config.endpoint_id}"
        state = f"{config.workers} worker(s) ready" if ready else "workers still starting"
        auth = "Bearer key required" if config.api_key else "NO API KEY: anyone on this machine can submit"
        if local_s3 is not None:
            print(
                f"local S3 at {local_s3.url}, bucket {local_s3.bucket} (in memory, emptied when this stops; "
                'any page may read it): workers upload outputs there for output "s3" or "auto"',
                flush=True,
            )
        print(
            f"comfy-worker endpoint listening on http://{worker_host}:{actual_port} ({url}; {state}; {auth})",
            flush=True,
        )
        await stop.wait()
    finally:
        # Workers first, while their job-take URL still answers; then the HTTP server.
        await endpoint.close_workers()
        await runner.cleanup()
