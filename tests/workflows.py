"""API-format workflows the tests submit (the node classes the ComfyUI test server runs)."""

from __future__ import annotations

from typing import Any

Workflow = dict[str, dict[str, Any]]


def empty_image(width: int = 16, height: int = 16, batch: int = 1, color: int = 0xFF0000) -> dict[str, Any]:
    return {
        "class_type": "EmptyImage",
        "inputs": {"width": width, "height": height, "batch_size": batch, "color": color},
    }


def save_image(prefix: str = "test", source: str = "1") -> Workflow:
    return {
        "1": empty_image(),
        "2": {"class_type": "SaveImage", "inputs": {"images": [source, 0], "filename_prefix": prefix}},
    }


def invert_upload(name: str, prefix: str = "inverted") -> Workflow:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


def preview_only() -> Workflow:
    return {"1": empty_image(), "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}


def sampler(
    steps: int = 4, ckpt: str = "tiny.safetensors", seed: int = 1, prefix: str = "sampled"
) -> Workflow:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "5": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["1", 0],
                "seed": seed,
                "steps": steps,
                "cfg": 7.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "positive": ["2", 0],
                "negative": ["3", 0],
                "latent_image": ["4", 0],
                "denoise": 1.0,
            },
        },
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": prefix}},
    }


def sharp_model(device: str = "cpu") -> dict[str, Any]:
    return {"class_type": "LoadSharpModel", "inputs": {"device": device}}


def splat(prefix: str = "splat", *, viewer: bool = False, image: str = "", color: int = 0x336699) -> Workflow:
    """Photo (an uploaded `image`, else an EmptyImage) -> LoadSharpModel + SharpPredict [-> GaussianViewer]."""
    source = (
        {"class_type": "LoadImage", "inputs": {"image": image}} if image else empty_image(24, 16, color=color)
    )
    workflow: Workflow = {
        "1": source,
        "2": sharp_model(),
        "3": {
            "class_type": "SharpPredict",
            "inputs": {"model": ["2", 0], "image": ["1", 0], "output_prefix": prefix},
        },
    }
    if viewer:
        workflow["4"] = {
            "class_type": "GaussianViewer",
            "inputs": {"ply_path": ["3", 0], "extrinsics": ["3", 1], "intrinsics": ["3", 2]},
        }
    return workflow


def every_output_kind() -> Workflow:
    """Images, a batch, temp previews, animation, video, text, audio, 3D, a VHS video, a splat."""
    return {
        "1": empty_image(batch=3),
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "kinds/batch"}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
        "4": {
            "class_type": "SaveAnimatedWEBP",
            "inputs": {
                "images": ["1", 0],
                "filename_prefix": "anim",
                "fps": 6.0,
                "lossless": False,
                "quality": 80,
                "method": "default",
            },
        },
        "5": {"class_type": "CreateVideo", "inputs": {"images": ["1", 0], "fps": 8.0}},
        "6": {
            "class_type": "SaveVideo",
            "inputs": {"video": ["5", 0], "filename_prefix": "video/clip", "format": "mp4", "codec": "h264"},
        },
        "7": {"class_type": "PreviewAny", "inputs": {"source": "hello, world"}},
        "8": {
            "class_type": "VHS_VideoCombine",
            "inputs": {
                "images": ["1", 0],
                "frame_rate": 8.0,
                "loop_count": 0,
                "filename_prefix": "vhs",
                "format": "video/h264-mp4",
                "pingpong": False,
                "save_output": True,
            },
        },
        "9": {
            "class_type": "SharpPredict",
            "inputs": {"model": ["13", 0], "image": ["1", 0], "output_prefix": "splat"},
        },
        "13": sharp_model(),
        "10": {"class_type": "SaveGLB", "inputs": {"mesh": ["1", 0], "filename_prefix": "mesh/model"}},
        "11": {"class_type": "SaveAudio", "inputs": {"audio": ["1", 0], "filename_prefix": "audio/sound"}},
        "12": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}},
    }
