"""Settings come from one mapping; bad values name their variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from handler.config import ConfigError, Settings


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.comfy_host == "127.0.0.1:8188"
    assert settings.comfyui_path == Path("/comfyui")
    assert settings.timeouts.job_s == 1800.0
    assert settings.timeouts.ready_poll_s == 0.05
    assert settings.cleanup and settings.rerun_output_nodes
    assert not settings.refresh_worker and not settings.progress_enabled


def test_worker_comfyui_names_are_honoured(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "COMFY_HOST": "http://10.0.0.5:8190/",
            "WEBSOCKET_RECONNECT_ATTEMPTS": "7",
            "WEBSOCKET_RECONNECT_DELAY_S": "0.5",
            "WEBSOCKET_TRACE": "true",
            "REFRESH_WORKER": "1",
            "COMFY_API_AVAILABLE_INTERVAL_MS": "200",
            "COMFY_ORG_API_KEY": "comfyui-abc123",
            "COMFY_JOB_TIMEOUT_S": "90",
            "COMFY_PID_FILE": str(tmp_path / "comfy.pid"),
            "RUNPOD_WEBHOOK_POST_OUTPUT": "https://api.runpod.ai/v2/x/job-done/$ID",
        }
    )
    assert settings.comfy_host == "10.0.0.5:8190"
    assert settings.ws_reconnect_attempts == 7 and settings.ws_reconnect_delay_s == 0.5
    assert settings.ws_trace and settings.refresh_worker and settings.progress_enabled
    assert settings.timeouts.ready_poll_s == 0.2 and settings.timeouts.job_s == 90.0
    assert settings.comfy_org_api_key == "comfyui-abc123"
    assert "comfyui-abc123" not in repr(settings)
    assert settings.comfy_pid_file == tmp_path / "comfy.pid"


def test_secret_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("from-file-key\n")
    assert Settings.from_env({"COMFY_ORG_API_KEY_FILE": str(secret)}).comfy_org_api_key == "from-file-key"
    with pytest.raises(ConfigError, match="both COMFY_ORG_API_KEY and COMFY_ORG_API_KEY_FILE are set"):
        Settings.from_env({"COMFY_ORG_API_KEY": "a", "COMFY_ORG_API_KEY_FILE": str(secret)})
    with pytest.raises(ConfigError, match=r"COMFY_ORG_API_KEY_FILE=.* cannot be read"):
        Settings.from_env({"COMFY_ORG_API_KEY_FILE": str(tmp_path / "missing")})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"COMFY_JOB_TIMEOUT_S": "soon"}, "COMFY_JOB_TIMEOUT_S='soon' is not a number"),
        ({"COMFY_JOB_TIMEOUT_S": "0"}, "COMFY_JOB_TIMEOUT_S='0' must be at least 0.1"),
        ({"COMFY_READY_TIMEOUT_S": "nan"}, "COMFY_READY_TIMEOUT_S='nan' must be at least"),
        ({"WEBSOCKET_RECONNECT_ATTEMPTS": "2.5"}, "is not a whole number"),
        ({"REFRESH_WORKER": "maybe"}, "REFRESH_WORKER='maybe' is not a boolean"),
        ({"COMFY_HOST": "http://"}, "COMFY_HOST='http://' is not host:port"),
        ({"COMFY_HOST": "a/b"}, "is not host:port"),
        ({"COMFY_LOG_LEVEL": "loud"}, "COMFY_LOG_LEVEL='LOUD' is not a log level"),
        ({"COMFY_MAX_INPUT_BYTES": "0"}, "COMFY_MAX_INPUT_BYTES='0' must be at least 1"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(
        ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")
    ):
        Settings.from_env(env)


def test_sdk_log_level_defaults_to_info_and_is_checked() -> None:
    assert Settings.from_env({}).sdk_log_level == "INFO"
    assert Settings.from_env({"RUNPOD_LOG_LEVEL": "debug"}).sdk_log_level == "DEBUG"
    with pytest.raises(ConfigError, match="RUNPOD_LOG_LEVEL='chatty' is not a runpod log level"):
        Settings.from_env({"RUNPOD_LOG_LEVEL": "chatty"})
