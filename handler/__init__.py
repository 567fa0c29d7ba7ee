"""comfy-serverless-worker: a RunPod serverless handler for ComfyUI.

Run it with ``python -m handler``; embed it with ``Worker(Settings.from_env(os.environ)).handle``.

The names below load on first use, so ``import handler.job`` (the CLI validates jobs with it) does
not pull in aiohttp and boto3 through the worker.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import ComfyTimeouts, ConfigError, Settings
    from .error_result import error_result
    from .errors import WorkerError
    from .job import JobRequest, parse_job_input
    from .worker import Worker

__all__ = [
    "ComfyTimeouts",
    "ConfigError",
    "JobRequest",
    "Settings",
    "Worker",
    "WorkerError",
    "error_result",
    "parse_job_input",
]
__version__ = "0.1.0"

_HOMES = {
    "ComfyTimeouts": "config",
    "ConfigError": "config",
    "Settings": "config",
    "WorkerError": "errors",
    "error_result": "error_result",
    "JobRequest": "job",
    "parse_job_input": "job",
    "Worker": "worker",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'handler' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value
