"""comfy-serverless-worker: a RunPod serverless handler for ComfyUI.

Run it with ``python -m handler``; embed it with ``Worker(Settings.from_env(os.environ)).handle``.
"""

from .config import ComfyTimeouts, ConfigError, Settings
from .errors import WorkerError, error_result
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
