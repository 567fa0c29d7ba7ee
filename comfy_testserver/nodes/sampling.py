"""Model nodes: CheckpointLoaderSimple, CLIPTextEncode, EmptyLatentImage, KSampler, VAEDecode,
UpscaleModelLoader and ImageUpscaleWithModel.

No model is loaded: a "model" is the name of a file in `models/<folder>`, which validation checks
exactly like ComfyUI (`value_not_in_list`, transcript 09). KSampler reports steps 1..N and
ImageUpscaleWithModel one step per 512px tile (transcripts 14, 16); both sleep `step_delay_s` per
step and stop there on an interrupt. VAEDecode turns a latent into seeded noise.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
from typing import Any

from PIL import Image

from ..folders import Folders
from .base import InputTypes, Node, NodeResult, NodeRun, spec
from .images import MAX_RESOLUTION, scale_images
from .values import Conditioning, Images, Latent, ModelHandle, Preview, UpscaleModel

__all__ = [
    "CLIPTextEncode",
    "CheckpointLoaderSimple",
    "EmptyLatentImage",
    "ImageUpscaleWithModel",
    "KSampler",
    "UpscaleModelLoader",
    "VAEDecode",
]

SAMPLERS = [
    "euler",
    "euler_cfg_pp",
    "euler_ancestral",
    "euler_ancestral_cfg_pp",
    "heun",
    "heunpp2",
    "dpm_2",
    "dpm_2_ancestral",
    "lms",
    "dpm_fast",
    "dpm_adaptive",
    "dpmpp_2s_ancestral",
    "dpmpp_2s_ancestral_cfg_pp",
    "dpmpp_sde",
    "dpmpp_sde_gpu",
    "dpmpp_2m",
    "dpmpp_2m_cfg_pp",
    "dpmpp_2m_sde",
    "dpmpp_2m_sde_gpu",
    "dpmpp_2m_sde_heun",
    "dpmpp_2m_sde_heun_gpu",
    "dpmpp_3m_sde",
    "dpmpp_3m_sde_gpu",
    "ddpm",
    "lcm",
    "ipndm",
    "ipndm_v",
    "deis",
    "res_multistep",
    "res_multistep_cfg_pp",
    "res_multistep_ancestral",
    "res_multistep_ancestral_cfg_pp",
    "gradient_estimation",
    "gradient_estimation_cfg_pp",
    "er_sde",
    "seeds_2",
    "seeds_3",
    "sa_solver",
    "sa_solver_pece",
    "ddim",
    "uni_pc",
    "uni_pc_bh2",
]
SCHEDULERS = [
    "simple",
    "sgm_uniform",
    "karras",
    "exponential",
    "ddim_uniform",
    "beta",
    "normal",
    "linear_quadratic",
    "kl_optimal",
]
PREVIEW_MAX_SIZE = 512
_TILE, _OVERLAP = 512, 32


class CheckpointLoaderSimple(Node):
    CLASS_TYPE = "CheckpointLoaderSimple"
    DISPLAY_NAME = "Load Checkpoint"
    CATEGORY = "loaders"
    DESCRIPTION = "Loads a diffusion model checkpoint, diffusion models are used to denoise latents."
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    OUTPUT_TOOLTIPS = (
        "The model used for denoising latents.",
        "The CLIP model used for encoding text prompts.",
        "The VAE model used for encoding and decoding images to and from latent space.",
    )

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {
                "ckpt_name": (
                    folders.model_files("checkpoints"),
                    {"tooltip": "The name of the checkpoint (model) to load."},
                )
            }
        }

    async def run(self, ctx: NodeRun, *, ckpt_name: str, **_: Any) -> NodeResult:
        return NodeResult(tuple(ModelHandle(kind, ckpt_name) for kind in ("MODEL", "CLIP", "VAE")))


class CLIPTextEncode(Node):
    CLASS_TYPE = "CLIPTextEncode"
    DISPLAY_NAME = "CLIP Text Encode (Prompt)"
    CATEGORY = "conditioning"
    DESCRIPTION = (
        "Encodes a text prompt using a CLIP model into an embedding that can be used to guide the "
        "diffusion model towards generating specific images."
    )
    RETURN_TYPES = ("CONDITIONING",)
    OUTPUT_TOOLTIPS = ("A conditioning containing the embedded text used to guide the diffusion model.",)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {
                "text": spec(
                    "STRING", multiline=True, dynamicPrompts=True, tooltip="The text to be encoded."
                ),
                "clip": spec("CLIP", tooltip="The CLIP model used for encoding the text."),
            }
        }

    async def run(self, ctx: NodeRun, *, text: str, **_: Any) -> NodeResult:
        return NodeResult((Conditioning(text),))


class EmptyLatentImage(Node):
    CLASS_TYPE = "EmptyLatentImage"
    DISPLAY_NAME = "Empty Latent Image"
    CATEGORY = "latent"
    DESCRIPTION = "Create a new batch of empty latent images to be denoised via sampling."
    RETURN_TYPES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("The empty latent image batch.",)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {
                "width": spec(
                    "INT",
                    default=512,
                    min=16,
                    max=MAX_RESOLUTION,
                    step=8,
                    tooltip="The width of the latent images in pixels.",
                ),
                "height": spec(
                    "INT",
                    default=512,
                    min=16,
                    max=MAX_RESOLUTION,
                    step=8,
                    tooltip="The height of the latent images in pixels.",
                ),
                "batch_size": spec(
                    "INT", default=1, min=1, max=4096, tooltip="The number of latent images in the batch."
                ),
            }
        }

    async def run(
        self, ctx: NodeRun, *, width: int, height: int, batch_size: int = 1, **_: Any
    ) -> NodeResult:
        return NodeResult((Latent(width, height, batch_size),))


class KSampler(Node):
    CLASS_TYPE = "KSampler"
    DISPLAY_NAME = "KSampler"
    CATEGORY = "sampling"
    DESCRIPTION = "Uses the provided model, positive and negative conditioning to denoise the latent image."
    RETURN_TYPES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("The denoised latent.",)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {
                "model": spec("MODEL", tooltip="The model used for denoising the input latent."),
                "seed": spec(
                    "INT",
                    default=0,
                    min=0,
                    max=0xFFFFFFFFFFFFFFFF,
                    control_after_generate=True,
                    tooltip="The random seed used for creating the noise.",
                ),
                "steps": spec(
                    "INT",
                    default=20,
                    min=1,
                    max=10000,
                    tooltip="The number of steps used in the denoising process.",
                ),
                "cfg": spec(
                    "FLOAT",
                    default=8.0,
                    min=0.0,
                    max=100.0,
                    step=0.1,
                    round=0.01,
                    tooltip="The Classifier-Free Guidance scale balances creativity and adherence "
                    "to the prompt. Higher values result in images more closely matching "
                    "the prompt however too high values will negatively impact quality.",
                ),
                "sampler_name": (
                    SAMPLERS,
                    {
                        "tooltip": "The algorithm used when sampling, this can affect "
                        "the quality, speed, and style of the generated output."
                    },
                ),
                "scheduler": (
                    SCHEDULERS,
                    {"tooltip": "The scheduler controls how noise is gradually removed to form the image."},
                ),
                "positive": spec(
                    "CONDITIONING",
                    tooltip="The conditioning describing the attributes you want to include in the image.",
                ),
                "negative": spec(
                    "CONDITIONING",
                    tooltip="The conditioning describing the attributes you want to exclude from the image.",
                ),
                "latent_image": spec("LATENT", tooltip="The latent image to denoise."),
                "denoise": spec(
                    "FLOAT",
                    default=1.0,
                    min=0.0,
                    max=1.0,
                    step=0.01,
                    tooltip="The amount of denoising applied, lower values will maintain the "
                    "structure of the initial image allowing for image to image sampling.",
                ),
            }
        }

    async def run(self, ctx: NodeRun, *, seed: int, steps: int, latent_image: Latent, **_: Any) -> NodeResult:
        for step in range(1, steps + 1):
            await ctx.step()
            preview = None
            if ctx.behaviour.preview_method == "latent2rgb":
                preview = Preview("JPEG", _latent_preview(latent_image, seed, step), PREVIEW_MAX_SIZE)
            await ctx.progress(step, steps, preview)
        return NodeResult(
            (Latent(latent_image.width, latent_image.height, latent_image.batch_size, seed=seed),)
        )


def _latent_preview(latent: Latent, seed: int, step: int) -> Image.Image:
    """What latent2rgb would show: an image of the latent's size (1/8 of the pixels)."""
    size = (max(1, latent.width // 8), max(1, latent.height // 8))
    data = random.Random(f"{seed}:{step}").randbytes(size[0] * size[1] * 3)
    return Image.frombytes("RGB", size, data)


class VAEDecode(Node):
    CLASS_TYPE = "VAEDecode"
    DISPLAY_NAME = "VAE Decode"
    CATEGORY = "latent"
    DESCRIPTION = "Decodes latent images back into pixel space images."
    RETURN_TYPES = ("IMAGE",)
    OUTPUT_TOOLTIPS = ("The decoded image.",)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {
            "required": {
                "samples": spec("LATENT", tooltip="The latent to be decoded."),
                "vae": spec("VAE", tooltip="The VAE model used for decoding the latent."),
            }
        }

    async def run(self, ctx: NodeRun, *, samples: Latent, **_: Any) -> NodeResult:
        return NodeResult((await asyncio.to_thread(_decode, samples),))


def _decode(latent: Latent) -> Images:
    width, height = max(8, latent.width // 8 * 8), max(8, latent.height // 8 * 8)
    frames = []
    for index in range(latent.batch_size):
        if latent.seed is None:
            frames.append(Image.new("RGB", (width, height), (128, 128, 128)))
        else:
            data = random.Random(f"{latent.seed}:{index}").randbytes(width * height * 3)
            frames.append(Image.frombytes("RGB", (width, height), data))
    return Images(tuple(frames))


class UpscaleModelLoader(Node):
    CLASS_TYPE = "UpscaleModelLoader"
    DISPLAY_NAME = "Load Upscale Model"
    CATEGORY = "loaders"
    PYTHON_MODULE = "comfy_extras.nodes_upscale_model"
    RETURN_TYPES = ("UPSCALE_MODEL",)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {"required": {"model_name": spec(folders.model_files("upscale_models"))}}

    async def run(self, ctx: NodeRun, *, model_name: str, **_: Any) -> NodeResult:
        match = re.search(r"(?<![0-9])x(\d)(?![0-9])|(?<![0-9a-z])(\d)x", model_name, re.IGNORECASE)
        scale = int(next(group for group in match.groups() if group)) if match else 4
        return NodeResult((UpscaleModel(model_name, scale),))


class ImageUpscaleWithModel(Node):
    CLASS_TYPE = "ImageUpscaleWithModel"
    DISPLAY_NAME = "Upscale Image (using Model)"
    CATEGORY = "image/upscaling"
    PYTHON_MODULE = "comfy_extras.nodes_upscale_model"
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def input_types(cls, folders: Folders) -> InputTypes:
        return {"required": {"upscale_model": spec("UPSCALE_MODEL"), "image": spec("IMAGE")}}

    async def run(self, ctx: NodeRun, *, upscale_model: UpscaleModel, image: Images, **_: Any) -> NodeResult:
        # ComfyUI's get_tiled_scale_steps: one step per 512px tile with 32px overlap, per image;
        # a 1000x1000 image gives the 9 steps of transcript 14.
        tiles = math.ceil(image.height / (_TILE - _OVERLAP)) * math.ceil(image.width / (_TILE - _OVERLAP))
        steps = len(image) * tiles
        for step in range(1, steps + 1):
            await ctx.step()
            await ctx.progress(step, steps)
        scale = upscale_model.scale
        upscaled = await asyncio.to_thread(
            scale_images, image, image.width * scale, image.height * scale, "bicubic"
        )
        return NodeResult((upscaled,))
