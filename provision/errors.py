"""Every error provisioning reports. Each class writes its own message from the facts it carries.

ProvisionError
├── ManifestError        manifest.toml is malformed (names the entry and the field)
├── SettingsError        an environment variable has a value we cannot use (names it)
├── DownloadError        one model could not be downloaded (url, target)
│   ├── RetryableDownloadError  connection, timeout, 429, 5xx: tried again with backoff
│   ├── NotFound         the server answered 404
│   ├── AuthRequired     401/403: a gated or private file (HF_TOKEN)
│   ├── ChecksumMismatch the bytes do not hash to the manifest's sha256
│   ├── SizeMismatch     the download is not the size the manifest says
│   ├── UnverifiedRefused a FILL-ME checksum while DOWNLOAD_REQUIRE_SHA256=true
│   └── NoSpace          the target filesystem is too small for the file
└── InstallError         git or pip failed (the command and its exit code)
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AuthRequired",
    "ChecksumMismatch",
    "DownloadError",
    "InstallError",
    "ManifestError",
    "NoSpace",
    "NotFound",
    "ProvisionError",
    "RetryableDownloadError",
    "SettingsError",
    "SizeMismatch",
    "UnverifiedRefused",
]


class ProvisionError(Exception):
    """Base of every provisioning failure; the message says what to do."""


class ManifestError(ProvisionError):
    """manifest.toml cannot be used; ``where`` names the entry, e.g. ``[[models]] #2 'VAE'``."""

    def __init__(self, problem: str, *, source: str, where: str = "") -> None:
        self.source = source
        self.where = where
        location = f"{source}, {where}" if where else source
        super().__init__(f"{location}: {problem}")


class SettingsError(ProvisionError):
    """An environment variable has a value provisioning cannot use."""

    def __init__(self, name: str, value: str, rule: str) -> None:
        self.name = name
        super().__init__(f"{name}={value!r}: {rule}")


class DownloadError(ProvisionError):
    """One file could not be downloaded."""

    retryable = False

    def __init__(self, reason: str, *, url: str, target: Path) -> None:
        self.url = url
        self.target = target
        self.reason = reason
        super().__init__(f"{target.name}: {reason} ({url})")


class NotFound(DownloadError):
    def __init__(self, *, url: str, target: Path) -> None:
        super().__init__(
            "the server answered 404 Not Found; check the url in manifest.toml", url=url, target=target
        )


class AuthRequired(DownloadError):
    def __init__(self, *, url: str, target: Path, status: int, token_sent: bool) -> None:
        self.status = status
        hint = (
            "the HF_TOKEN was refused: accept the model's license on its page with that account"
            if token_sent
            else "the file is gated or private: set HF_TOKEN (or HF_TOKEN_FILE) to a token that can read it"
        )
        super().__init__(f"the server answered {status}; {hint}", url=url, target=target)


class ChecksumMismatch(DownloadError):
    def __init__(
        self, *, url: str, target: Path, expected: str, actual: str, kept: Path | None = None
    ) -> None:
        self.expected = expected
        self.actual = actual
        self.kept = kept
        where = f"moved aside to {kept} (never loaded; delete it when done)" if kept else "deleted"
        super().__init__(
            f"sha256 is {actual}, manifest.toml expects {expected}; the download was {where}. "
            "If the publisher changed the file on purpose, update sha256 in manifest.toml; "
            "otherwise the download was corrupted or tampered with",
            url=url,
            target=target,
        )


class SizeMismatch(DownloadError):
    def __init__(self, *, url: str, target: Path, expected: int, actual: int) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{actual} bytes received, manifest.toml says size = {expected}; the file was deleted",
            url=url,
            target=target,
        )


class UnverifiedRefused(DownloadError):
    def __init__(self, *, url: str, target: Path) -> None:
        super().__init__(
            "manifest.toml has no sha256 for this file (FILL-ME) and DOWNLOAD_REQUIRE_SHA256=true; "
            "fill in its sha256 (README.md, 'Filling in checksums')",
            url=url,
            target=target,
        )


class NoSpace(DownloadError):
    def __init__(self, *, url: str, target: Path, needed: int, free: int) -> None:
        super().__init__(
            f"needs {needed / 2**30:.1f} GiB more but {target.parent} has {free / 2**30:.1f} GiB free; "
            "use a bigger volume or fewer DOWNLOAD_* groups",
            url=url,
            target=target,
        )


class RetryableDownloadError(DownloadError):
    """A transient failure (connection, timeout, 5xx, 429): tried again with backoff."""

    retryable = True


class InstallError(ProvisionError):
    """A git or pip command failed."""

    def __init__(self, what: str, *, command: list[str], returncode: int) -> None:
        self.command = command
        self.returncode = returncode
        super().__init__(f"{what}: `{' '.join(command)}` exited with {returncode}; its output is above")
