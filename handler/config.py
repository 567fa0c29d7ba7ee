"""Settings: the one place that reads the environment.

`Settings.from_env(environ)` takes a mapping, so tests pass a plain dict and importing this
module reads nothing. Every field names the variable that sets it; README.md lists them all.
Bad values raise `ConfigError` naming the variable, so a misconfigured worker refuses to start
instead of failing its first job.
"""

from __future__ import annotations

import ipaddress
import math
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .destination import Destination, DestinationError, build_destination
from .inputs.netguard import AllowList

__all__ = ["ComfyTimeouts", "ConfigError", "InputURLSettings", "Settings", "parse_allowlist"]

DEFAULT_COMFY_HOST = "127.0.0.1:8188"
DEFAULT_COMFYUI_PATH = "/comfyui"
DEFAULT_MAX_INPUT_BYTES = 100 * 1024 * 1024  # ComfyUI's own upload limit (GET /features)
# RunPod rejects results somewhere between 10 and 20 MB ("Failed to return job results | 400").
DEFAULT_RESULT_MAX_BYTES = 9_000_000

DEFAULT_URL_MAX_JOB_BYTES = 2 * 1024 * 1024 * 1024
_HOST_NAME = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """An environment variable has a value the worker cannot use."""


@dataclass(frozen=True)
class ComfyTimeouts:
    """How long the worker waits for ComfyUI, in seconds."""

    ready_s: float = 300.0  # COMFY_READY_TIMEOUT_S: cold start incl. custom node import
    ready_poll_s: float = 0.05  # COMFY_API_AVAILABLE_INTERVAL_MS / 1000
    job_s: float = 1800.0  # COMFY_JOB_TIMEOUT_S: default deadline of one job
    http_s: float = 30.0  # COMFY_HTTP_TIMEOUT_S: one HTTP call (not a /view download)
    ws_idle_s: float = 5.0  # COMFY_WS_IDLE_S: silence after which /history is polled
    # After a stop that did not land: how long ComfyUI has to let go of the prompt before it is
    # restarted (the worker takes no new job meanwhile).
    interrupt_settle_s: float = 30.0  # COMFY_INTERRUPT_SETTLE_S
    # At a deadline or cancel: how long the worker tries to stop the prompt before it returns the
    # result anyway (saying whether the prompt stopped): the deadline is kept to within this.
    stop_wait_s: float = 0.8  # COMFY_STOP_WAIT_S
    # Liveness (handler/comfy/liveness.py): one probe's wait for GET /queue, how long ComfyUI may give
    # no sign of life at all before it counts as frozen, and how long a pending prompt may wait with
    # nothing running before the prompt runner counts as dead.
    liveness_probe_s: float = 3.0  # COMFY_LIVENESS_PROBE_S
    unresponsive_s: float = 10.0  # COMFY_UNRESPONSIVE_S
    runner_stall_s: float = 10.0  # COMFY_RUNNER_STALL_S
    # A queued prompt's wait behind other prompts (pipelined intake), bounded apart from job_s.
    queue_wait_s: float = 1800.0  # COMFY_QUEUE_WAIT_TIMEOUT_S


@dataclass(frozen=True)
class InputURLSettings:
    """How inputs given by URL are fetched (see handler/inputs/ and docs/inputs-by-url.md)."""

    allow: AllowList = field(default_factory=AllowList)  # INPUT_URL_ALLOWLIST
    max_job_bytes: int = DEFAULT_URL_MAX_JOB_BYTES  # INPUT_URL_MAX_JOB_BYTES: all URL inputs of a job
    connect_timeout_s: float = 10.0  # INPUT_URL_CONNECT_TIMEOUT_S: DNS + TCP + TLS of one request
    timeout_s: float = 600.0  # INPUT_URL_TIMEOUT_S: one whole download, redirects included
    concurrency: int = 4  # INPUT_URL_CONCURRENCY: downloads at once per job


