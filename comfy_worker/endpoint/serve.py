"""Run the local endpoint until SIGINT/SIGTERM (``comfy-worker serve``)."""

from __future__ import annotations

import asyncio
import signal
import socket

from aiohttp import web

from .server import EndpointConfig, LocalEndpoint

__all__ = ["serve"]


async def serve(config: EndpointConfig, *, host: str, port: int, ready_timeout_s: float = 120.0) -> None:
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
    # handler_cancellation: a long-poll whose worker died stops waiting, so it cannot take a job.
    runner = web.AppRunner(app, handle_signals=False, access_log=None, handler_cancellation=True)
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
        print(
            f"comfy-worker endpoint listening on http://{worker_host}:{actual_port} ({url}; {state}; {auth})",
            flush=True,
        )
        await stop.wait()
    finally:
        # Workers first, while their job-take URL still answers; then the HTTP server.
        await endpoint.close_workers()
        await runner.cleanup()
