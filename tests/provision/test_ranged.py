"""Ranged parallel downloads of one file, against the loopback file server over real sockets."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision.download import Downloader, DownloadOptions, rejected_path, stamp_path
from provision.errors import ChecksumMismatch, DownloadError, SizeMismatch
from provision.manifest import ModelSpec
from provision.progress import Progress
from provision.ranged import ranges_path
from testkit.fileserver import Fault, FileServer
from testkit.helpers import payload, sha256

KIB = 1024
SIZE = 1024 * KIB
BLOCK = 128 * KIB


@pytest.fixture
def server() -> Iterator[FileServer]:
    with FileServer() as file_server:
        yield file_server


def _downloader(**options: object) -> tuple[Downloader, io.StringIO]:
    log = io.StringIO()
    defaults: dict[str, object] = {
        "backoff_s": 0.01,
        "connections": 4,
        "split_min_bytes": 256 * KIB,
        "block_bytes": BLOCK,
    }
    opts = DownloadOptions(**{**defaults, **options})  # type: ignore[arg-type]
    return Downloader(opts, Progress(log, interval_s=3600), sleep=lambda _: None), log


def _model(server: FileServer, data: bytes, **fields: object) -> ModelSpec:
    server.files["/big.safetensors"] = data
    spec = {
        "name": "big",
        "group": "TEST",
        "url": server.url("/big.safetensors"),
        "folder": "diffusion_models",
        "filename": "big.safetensors",
        "sha256": sha256(data),
        **fields,
    }
    return ModelSpec(**spec)  # type: ignore[arg-type]


def _ranges(server: FileServer) -> list[str]:
    return [r.headers.get("Range", "") for r in server.requests_for("/big.safetensors")]


def test_a_large_file_comes_in_parallel_ranges_and_is_verified(server: FileServer, tmp_path: Path) -> None:
    data = payload(SIZE)
    model = _model(server, data, size=SIZE)
    server.faults["/big.safetensors"] = Fault(rate_bytes_per_s=2 * 1024 * KIB)  # blocks overlap in time
    downloader, _ = _downloader()

    outcome = downloader.fetch(model, tmp_path)

    target = tmp_path / "diffusion_models" / "big.safetensors"
    assert outcome.status == "downloaded", outcome.error
    assert outcome.sha256 == sha256(data) and target.read_bytes() == data
    ranges = _ranges(server)
    assert ranges[0] == "bytes=0-0"  # the probe
    assert sorted(ranges[1:]) == sorted(f"bytes={s}-{s + BLOCK - 1}" for s in range(0, SIZE, BLOCK))
    assert server.max_in_flight >= 3  # really several connections at once
    assert server.bytes_sent["/big.safetensors"] == SIZE + 1  # every byte once (+ the probe's)
    assert not ranges_path(target).exists() and not (target.parent / ".big.safetensors.part").exists()
    assert stamp_path(target).exists()


def test_a_server_without_ranges_gets_one_stream(server: FileServer, tmp_path: Path) -> None:
    data = payload(SIZE)
    model = _model(server, data)  # size unknown: the probe also learns that it cannot split
    server.faults["/big.safetensors"] = Fault(ignore_range=True)
    downloader, _ = _downloader()

    outcome = downloader.fetch(model, tmp_path)

    assert outcome.status == "downloaded", outcome.error
    assert (tmp_path / "diffusion_models" / "big.safetensors").read_bytes() == data
    assert _ranges(server) == ["bytes=0-0", ""]  # the probe got a 200: then one plain GET


def test_a_server_that_stops_honouring_ranges_falls_back_to_one_stream(
    server: FileServer, tmp_path: Path
) -> None:
    data = payload(SIZE)
    model = _model(server, data, size=SIZE)
    downloader, log = _downloader()
    # The probe works; then the server answers every ranged request with the whole file.
    original = server._record

    def record(request: object) -> Fault | None:
        fault = original(request)  # type: ignore[arg-type]
        return Fault(ignore_range=True) if len(server.requests) > 1 else fault

    server._record = record  # type: ignore[method-assign]

    outcome = downloader.fetch(model, tmp_path)

    assert outcome.status == "downloaded", outcome.error
    assert (tmp_path / "diffusion_models" / "big.safetensors").read_bytes() == data
    assert "falling back to one stream" in log.getvalue()


def test_a_block_cut_mid_way_resumes_where_it_stopped(server: FileServer, tmp_path: Path) -> None:
    data = payload(SIZE)
    model = _model(server, data, size=SIZE)
    cut = 3 * BLOCK + 10_000
    server.faults["/big.safetensors"] = Fault(cut_at_offset=cut)
    downloader, log = _downloader()

    outcome = downloader.fetch(model, tmp_path)

    assert outcome.status == "downloaded", outcome.error
    assert (tmp_path / "diffusion_models" / "big.safetensors").read_bytes() == data
    assert f"bytes={cut}-{4 * BLOCK - 1}" in _ranges(server)  # only the rest of that block
    assert server.bytes_sent["/big.safetensors"] == SIZE + 1  # nothing fetched twice
    assert "resuming it in" in log.getvalue()


def test_an_interrupted_run_resumes_every_block_in_the_next_run(server: FileServer, tmp_path: Path) -> None:
    data = payload(SIZE)
    model = _model(server, data, size=SIZE)
    cut = 5 * BLOCK + 1234
    server.faults["/big.safetensors"] = Fault(cut_at_offset=cut)
    first, _ = _downloader(retries=0)  # gives up at the first cut, like a worker that was stopped

    failed = first.fetch(model, tmp_path)

    target = tmp_path / "diffusion_models" / "big.safetensors"
    assert isinstance(failed.error, DownloadError) and "finished blocks are kept" in str(failed.error)
    assert ranges_path(target).exists() and not target.exists()
    state = json.loads(ranges_path(target).read_text())
    kept = sum(done for _, _, done in state["blocks"])
    assert kept >= cut - 4 * BLOCK  # the blocks before the cut, at least

    second, log = _downloader()
    outcome = second.fetch(model, tmp_path)

    assert outcome.status == "downloaded", outcome.error
    assert target.read_bytes() == data
    assert "resuming" in log.getvalue()
    assert outcome.bytes_received == SIZE - kept  # only what the first run had not written


def test_corrupt_data_is_a_checksum_mismatch_and_is_moved_aside(server: FileServer, tmp_path: Path) -> None:
    data = payload(SIZE)
    expected = sha256(b"the file the manifest means")
    model = _model(server, data, size=SIZE, sha256=expected)
    downloader, log = _downloader()

    outcome = downloader.fetch(model, tmp_path)

    target = tmp_path / "diffusion_models" / "big.safetensors"
    assert isinstance(outcome.error, ChecksumMismatch)
    message = str(outcome.error)
    assert sha256(data) in message and expected in message and str(rejected_path(target)) in message
    assert not target.exists() and rejected_path(target).read_bytes() == data
    assert sha256(data) not in log.getvalue()  # the run summary reports it, once (test_download_models)
    assert not ranges_path(target).exists()


def test_a_size_that_disagrees_with_the_manifest_fails_at_the_probe(
    server: FileServer, tmp_path: Path
) -> None:
    data = payload(SIZE)
    model = _model(server, data, size=SIZE - 1)
    downloader, _ = _downloader()

    outcome = downloader.fetch(model, tmp_path)

    assert isinstance(outcome.error, SizeMismatch)
    assert _ranges(server) == ["bytes=0-0"]  # nothing downloaded


def test_small_files_skip_the_probe(server: FileServer, tmp_path: Path) -> None:
    data = payload(10 * KIB)
    model = _model(server, data, size=len(data))
    downloader, _ = _downloader()

    assert downloader.fetch(model, tmp_path).status == "downloaded"
    assert _ranges(server) == [""]


def test_a_transient_failure_of_the_probe_still_gets_ranges(server: FileServer, tmp_path: Path) -> None:
    data = payload(SIZE)
    model = _model(server, data, size=SIZE)
    server.faults["/big.safetensors"] = Fault(status=503, status_times=1)
    downloader, _ = _downloader()

    outcome = downloader.fetch(model, tmp_path)

    assert outcome.status == "downloaded", outcome.error
    assert (tmp_path / "diffusion_models" / "big.safetensors").read_bytes() == data
    assert _ranges(server)[:2] == ["bytes=0-0", "bytes=0-0"]  # asked again after the 503...
    assert len(_ranges(server)) == 2 + SIZE // BLOCK  # ...then fetched in blocks
