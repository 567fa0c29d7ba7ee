"""provision.download against a loopback server: tokens, backoff, resume edge cases, locking, stamps."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision.download import Downloader, DownloadOptions, link_into_comfyui, restamp, stamp_path
from provision.errors import AuthRequired, NoSpace, RetryableDownloadError, SizeMismatch
from provision.manifest import ModelSpec
from provision.progress import Progress, human_bytes
from testkit.fileserver import Fault, FileServer
from testkit.helpers import payload, sha256


@pytest.fixture
def server() -> Iterator[FileServer]:
    with FileServer() as file_server:
        yield file_server


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _downloader(**options: object) -> tuple[Downloader, io.StringIO, Sleeps]:
    log = io.StringIO()
    sleeps = Sleeps()
    opts = DownloadOptions(**{"backoff_s": 0.01, **options})  # type: ignore[arg-type]
    return Downloader(opts, Progress(log, interval_s=3600), sleep=sleeps), log, sleeps


def _model(server: FileServer, name: str, data: bytes | None, **fields: object) -> ModelSpec:
    if data is not None:
        server.files[f"/{name}"] = data
    spec = {
        "name": name,
        "group": "TEST",
        "url": server.url(f"/{name}"),
        "folder": "loras",
        "filename": name,
        "sha256": sha256(data) if data is not None else "0" * 64,
        **fields,
    }
    return ModelSpec(**spec)  # type: ignore[arg-type]


def test_the_hf_token_goes_only_to_token_hosts_and_survives_a_same_host_redirect(
    server: FileServer, tmp_path: Path
) -> None:
    data = payload(1000)
    model = _model(server, "gated.safetensors", None, sha256=sha256(data))
    server.files["/cdn/gated.safetensors"] = data
    server.faults["/gated.safetensors"] = Fault(redirect_to=server.url("/resolved"))
    server.faults["/resolved"] = Fault(redirect_to=server.url("/cdn/gated.safetensors", host="localhost"))
    downloader, _, _ = _downloader(hf_token="hf_secret", token_hosts=frozenset({"127.0.0.1"}))

    outcome = downloader.fetch(model, tmp_path)

    assert outcome.status == "downloaded", outcome.error
    auth = {r.path: r.headers.get("Authorization") for r in server.requests}
    assert auth["/gated.safetensors"] == "Bearer hf_secret"
    assert auth["/resolved"] == "Bearer hf_secret"  # same host: re-added
    assert auth["/cdn/gated.safetensors"] is None  # another host (a CDN): never


def test_no_token_for_other_hosts_at_all(server: FileServer, tmp_path: Path) -> None:
    model = _model(server, "public.safetensors", payload(100))
    downloader, _, _ = _downloader(hf_token="hf_secret")  # token hosts: huggingface.co, hf.co

    assert downloader.fetch(model, tmp_path).ok
    assert server.requests[0].headers.get("Authorization") is None


def test_a_gated_file_without_a_token_says_to_set_hf_token(server: FileServer, tmp_path: Path) -> None:
    model = _model(server, "gated.safetensors", payload(100))
    server.faults["/gated.safetensors"] = Fault(require_token="right")

    without = _downloader(token_hosts=frozenset({"127.0.0.1"}))[0].fetch(model, tmp_path)
    wrong = _downloader(hf_token="wrong", token_hosts=frozenset({"127.0.0.1"}))[0].fetch(model, tmp_path)

    assert isinstance(without.error, AuthRequired)
    assert "set HF_TOKEN (or HF_TOKEN_FILE)" in str(without.error)
    assert isinstance(wrong.error, AuthRequired)
    assert "the HF_TOKEN was refused: accept the model's license" in str(wrong.error)
    assert len(server.requests) == 2  # an auth failure is not retried


def test_backoff_doubles_is_capped_and_honours_retry_after(server: FileServer, tmp_path: Path) -> None:
    model = _model(server, "flaky.safetensors", payload(100))
    server.faults["/flaky.safetensors"] = Fault(status=500, status_times=4)
    downloader, _, sleeps = _downloader(backoff_s=1.0, backoff_max_s=3.0, retries=5)

    assert downloader.fetch(model, tmp_path).ok
    assert len(sleeps) == 4
    for attempt, delay in enumerate(sleeps):
        cap = min(3.0, 2**attempt)
        assert cap / 2 <= delay <= cap  # jittered between half and all of the step

    server.faults["/flaky.safetensors"] = Fault(status=429, status_times=1, retry_after_s=2)
    (tmp_path / "loras" / "flaky.safetensors").unlink()
    downloader, _, sleeps = _downloader(backoff_max_s=30.0)
    assert downloader.fetch(model, tmp_path).ok
    assert sleeps == [2.0]


def test_a_server_that_ignores_range_restarts_from_zero(server: FileServer, tmp_path: Path) -> None:
    data = payload(200_000)
    model = _model(server, "norange.safetensors", data)
    # Two cut responses: the range probe's (read no further) and the first real download's.
    server.faults["/norange.safetensors"] = Fault(cut_after=50_000, cut_times=2, ignore_range=True)
    downloader, log, _ = _downloader()

    outcome = downloader.fetch(model, tmp_path)

    assert outcome.ok and (tmp_path / "loras" / "norange.safetensors").read_bytes() == data
    assert "the server cannot resume; starting over" in log.getvalue()


def test_a_complete_part_is_finished_with_a_416(server: FileServer, tmp_path: Path) -> None:
    data = payload(10_000)
    model = _model(server, "done.safetensors", data)  # no size in the manifest: must ask the server
    (tmp_path / "loras").mkdir()
    (tmp_path / "loras" / ".done.safetensors.part").write_bytes(data)
    downloader, _, _ = _downloader()

    outcome = downloader.fetch(model, tmp_path)

    assert outcome.status == "downloaded" and outcome.bytes_received == 0
    # The probe learns the size (too small to split), then one stream asks for the rest.
    assert [r.headers.get("Range") for r in server.requests] == ["bytes=0-0", "bytes=10000-"]


def test_a_server_size_that_disagrees_with_the_manifest_fails_before_downloading(
    server: FileServer, tmp_path: Path
) -> None:
    model = _model(server, "resized.safetensors", payload(5_000), size=4_000)
    downloader, _, _ = _downloader()

    outcome = downloader.fetch(model, tmp_path)

    assert isinstance(outcome.error, SizeMismatch)
    assert "5000 bytes received, manifest.toml says size = 4000" in str(outcome.error)
    assert not list((tmp_path / "loras").iterdir())


def test_not_enough_disk_space_is_said_up_front(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _model(server, "huge.safetensors", payload(5_000))
    monkeypatch.setattr("shutil.disk_usage", lambda _: type("U", (), {"free": 1000, "total": 0, "used": 0})())
    downloader, _, _ = _downloader()

    outcome = downloader.fetch(model, tmp_path)

    assert isinstance(outcome.error, NoSpace)
    assert "has 0.0 GiB free" in str(outcome.error)


def test_two_downloaders_of_one_file_take_turns(server: FileServer, tmp_path: Path) -> None:
    data = payload(300_000)
    model = _model(server, "shared.safetensors", data, size=len(data))  # known small: no range probe
    server.faults["/shared.safetensors"] = Fault(first_byte_delay_s=0.3)
    first, _, _ = _downloader()
    second, _, _ = _downloader()
    outcomes = []

    threads = [
        threading.Thread(target=lambda d=d: outcomes.append(d.fetch(model, tmp_path)))
        for d in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert sorted(o.status for o in outcomes) == ["downloaded", "present"]
    assert len(server.requests) == 1
    assert (tmp_path / "loras" / "shared.safetensors").read_bytes() == data


def test_a_verified_copy_elsewhere_counts_as_present(server: FileServer, tmp_path: Path) -> None:
    data = payload(1000)
    model = _model(server, "baked.safetensors", data, size=len(data))  # known small: no range probe
    image_root, volume_root = tmp_path / "image", tmp_path / "volume"
    assert _downloader()[0].fetch(model, image_root).status == "downloaded"

    outcome = _downloader()[0].fetch(model, volume_root, elsewhere=[image_root])

    assert outcome.status == "present" and outcome.path == image_root / "loras" / "baked.safetensors"
    assert len(server.requests) == 1


def test_a_changed_file_is_hashed_again_and_replaced(server: FileServer, tmp_path: Path) -> None:
    data = payload(1000)
    model = _model(server, "edited.safetensors", data)
    downloader, log, _ = _downloader()
    downloader.fetch(model, tmp_path)
    target = tmp_path / "loras" / "edited.safetensors"
    target.write_bytes(bytes(1000))  # same size, new mtime, wrong bytes

    outcome = downloader.fetch(model, tmp_path)

    assert outcome.status == "downloaded" and target.read_bytes() == data
    assert "is not the manifest's; downloading again" in log.getvalue()


def test_a_new_checksum_in_the_manifest_replaces_the_old_file(server: FileServer, tmp_path: Path) -> None:
    old, new = payload(1000), payload(1000)
    model = _model(server, "v.safetensors", old)
    _downloader()[0].fetch(model, tmp_path)
    server.files["/v.safetensors"] = new
    updated = ModelSpec(**{**model.__dict__, "sha256": sha256(new)})

    outcome = _downloader()[0].fetch(updated, tmp_path)

    assert outcome.status == "downloaded"
    assert (tmp_path / "loras" / "v.safetensors").read_bytes() == new


def test_an_existing_file_without_a_stamp_is_checked_once(server: FileServer, tmp_path: Path) -> None:
    data = payload(1000)
    model = _model(server, "copied.safetensors", data)
    (tmp_path / "loras").mkdir()
    (tmp_path / "loras" / "copied.safetensors").write_bytes(data)  # e.g. copied by hand

    outcome = _downloader()[0].fetch(model, tmp_path)

    assert outcome.status == "present" and server.requests == []
    assert stamp_path(tmp_path / "loras" / "copied.safetensors").exists()


def test_restamp_refreshes_mtimes_after_a_copy(server: FileServer, tmp_path: Path) -> None:
    data = payload(1000)
    model = _model(server, "baked.safetensors", data)
    _downloader()[0].fetch(model, tmp_path)
    target = tmp_path / "loras" / "baked.safetensors"
    os.utime(target, ns=(1, 1))  # what a COPY may do to mtimes

    assert restamp(tmp_path) == 1
    outcome = _downloader()[0].fetch(model, tmp_path)
    assert outcome.status == "present"


def test_links_never_replace_a_real_file(tmp_path: Path) -> None:
    model = ModelSpec("m", "G", "https://x/m.pt", "sharp", "m.pt", None, link_into_comfyui=True)
    source = tmp_path / "volume" / "sharp" / "m.pt"
    source.parent.mkdir(parents=True)
    source.write_bytes(b"x")
    comfy_models = tmp_path / "comfyui" / "models"

    link = link_into_comfyui(model, source, comfy_models)
    again = link_into_comfyui(model, source, comfy_models)

    assert link is not None and link.is_symlink() and again is None
    link.unlink()
    link.write_bytes(b"a real file someone put there")
    assert link_into_comfyui(model, source, comfy_models) is None
    assert not link.is_symlink()


def test_retryable_errors_are_marked() -> None:
    assert RetryableDownloadError("x", url="u", target=Path("t")).retryable
    assert not SizeMismatch(url="u", target=Path("t"), expected=1, actual=2).retryable


@pytest.mark.parametrize(
    ("count", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 2**30, "5.0 GiB"), (2**42, "4096.0 GiB")],
)
def test_human_bytes(count: int, text: str) -> None:
    assert human_bytes(count) == text


def test_progress_lines_are_throttled_per_file() -> None:
    now = [0.0]
    log = io.StringIO()
    progress = Progress(log, interval_s=5.0, clock=lambda: now[0])
    progress.start("a.bin", total=100 * 2**20, offset=0)
    for second in range(1, 11):
        now[0] = float(second)
        progress.advance("a.bin", 10 * 2**20)
    lines = log.getvalue().splitlines()

    assert lines[0] == "[models] a.bin: downloading (100.0 MiB)"
    assert lines[1:] == [
        "[models] a.bin: 50.0 MiB / 100.0 MiB (50%), 10.0 MiB/s, 5s left",
        "[models] a.bin: 100.0 MiB / 100.0 MiB (100%), 10.0 MiB/s, 0s left",
    ]


def test_a_stamp_survives_an_image_layer_truncating_mtimes_to_seconds(tmp_path: Path) -> None:
    from provision.download import _Stamp

    model = tmp_path / "model.safetensors"
    model.write_bytes(b"weights")
    exact = model.stat().st_mtime_ns // 1_000_000_000 * 1_000_000_000 + 123_456_789
    os.utime(model, ns=(exact, exact))
    stamp = _Stamp("0" * 64, 7, exact, "https://x/model")
    assert stamp.matches(model)
    truncated = exact // 1_000_000_000 * 1_000_000_000  # what a pushed and pulled image holds
    os.utime(model, ns=(truncated, truncated))
    assert stamp.matches(model)
    other = truncated + 1_000_000_000
    os.utime(model, ns=(other, other))
    assert not stamp.matches(model)  # a different second is a different file
    os.utime(model, ns=(exact + 1, exact + 1))
    assert not stamp.matches(model)  # and real nanoseconds must match exactly