@dataclass(frozen=True)
class Settings:
    """Everything the worker can be told from its environment."""

    comfy_host: str = DEFAULT_COMFY_HOST  # COMFY_HOST
    comfy_pid_file: Path | None = None  # COMFY_PID_FILE
    # start.sh sets it when it restarts a crashed ComfyUI in place: wait for it, do not refresh.
    comfy_supervised: bool = False  # COMFY_SUPERVISED
    comfyui_path: Path = Path(DEFAULT_COMFYUI_PATH)  # COMFYUI_PATH
    # What the boot's model download left missing (provision/status.py); None: do not check.
    models_status_file: Path | None = None  # MODELS_STATUS_FILE; $COMFYUI_PATH/.provision/models-status.json
    warmup_workflow: Path | None = None  # WARMUP_WORKFLOW: run once before the first job
    warmup_timeout_s: float = 1800.0  # WARMUP_TIMEOUT_S
    timeouts: ComfyTimeouts = field(default_factory=ComfyTimeouts)
    ws_reconnect_attempts: int = 5  # WEBSOCKET_RECONNECT_ATTEMPTS
    ws_reconnect_delay_s: float = 1.0  # WEBSOCKET_RECONNECT_DELAY_S
    ws_trace: bool = False  # WEBSOCKET_TRACE
    # Jobs the worker holds at once: one executing, the others validated, uploaded and queued behind it.
    pipeline_depth: int = 2  # COMFY_PIPELINE_DEPTH
    refresh_worker: bool = False  # REFRESH_WORKER
    # At start, remove prompts that a previous, dead worker process left in ComfyUI's queue.
    clear_leftovers: bool = True  # COMFY_CLEAR_LEFTOVERS
    comfy_org_api_key: str | None = field(default=None, repr=False)  # COMFY_ORG_API_KEY[_FILE]
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES  # COMFY_MAX_INPUT_BYTES
    progress_interval_s: float = 1.0  # COMFY_PROGRESS_INTERVAL_S
    cleanup: bool = True  # COMFY_CLEANUP
    rerun_output_nodes: bool = True  # COMFY_RERUN_OUTPUT_NODES
    log_level: str = "INFO"  # COMFY_LOG_LEVEL
    # The SDK defaults to DEBUG, which prints every job's whole result (base64 included) to the log.
    sdk_log_level: str = "INFO"  # RUNPOD_LOG_LEVEL
    storage: Destination | None = None  # BUCKET_* (see destination.py)
    upload_concurrency: int = 4  # BUCKET_UPLOAD_CONCURRENCY
    result_max_bytes: int = DEFAULT_RESULT_MAX_BYTES  # RESULT_MAX_BYTES
    input_urls: InputURLSettings = field(default_factory=InputURLSettings)  # INPUT_URL_*
    # Absolute folders a workflow's loader inputs may name directly (handler/workflow_limits.py).
    allowed_input_paths: tuple[str, ...] = ()  # COMFY_ALLOWED_INPUT_PATHS: comma-separated
    # Extra node classes that need a browser (handler/browser_nodes.py adds the known ones).
    browser_nodes: tuple[str, ...] = ()  # BROWSER_NODES: comma-separated class names
    # Set by RunPod on a real worker; without it progress updates have nowhere to go.
    progress_enabled: bool = False  # RUNPOD_WEBHOOK_POST_OUTPUT (presence)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from an environment mapping; raise ConfigError on a bad value."""
        env = _Env(environ)
        ready_poll_ms = env.number("COMFY_API_AVAILABLE_INTERVAL_MS", 50.0, minimum=1.0)
        timeouts = ComfyTimeouts(
            ready_s=env.number("COMFY_READY_TIMEOUT_S", ComfyTimeouts.ready_s, minimum=0.1),
            ready_poll_s=ready_poll_ms / 1000.0,
            job_s=env.number("COMFY_JOB_TIMEOUT_S", ComfyTimeouts.job_s, minimum=0.1),
            http_s=env.number("COMFY_HTTP_TIMEOUT_S", ComfyTimeouts.http_s, minimum=0.1),
            ws_idle_s=env.number("COMFY_WS_IDLE_S", ComfyTimeouts.ws_idle_s, minimum=0.05),
            interrupt_settle_s=env.number(
                "COMFY_INTERRUPT_SETTLE_S", ComfyTimeouts.interrupt_settle_s, minimum=0.1
            ),
            queue_wait_s=env.number("COMFY_QUEUE_WAIT_TIMEOUT_S", ComfyTimeouts.queue_wait_s, minimum=0.1),
            stop_wait_s=env.number("COMFY_STOP_WAIT_S", ComfyTimeouts.stop_wait_s, minimum=0.05, maximum=30),
            liveness_probe_s=env.number(
                "COMFY_LIVENESS_PROBE_S", ComfyTimeouts.liveness_probe_s, minimum=0.1
            ),
            unresponsive_s=env.number("COMFY_UNRESPONSIVE_S", ComfyTimeouts.unresponsive_s, minimum=0.5),
            runner_stall_s=env.number("COMFY_RUNNER_STALL_S", ComfyTimeouts.runner_stall_s, minimum=0.5),
        )
        pid_file = env.text("COMFY_PID_FILE", "")
        log_level = env.text("COMFY_LOG_LEVEL", "INFO").upper()
        if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError(
                f"COMFY_LOG_LEVEL={log_level!r} is not a log level; use DEBUG, INFO, WARNING or ERROR"
            )
        comfyui_path = Path(env.text("COMFYUI_PATH", DEFAULT_COMFYUI_PATH))
        status_file = env.text("MODELS_STATUS_FILE", "")
        warmup = env.text("WARMUP_WORKFLOW", "")
        return cls(
            comfy_host=_host(env.text("COMFY_HOST", DEFAULT_COMFY_HOST)),
            comfy_pid_file=Path(pid_file) if pid_file else None,
            comfyui_path=comfyui_path,
            models_status_file=(
                Path(status_file) if status_file else comfyui_path / ".provision" / "models-status.json"
            ),
            warmup_workflow=Path(warmup) if warmup else None,
            warmup_timeout_s=env.number("WARMUP_TIMEOUT_S", 1800.0, minimum=1.0),
            timeouts=timeouts,
            ws_reconnect_attempts=int(env.number("WEBSOCKET_RECONNECT_ATTEMPTS", 5, minimum=0, integer=True)),
            ws_reconnect_delay_s=env.number("WEBSOCKET_RECONNECT_DELAY_S", 1.0, minimum=0.0),
            ws_trace=env.flag("WEBSOCKET_TRACE", False),
            pipeline_depth=int(env.number("COMFY_PIPELINE_DEPTH", 2, minimum=1, maximum=64, integer=True)),
            comfy_supervised=env.flag("COMFY_SUPERVISED", False),
            refresh_worker=env.flag("REFRESH_WORKER", False),
            clear_leftovers=env.flag("COMFY_CLEAR_LEFTOVERS", True),
            comfy_org_api_key=env.secret("COMFY_ORG_API_KEY"),
            max_input_bytes=int(
                env.number("COMFY_MAX_INPUT_BYTES", DEFAULT_MAX_INPUT_BYTES, minimum=1, integer=True)
            ),
            progress_interval_s=env.number("COMFY_PROGRESS_INTERVAL_S", 1.0, minimum=0.0),
            cleanup=env.flag("COMFY_CLEANUP", True),
            rerun_output_nodes=env.flag("COMFY_RERUN_OUTPUT_NODES", True),
            log_level=log_level,
            sdk_log_level=_sdk_level(env.text("RUNPOD_LOG_LEVEL", "INFO")),
            storage=_storage(env),
            upload_concurrency=int(env.number("BUCKET_UPLOAD_CONCURRENCY", 4, minimum=1, integer=True)),
            result_max_bytes=int(
                env.number("RESULT_MAX_BYTES", DEFAULT_RESULT_MAX_BYTES, minimum=1024, integer=True)
            ),
            input_urls=_input_urls(env),
            allowed_input_paths=_folders(env.text("COMFY_ALLOWED_INPUT_PATHS", "")),
            progress_enabled=bool(env.text("RUNPOD_WEBHOOK_POST_OUTPUT", "")),
            browser_nodes=_class_names("BROWSER_NODES", env.text("BROWSER_NODES", "")),
        )


