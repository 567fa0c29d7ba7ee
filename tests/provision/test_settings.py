"""provision.settings and provision.paths: the environment, and where models go."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import SettingsError
from provision.manifest import ALL_GROUPS
from provision.paths import candidate_roots, models_root
from provision.settings import DownloadSettings

GROUPS = frozenset({"GAUSSIAN", "VIDEO"})


def _settings(**env: str) -> DownloadSettings:
    return DownloadSettings.from_env(env, known_groups=GROUPS)


def test_defaults() -> None:
    settings = _settings()
    assert settings.groups == frozenset()
    assert settings.models_root is None
    assert settings.comfyui_path == Path("/comfyui")
    assert (settings.concurrency, settings.retries, settings.require_sha256) == (4, 5, False)
    assert settings.hf_token is None


def test_groups_come_from_download_flags() -> None:
    assert _settings(DOWNLOAD_GAUSSIAN="true", DOWNLOAD_VIDEO="false").groups == frozenset({"GAUSSIAN"})
    assert _settings(DOWNLOAD_ALL="TRUE", DOWNLOAD_GAUSSIAN="false").groups == ALL_GROUPS
    assert _settings(DOWNLOAD_ALL="false").groups == frozenset()
    # Settings that share the prefix are not groups.
    assert _settings(DOWNLOAD_CONCURRENCY="8", DOWNLOAD_REQUIRE_SHA256="true").groups == frozenset()


def test_a_flag_for_an_unknown_group_is_an_error_but_false_is_ignored() -> None:
    assert _settings(DOWNLOAD_NOPE="false").groups == frozenset()
    with pytest.raises(SettingsError, match=r"DOWNLOAD_NOPE='1': manifest.toml has no group 'NOPE'"):
        _settings(DOWNLOAD_NOPE="1")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DOWNLOAD_GAUSSIAN": "maybe"}, "DOWNLOAD_GAUSSIAN='maybe': use true or false"),
        ({"DOWNLOAD_CONCURRENCY": "0"}, "DOWNLOAD_CONCURRENCY='0': must be at least 1"),
        ({"DOWNLOAD_CONCURRENCY": "two"}, "must be a whole number, e.g. DOWNLOAD_CONCURRENCY=4"),
        ({"DOWNLOAD_TIMEOUT_S": "nan"}, "DOWNLOAD_TIMEOUT_S='nan': must be at least 0.1"),
    ],
)
def test_bad_values_name_their_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _settings(**env)


def test_the_hf_token_can_come_from_a_file_but_not_from_both(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("hf_abc\n")
    assert _settings(HF_TOKEN="hf_direct").hf_token == "hf_direct"
    assert _settings(HF_TOKEN_FILE=str(token_file)).hf_token == "hf_abc"
    with pytest.raises(SettingsError, match="HF_TOKEN is set too"):
        _settings(HF_TOKEN="x", HF_TOKEN_FILE=str(token_file))
    with pytest.raises(SettingsError, match="cannot be read"):
        _settings(HF_TOKEN_FILE=str(tmp_path / "missing"))
    assert "hf_direct" not in repr(_settings(HF_TOKEN="hf_direct"))  # never in logs


def test_models_go_to_the_first_writable_volume_else_the_image(tmp_path: Path) -> None:
    runpod_volume, workspace, comfyui = (
        tmp_path / "runpod-volume",
        tmp_path / "workspace",
        tmp_path / "comfyui",
    )
    volumes = (runpod_volume, workspace)

    assert models_root(comfyui, volumes=volumes) == comfyui / "models"
    workspace.mkdir()
    assert models_root(comfyui, volumes=volumes) == workspace / "models"
    runpod_volume.mkdir()
    assert models_root(comfyui, volumes=volumes) == runpod_volume / "models"
    assert models_root(comfyui, override=tmp_path / "x", volumes=volumes) == tmp_path / "x"
    assert candidate_roots(comfyui, volumes=volumes) == [
        runpod_volume / "models",
        workspace / "models",
        comfyui / "models",
    ]


def test_other_tools_download_variables_are_not_group_switches() -> None:
    # DOWNLOAD_DIR=/x belongs to something else; it must not stop the boot.
    assert _settings(DOWNLOAD_DIR="/x", DOWNLOAD_GAUSSIAN="true").groups == frozenset({"GAUSSIAN"})
    with pytest.raises(SettingsError, match="DOWNLOAD_GAUSSIAN='maybe': use true or false"):
        _settings(DOWNLOAD_GAUSSIAN="maybe")  # a known group still needs a real boolean


def test_ranged_download_and_strict_settings() -> None:
    settings = _settings()
    assert (settings.connections, settings.split_min_mib, settings.strict) == (8, 64.0, False)
    assert settings.status_file is None  # the CLI then uses $COMFYUI_PATH/.provision/models-status.json
    tuned = _settings(
        DOWNLOAD_CONNECTIONS="16",
        DOWNLOAD_SPLIT_MIN_MIB="128",
        DOWNLOAD_STRICT="true",
        MODELS_STATUS_FILE="/tmp/s.json",
    )
    assert (tuned.connections, tuned.split_min_mib, tuned.strict) == (16, 128.0, True)
    assert tuned.status_file == Path("/tmp/s.json")
    assert tuned.groups == frozenset()  # none of these is a group switch
    with pytest.raises(SettingsError, match=r"DOWNLOAD_CONNECTIONS='0': must be at least 1"):
        _settings(DOWNLOAD_CONNECTIONS="0")
    with pytest.raises(SettingsError, match=r"DOWNLOAD_STRICT='sometimes': use true or false"):
        _settings(DOWNLOAD_STRICT="sometimes")
