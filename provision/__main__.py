"""``python -m provision``: the command line the Dockerfile and the scripts call.

    python -m provision download [--groups GAUSSIAN] [--root DIR]   models (groups from DOWNLOAD_*)
    python -m provision plan [--groups ALL]                         what download would do
    python -m provision groups                                      the manifest's groups
    python -m provision install comfyui --dest /comfyui [--version latest]
    python -m provision install torch | nodes | packages [--groups ALL]
    python -m provision restamp --root /comfyui/models              (Dockerfile only)
    python -m provision record-nodes [--comfyui /comfyui] [--out FILE]
                                       node classes of ComfyUI + manifest nodes (JSON, static read)

Exit status: 0 done, 1 some download or install failed, 2 bad manifest or settings.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from .download import Downloader, DownloadOptions, Outcome, link_into_comfyui, restamp
from .errors import InstallError, ProvisionError
from .install import install_comfyui, install_nodes, install_packages, install_torch
from .manifest import ALL_GROUPS, Manifest, load_manifest, parse_groups
from .node_classes import dumps, record
from .paths import candidate_roots, models_root
from .progress import PREFIX, Progress, human_bytes
from .settings import DEFAULT_COMFYUI_PATH, DownloadSettings

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
DEFAULT_MANIFEST = Path(__file__).resolve().parents[1] / "manifest.toml"


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    args = _parser().parse_args(argv)
    manifest_path = args.manifest or Path(environ.get("PROVISION_MANIFEST", "") or DEFAULT_MANIFEST)
    try:
        manifest = load_manifest(manifest_path)
        if args.command in ("download", "plan"):
            return _download(args, manifest, environ, dry_run=args.command == "plan")
        if args.command == "groups":
            return _groups(manifest)
        if args.command == "record-nodes":
            return _record_nodes(args, manifest, environ)
        if args.command == "restamp":
            print(f"{PREFIX} restamped {restamp(args.root)} file(s) under {args.root}", file=sys.stderr)
            return EXIT_OK
        return _install(args, manifest, environ)
    except InstallError as exc:
        print(f"provision: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ProvisionError as exc:
        print(f"provision: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m provision", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--manifest", type=Path, help="default: $PROVISION_MANIFEST or the repo's manifest.toml"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("download", "download the enabled model groups"),
        ("plan", "show what download would do"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument(
            "--groups", help="GROUP,GROUP or ALL (default: from DOWNLOAD_ALL / DOWNLOAD_<GROUP>)"
        )
        sub.add_argument(
            "--root", type=Path, help="models folder (default: MODELS_ROOT, a volume, the image)"
        )
        sub.add_argument("--require-sha256", action="store_true", help="refuse entries without a checksum")
        sub.add_argument("--concurrency", type=int, help="files at once (default: DOWNLOAD_CONCURRENCY or 4)")
    commands.add_parser("groups", help="list the manifest's groups")
    stamps = commands.add_parser("restamp", help="after a COPY of verified models (Dockerfile only)")
    stamps.add_argument("--root", type=Path, required=True)
    nodes = commands.add_parser("record-nodes", help="write the node classes ComfyUI and its nodes provide")
    nodes.add_argument("--comfyui", type=Path, help="ComfyUI folder (default: $COMFYUI_PATH or /comfyui)")
    nodes.add_argument(
        "--out", help="JSON file, '-' for stdout (default: <comfyui>/.provision/node_classes.json)"
    )
    install = commands.add_parser("install", help="install ComfyUI, torch, nodes or packages")
    install.add_argument("what", choices=["comfyui", "torch", "nodes", "packages"])
    install.add_argument("--groups", default=ALL_GROUPS, help="GROUP,GROUP or ALL (default ALL)")
    install.add_argument("--dest", type=Path, help="ComfyUI folder (default: $COMFYUI_PATH or /comfyui)")
    install.add_argument("--version", default="", help="ComfyUI tag, branch, commit or 'latest'")
    return parser


def _download(
    args: argparse.Namespace, manifest: Manifest, environ: Mapping[str, str], *, dry_run: bool
) -> int:
    settings = DownloadSettings.from_env(environ, known_groups=manifest.groups)
    groups = parse_groups(args.groups) if args.groups is not None else settings.groups
    if not groups:
        print(
            f"{PREFIX} no model group enabled; set DOWNLOAD_ALL=true or DOWNLOAD_<GROUP>=true "
            f"(groups: {', '.join(sorted(manifest.groups)) or 'none'})",
            file=sys.stderr,
        )
        return EXIT_OK
    models = manifest.select(groups).models
    root = args.root or models_root(settings.comfyui_path, override=settings.models_root)
    elsewhere = [r for r in candidate_roots(settings.comfyui_path) if r != root]
    require = args.require_sha256 or settings.require_sha256
    if dry_run:
        return _plan(models, root, require)
    progress = Progress(interval_s=settings.progress_interval_s)
    options = DownloadOptions(
        concurrency=args.concurrency or settings.concurrency,
        retries=settings.retries,
        timeout_s=settings.timeout_s,
        require_sha256=require,
        hf_token=settings.hf_token,
    )
    progress.line(f"{len(models)} file(s) of group(s) {_names(groups)} into {root}")
    started = time.monotonic()
    outcomes = Downloader(options, progress).fetch_all(models, root, elsewhere=elsewhere)
    _link(outcomes, settings.comfyui_path / "models", progress)
    return _summary(outcomes, time.monotonic() - started, progress)


def _plan(models: Sequence, root: Path, require: bool) -> int:
    for model in models:
        size = human_bytes(model.size) if model.size else "size unknown"
        check = (
            "sha256 pinned"
            if model.verified
            else ("REFUSED: no sha256" if require else "NO sha256 (FILL-ME)")
        )
        print(f"{model.group:10} {root / model.folder / model.filename}  [{size}, {check}]")
    return EXIT_OK


def _link(outcomes: Sequence[Outcome], comfyui_models: Path, progress: Progress) -> None:
    for outcome in outcomes:
        if not (outcome.ok and outcome.model.link_into_comfyui):
            continue
        try:
            link = link_into_comfyui(outcome.model, outcome.path, comfyui_models)
        except OSError as exc:
            progress.line(
                f"WARNING: cannot link {outcome.model.filename} into {comfyui_models}: {exc.strerror}"
            )
            continue
        if link is not None:
            progress.line(f"{outcome.model.filename}: linked into {link.parent}")


def _summary(outcomes: Sequence[Outcome], elapsed_s: float, progress: Progress) -> int:
    downloaded = [o for o in outcomes if o.status == "downloaded"]
    failed = [o for o in outcomes if not o.ok]
    received = sum(o.bytes_received for o in downloaded)
    unverified = [o for o in outcomes if o.ok and not o.model.verified]
    speed = f", {human_bytes(received / elapsed_s)}/s" if received and elapsed_s > 0 else ""
    progress.line(
        f"{len(downloaded)} downloaded ({human_bytes(received)} in {elapsed_s:.1f}s{speed}), "
        f"{len(outcomes) - len(downloaded) - len(failed)} already present, {len(failed)} failed"
    )
    if unverified:
        progress.line(
            f"WARNING: {len(unverified)} file(s) without a sha256 in manifest.toml were not verified"
        )
    for outcome in failed:
        progress.line(f"FAILED {outcome.model.filename}: {outcome.error}")
    return EXIT_FAILED if failed else EXIT_OK


def _groups(manifest: Manifest) -> int:
    for group in sorted(manifest.groups):
        narrowed = manifest.select(frozenset({group}))
        size = sum(m.size or 0 for m in narrowed.models)
        print(
            f"{group}: {len(narrowed.nodes)} node(s), {len(narrowed.packages)} package(s), "
            f"{len(narrowed.models)} model(s)"
            + (f" of {human_bytes(size)} or more, DOWNLOAD_{group}=true" if narrowed.models else "")
        )
    return EXIT_OK


def _install(args: argparse.Namespace, manifest: Manifest, environ: Mapping[str, str]) -> int:
    comfyui_path = args.dest or Path(environ.get("COMFYUI_PATH", "") or DEFAULT_COMFYUI_PATH)
    selected = manifest.select(parse_groups(args.groups))
    if args.what == "comfyui":
        install_comfyui(manifest.comfyui, comfyui_path, version=args.version, torch=manifest.torch)
    elif args.what == "torch":
        install_torch(manifest.torch)
    elif args.what == "nodes":
        install_nodes(selected.nodes, comfyui_path, torch=manifest.torch)
    else:
        install_packages(selected.packages, torch=manifest.torch)
    return EXIT_OK


def _record_nodes(args: argparse.Namespace, manifest: Manifest, environ: Mapping[str, str]) -> int:
    comfyui = args.comfyui or Path(environ.get("COMFYUI_PATH", "") or DEFAULT_COMFYUI_PATH)
    if not (comfyui / "nodes.py").is_file():
        print(f"provision: {comfyui} is not a ComfyUI folder (no nodes.py); pass --comfyui", file=sys.stderr)
        return EXIT_CONFIG
    folders = [(node.name, node.commit, comfyui / "custom_nodes" / node.name) for node in manifest.nodes]
    absent = [str(folder) for _, _, folder in folders if not folder.is_dir()]
    if absent:
        print(
            f"provision: manifest node folder(s) missing: {', '.join(absent)}; "
            "run `python -m provision install nodes` first",
            file=sys.stderr,
        )
        return EXIT_FAILED
    text = dumps(record(comfyui, folders, version=_comfyui_version(comfyui, manifest)))
    if args.out == "-":
        sys.stdout.write(text)
        return EXIT_OK
    out = Path(args.out) if args.out else comfyui / ".provision" / "node_classes.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    print(f"{PREFIX} node classes written to {out}", file=sys.stderr)
    return EXIT_OK


def _comfyui_version(comfyui: Path, manifest: Manifest) -> str:
    """``__version__`` of comfyui_version.py, else the manifest's pin."""
    try:
        for line in (comfyui / "comfyui_version.py").read_text(encoding="utf-8").splitlines():
            if line.startswith("__version__"):
                return line.split("=", 1)[1].strip().strip("\"'")
    except OSError:
        pass
    return manifest.comfyui.version


def _names(groups: frozenset[str] | str) -> str:
    return groups if isinstance(groups, str) else ", ".join(sorted(groups))


if __name__ == "__main__":
    sys.exit(main())
