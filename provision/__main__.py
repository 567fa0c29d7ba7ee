"""``python -m provision``: the command line the Dockerfile and the scripts call.

    python -m provision download [--groups GAUSSIAN] [--root DIR] [--keep-going]
                                                    models (groups from DOWNLOAD_*)
    python -m provision volume [--groups ALL] [--volume DIR]   fill a network volume once
    python -m provision plan [--groups ALL]                         what download would do
    python -m provision groups                                      the manifest's groups
    python -m provision install comfyui --dest /comfyui [--version latest]
    python -m provision install torch | nodes | packages [--groups ALL]
    python -m provision restamp --root /comfyui/models              (Dockerfile only)
    python -m provision layers --out DIR [--bake GAUSSIAN] [--torch-index-url URL]   (Dockerfile)
    python -m provision sources DIR/sources/nodes.json --dest /src [--sources-dir DIR]  (Dockerfile)
    python -m provision record-nodes [--comfyui /comfyui] [--out FILE]
                                       node classes of ComfyUI + manifest nodes (JSON, static read)

Exit status: 0 done, 1 some download or install failed, 2 bad manifest or settings.
With --keep-going (download_models.sh passes it unless DOWNLOAD_STRICT=true) failed models
do not fail the run: they are listed in the models status file (provision/status.py) and jobs
that need them fail with MODEL_MISSING, so a bad file cannot put a worker in a boot loop.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from .download import Downloader, DownloadOptions, Outcome, link_into_comfyui, restamp
from .errors import InstallError, ProvisionError
from .install import install_comfyui, install_nodes, install_packages, install_torch, latest_release_tag
from .layers import layer_files, write_layers
from .manifest import ALL_GROUPS, BUILD_MODES, Manifest, ModelSpec, load_manifest, parse_groups
from .node_classes import dumps, record
from .paths import VOLUME_ROOTS, candidate_roots, models_root
from .progress import PREFIX, Progress, human_bytes
from .settings import DEFAULT_COMFYUI_PATH, DownloadSettings
from .sources import gather_sources, read_entries
from .status import default_status_path, remove_status, status_payload, write_status

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
DEFAULT_MANIFEST = Path(__file__).resolve().parents[1] / "manifest.toml"


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    args = _parser().parse_args(argv)
    manifest_path = args.manifest or Path(environ.get("PROVISION_MANIFEST", "") or DEFAULT_MANIFEST)
    try:
        if args.command == "sources":  # reads the layers' entries file, not the manifest
            return _sources(args)
        manifest = load_manifest(manifest_path)
        if args.command in ("download", "plan"):
            return _download(args, manifest, environ, dry_run=args.command == "plan")
        if args.command == "volume":
            return _volume(args, manifest, environ)
        if args.command == "groups":
            return _groups(manifest)
        if args.command == "layers":
            return _layers(args, manifest)
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
        sub.add_argument(
            "--keep-going",
            action="store_true",
            help="failed models do not fail the run: listed in the status file for the handler",
        )
    volume = commands.add_parser("volume", help="download the manifest's models onto a network volume")
    volume.add_argument("--groups", default=ALL_GROUPS, help="GROUP,GROUP or ALL (default ALL)")
    volume.add_argument(
        "--volume", type=Path, help="the volume's mount point (default: /runpod-volume or /workspace)"
    )
    commands.add_parser("groups", help="list the manifest's groups")
    stamps = commands.add_parser("restamp", help="after a COPY of verified models (Dockerfile only)")
    stamps.add_argument("--root", type=Path, required=True)
    layers = commands.add_parser("layers", help="one input file per image layer (Dockerfile only)")
    layers.add_argument("--out", type=Path, required=True)
    layers.add_argument("--node-groups", default=ALL_GROUPS, help="GROUP,GROUP or ALL (default ALL)")
    layers.add_argument("--bake", default="", help="model groups baked into the image (default none)")
    layers.add_argument("--torch-index-url", default="", help="'default' = pip's own index")
    layers.add_argument("--pyproject", type=Path, help="the worker's pyproject.toml (its dependencies)")
    sources = commands.add_parser("sources", help="ComfyUI and the nodes: cloned, or from --sources-dir")
    sources.add_argument("entries", type=Path, help="a layers file: sources/comfyui.json, nodes.json, ...")
    sources.add_argument("--dest", type=Path, required=True)
    sources.add_argument("--sources-dir", type=Path, help="one plain tree per entry (ignored when empty)")
    sources.add_argument(
        "--ref", default="", help="another ref for a one-entry file; 'latest' = newest vX.Y.Z tag"
    )
    nodes = commands.add_parser("record-nodes", help="write the node classes ComfyUI and its nodes provide")
    nodes.add_argument("--comfyui", type=Path, help="ComfyUI folder (default: $COMFYUI_PATH or /comfyui)")
    nodes.add_argument(
        "--mode", choices=BUILD_MODES, help="only the nodes that image mode gets (default: every node)"
    )
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
        connections=settings.connections,
        split_min_bytes=int(settings.split_min_mib * 2**20),
        retries=settings.retries,
        timeout_s=settings.timeout_s,
        require_sha256=require,
        hf_token=settings.hf_token,
    )
    status_file = settings.status_file or default_status_path(settings.comfyui_path)
    remove_status(status_file)  # a cut run leaves no stale status behind
    progress.line(f"{len(models)} file(s) of group(s) {_names(groups)} into {root}")
    started = time.monotonic()
    outcomes = Downloader(options, progress).fetch_all(models, root, elsewhere=elsewhere)
    _link(outcomes, settings.comfyui_path / "models", progress)
    code = _summary(outcomes, time.monotonic() - started, progress)
    keep_going = args.keep_going and not settings.strict
    try:
        write_status(status_file, status_payload(outcomes, root=root, strict=not keep_going))
    except OSError as exc:
        progress.line(f"WARNING: cannot write the models status file {status_file}: {exc.strerror}")
        return code  # without it the handler cannot tell jobs what is missing: stop the boot
    if code != EXIT_OK and keep_going:
        missing = ", ".join(f"{o.model.name!r} ({o.model.group})" for o in outcomes if not o.ok)
        progress.line(
            f"the worker starts WITHOUT {missing}: jobs that need them fail with MODEL_MISSING "
            f"(listed in {status_file}). Set DOWNLOAD_STRICT=true to stop the boot instead."
        )
        return EXIT_OK
    return code


def _volume(args: argparse.Namespace, manifest: Manifest, environ: Mapping[str, str]) -> int:
    """Fill a network volume with the manifest's models, so workers using it download nothing."""
    volume = args.volume or next((v for v in VOLUME_ROOTS if v.is_dir()), None)
    if volume is None or not volume.is_dir():
        where = volume or " or ".join(str(v) for v in VOLUME_ROOTS)
        print(
            f"provision: no network volume at {where}; attach one (a pod mounts it at /workspace) "
            "or pass --volume DIR",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    root = volume / "models"
    args.root = root
    args.keep_going = False  # a volume is filled once, by hand: every failure must be seen
    args.require_sha256 = False
    args.concurrency = None
    code = _download(args, manifest, environ, dry_run=False)
    if code == EXIT_OK:
        print(
            f"{PREFIX} {root} holds the models of group(s) {args.groups}, verified. Attach this volume "
            "to the endpoint and set the same DOWNLOAD_* groups: workers find every file there and "
            "download nothing at boot (docs/models.md).",
            file=sys.stderr,
        )
    return code


def _plan(models: Sequence[ModelSpec], root: Path, require: bool) -> int:
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


def _layers(args: argparse.Namespace, manifest: Manifest) -> int:
    bake = parse_groups(args.bake) if args.bake.strip() else frozenset()
    files = layer_files(
        manifest,
        node_groups=parse_groups(args.node_groups),
        bake_groups=bake,
        torch_index_url=args.torch_index_url,
        pyproject=args.pyproject,
    )
    write_layers(args.out, files)
    index = files["torch/index-url"].strip()
    print(f"{PREFIX} layer inputs in {args.out} (torch from {index})", file=sys.stderr)
    return EXIT_OK


def _sources(args: argparse.Namespace) -> int:
    sources_dir = args.sources_dir if args.sources_dir and _has_trees(args.sources_dir) else None
    entries = read_entries(args.entries)
    if args.ref.strip():
        if len(entries) != 1:
            raise ProvisionError(f"--ref needs a file with one entry; {args.entries} has {len(entries)}")
        ref = args.ref.strip()
        if ref == "latest" and sources_dir is None:
            ref = latest_release_tag(entries[0].repo)
        entries = [replace(entries[0], ref=ref)]
    gather_sources(entries, args.dest, record=args.entries.stem, sources_dir=sources_dir)
    return EXIT_OK


def _has_trees(folder: Path) -> bool:
    """A SOURCES_DIR counts only when it holds a folder (the build context always has a README)."""
    return folder.is_dir() and any(child.is_dir() for child in folder.iterdir())


def _record_nodes(args: argparse.Namespace, manifest: Manifest, environ: Mapping[str, str]) -> int:
    comfyui = args.comfyui or Path(environ.get("COMFYUI_PATH", "") or DEFAULT_COMFYUI_PATH)
    if not (comfyui / "nodes.py").is_file():
        print(f"provision: {comfyui} is not a ComfyUI folder (no nodes.py); pass --comfyui", file=sys.stderr)
        return EXIT_CONFIG
    nodes = manifest.for_mode(args.mode).nodes if args.mode else manifest.nodes
    folders = [(node.name, node.commit, comfyui / "custom_nodes" / node.name) for node in nodes]
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
