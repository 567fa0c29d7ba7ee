"""The read-only HTTP routes, with the bodies recorded in transcript 00.

`/`, `/system_stats` (the profile's versions: ComfyUI 0.3.64 and frontend 1.27.10 as recorded, or
today's 0.38.1 with its extra `system` keys), `/features` (the profile's flags),
`/embeddings` (`[]`), `/models` (the recorded folder list), `/models/<folder>` (files under
`root/models/<folder>`, 404 for unknown folders) and `/object_info[/<Class>]`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from aiohttp import web

from .folders import MODEL_FOLDERS, Folders
from .nodes import NODE_CLASSES
from .object_info import all_node_info, node_info
from .profiles import Profile

__all__ = ["InfoRoutes"]


class InfoRoutes:
    """Handlers for the read-only routes; `routes()` lists them for `ComfyApp`."""

    def __init__(
        self, folders: Folders, profile: Profile, features: dict[str, Any], *, host: str, port: int
    ) -> None:
        self.folders = folders
        self.profile = profile
        self.feature_flags = features
        self.host = host
        self.port = port

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", "/", self.index),
            ("GET", "/system_stats", self.system_stats),
            ("GET", "/features", self.features),
            ("GET", "/embeddings", self.embeddings),
            ("GET", "/models", self.models),
            ("GET", "/models/{folder}", self.model_folder),
            ("GET", "/object_info", self.object_info),
            ("GET", "/object_info/{node_class}", self.object_info_one),
        ]

    async def index(self, request: web.Request) -> web.Response:
        html = (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>ComfyUI</title></head>'
            f"<body>comfy_testserver: a fake ComfyUI {self.profile.comfyui_version}</body></html>\n"
        )
        return web.Response(body=html.encode(), content_type="text/html")

    async def system_stats(self, request: web.Request) -> web.Response:
        total, free = _memory()
        profile = self.profile
        system: dict[str, Any] = {
            "os": profile.system_os,
            "ram_total": total,
            "ram_free": free,
            "comfyui_version": profile.comfyui_version,
            "required_frontend_version": profile.frontend_version,
            "installed_templates_version": profile.templates_version,
            "required_templates_version": profile.templates_version,
        }
        # server.py system_stats: today's version lists its comfy* packages after the templates,
        # and its deploy environment before argv.
        extras = dict(profile.system_extras)
        if "comfy_package_versions" in extras:
            system["comfy_package_versions"] = extras.pop("comfy_package_versions")
        system.update(python_version=sys.version, pytorch_version="2.14.1+cu130", embedded_python=False)
        system.update(extras)
        system["argv"] = ["main.py", "--cpu", "--listen", self.host, "--port", str(self.port)]
        return web.json_response(
            {
                "system": system,
                "devices": [
                    {
                        "name": "cpu",
                        "type": "cpu",
                        "index": None,
                        "vram_total": total,
                        "vram_free": free,
                        "torch_vram_total": total,
                        "torch_vram_free": free,
                    }
                ],
            }
        )

    async def features(self, request: web.Request) -> web.Response:
        return web.json_response(self.feature_flags)

    async def embeddings(self, request: web.Request) -> web.Response:
        return web.json_response([])

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response(list(MODEL_FOLDERS))

    async def model_folder(self, request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        if folder not in MODEL_FOLDERS:
            return web.Response(status=404)
        return web.json_response(self.folders.model_files(folder))

    async def object_info(self, request: web.Request) -> web.Response:
        return web.json_response(all_node_info(self.folders))

    async def object_info_one(self, request: web.Request) -> web.Response:
        name = request.match_info["node_class"]
        cls = NODE_CLASSES.get(name)
        return web.json_response({name: node_info(cls, self.folders)} if cls else {})


def _memory() -> tuple[int, int]:
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return page * os.sysconf("SC_PHYS_PAGES"), page * os.sysconf("SC_AVPHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 0, 0