def _input_urls(env: _Env) -> InputURLSettings:
    defaults = InputURLSettings()
    return InputURLSettings(
        allow=_allowlist(env.text("INPUT_URL_ALLOWLIST", "")),
        max_job_bytes=int(
            env.number("INPUT_URL_MAX_JOB_BYTES", defaults.max_job_bytes, minimum=1, integer=True)
        ),
        connect_timeout_s=env.number("INPUT_URL_CONNECT_TIMEOUT_S", defaults.connect_timeout_s, minimum=0.1),
        timeout_s=env.number("INPUT_URL_TIMEOUT_S", defaults.timeout_s, minimum=0.1),
        concurrency=int(env.number("INPUT_URL_CONCURRENCY", defaults.concurrency, minimum=1, integer=True)),
    )


def _allowlist(value: str) -> AllowList:
    return parse_allowlist(value, "INPUT_URL_ALLOWLIST")


def parse_allowlist(value: str, name: str) -> AllowList:
    """``host, *.domain, 10.0.0.5, 10.1.0.0/16, fd00::/8`` -> AllowList; raise ConfigError on junk."""
    hosts: set[str] = set()
    networks = []
    for raw in value.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        if not _HOST_NAME.match(entry.rstrip(".")):
            raise ConfigError(
                f"{name} entry {raw.strip()!r} is neither a host name, an IP address nor a "
                f"CIDR; example: {name}=minio.internal,10.0.0.0/8"
            )
        hosts.add(entry.rstrip("."))
    return AllowList(hosts=frozenset(hosts), networks=tuple(networks))


