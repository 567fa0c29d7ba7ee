"""Download settings: the one place provisioning reads the environment.

`DownloadSettings.from_env(environ, known_groups=...)` takes a mapping, so tests pass a dict and
importing this module reads nothing. Every field names its variable and default; a bad value
raises `SettingsError` naming the variable. docs/container.md ("Environment") lists them all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SettingsError
from .manifest import ALL_GROUPS

__all__ = ["DEFAULT_COMFYUI_PATH", "DownloadSettings", "flag"]

DEFAULT_COMFYUI_PATH = "/comfyui"
_GROUP_PREFIX = "DOWNLOAD_"
_SETTING_NAMES = frozenset(
    {
        "DOWNLOAD_CONCURRENCY",
        "DOWNLOAD_CONNECTIONS",
        "DOWNLOAD_SPLIT_MIN_MIB",
        "DOWNLOAD_RETRIES",
        "DOWNLOAD_REQUIRE_SHA256",
        "DOWNLOAD_STRICT",
        "DOWNLOAD_TIMEOUT_S",
        "DOWNLOAD_PROGRESS_INTERVAL_S",
    }
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    """Read a true/false variable; anything else is a `SettingsError`."""
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(name, raw, "use true or false")


@dataclass(frozen=True)
class DownloadSettings:
    """What download_models.sh is told by its environment."""

    groups: frozenset[str] | str = frozenset()  # DOWNLOAD_ALL=true -> "ALL"; DOWNLOAD_<GROUP>=true
    models_root: Path | None = None  # MODELS_ROOT; None: /runpod-volume, /workspace or the image
    comfyui_path: Path = Path(DEFAULT_COMFYUI_PATH)  # COMFYUI_PATH
    concurrency: int = 4  # DOWNLOAD_CONCURRENCY: files at once
    connections: int = 8  # DOWNLOAD_CONNECTIONS: connections per large file (1: one stream each)
    split_min_mib: float = 64.0  # DOWNLOAD_SPLIT_MIN_MIB: files at least this big are split
    retries: int = 5  # DOWNLOAD_RETRIES: attempts per file after the first
    timeout_s: float = 30.0  # DOWNLOAD_TIMEOUT_S: longest silence on a connection
    progress_interval_s: float = 5.0  # DOWNLOAD_PROGRESS_INTERVAL_S: gap between progress lines
    require_sha256: bool = False  # DOWNLOAD_REQUIRE_SHA256: refuse FILL-ME checksums
    strict: bool = False  # DOWNLOAD_STRICT: a failed model stops the boot (else: MODEL_MISSING jobs)
    status_file: Path | None = None  # MODELS_STATUS_FILE; None: $COMFYUI_PATH/.provision/models-status.json
    hf_token: str | None = field(default=None, repr=False)  # HF_TOKEN or HF_TOKEN_FILE

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, known_groups: frozenset[str]) -> DownloadSettings:
        models_root = environ.get("MODELS_ROOT", "").strip()
        return cls(
            groups=_groups(environ, known_groups),
            models_root=Path(models_root) if models_root else None,
            comfyui_path=Path(environ.get("COMFYUI_PATH", "").strip() or DEFAULT_COMFYUI_PATH),
            concurrency=int(_number(environ, "DOWNLOAD_CONCURRENCY", 4, minimum=1, integer=True)),
            connections=int(_number(environ, "DOWNLOAD_CONNECTIONS", 8, minimum=1, integer=True)),
            split_min_mib=_number(environ, "DOWNLOAD_SPLIT_MIN_MIB", 64.0, minimum=1.0),
            retries=int(_number(environ, "DOWNLOAD_RETRIES", 5, minimum=0, integer=True)),
            timeout_s=_number(environ, "DOWNLOAD_TIMEOUT_S", 30.0, minimum=0.1),
            progress_interval_s=_number(environ, "DOWNLOAD_PROGRESS_INTERVAL_S", 5.0, minimum=0.0),
            require_sha256=flag(environ, "DOWNLOAD_REQUIRE_SHA256", False),
            strict=flag(environ, "DOWNLOAD_STRICT", False),
            status_file=Path(status) if (status := environ.get("MODELS_STATUS_FILE", "").strip()) else None,
            hf_token=_secret(environ, "HF_TOKEN"),
        )


def _groups(environ: Mapping[str, str], known: frozenset[str]) -> frozenset[str] | str:
    if flag(environ, "DOWNLOAD_ALL", False):
        return ALL_GROUPS
    enabled = set()
    for name in sorted(environ):
        if not name.startswith(_GROUP_PREFIX) or name in _SETTING_NAMES or name == "DOWNLOAD_ALL":
            continue
        group = name[len(_GROUP_PREFIX) :]
        if group not in known and environ[name].strip().lower() not in ("1", "true", "yes", "on"):
            continue  # DOWNLOAD_DIR=/x and the like: another tool's variable, not a group switch
        if not flag(environ, name, False):
            continue
        if group not in known:
            raise SettingsError(
                name,
                environ[name],
                f"manifest.toml has no group {group!r} (groups: {', '.join(sorted(known)) or 'none'})",
            )
        enabled.add(group)
    return frozenset(enabled)


def _number(
    environ: Mapping[str, str], name: str, default: float, *, minimum: float, integer: bool = False
) -> float:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise SettingsError(name, raw, f"must be {kind}, e.g. {name}={default:g}") from None
    if not math.isfinite(value) or value < minimum:
        raise SettingsError(name, raw, f"must be at least {minimum:g}")
    return value


def _secret(environ: Mapping[str, str], name: str) -> str | None:
    """NAME, or the file named by NAME_FILE (Docker secrets); setting both is an error."""
    direct = environ.get(name, "").strip()
    file_name = environ.get(f"{name}_FILE", "").strip()
    if direct and file_name:
        raise SettingsError(f"{name}_FILE", file_name, f"{name} is set too; set only one of them")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise SettingsError(f"{name}_FILE", file_name, f"cannot be read: {exc.strerror}") from None
    return direct or None
