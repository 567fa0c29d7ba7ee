"""The fake node classes, by ComfyUI class_type.

Core nodes: EmptyImage, LoadImage, ImageInvert, ImageScale, ImageBatch, GetImageSize, SaveImage,
PreviewImage, SaveImageWebsocket, SaveAnimatedWEBP, SaveAnimatedPNG, CreateVideo, SaveVideo,
SaveWEBM, PrimitiveString, StringConcatenate, PreviewAny, CheckpointLoaderSimple, CLIPTextEncode,
EmptyLatentImage, KSampler, VAEDecode, UpscaleModelLoader, ImageUpscaleWithModel, LoadAudio.
Stand-ins (see `standins`): VHS_VideoCombine (VideoHelperSuite), SaveAudio and SaveGLB (accept
any input). Gaussian splats (see `gaussians`): LoadSharpModel, SharpPredict, LoadImageWithExif
(ComfyUI-Sharp), GaussianViewer and ExtrinsicsToPose (comfyui-GaussianViewer). Fault nodes for the
fault-injection suite (see `faults`): FaultSleep, FaultSleepUninterruptible, FaultOutOfMemory,
FaultApiLog, FaultFixedNameSave.
"""

from __future__ import annotations

from .base import InterruptProcessing, Node, NodeResult, NodeRun
from .faults import FaultApiLog, FaultFixedNameSave, FaultOutOfMemory, FaultSleep, FaultSleepUninterruptible
from .gaussians import ExtrinsicsToPose, GaussianViewer, LoadImageWithExif, LoadSharpModel, SharpPredict
from .images import (
    EmptyImage,
    GetImageSize,
    ImageBatch,
    ImageInvert,
    ImageScale,
    LoadImage,
    PreviewImage,
    SaveAnimatedPNG,
    SaveAnimatedWEBP,
    SaveImage,
    SaveImageWebsocket,
)
from .sampling import (
    CheckpointLoaderSimple,
    CLIPTextEncode,
    EmptyLatentImage,
    ImageUpscaleWithModel,
    KSampler,
    UpscaleModelLoader,
    VAEDecode,
)
from .standins import LoadAudio, SaveAudio, SaveGLB, VHS_VideoCombine
from .text import PreviewAny, PrimitiveString, StringConcatenate
from .video import CreateVideo, SaveVideo, SaveWEBM

__all__ = ["NODE_CLASSES", "InterruptProcessing", "Node", "NodeResult", "NodeRun"]

NODE_CLASSES: dict[str, type[Node]] = {
    cls.CLASS_TYPE: cls
    for cls in (
        EmptyImage,
        LoadImage,
        ImageInvert,
        ImageScale,
        ImageBatch,
        GetImageSize,
        SaveImage,
        PreviewImage,
        SaveImageWebsocket,
        SaveAnimatedWEBP,
        SaveAnimatedPNG,
        CreateVideo,
        SaveVideo,
        SaveWEBM,
        PrimitiveString,
        StringConcatenate,
        PreviewAny,
        CheckpointLoaderSimple,
        CLIPTextEncode,
        EmptyLatentImage,
        KSampler,
        VAEDecode,
        UpscaleModelLoader,
        ImageUpscaleWithModel,
        LoadAudio,
        SaveAudio,
        SaveGLB,
        LoadSharpModel,
        SharpPredict,
        LoadImageWithExif,
        GaussianViewer,
        ExtrinsicsToPose,
        VHS_VideoCombine,
        FaultSleep,
        FaultSleepUninterruptible,
        FaultOutOfMemory,
        FaultApiLog,
        FaultFixedNameSave,
    )
}