def _folders(value: str, name: str = "COMFY_ALLOWED_INPUT_PATHS") -> tuple[str, ...]:
    folders = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        if not part.startswith("/") or ".." in part.split("/"):
            raise ConfigError(
                f"{name} entry {part!r} is not an absolute folder without '..'; "
                f"example: {name}=/workspace/shared-inputs"
            )
        folders.append(posixpath.normpath(part))
    return tuple(folders)


def _class_names(name: str, value: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in value.split(",") if part.strip())
    for part in names:
        if not part.replace("_", "").replace("-", "").replace(" ", "").replace(".", "").isalnum():
            raise ConfigError(
                f"{name}={value!r}: {part!r} is not a node class name; "
                f"example: {name}=MyViewerNode,OtherPreview"
            )
    return names


def _sdk_level(value: str) -> str:
    level = value.upper()
    if level not in {"NOTSET", "TRACE", "DEBUG", "INFO", "WARN", "ERROR"}:
        raise ConfigError(
            f"RUNPOD_LOG_LEVEL={value!r} is not a runpod log level; use DEBUG, INFO, WARN or ERROR"
        )
    return level


def _storage(env: _Env) -> Destination | None:
    """The env destination, or None when no bucket is configured at all."""
    endpoint = env.text("BUCKET_ENDPOINT_URL", "")
    bucket = env.text("BUCKET_NAME", "")
    access_key = env.secret("BUCKET_ACCESS_KEY_ID")
    secret_key = env.secret("BUCKET_SECRET_ACCESS_KEY")
    if not endpoint and not bucket:
        if access_key or secret_key:
            raise ConfigError(
                "BUCKET_ACCESS_KEY_ID/BUCKET_SECRET_ACCESS_KEY are set but no bucket is: set "
                "BUCKET_ENDPOINT_URL (and BUCKET_NAME if the URL does not name the bucket)"
            )
        return None
    try:
        return build_destination(
            endpoint_url=endpoint,
            bucket=bucket,
            access_key_id=access_key,
            secret_access_key=secret_key,
            region=env.text("BUCKET_REGION", ""),
            prefix=env.text("BUCKET_PREFIX", ""),
            url_expiry_s=int(env.number("BUCKET_URL_EXPIRY_S", 24 * 3600, minimum=1, integer=True)),
            public_url=env.text("BUCKET_PUBLIC_URL", "") or None,
        )
    except DestinationError as exc:
        raise ConfigError(str(exc)) from None


def _host(value: str) -> str:
    """Accept ``host:port`` or a URL (``http://host:port/``) and return ``host:port``."""
    host = value.strip()
    for scheme in ("http://", "https://"):
        if host.startswith(scheme):
            host = host[len(scheme) :]
    host = host.rstrip("/")
    if not host or "/" in host or " " in host:
        raise ConfigError(f"COMFY_HOST={value!r} is not host:port; example: COMFY_HOST=127.0.0.1:8188")
    return host


class _Env:
    """Typed reads of one environment mapping, each error naming its variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str) -> str:
        return self._environ.get(name, default).strip()

    def flag(self, name: str, default: bool) -> bool:
        raw = self._environ.get(name)
        if raw is None:
            return default
        value = raw.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ConfigError(f"{name}={raw!r} is not a boolean; use true or false")

    def number(
        self,
        name: str,
        default: float,
        *,
        minimum: float,
        maximum: float = math.inf,
        integer: bool = False,
    ) -> float:
        raw = self._environ.get(name)
        if raw is None or not raw.strip():
            return default
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            kind = "a whole number" if integer else "a number"
            raise ConfigError(f"{name}={raw!r} is not {kind}; example: {name}={default:g}") from None
        if not math.isfinite(value) or value < minimum:
            raise ConfigError(f"{name}={raw!r} must be at least {minimum:g}")
        if value > maximum:
            raise ConfigError(f"{name}={raw!r} must be at most {maximum:g}")
        return value

    def secret(self, name: str) -> str | None:
        """Read NAME or the file named by NAME_FILE (Docker secrets), never both."""
        direct = self._environ.get(name, "").strip()
        file_name = self._environ.get(f"{name}_FILE", "").strip()
        if direct and file_name:
            raise ConfigError(f"both {name} and {name}_FILE are set; set only one of them")
        if file_name:
            try:
                return Path(file_name).read_text(encoding="utf-8").strip() or None
            except OSError as exc:
                raise ConfigError(f"{name}_FILE={file_name!r} cannot be read: {exc.strerror}") from None
        return direct or None
