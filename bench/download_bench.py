"""Model download benchmark: ranged parallel downloads of one big file (run: ``python -m bench.download_bench``).

1. One big file (2 GiB by default) from the loopback file server, which caps each connection
   (``--rate-mib``, as hosting CDNs do) and adds a first-byte latency. ``download_models.sh``
   with ``DOWNLOAD_CONNECTIONS=1`` (one stream per file: the behaviour before ranged downloads,
   the baseline) against the default (``DOWNLOAD_CONNECTIONS=8``). Both verify the sha256 from
   the manifest; the benchmark hashes the result once more itself.
2. 20 small files (below ``DOWNLOAD_SPLIT_MIN_MIB``), as boot_bench measures them: sequential
   curl (baseline), one stream per file, and the default settings.

The server runs in its own process (testkit/fileserver.py), so it does not share the
client's interpreter lock. Files live in a temporary directory that is deleted at the end;
the big file needs about twice its size in free disk.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import multiprocessing.connection
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testkit.fileserver import Fault, FileServer
from testkit.helpers import write_manifest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "download_models.sh"


def _serve(files: dict[str, Path], fault: Fault, conn: multiprocessing.connection.Connection) -> None:
    server = FileServer(dict(files))
    for name in files:
        server.faults[name] = fault
    conn.send(server.port)
    conn.recv()  # until the benchmark says stop
    server.close()


class _ServerProcess:
    def __init__(self, files: dict[str, Path], fault: Fault) -> None:
        self._conn, child = multiprocessing.Pipe()
        self._process = multiprocessing.get_context("fork").Process(
            target=_serve, args=(files, fault, child), daemon=True
        )
        self._process.start()
        self.port = int(self._conn.recv())

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._conn.send("stop")
        self._process.join(10)


def _random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    step = 64 << 20
    with path.open("wb") as handle:
        written = 0
        while written < size:
            chunk = os.urandom(min(step, size - written))
            handle.write(chunk)
            digest.update(chunk)
            written += len(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _download(root: Path, manifest: Path, models: Path, **env: str) -> float:
    environ = {
        "PATH": os.environ["PATH"],
        "PYTHON": sys.executable,
        "PROVISION_MANIFEST": str(manifest),
        "MODELS_ROOT": str(models),
        "COMFYUI_PATH": str(root / "comfyui"),
        "DOWNLOAD_ALL": "true",
        "DOWNLOAD_PROGRESS_INTERVAL_S": "3600",
        **env,
    }
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(SCRIPT)], env=environ, capture_output=True, text=True, timeout=3600, check=False
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"download_models.sh failed:\n{result.stderr[-3000:]}")
    return elapsed


def bench_big(size_mib: int, rate_mib: float, latency_ms: float, connections: int) -> None:
    size = size_mib << 20
    with tempfile.TemporaryDirectory(prefix="bench-big-") as tmp:
        root = Path(tmp)
        source = root / "served" / "big.safetensors"
        source.parent.mkdir()
        print(
            f"1. one file of {size_mib} MiB, {rate_mib:g} MiB/s per connection, {latency_ms:g} ms to first byte"
        )
        expected = _random_file(source, size)
        fault = Fault(first_byte_delay_s=latency_ms / 1000, rate_bytes_per_s=rate_mib * 2**20)
        server = _ServerProcess({"/big.safetensors": source}, fault)
        try:
            manifest = write_manifest(
                root / "manifest.toml",
                [
                    {
                        "url": server.url("/big.safetensors"),
                        "folder": "diffusion_models",
                        "sha256": expected,
                        "size": size,
                    }
                ],
            )
            rows = []
            for label, conns in (("one stream (baseline)", 1), (f"{connections} connections", connections)):
                models = root / f"models-{conns}"
                seconds = _download(root, manifest, models, DOWNLOAD_CONNECTIONS=str(conns))
                landed = models / "diffusion_models" / "big.safetensors"
                verified = _sha256(landed) == expected
                shutil.rmtree(models)
                rows.append((label, seconds, verified))
        finally:
            server.close()
        baseline = rows[0][1]
        for label, seconds, verified in rows:
            print(
                f"  {label:28} {seconds:7.2f} s  {size_mib / seconds:8.1f} MiB/s  "
                f"{baseline / seconds:5.2f}x the baseline  sha256 {'verified' if verified else 'WRONG'}"
            )


def bench_small(files: int, size_mib: float, rate_mib: float, latency_ms: float) -> None:
    size = int(size_mib * 2**20)
    with tempfile.TemporaryDirectory(prefix="bench-small-") as tmp:
        root = Path(tmp)
        served: dict[str, Path] = {}
        entries = []
        for index in range(files):
            path = root / "served" / f"model_{index:02d}.safetensors"
            path.parent.mkdir(exist_ok=True)
            sha = _random_file(path, size)
            served[f"/{path.name}"] = path
            entries.append({"folder": "loras", "sha256": sha, "size": size, "name": path.name})
        fault = Fault(first_byte_delay_s=latency_ms / 1000, rate_bytes_per_s=rate_mib * 2**20)
        server = _ServerProcess(served, fault)
        try:
            for entry in entries:
                entry["url"] = server.url(f"/{entry['name']}")
            manifest = write_manifest(root / "manifest.toml", entries)
            print(
                f"2. {files} files x {size_mib:g} MiB, {rate_mib:g} MiB/s per connection, "
                f"{latency_ms:g} ms to first byte"
            )
            curl_dir = root / "curl"
            curl_dir.mkdir()
            script = "set -euo pipefail\n" + "".join(
                f'curl -fsS -o "{curl_dir}/{i}" "{e["url"]}"\n' for i, e in enumerate(entries)
            )
            started = time.monotonic()
            subprocess.run(["bash", "-c", script], check=True, timeout=3600)
            rows = [("sequential curl (baseline)", time.monotonic() - started)]
            for label, conns in (("one stream per file, x4 files", "1"), ("defaults (ranged when big)", "8")):
                models = root / f"models-{conns}"
                rows.append((label, _download(root, manifest, models, DOWNLOAD_CONNECTIONS=conns)))
                shutil.rmtree(models)
        finally:
            server.close()
        baseline = rows[0][1]
        total_mib = files * size_mib
        for label, seconds in rows:
            print(
                f"  {label:32} {seconds:7.2f} s  {total_mib / seconds:8.1f} MiB/s  "
                f"{baseline / seconds:5.2f}x the baseline"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=2048, help="the big file (default 2048 = 2 GiB)")
    parser.add_argument("--rate-mib", type=float, default=20.0, help="per-connection cap (default 20)")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--connections", type=int, default=8, help="DOWNLOAD_CONNECTIONS (default 8)")
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--file-mib", type=float, default=8.0)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--skip-small", action="store_true")
    args = parser.parse_args()
    print(f"download_bench: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    if not args.skip_big:
        bench_big(args.size_mib, args.rate_mib, args.latency_ms, args.connections)
        print()
    if not args.skip_small:
        bench_small(args.files, args.file_mib, args.rate_mib, args.latency_ms)


if __name__ == "__main__":
    main()
