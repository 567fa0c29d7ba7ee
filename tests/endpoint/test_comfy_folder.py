"""``comfy-worker serve`` finds ComfyUI's folder from the running ComfyUI, or refuses to start.

The stand-in ComfyUI here answers ``/internal/folder_paths`` and ``/system_stats`` in the shapes a
real ComfyUI 0.3.64 gave (checked against one on this machine): lists of absolute paths per
folder name, and the command line in ``system.argv``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from comfy_testserver import ComfyTestServer
from comfy_worker.endpoint.comfy_folder import ComfyFolderUnknown, find_comfyui_path

from ..loopback import ThreadedApp
from .test_cli import cli


class FakeComfy:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.argv = ["main.py", "--cpu", "--listen", "127.0.0.1", "--port", "8188"]

    def app(self) -> web.Application:
        async def folder_paths(_: web.Request) -> web.Response:
            return web.json_response(
                {
                    "checkpoints": [
                        str(self.folder / "models" / "checkpoints"),
                        str(self.folder / "output" / "checkpoints"),
                    ],
                    "custom_nodes": [str(self.folder / "custom_nodes")],
                }
            )

        async def system_stats(_: web.Request) -> web.Response:
            return web.json_response({"system": {"os": "posix", "argv": self.argv}, "devices": []})

        app = web.Application()
        app.router.add_get("/internal/folder_paths", folder_paths)
        app.router.add_get("/system_stats", system_stats)
        return app


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[FakeComfy, str]]:
    folder = tmp_path / "ComfyUI"
    for name in ("input", "output", "custom_nodes"):
        (folder / name).mkdir(parents=True)
    comfy = FakeComfy(folder)
    server = ThreadedApp("fake-comfy")
    url = server.start(comfy.app())
    try:
        yield comfy, url.removeprefix("http://")
    finally:
        server.stop()


def test_finds_the_folder_of_the_running_comfyui(fake: tuple[FakeComfy, str]) -> None:
    comfy, host = fake
    assert find_comfyui_path(host) == comfy.folder


def test_refuses_a_comfyui_whose_folders_were_moved(fake: tuple[FakeComfy, str]) -> None:
    comfy, host = fake
    comfy.argv += ["--output-directory", "/data/out"]
    with pytest.raises(ComfyFolderUnknown, match=r"runs with --output-directory.*pass --comfyui-path"):
        find_comfyui_path(host)


def test_refuses_a_folder_that_is_not_on_this_machine(fake: tuple[FakeComfy, str]) -> None:
    comfy, host = fake
    (comfy.folder / "output").rmdir()
    with pytest.raises(ComfyFolderUnknown, match=r"has no output/ folder on this machine"):
        find_comfyui_path(host)


def test_serve_refuses_to_start_when_comfyui_cannot_say_where_it_lives(comfy: ComfyTestServer) -> None:
    # The test server answers no /internal/folder_paths, like a ComfyUI behind a proxy that hides it.
    done = cli("serve", "--comfy-host", comfy.address, "--port", "0", env={"COMFYUI_PATH": ""}, timeout=30)
    assert done.returncode == 2
    assert "did not say where its folder is" in done.stderr and "--comfyui-path" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_serve_refuses_when_comfyui_is_not_running() -> None:
    done = cli("serve", "--comfy-host", "127.0.0.1:9", "--port", "0", env={"COMFYUI_PATH": ""}, timeout=30)
    assert done.returncode == 2
    assert "ComfyUI is not reachable at 127.0.0.1:9" in done.stderr and "--comfyui-path" in done.stderr


def test_serve_refuses_a_comfyui_path_without_output(tmp_path: Path) -> None:
    done = cli("serve", "--comfyui-path", str(tmp_path), "--port", "0", timeout=30)
    assert done.returncode == 2
    assert f"--comfyui-path {tmp_path} has no output/ folder" in done.stderr
