"""provision.manifest: the shipped manifest.toml, and every rule a broken one breaks."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from provision.errors import ManifestError
from provision.manifest import ALL_GROUPS, load_manifest, parse_groups, parse_manifest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shipped() -> Any:
    return load_manifest(REPO / "manifest.toml")


def test_the_shipped_manifest_has_the_gaussian_setup(shipped: Any) -> None:
    gaussian = shipped.select(frozenset({"GAUSSIAN"}))
    nodes = {n.name: n for n in gaussian.nodes}
    assert nodes["ComfyUI-Sharp"].repo == "https://github.com/PozzettiAndrea/ComfyUI-Sharp.git"
    assert "comfyui-GaussianViewer" in nodes
    files = {m.filename: m for m in gaussian.models}
    sharp = files["sharp_2572gikvuh.pt"]
    assert sharp.folder == "sharp" and sharp.link_into_comfyui and sharp.size == 2809738232
    assert sharp.url == "https://huggingface.co/apple/Sharp/resolve/main/sharp_2572gikvuh.pt"
    assert files["qwen_image_edit_2509_fp8_e4m3fn.safetensors"].folder == "diffusion_models"
    assert files["qwen_2.5_vl_7b_fp8_scaled.safetensors"].folder == "text_encoders"
    assert files["qwen_image_vae.safetensors"].folder == "vae"
    loras = [m for m in gaussian.models if m.folder == "loras"]
    assert len(loras) == 2 and all("Lightning" in m.filename for m in loras)


def test_every_node_is_pinned_to_a_commit(shipped: Any) -> None:
    assert shipped.nodes
    assert all(re.fullmatch(r"[0-9a-f]{40}", node.commit) for node in shipped.nodes)


def test_every_url_is_https_and_every_checksum_is_pinned_or_marked(shipped: Any) -> None:
    raw = tomllib.loads((REPO / "manifest.toml").read_text())
    for model, entry in zip(shipped.models, raw["models"], strict=True):
        assert model.url.startswith("https://")
        if model.sha256 is None:
            assert entry["sha256"].startswith("FILL-ME:")  # says what to fill in
        else:
            assert re.fullmatch(r"[0-9a-f]{64}", model.sha256)


def test_torch_pins_become_pip_constraints(shipped: Any) -> None:
    assert shipped.torch.constraints().splitlines() == list(shipped.torch.packages)
    assert all("==" in spec for spec in shipped.torch.packages)


def _manifest(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "schema": 1,
        "comfyui": {"repo": "https://github.com/comfyanonymous/ComfyUI.git", "version": "v0.8.2"},
        "torch": {"index_url": "https://download.pytorch.org/whl/cu128", "packages": ["torch==2.9.1"]},
        "models": [
            {
                "name": "vae",
                "group": "TEST",
                "url": "https://example.org/files/a%20b.safetensors?download=1",
                "folder": "vae",
                "sha256": "a" * 64,
            }
        ],
    }
    data.update(overrides)
    return data


def _model(**fields: Any) -> dict[str, Any]:
    return _manifest(models=[{**_manifest()["models"][0], **fields}])


def test_the_filename_defaults_to_the_url_path() -> None:
    model = parse_manifest(_manifest()).models[0]
    assert model.filename == "a b.safetensors"
    assert str(model.relpath) == "vae/a b.safetensors"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_manifest(schema=2), "schema = 2 is not supported"),
        (_manifest(extra=1), "extra: unknown key"),
        (_model(sha265="x"), "[[models]] #1 'vae' sha265: unknown key"),
        (_model(sha256="abc"), "sha256: must be 64 hex digits, or a placeholder starting with 'FILL-ME'"),
        (_model(folder="../etc"), "folder: must be a ComfyUI model folder relative to models/"),
        (_model(filename="a/b.pt"), "filename: must be a plain file name"),
        (_model(url="ftp://example.org/x.pt"), "url: must be an http(s) URL"),
        (_model(group="gaussian"), "group: must be an UPPER_CASE name"),
        (_model(group="ALL"), "group: 'ALL' is reserved"),
        (_model(group="CONCURRENCY"), "'CONCURRENCY' is reserved"),
        (_model(size=-1), "size: must be a positive number of bytes"),
        (_model(size="big"), "size: must be a whole number"),
        (_model(link_into_comfyui="yes"), "link_into_comfyui: must be true or false"),
        (
            _manifest(
                nodes=[{"name": "N", "repo": "https://github.com/a/b", "commit": "main", "group": "G"}]
            ),
            "commit: must be a full 40-character commit hash",
        ),
        (
            _manifest(
                nodes=[{"name": "../x", "repo": "https://github.com/a/b", "commit": "a" * 40, "group": "G"}]
            ),
            "name: must be a plain folder name",
        ),
        (_manifest(models=[_manifest()["models"][0]] * 2), "'vae/a b.safetensors' appears twice"),
        (_manifest(torch={"index_url": "https://x", "packages": []}), "packages: must be a non-empty list"),
    ],
)
def test_a_broken_manifest_names_the_entry_and_the_rule(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(data, source="manifest.toml")
    assert message in str(caught.value)


def test_a_placeholder_checksum_means_unverified() -> None:
    model = parse_manifest(_model(sha256="FILL-ME: copy it from the model page")).models[0]
    assert model.sha256 is None and not model.verified


def test_unreadable_files_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="file not found; pass --manifest or set PROVISION_MANIFEST"):
        load_manifest(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("schema = ")
    with pytest.raises(ManifestError, match="not valid TOML"):
        load_manifest(tmp_path / "bad.toml")


def test_select_narrows_and_refuses_unknown_groups() -> None:
    manifest = parse_manifest(_manifest())
    assert manifest.select(ALL_GROUPS) is manifest
    assert manifest.select(frozenset()).models == ()
    with pytest.raises(ManifestError, match=r"no group named NOPE \(groups: TEST\)"):
        manifest.select(frozenset({"NOPE"}))


@pytest.mark.parametrize(
    ("text", "groups"),
    [
        ("GAUSSIAN", frozenset({"GAUSSIAN"})),
        ("gaussian, video", frozenset({"GAUSSIAN", "VIDEO"})),
        ("all", ALL_GROUPS),
        ("", frozenset()),
    ],
)
def test_parse_groups(text: str, groups: object) -> None:
    assert parse_groups(text) == groups
