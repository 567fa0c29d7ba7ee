"""scripts/download_models.sh, run for real against a loopback HTTP server (testkit/fileserver.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.fileserver import Fault, FileServer
from testkit.helpers import payload, sha256, write_manifest
from testkit.stubs import SCRIPTS


@pytest.fixture
def server() -> Iterator[FileServer]:
    with FileServer() as file_server:
        yield file_server


class Run:
    """download_models.sh in a temporary root: models into <tmp>/models, ComfyUI at <tmp>/comfyui."""

    def __init__(self, tmp_path: Path, server: FileServer) -> None:
        self.tmp = tmp_path
        self.server = server
        self.root = tmp_path / "models"
        self.comfyui = tmp_path / "comfyui"
        self.manifest = tmp_path / "manifest.toml"

    def model(self, name: str, data: bytes, **fields: object) -> dict[str, object]:
        """Serve `data` at /<name> and describe it as a manifest entry (folder loras, pinned sha)."""
        self.server.files[f"/{name}"] = data
        return {"url": self.server.url(f"/{name}"), "folder": "loras", "sha256": sha256(data), **fields}

    def popen(self, *args: str, **env: str) -> subprocess.Popen[str]:
        """Start download_models.sh without waiting (two workers booting on one volume)."""
        return subprocess.Popen(
            ["bash", str(SCRIPTS / "download_models.sh"), *args],
            env=self.environ(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def environ(self, **env: str) -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "PYTHON": sys.executable,
            "PROVISION_MANIFEST": str(self.manifest),
            "MODELS_ROOT": str(self.root),
            "COMFYUI_PATH": str(self.comfyui),
            "DOWNLOAD_RETRIES": "3",
            **env,
        }

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPTS / "download_models.sh"), *args],
            env=self.environ(**env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def path(self, name: str, folder: str = "loras") -> Path:
        return self.root / folder / name


@pytest.fixture
def run(tmp_path: Path, server: FileServer) -> Run:
    return Run(tmp_path, server)


def test_downloads_the_enabled_group_in_parallel(run: Run, server: FileServer) -> None:
    files = {f"m{i}.safetensors": payload(50_000 + i) for i in range(6)}
    models = [run.model(name, data) for name, data in files.items()]
    for name in files:
        server.faults[f"/{name}"] = Fault(first_byte_delay_s=0.4)
    write_manifest(run.manifest, models)

    started = time.monotonic()
    result = run(DOWNLOAD_TEST="true", DOWNLOAD_CONCURRENCY="6")
    elapsed = time.monotonic() - started

    assert result.returncode == 0, result.stderr
    for name, data in files.items():
        assert run.path(name).read_bytes() == data
    assert server.max_in_flight >= 4  # several at once...
    assert elapsed < 6 * 0.4  # ...so faster than one after the other
    assert "6 downloaded" in result.stderr


def test_a_cut_connection_resumes_where_it_stopped(run: Run, server: FileServer) -> None:
    data = payload(1_000_000)
    write_manifest(run.manifest, [run.model("big.safetensors", data, size=len(data))])
    server.faults["/big.safetensors"] = Fault(cut_after=300_000)

    result = run(DOWNLOAD_ALL="true")

    assert result.returncode == 0, result.stderr
    assert run.path("big.safetensors").read_bytes() == data
    ranges = [r.headers.get("Range") for r in server.requests_for("/big.safetensors")]
    assert ranges == [None, "bytes=300000-"]
    assert "resuming at" in result.stderr
    assert not list(run.path("big.safetensors").parent.glob("*.part"))


def test_a_checksum_mismatch_is_moved_aside_reported_once_and_does_not_stop_the_boot(
    run: Run, server: FileServer
) -> None:
    data = payload(10_000)
    good = payload(5_000)
    entry = run.model("bad.safetensors", data, loaded_by=["LoadBad"])
    entry["sha256"] = expected = sha256(b"something else")
    write_manifest(run.manifest, [entry, run.model("good.safetensors", good)])

    result = run(DOWNLOAD_ALL="true")

    assert result.returncode == 0, result.stderr  # the worker boots: no download-crash loop
    assert result.stderr.count(f"sha256 is {sha256(data)}, manifest.toml expects {expected}") == 1
    assert not run.path("bad.safetensors").exists()  # never under a name ComfyUI would load
    assert run.path(".bad.safetensors.rejected").read_bytes() == data  # kept for inspection
    assert run.path("good.safetensors").read_bytes() == good
    assert "the worker starts WITHOUT 'model 0' (TEST): jobs that need them fail with MODEL_MISSING" in (
        result.stderr
    )
    status = json.loads((run.comfyui / ".provision" / "models-status.json").read_text())
    [missing] = status["missing"]
    assert missing["filename"] == "bad.safetensors" and missing["error"] == "ChecksumMismatch"
    assert missing["loaded_by"] == ["LoadBad"] and expected in missing["reason"]


def test_strict_mode_stops_the_boot_on_a_failed_model(run: Run, server: FileServer) -> None:
    entry = run.model("bad.safetensors", payload(10_000))
    entry["sha256"] = sha256(b"something else")
    write_manifest(run.manifest, [entry])

    result = run(DOWNLOAD_ALL="true", DOWNLOAD_STRICT="true")

    assert result.returncode == 1
    assert "FAILED bad.safetensors" in result.stderr and "WITHOUT" not in result.stderr


def test_no_enabled_group_removes_a_stale_status(run: Run, server: FileServer) -> None:
    status = run.comfyui / ".provision" / "models-status.json"
    status.parent.mkdir(parents=True)
    status.write_text('{"version": 1, "missing": [{"filename": "old.safetensors"}]}')

    result = run()

    assert result.returncode == 0 and not status.exists()


def test_a_404_is_reported_and_the_other_files_still_arrive(run: Run, server: FileServer) -> None:
    good = payload(5_000)
    missing = {"url": server.url("/nope.safetensors"), "folder": "vae", "sha256": sha256(b"x")}
    write_manifest(run.manifest, [run.model("good.safetensors", good), missing])

    result = run(DOWNLOAD_ALL="true")

    assert result.returncode == 0, result.stderr
    assert "nope.safetensors: the server answered 404 Not Found" in result.stderr
    assert run.path("good.safetensors").read_bytes() == good
    assert "1 downloaded" in result.stderr and "1 failed" in result.stderr
    status = json.loads((run.comfyui / ".provision" / "models-status.json").read_text())
    assert [m["filename"] for m in status["missing"]] == ["nope.safetensors"]


def test_a_second_run_downloads_nothing(run: Run, server: FileServer) -> None:
    models = [run.model(f"f{i}.safetensors", payload(20_000)) for i in range(3)]
    write_manifest(run.manifest, models)
    first = run(DOWNLOAD_ALL="true")
    requests_after_first = len(server.requests)

    second = run(DOWNLOAD_ALL="true")

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert len(server.requests) == requests_after_first
    assert "0 downloaded" in second.stderr and "3 already present" in second.stderr


def test_a_partial_or_corrupt_file_is_never_taken_for_done(run: Run, server: FileServer) -> None:
    truncated, corrupt, junk_part = payload(30_000), payload(30_000), payload(30_000)
    write_manifest(
        run.manifest,
        [
            run.model("truncated.safetensors", truncated, size=len(truncated)),
            run.model("corrupt.safetensors", corrupt),
            run.model("junk.safetensors", junk_part),
        ],
    )
    loras = run.root / "loras"
    loras.mkdir(parents=True)
    (loras / "truncated.safetensors").write_bytes(truncated[:1000])  # a final name, cut short
    (loras / "corrupt.safetensors").write_bytes(bytes(len(corrupt)))  # right size, wrong bytes
    (loras / ".junk.safetensors.part").write_bytes(b"\xff" * 5000)  # a .part that is not a prefix

    result = run(DOWNLOAD_ALL="true")

    assert result.returncode == 0, result.stderr
    assert (loras / "truncated.safetensors").read_bytes() == truncated
    assert (loras / "corrupt.safetensors").read_bytes() == corrupt
    assert (loras / "junk.safetensors").read_bytes() == junk_part
    assert "downloading from scratch" in result.stderr  # the junk .part was resumed, then discarded


def test_transient_errors_are_retried(run: Run, server: FileServer) -> None:
    data = payload(8_000)
    write_manifest(run.manifest, [run.model("flaky.safetensors", data, size=len(data))])  # small: no probe
    server.faults["/flaky.safetensors"] = Fault(status=503, status_times=2, retry_after_s=0)

    result = run(DOWNLOAD_ALL="true")

    assert result.returncode == 0, result.stderr
    assert len(server.requests_for("/flaky.safetensors")) == 3
    assert result.stderr.count("the server answered 503; retrying") == 2


def test_retries_are_bounded(run: Run, server: FileServer) -> None:
    write_manifest(run.manifest, [run.model("down.safetensors", payload(100))])
    server.faults["/down.safetensors"] = Fault(status=503, retry_after_s=0)

    result = run(DOWNLOAD_ALL="true", DOWNLOAD_RETRIES="2")

    assert result.returncode == 0  # the worker boots without it (no boot loop)...
    assert "the worker starts WITHOUT 'model 0'" in result.stderr  # ...and says so
    assert len(server.requests_for("/down.safetensors")) == 3
    assert "gave up after 3 attempts" in result.stderr


def test_an_unverified_entry_downloads_with_a_warning_and_its_checksum(run: Run, server: FileServer) -> None:
    data = payload(4_000)
    write_manifest(run.manifest, [run.model("new.safetensors", data, sha256="FILL-ME: from the model page")])

    result = run(DOWNLOAD_ALL="true")

    assert result.returncode == 0, result.stderr
    assert "WARNING: new.safetensors is NOT verified" in result.stderr
    assert f'sha256 = "{sha256(data)}"' in result.stderr


def test_require_sha256_refuses_unverified_entries_without_downloading(run: Run, server: FileServer) -> None:
    write_manifest(run.manifest, [run.model("new.safetensors", payload(10), sha256="FILL-ME")])

    result = run(DOWNLOAD_ALL="true", DOWNLOAD_REQUIRE_SHA256="true", DOWNLOAD_STRICT="true")

    assert result.returncode == 1
    assert "DOWNLOAD_REQUIRE_SHA256=true" in result.stderr
    assert server.requests == []


def test_only_enabled_groups_are_downloaded(run: Run, server: FileServer) -> None:
    write_manifest(
        run.manifest,
        [
            run.model("a.safetensors", payload(10), group="GAUSSIAN"),
            run.model("b.safetensors", payload(10), group="VIDEO"),
        ],
    )

    result = run(DOWNLOAD_GAUSSIAN="true", DOWNLOAD_VIDEO="false")

    assert result.returncode == 0, result.stderr
    assert run.path("a.safetensors").exists()
    assert not run.path("b.safetensors").exists()


def test_no_flag_means_no_download_and_no_python(run: Run, server: FileServer) -> None:
    write_manifest(run.manifest, [run.model("a.safetensors", payload(10))])

    result = run(PYTHON="/nonexistent/python")  # would fail if it were started

    assert result.returncode == 0
    assert "no model group enabled" in result.stderr
    assert server.requests == []


def test_a_flag_naming_no_group_is_an_error(run: Run, server: FileServer) -> None:
    write_manifest(run.manifest, [run.model("a.safetensors", payload(10), group="GAUSSIAN")])

    result = run(DOWNLOAD_GAUSIAN="true")

    assert result.returncode == 2
    assert "DOWNLOAD_GAUSIAN='true': manifest.toml has no group 'GAUSIAN' (groups: GAUSSIAN)" in result.stderr


@pytest.mark.parametrize(("name", "value"), [("DOWNLOAD_GAUSSIAN", "maybe"), ("DOWNLOAD_STRICT", "2")])
def test_a_flag_that_is_not_a_boolean_stops_the_boot_naming_it(
    run: Run, server: FileServer, name: str, value: str
) -> None:
    write_manifest(run.manifest, [run.model("a.safetensors", payload(10), group="GAUSSIAN")])

    result = run(**{name: value, "DOWNLOAD_ALL": "true"})

    assert result.returncode == 1
    assert f"{name}={value} is not a boolean" in result.stderr
    assert server.requests == []


def test_one_and_yes_enable_a_group_like_true(run: Run, server: FileServer) -> None:
    write_manifest(run.manifest, [run.model("a.safetensors", payload(10), group="GAUSSIAN")])

    result = run(DOWNLOAD_GAUSSIAN="1", DOWNLOAD_STRICT="yes")

    assert result.returncode == 0, result.stderr
    assert run.path("a.safetensors").exists()


def test_groups_argument_overrides_the_flags_and_plan_changes_nothing(run: Run, server: FileServer) -> None:
    write_manifest(run.manifest, [run.model("a.safetensors", payload(10), sha256="FILL-ME")])

    plan = run("plan", "--groups", "all")
    download = run("--groups", "TEST")

    assert plan.returncode == 0 and "a.safetensors" in plan.stdout and "NO sha256 (FILL-ME)" in plan.stdout
    assert download.returncode == 0 and run.path("a.safetensors").exists()
    assert len(server.requests) == 2  # the download: its range probe (size unknown) and the file; plan none


def test_files_a_node_reads_from_comfyui_models_are_linked_there(run: Run, server: FileServer) -> None:
    data = payload(1000)
    entry = run.model("sharp.pt", data, folder="sharp", link_into_comfyui=True)
    write_manifest(run.manifest, [entry])

    result = run(DOWNLOAD_ALL="true")

    link = run.comfyui / "models" / "sharp" / "sharp.pt"
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and link.resolve() == run.path("sharp.pt", "sharp")
    assert link.read_bytes() == data


def test_progress_lines_say_how_far_along_it_is(run: Run, server: FileServer) -> None:
    data = payload(2_000_000)
    write_manifest(run.manifest, [run.model("p.safetensors", data, size=len(data))])

    result = run(DOWNLOAD_ALL="true", DOWNLOAD_PROGRESS_INTERVAL_S="0")

    assert result.returncode == 0, result.stderr
    assert "[models] p.safetensors: downloading (1.9 MiB)" in result.stderr
    assert "(100%)" in result.stderr and "/s" in result.stderr


def test_volume_fills_a_network_volume_so_a_boot_downloads_nothing(run: Run, server: FileServer) -> None:
    files = {"a.safetensors": payload(30_000), "b.safetensors": payload(40_000)}
    write_manifest(run.manifest, [run.model(name, data) for name, data in files.items()])
    volume = run.tmp / "runpod-volume"
    volume.mkdir()

    filled = run("volume", "--volume", str(volume))
    requests = len(server.requests)
    boot = run(DOWNLOAD_ALL="true", MODELS_ROOT=str(volume / "models"))

    assert filled.returncode == 0, filled.stderr
    for name, data in files.items():
        assert (volume / "models" / "loras" / name).read_bytes() == data
    assert "Attach this volume to the endpoint" in filled.stderr
    assert boot.returncode == 0, boot.stderr
    assert len(server.requests) == requests  # the boot asked the server for nothing
    assert "0 downloaded" in boot.stderr and "2 already present" in boot.stderr


def test_volume_without_a_volume_says_how_to_attach_one(run: Run, server: FileServer) -> None:
    write_manifest(run.manifest, [run.model("a.safetensors", payload(10))])

    result = run("volume", "--volume", str(run.tmp / "nowhere"))

    assert result.returncode == 2
    assert "no network volume at" in result.stderr and "--volume DIR" in result.stderr
    assert server.requests == []


def test_two_workers_on_one_volume_download_each_file_once_and_never_expose_a_partial_one(
    run: Run, server: FileServer
) -> None:
    big, small = payload(3 * 2**20), payload(200_000)
    write_manifest(
        run.manifest,
        [run.model("big.safetensors", big, size=len(big)), run.model("small.safetensors", small)],
    )
    # Slow enough that both workers are at it at once; the big file goes in ranges.
    server.faults["/big.safetensors"] = Fault(rate_bytes_per_s=1.5 * 2**20)
    server.faults["/small.safetensors"] = Fault(first_byte_delay_s=0.5)
    env = {"DOWNLOAD_ALL": "true", "DOWNLOAD_SPLIT_MIN_MIB": "1", "DOWNLOAD_CONNECTIONS": "3"}

    workers = [run.popen(**env), run.popen(**env)]
    seen: dict[str, bytes] = {}
    while any(w.poll() is None for w in workers):
        for name in ("big.safetensors", "small.safetensors"):
            path = run.path(name)
            if name not in seen and path.exists():
                seen[name] = path.read_bytes()  # the moment it has its name, it is complete
        time.sleep(0.01)
    results = [w.communicate(timeout=30) for w in workers]

    assert [w.returncode for w in workers] == [0, 0], results
    assert seen == {"big.safetensors": big, "small.safetensors": small}
    assert run.path("big.safetensors").read_bytes() == big
    # Each file's bytes went over the wire once, plus the one byte of the first worker's range
    # probe (the second worker never probes: it finds the verified file after the lock).
    assert server.bytes_sent["/big.safetensors"] == len(big) + 1
    assert server.bytes_sent["/small.safetensors"] == len(small) + 1
    stderr = "".join(err for _, err in results)
    assert "another process is downloading it; waiting" in stderr
    assert not list(run.root.rglob("*.part")) and not list(run.root.rglob("*.ranges"))
