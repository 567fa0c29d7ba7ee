"""Protocol profiles: which ComfyUI version the test server speaks, and what differs between them.

`0.3.64` is the version the transcripts in `recorded/` come from (the default). `current` is
ComfyUI 0.38.1 as read from its source (Comfy-Org/ComfyUI: server.py, execution.py, main.py,
comfy_execution/jobs.py, comfy_api/feature_flags.py); PROFILES.md lists every difference with the
file and function it comes from. A profile is a value: the server modules read its flags where
the versions differ and nowhere else.

    ComfyTestServer(root, profile="current")
    python -m comfy_testserver --root DIR --profile current
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_PROFILE", "PROFILES", "Profile", "get_profile"]


@dataclass(frozen=True)
class Profile:
    """What one ComfyUI version answers where versions differ (see PROFILES.md)."""

    name: str
    comfyui_version: str
    frontend_version: str
    templates_version: str
    features: dict[str, Any]
    """GET /features and the answer to a client's `feature_flags` frame."""
    jobs_api: bool = False
    """GET /api/jobs, GET /api/jobs/{id}, POST /api/jobs/{id}/cancel, POST /api/jobs/cancel."""
    missing_node_type: bool = False
    """An unknown or missing class_type is a `missing_node_type` error naming the node's title
    (0.3.64: `invalid_prompt` "Cannot execute because node X does not exist.")."""
    validates_prompt_id: bool = False
    """A client `prompt_id` must be a canonical lowercase UUID (else 400 `invalid_prompt_id`)."""
    sensitive_slot: bool = False
    """Comfy.org keys leave extra_data for the queue item's sixth slot: /queue and history never show them."""
    create_time: bool = False
    """`extra_data.create_time` (ms since the epoch) is stamped on every accepted prompt."""
    output_metadata: bool = False
    """Output entries in `executed` and history carry `metadata` {kind, width, height, ...}."""
    assets: bool = False
    """The assets system: /upload/image answers an `asset` record, output entries get an asset `id`."""
    cache_keeps_other_prompts: bool = False
    """The RAM-pressure cache, today's default: entries of earlier prompts stay until memory runs low."""
    accepts_activity: bool = False
    """`Behaviour.loading_activity` may add PR #16202's `activity` to progress_state (unreleased;
    on top of today's code only)."""
    system_os: str = "posix"
    """`system.os` of /system_stats: os.name in 0.3.64, sys.platform today."""
    system_extras: dict[str, Any] = field(default_factory=dict)
    """Keys /system_stats adds to `system`."""


_V0_3_64 = Profile(
    name="0.3.64",
    comfyui_version="0.3.64",
    frontend_version="1.27.10",
    templates_version="0.1.95",
    features={"supports_preview_metadata": True, "max_upload_size": 104857600},
)

_CURRENT_PACKAGES = [
    ("comfyui-frontend-package", "1.53.6"),
    ("comfyui-workflow-templates", "0.11.73"),
    ("comfyui-embedded-docs", "0.5.12"),
    ("comfy-kitchen", "0.2.36"),
    ("comfy-aimdo", "0.5.5"),
]

_CURRENT = Profile(
    name="current",
    comfyui_version="0.38.1",
    frontend_version="1.53.6",
    templates_version="0.11.73",
    features={
        "supports_preview_metadata": True,
        "supports_model_type_tags": True,
        "max_upload_size": 104857600,
        "extension": {"manager": {"supports_v4": True}},
        "node_replacements": True,
        "assets": True,
    },
    jobs_api=True,
    missing_node_type=True,
    validates_prompt_id=True,
    sensitive_slot=True,
    create_time=True,
    output_metadata=True,
    assets=True,
    cache_keeps_other_prompts=True,
    accepts_activity=True,
    system_os="linux",
    system_extras={
        "comfy_package_versions": [
            {"name": name, "installed": version, "required": version} for name, version in _CURRENT_PACKAGES
        ],
        "deploy_environment": "local-git",
    },
)

PROFILES: dict[str, Profile] = {profile.name: profile for profile in (_V0_3_64, _CURRENT)}
DEFAULT_PROFILE = "0.3.64"


def get_profile(profile: str | Profile | None) -> Profile:
    """The profile named `profile` (None: the default); a `Profile` is returned as it is."""
    if isinstance(profile, Profile):
        return profile
    name = DEFAULT_PROFILE if profile is None else profile
    if name not in PROFILES:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown comfy_testserver profile {name!r}: choose one of {known}")
    return PROFILES[name]
