"""Fault nodes for a real ComfyUI: copied into custom_nodes/ by testkit.comfy_process.

The ComfyUI test server has the same classes (comfy_testserver/nodes/faults.py), so one workflow
drives both. ComfyUI's own modules are imported when a node runs, never when this file is imported
elsewhere (type checks, tests).
"""

from __future__ import annotations

import importlib
import os
import time
from typing import Any

_CATEGORY = "testing/faults"


def _image_and_seconds() -> dict[str, Any]:
    return {
        "required": {
            "image": ("IMAGE",),
            "seconds": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 3600.0, "step": 0.1}),
        }
    }


class FaultSleep:
    """Passes the image on after `seconds`, checking ComfyUI's interrupt flag every 50 ms."""

    CATEGORY = _CATEGORY
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return _image_and_seconds()

    def run(self, image: Any, seconds: float) -> tuple[Any]:
        model_management = importlib.import_module("comfy.model_management")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            model_management.throw_exception_if_processing_interrupted()
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return (image,)


class FaultSleepUninterruptible(FaultSleep):
    """The same, in one blocking call: ComfyUI cannot interrupt it."""

    def run(self, image: Any, seconds: float) -> tuple[Any]:
        time.sleep(seconds)
        return (image,)


class FaultOutOfMemory:
    """Raises torch's OutOfMemoryError with CUDA's wording (ComfyUI adds its tips and unloads models)."""

    CATEGORY = _CATEGORY
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": ("IMAGE",)}}

    def run(self, image: Any) -> tuple[Any]:
        torch = importlib.import_module("torch")
        raise torch.cuda.OutOfMemoryError(
            "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.57 GiB of "
            "which 1.12 GiB is free. Of the allocated memory 21.80 GiB is allocated by PyTorch"
        )


class FaultApiLog:
    """Logs a request through ComfyUI's API-node request logger, with the job's key as X-API-KEY."""

    CATEGORY = _CATEGORY
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {"image": ("IMAGE",)},
            "hidden": {"auth_token": "AUTH_TOKEN_COMFY_ORG", "comfy_api_key": "API_KEY_COMFY_ORG"},
        }

    def run(self, image: Any, auth_token: str | None = None, comfy_api_key: str | None = None) -> tuple[Any]:
        logger = importlib.import_module("comfy_api_nodes.apis.request_logger")
        logger.log_request_response(
            operation_id="fault_generate",
            request_method="POST",
            request_url="https://api.comfy.org/proxy/fault/generate",
            request_headers={"Content-Type": "application/json", "X-API-KEY": comfy_api_key or ""},
            response_status_code=200,
        )
        return (image,)


class FaultFixedNameSave:
    """Saves its first image as output/<filename>, overwriting: a custom node without a counter."""

    CATEGORY = _CATEGORY
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"images": ("IMAGE",), "filename": ("STRING", {"default": "fixed.png"})}}

    def run(self, images: Any, filename: str) -> dict[str, Any]:
        folder_paths = importlib.import_module("folder_paths")
        numpy = importlib.import_module("numpy")
        pil_image = importlib.import_module("PIL.Image")
        pixels = numpy.clip(images[0].cpu().numpy() * 255.0, 0, 255).astype(numpy.uint8)
        pil_image.fromarray(pixels).save(os.path.join(folder_paths.get_output_directory(), filename))
        return {"ui": {"images": [{"filename": filename, "subfolder": "", "type": "output"}]}}


NODE_CLASS_MAPPINGS = {
    "FaultSleep": FaultSleep,
    "FaultSleepUninterruptible": FaultSleepUninterruptible,
    "FaultOutOfMemory": FaultOutOfMemory,
    "FaultApiLog": FaultApiLog,
    "FaultFixedNameSave": FaultFixedNameSave,
}
