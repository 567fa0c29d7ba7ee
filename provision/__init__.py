"""Provisioning for the container: the manifest, model downloads and build-time installs.

Standard library only: it runs in the image before (and without) the worker's dependencies.
The shell scripts call it as ``python -m provision ...`` (see ``provision/__main__.py``).
"""

from __future__ import annotations

from .download import Downloader, DownloadOptions, Outcome
from .errors import (
    AuthRequired,
    ChecksumMismatch,
    DownloadError,
    InstallError,
    ManifestError,
    NoSpace,
    NotFound,
    ProvisionError,
    RetryableDownloadError,
    SettingsError,
    SizeMismatch,
    UnverifiedRefused,
)
from .manifest import Manifest, ModelSpec, NodeSpec, load_manifest, parse_manifest
from .progress import Progress
from .settings import DownloadSettings

__all__ = [
    "AuthRequired",
    "ChecksumMismatch",
    "DownloadError",
    "DownloadOptions",
    "DownloadSettings",
    "Downloader",
    "InstallError",
    "Manifest",
    "ManifestError",
    "ModelSpec",
    "NoSpace",
    "NodeSpec",
    "NotFound",
    "Outcome",
    "Progress",
    "ProvisionError",
    "RetryableDownloadError",
    "SettingsError",
    "SizeMismatch",
    "UnverifiedRefused",
    "load_manifest",
    "parse_manifest",
]
