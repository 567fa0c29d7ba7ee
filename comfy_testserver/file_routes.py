"""File routes: `POST /upload/image` and `GET /view`, with ComfyUI's naming and safety rules.

Uploads without `overwrite` keep an existing name when the bytes are identical and otherwise
become `name (1).png` (transcript 02); names leaving their folder get 400. With the assets
system (`current` profile) the answer also carries the file's `asset` record. `/view` streams files
from disk (`web.FileResponse`, so multi-GB files are fine) with `Content-Type` from the extension
and `Content-Disposition: filename="<name>"`, and re-encodes for `preview=` / `channel=`.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
from io import BytesIO
from pathlib import Path
from typing import Any

from aiohttp import web
from PIL import Image

from .folders import Folders
from .output_records import Assets
from .profiles import Profile

__all__ = ["FileRoutes", "server_trouble"]

_TROUBLE = "500 Internal Server Error\n\nServer got itself in trouble"
# Fixed here rather than left to `mimetypes`, whose answers depend on the host's /etc/mime.types.
_CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".flac": "audio/flac",
    ".wav": "audio/x-wav",
    ".mp3": "audio/mpeg",
    ".glb": "model/gltf-binary",
    ".json": "application/json",
    ".txt": "text/plain",
}
# ComfyUI forces these to download instead of rendering in the browser.
_UNSAFE_TYPES = {"text/html", "text/html-sandboxed", "application/xhtml+xml", "text/javascript", "text/css"}


def server_trouble() -> web.Response:
    """What aiohttp answers when a ComfyUI handler raises."""
    return web.Response(status=500, text=_TROUBLE)


class FileRoutes:
    """Handlers for upload and download; `routes()` lists them for `ComfyApp`."""

    def __init__(self, folders: Folders, profile: Profile, assets: Assets) -> None:
        self.folders = folders
        self.profile = profile
        self.assets = assets

    def routes(self) -> list[tuple[str, str, Any]]:
        return [("POST", "/upload/image", self.upload_image), ("GET", "/view", self.view)]

    async def upload_image(self, request: web.Request) -> web.Response:
        post = await request.post()
        image = post.get("image")
        upload_type = post.get("type") or "input"
        upload_dir = self.folders.by_type(str(upload_type))
        if upload_dir is None or (image is not None and not isinstance(image, web.FileField)):
            return server_trouble()  # ComfyUI's handler raises on an unknown type or a non-file `image`
        if image is None or not image.filename:
            return web.Response(status=400)
        subfolder = str(post.get("subfolder", ""))
        folder = upload_dir / os.path.normpath(subfolder)
        filename = image.filename
        path = Path(os.path.abspath(folder / filename))
        if os.path.commonpath((str(upload_dir), str(path))) != str(upload_dir):
            return web.Response(status=400)
        folder.mkdir(parents=True, exist_ok=True)
        content = image.file.read()
        if str(post.get("overwrite")) not in ("true", "1"):
            # Same name and same bytes: keep the name; same name, other bytes: "name (1).png".
            stem, ext = os.path.splitext(image.filename)
            counter = 1
            while path.exists() and not _same_content(path, content):
                filename = f"{stem} ({counter}){ext}"
                path = folder / filename
                counter += 1
        path.write_bytes(content)
        answer: dict[str, Any] = {"name": filename, "subfolder": subfolder, "type": str(upload_type)}
        if self.profile.assets:
            answer["asset"] = self.assets.upload_record(path, filename, str(upload_type), subfolder)
        return web.json_response(answer)

    async def view(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        if "filename" not in query:
            return web.Response(status=404)
        filename, base = self.folders.split_annotation(query["filename"])
        if not filename or filename[0] == "/" or ".." in filename:
            return web.Response(status=400)
        base = base or self.folders.by_type(query.get("type", "output"))
        if base is None:
            return web.Response(status=400)
        if "subfolder" in query:
            sub = Path(os.path.abspath(base / query["subfolder"]))
            if os.path.commonpath((str(sub), str(base))) != str(base):
                return web.Response(status=403)
            base = sub
        filename = os.path.basename(filename)
        path = base / filename
        if not path.is_file():
            return web.Response(status=404)
        disposition = {"Content-Disposition": f'filename="{filename}"'}
        if "preview" in query or query.get("channel") in ("rgb", "a"):
            body, content_type = _converted(path, query)
            return web.Response(body=body, content_type=content_type, headers=disposition)
        # Streamed from disk: tests download files of hundreds of MB.
        return web.FileResponse(path, headers={**disposition, "Content-Type": _content_type(filename)})


def _same_content(path: Path, content: bytes) -> bool:
    return hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(content).digest()


def _content_type(filename: str) -> str:
    ext = os.path.splitext(filename)[1].lower()
    content_type = _CONTENT_TYPES.get(ext) or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return "application/octet-stream" if content_type in _UNSAFE_TYPES else content_type


def _converted(path: Path, query: Any) -> tuple[bytes, str]:
    """`/view` with `preview=jpeg;Q`/`webp;Q` or `channel=rgb|a`, re-encoded like ComfyUI does."""
    channel = query.get("channel", "")
    buffer = BytesIO()
    with Image.open(path) as img:
        if "preview" in query:
            parts = query["preview"].split(";")
            image_format = parts[0] if parts[0] in ("webp", "jpeg") and "a" not in channel else "webp"
            quality = int(parts[-1]) if parts[-1].isdigit() else 90
            out = img.convert("RGB") if image_format == "jpeg" or channel == "rgb" else img
            out.save(buffer, format=image_format, quality=quality)
            return buffer.getvalue(), f"image/{image_format}"
        if channel == "rgb":
            out = Image.merge("RGB", img.split()[:3]) if img.mode == "RGBA" else img.convert("RGB")
        else:
            alpha = img.getchannel("A") if img.mode == "RGBA" else Image.new("L", img.size, 255)
            out = Image.new("RGBA", alpha.size)
            out.putalpha(alpha)
        out.save(buffer, format="PNG")
    return buffer.getvalue(), "image/png"
