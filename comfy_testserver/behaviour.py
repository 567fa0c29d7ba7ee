"""The knobs that make the test server misbehave on purpose.

A `Behaviour` is read at the moment it matters (before a node finishes, before a frame is sent,
when the port is bound), so tests may change its fields between jobs or while a job runs.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Behaviour"]


@dataclass
class Behaviour:
    """Timing and failure knobs of a `ComfyTestServer`; every field may change at runtime.

    Example: `server.behaviour.node_delay_s = 0.2` makes each executed node take 0.2 s longer.
    """

    node_delay_s: float = 0.0
    """Sleep before each executed (non-cached) node finishes. An interrupt cuts the sleep short; like
    a real ComfyUI node without a progress bar, the node still finishes and the *next* node is the one
    reported in `execution_interrupted` (transcript 11)."""

    step_delay_s: float = 0.0
    """Sleep per progress step of nodes with steps (KSampler, ImageUpscaleWithModel). An interrupt
    stops such a node at its next step, as a real sampler does."""

    startup_delay_s: float = 0.0
    """Do not bind the port until this much time has passed (connections are refused meanwhile)."""

    model_load_delay_s: float = 0.0
    """Sleep the first time a node uses each model file (a string input naming a .safetensors,
    .ckpt, .pt, .pth, .bin or .gguf file, or a MODEL/CLIP/VAE/upscale model loaded from one) since
    the server started or last unloaded its models (`out_of_memory_class`), as a real ComfyUI pays loading
    weights into memory once and keeps them: later prompts using that file do not pay it again,
    even when the node itself is not cached. What a warm-up (WARMUP_WORKFLOW) takes off the first job."""

    loading_activity: bool = False
    """`current` profile only: while a node pays `model_load_delay_s`, its `progress_state` entry
    carries `"activity": "loading"` (sent when the load starts, and again without it when it ends).
    This is ComfyUI PR #16202, open and in no release: the released versions send nothing during a
    load but the node's `running` state at 0/1 (PROFILES.md "Model loading")."""

    out_of_memory_class: str | None = None
    """The next node of this class_type to run fails as on a CUDA out-of-memory error
    (`torch.OutOfMemoryError`, with ComfyUI's OOM tips in the message), and the server unloads every
    model, so the next use of each model file pays `model_load_delay_s` again (both profiles, as
    ComfyUI 0.3.64 and today do). Cleared once it fired."""

    ws_drop_after_messages: int | None = None
    """After this many text frames for one prompt went to a socket, abort that socket (no close
    frame), once per prompt. Execution goes on; a reconnect with the same clientId gets `status`
    and then `executing {node}` (transcript 15)."""

    ws_silent: bool = False
    """Sockets still get their first `status` frame, then nothing at all (execution and history
    are unaffected)."""

    kill_on_execute: bool = False
    """Call `ComfyTestServer.kill()` when the next node starts executing (a ComfyUI that crashes)."""

    history_delay_s: float = 0.0
    """Delay between a prompt finishing and its history entry becoming visible over HTTP."""

    preview_method: str = "none"
    """`"none"` (ComfyUI's default: no sampler previews) or `"latent2rgb"`: KSampler sends one JPEG
    preview frame per step (transcript 16 previews_latent2rgb)."""

    browser_render_timeout_s: float = 30.0
    """How long GaussianViewer waits for a browser to answer its `geompack_render_request` before
    it returns a placeholder image (the real node's fixed 30 s). Tests set it lower."""

    sharp_grid: int = 16
    """SharpPredict writes two layers of `sharp_grid`² gaussians (the real model: 768, 66 MB)."""
