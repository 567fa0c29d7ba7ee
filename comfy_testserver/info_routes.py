"""The read-only HTTP routes, with the bodies recorded in transcript 00.

`/`, `/system_stats` (the recorded versions: ComfyUI 0.3.64, frontend 1.27.10), `/features`,
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
from .protocol import SERVER_FEATURES

__all__ = ["COMFYUI_VERSION", "InfoRoutes"]

COMFYUI_VERSION = "0.3.64"
_INDEX_HTML = (
    b'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>ComfyUI</title></head>'
    b"<body>comfy_testserver: a fake ComfyUI " + COMFYUI_VERSION.encode() + b"</body></html>\n"
)


class InfoRoutes:
    """Handlers for the read-only routes; `routes()` lists them for `ComfyApp`."""

    def __init__(self, folders: Folders, *, host: str, port: int) -> None:
        self.folders = folders
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
        return web.Response(body=_INDEX_HTML, content_type="text/html")

    async def system_stats(self, request: web.Request) -> web.Response:
        total, free = _memory()
        return web.json_response(
            {
                "system": {
                    "os": os.name,
                    "ram_total": total,
                    "ram_free": free,
                    "comfyui_version": COMFYUI_VERSION,
                    "required_frontend_version": "1.27.10",
                    "installed_templates_version": "0.1.95",
                    "required_templates_version": "0.1.95",
                    "python_version": sys.version,
                    "pytorch_version": "2.14.1+cu130",
                    "embedded_python": False,
                    "argv": ["main.py", "--cpu", "--listen", self.host, "--port", str(self.port)],
                },
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
        return web.json_response(SERVER_FEATURES)

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
