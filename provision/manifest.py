"""manifest.toml, parsed and checked: ComfyUI, PyTorch, custom nodes, pip packages and models.

`load_manifest(path)` returns a frozen `Manifest` or raises `ManifestError` naming the entry and
field. Unknown keys are errors too, so a typo (``sha265``) cannot silently disable a check.
Pure apart from reading the one file.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

from .errors import ManifestError

__all__ = [
    "ALL_GROUPS",
    "BUILD_MODES",
    "ComfyUISpec",
    "Manifest",
    "ModelSpec",
    "NodeSpec",
    "PackageSpec",
    "TorchSpec",
    "load_manifest",
    "parse_groups",
    "parse_manifest",
]

SCHEMA_VERSION = 1
ALL_GROUPS = "ALL"
PLACEHOLDER_PREFIX = "FILL-ME"
_GROUP = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
# DOWNLOAD_<NAME> variables that are settings, not groups (provision/settings.py).
BUILD_MODES = ("serverless", "compute")
_RESERVED_GROUPS = frozenset(
    {
        "CONCURRENCY",
        "CONNECTIONS",
        "SPLIT_MIN_MIB",
        "RETRIES",
        "REQUIRE_SHA256",
        "STRICT",
        "TIMEOUT_S",
        "PROGRESS_INTERVAL_S",
    }
)
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ComfyUISpec:
    repo: str
    version: str  # a tag, branch or 40-hex commit; "latest" = newest release tag


@dataclass(frozen=True)
class TorchSpec:
    index_url: str
    packages: tuple[str, ...]

    def constraints(self) -> str:
        """The torch pins as a pip constraints file, so no requirements.txt can swap torch."""
        return "".join(f"{spec}\n" for spec in self.packages)


@dataclass(frozen=True)
class PackageSpec:
    spec: str
    group: str
    why: str = ""


@dataclass(frozen=True)
class NodeSpec:
    name: str
    repo: str
    commit: str
    group: str
    requirements: bool = True
    why: str = ""
    # The image modes that get this node: ComfyUI-Manager is for pods (compute) only.
    modes: tuple[str, ...] = BUILD_MODES
    # Node classes it must register; scripts/test-image.sh finds each in the image's /object_info.
    classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    """One model file: where it comes from, where it goes, and what it must hash to."""

    name: str
    group: str
    url: str
    folder: str  # relative to a models root, e.g. "loras"
    filename: str
    sha256: str | None  # None while the manifest holds a FILL-ME placeholder
    size: int | None = None
    link_into_comfyui: bool = False
    # Node classes that load this file without naming it in the workflow (LoadSharpModel).
    loaded_by: tuple[str, ...] = ()

    @property
    def relpath(self) -> PurePosixPath:
        return PurePosixPath(self.folder) / self.filename

    @property
    def verified(self) -> bool:
        return self.sha256 is not None


@dataclass(frozen=True)
class Manifest:
    comfyui: ComfyUISpec
    torch: TorchSpec
    packages: tuple[PackageSpec, ...] = ()
    nodes: tuple[NodeSpec, ...] = ()
    models: tuple[ModelSpec, ...] = ()
    source: str = "manifest.toml"
    groups: frozenset[str] = field(default=frozenset())

    def select(self, groups: frozenset[str] | str) -> Manifest:
        """The same manifest narrowed to `groups` (a set, or ``"ALL"``)."""
        if groups == ALL_GROUPS:
            return self
        assert isinstance(groups, frozenset)
        unknown = sorted(groups - self.groups)
        if unknown:
            known = ", ".join(sorted(self.groups)) or "none"
            raise ManifestError(f"no group named {', '.join(unknown)} (groups: {known})", source=self.source)
        return Manifest(
            comfyui=self.comfyui,
            torch=self.torch,
            packages=tuple(p for p in self.packages if p.group in groups),
            nodes=tuple(n for n in self.nodes if n.group in groups),
            models=tuple(m for m in self.models if m.group in groups),
            source=self.source,
            groups=self.groups,
        )

    def for_mode(self, mode: str) -> Manifest:
        """The same manifest without the nodes that image mode does not get (NodeSpec.modes)."""
        if mode not in BUILD_MODES:
            raise ManifestError(
                f"no image mode {mode!r} (modes: {', '.join(BUILD_MODES)})", source=self.source
            )
        return replace(self, nodes=tuple(n for n in self.nodes if mode in n.modes))


def parse_groups(text: str) -> frozenset[str] | str:
    """Group names from text: ``"GAUSSIAN, video"`` -> ``{"GAUSSIAN", "VIDEO"}``, ``"all"`` -> ``"ALL"``."""
    names = [part.strip().upper() for part in text.replace(" ", ",").split(",") if part.strip()]
    if ALL_GROUPS in names:
        return ALL_GROUPS
    return frozenset(names)


def load_manifest(path: Path) -> Manifest:
    """Read and check manifest.toml."""
    source = str(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ManifestError(
            "file not found; pass --manifest or set PROVISION_MANIFEST", source=source
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"not valid TOML: {exc}", source=source) from None
    return parse_manifest(data, source=source)


def parse_manifest(data: Mapping[str, Any], *, source: str = "manifest.toml") -> Manifest:
    """Check a decoded manifest and build the typed `Manifest`."""
    top = _Table(data, source=source, where="")
    top.only({"schema", "comfyui", "torch", "packages", "nodes", "models"})
    schema = top.integer("schema", required=True)
    if schema != SCHEMA_VERSION:
        raise ManifestError(f"schema = {schema} is not supported (expected {SCHEMA_VERSION})", source=source)
    comfy = top.table("comfyui")
    comfy.only({"repo", "version"})
    torch = top.table("torch")
    torch.only({"index_url", "packages"})
    packages = tuple(_package(t) for t in top.tables("packages"))
    nodes = tuple(_node(t) for t in top.tables("nodes"))
    models = tuple(_model(t) for t in top.tables("models"))
    _no_duplicates(source, "nodes", [n.name for n in nodes])
    _no_duplicates(source, "models", [str(m.relpath) for m in models])
    groups = {p.group for p in packages} | {n.group for n in nodes} | {m.group for m in models}
    return Manifest(
        comfyui=ComfyUISpec(repo=comfy.url("repo"), version=comfy.text("version")),
        torch=TorchSpec(index_url=torch.url("index_url"), packages=tuple(torch.texts("packages"))),
        packages=packages,
        nodes=nodes,
        models=models,
        source=source,
        groups=frozenset(groups),
    )


def _package(table: _Table) -> PackageSpec:
    table.only({"spec", "group", "why"})
    return PackageSpec(spec=table.text("spec"), group=table.group(), why=table.text("why", default=""))


def _node(table: _Table) -> NodeSpec:
    table.only({"name", "repo", "commit", "group", "requirements", "why", "modes", "classes"})
    name = table.text("name")
    if not _NODE_NAME.match(name):
        table.fail("name", "must be a plain folder name (letters, digits, . _ -)")
    commit = table.text("commit").lower()
    if not _COMMIT.match(commit):
        table.fail("commit", "must be a full 40-character commit hash, so the build is reproducible")
    return NodeSpec(
        name=name,
        repo=table.url("repo"),
        commit=commit,
        group=table.group(),
        requirements=table.boolean("requirements", default=True),
        why=table.text("why", default=""),
        modes=_modes(table),
        classes=tuple(table.texts("classes")) if "classes" in table else (),
    )


def _modes(table: _Table) -> tuple[str, ...]:
    if "modes" in table:
        modes = tuple(table.texts("modes"))
        unknown = sorted(set(modes) - set(BUILD_MODES))
        if unknown:
            table.fail("modes", f"unknown mode {unknown[0]!r} (modes: {', '.join(BUILD_MODES)})")
        return modes
    return BUILD_MODES


def _model(table: _Table) -> ModelSpec:
    table.only(
        {"name", "group", "url", "folder", "filename", "sha256", "size", "link_into_comfyui", "loaded_by"}
    )
    url = table.url("url")
    folder = table.text("folder").strip("/")
    folder_path = PurePosixPath(folder)
    if not folder or folder_path.is_absolute() or ".." in folder_path.parts:
        table.fail("folder", "must be a ComfyUI model folder relative to models/, e.g. 'loras'")
    filename = table.text("filename", default="") or unquote(PurePosixPath(urlsplit(url).path).name)
    if not filename or "/" in filename or "\\" in filename or filename in {".", ".."}:
        table.fail("filename", "must be a plain file name (set filename when the url does not end in one)")
    raw_sha = table.text("sha256")
    sha: str | None
    if raw_sha.startswith(PLACEHOLDER_PREFIX):
        sha = None
    elif _SHA256.match(raw_sha.lower()):
        sha = raw_sha.lower()
    else:
        table.fail("sha256", f"must be 64 hex digits, or a placeholder starting with {PLACEHOLDER_PREFIX!r}")
    size = table.integer("size")
    if size is not None and size <= 0:
        table.fail("size", "must be a positive number of bytes")
    return ModelSpec(
        name=table.text("name"),
        group=table.group(),
        url=url,
        folder=str(folder_path),
        filename=filename,
        sha256=sha,
        size=size,
        link_into_comfyui=table.boolean("link_into_comfyui", default=False),
        loaded_by=tuple(table.texts("loaded_by")) if "loaded_by" in table else (),
    )


def _no_duplicates(source: str, kind: str, keys: Iterable[str]) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ManifestError(f"{key!r} appears twice", source=source, where=f"[[{kind}]]")
        seen.add(key)


class _Table:
    """Typed reads of one TOML table, each error naming the entry and the field."""

    def __init__(self, data: Any, *, source: str, where: str) -> None:
        if not isinstance(data, Mapping):
            raise ManifestError("must be a table", source=source, where=where)
        self._data = data
        self._source = source
        self._where = where

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def fail(self, key: str, rule: str) -> NoReturn:
        where = f"{self._where} {key}".strip()
        raise ManifestError(rule, source=self._source, where=where)

    def only(self, allowed: set[str]) -> None:
        unknown = sorted(set(self._data) - allowed)
        if unknown:
            self.fail(unknown[0], f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def table(self, key: str) -> _Table:
        if key not in self._data:
            self.fail(f"[{key}]", "is missing")
        return _Table(self._data[key], source=self._source, where=f"[{key}]")

    def tables(self, key: str) -> list[_Table]:
        items = self._data.get(key, [])
        if not isinstance(items, list):
            self.fail(key, f"must be an array of tables ([[{key}]])")
        out = []
        for index, item in enumerate(items, start=1):
            label = (item.get("name") or item.get("spec")) if isinstance(item, Mapping) else None
            where = f"[[{key}]] #{index}" + (f" {label!r}" if label else "")
            out.append(_Table(item, source=self._source, where=where))
        return out

    def text(self, key: str, *, default: str | None = None) -> str:
        value = self._data.get(key, default)
        if value is None:
            self.fail(key, "is required")
        if not isinstance(value, str):
            self.fail(key, "must be a string")
        return value.strip()

    def texts(self, key: str) -> list[str]:
        value = self._data.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            self.fail(key, "must be a non-empty list of strings")
        return list(value)

    def url(self, key: str) -> str:
        value = self.text(key)
        if urlsplit(value).scheme not in {"http", "https"}:
            self.fail(key, "must be an http(s) URL")
        return value

    def integer(self, key: str, *, required: bool = False) -> int | None:
        value = self._data.get(key)
        if value is None:
            if required:
                self.fail(key, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, "must be a whole number")
        number: int = value
        return number

    def boolean(self, key: str, *, default: bool) -> bool:
        value = self._data.get(key, default)
        if not isinstance(value, bool):
            self.fail(key, "must be true or false")
        return value

    def group(self) -> str:
        value = self.text("group")
        if not _GROUP.match(value):
            self.fail("group", "must be an UPPER_CASE name such as GAUSSIAN (it becomes DOWNLOAD_<GROUP>)")
        if value == ALL_GROUPS or value in _RESERVED_GROUPS:
            self.fail("group", f"{value!r} is reserved (DOWNLOAD_{value} is a setting); pick another name")
        return value
