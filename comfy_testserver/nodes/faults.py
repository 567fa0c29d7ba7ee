"""Fault nodes: the same class names as the custom node pack the fault suite installs into a real
ComfyUI (testkit/comfy_nodes/worker_fault_nodes.py), so one workflow drives both.

- `FaultSleep`: passes its image on after `seconds`; an interrupt stops it (a sampler-like node).
- `FaultSleepUninterruptible`: the same, but it never looks at the interrupt flag (a custom node
  that runs one long call), so ComfyUI cannot stop it before it returns.
- `FaultOutOfMemory`: raises `torch.OutOfMemoryError` with CUDA's wording; the executor adds
  ComfyUI's OOM tips to the message, as `execution.py` does.
- `FaultApiLog`: does what a Comfy.org API node's request logger does: writes
  `temp/api_logs/<time>_<operation>_<hash>.log` holding the request's `X-API-KEY` header, read from
  the hidden `API_KEY_COMFY_ORG` input (the job's `comfy_org_api_key`).
- `FaultFixedNameSave`: saves its first image as `output/<filename>`, overwriting whatever is there
  (a custom node that saves without a counter), and reports it as an output image.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
from typing import Any

from ..folders import Folders
from .base import InputTypes, Node, NodeResult, NodeRun, spec
from .files import file_entry, png_bytes, write_bytes
from .values import Images

__all__ = [
    "FaultApiLog",
    "FaultFixedNameSave",
    "FaultOutOfMemory",
    "FaultSleep",
    "FaultSleepUninterruptible",
    "OutOfMemoryError",
]

_CATEGORY = "testing/faults"
_PYTHON_MODULE = "custom_nodes.worker_fault_nodes"


class OutOfMemoryError(RuntimeError):
    """Stands in for torch.OutOfMemoryError: ComfyUI reports it as ``torch.OutOfMemoryError``."""


OutOfMemoryError.__module__ = "torch"

# ComfyUI 0.3.64 execution.py adds this to an OOM's exception_message (and unloads its models).
OOM_TIPS = (
    "This error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked before you "
    "might have accidentally set the batch_size to a large number."
)


def _image_and_seconds() -> InputTypes:
    return {
        "required": {
            "image": spec("IMAGE"),
            "seconds": spec("FLOAT", default=1.0, min=0.0, max=3600.0, step=0.1),
        }
    }


class FaultSleep(Node):
    CLASS_TYPE = "FaultSleep"
    DISPLAY_NAME = "Fault: sleep (interruptible)"
    CATEGORY = _CATEGORY
    PYTHON_MODULE = _PYTHON_MODULE
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return _image_and_seconds()

    async def run(self, ctx: NodeRun, *, image: Images, seconds: float = 1.0, **_: Any) -> NodeResult:
        await ctx.sleep(seconds, interruptible=True)
        return NodeResult((image,))


class FaultSleepUninterruptible(FaultSleep):
    CLASS_TYPE = "FaultSleepUninterruptible"
    DISPLAY_NAME = "Fault: sleep (ignores interrupt)"

    async def run(self, ctx: NodeRun, *, image: Images, seconds: float = 1.0, **_: Any) -> NodeResult:
        await ctx.sleep(seconds, interruptible=False)
        return NodeResult((image,))


class FaultOutOfMemory(Node):
    CLASS_TYPE = "FaultOutOfMemory"
    DISPLAY_NAME = "Fault: CUDA out of memory"
    CATEGORY = _CATEGORY
    PYTHON_MODULE = _PYTHON_MODULE
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {"required": {"image": spec("IMAGE")}}

    async def run(self, ctx: NodeRun, *, image: Images, **_: Any) -> NodeResult:
        raise OutOfMemoryError(
            "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.57 GiB of "
            "which 1.12 GiB is free. Of the allocated memory 21.80 GiB is allocated by PyTorch"
        )


class FaultApiLog(Node):
    CLASS_TYPE = "FaultApiLog"
    DISPLAY_NAME = "Fault: API node request log"
    CATEGORY = _CATEGORY
    PYTHON_MODULE = _PYTHON_MODULE
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {"image": spec("IMAGE")},
            "hidden": {"auth_token": "AUTH_TOKEN_COMFY_ORG", "comfy_api_key": "API_KEY_COMFY_ORG"},
        }

    async def run(self, ctx: NodeRun, *, image: Images, **_: Any) -> NodeResult:
        url = "https://api.comfy.org/proxy/fault/generate"
        stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S_%f")
        digest = hashlib.sha1(f"fault_generate|{url}".encode()).hexdigest()[:10]
        folder = ctx.folders.temp / "api_logs"
        headers = {"Content-Type": "application/json", "X-API-KEY": ctx.comfy_org_api_key or ""}
        text = f"Operation ID: fault_generate\nURL: {url}\nHeaders:\n{json.dumps(headers, indent=2)}\n"

        def _write() -> None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{stamp}_fault_generate_{digest}.log").write_text(text, encoding="utf-8")

        await asyncio.to_thread(_write)
        return NodeResult((image,))


class FaultFixedNameSave(Node):
    CLASS_TYPE = "FaultFixedNameSave"
    DISPLAY_NAME = "Fault: save under a fixed file name"
    CATEGORY = _CATEGORY
    PYTHON_MODULE = _PYTHON_MODULE
    OUTPUT_NODE = True

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {"required": {"images": spec("IMAGE"), "filename": spec("STRING", default="fixed.png")}}

    async def run(self, ctx: NodeRun, *, images: Images, filename: str = "fixed.png", **_: Any) -> NodeResult:
        data = await asyncio.to_thread(png_bytes, images.frames[0], None, 4)
        write_bytes(ctx.folders.output / filename, data)
        return NodeResult(ui={"images": [file_entry(filename, "", "output")]})
