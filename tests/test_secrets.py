"""Secrets stay out of results and logs, and redaction touches nothing else (issue 14, point 10)."""

from __future__ import annotations

import logging

import pytest

from comfy_testserver import ComfyTestServer
from handler.error_result import redact, redact_result
from handler.worker import Worker
from handler.ws_trace import trace_line

from . import workflows as wf
from .conftest import make_settings


def test_short_secret_never_rewrites_field_values_that_merely_contain_it() -> None:
    result = {
        "images": [{"filename": "a.png", "mime_type": "image/png", "type": "base64", "data": "x"}],
        "text": [{"node_id": "7", "text": "image"}],
        "errors": ["the image node failed"],
    }
    redacted = redact_result(result, ["image"])
    assert redacted["images"][0]["mime_type"] == "image/png" and redacted["images"][0]["type"] == "base64"
    assert redacted["errors"] == ["the image node failed"]
    assert redacted["text"] == [{"node_id": "7", "text": "***"}]  # the exact value still goes


def test_long_secret_is_redacted_as_a_token_not_inside_other_tokens() -> None:
    secret = "comfyui-key-12345"
    value = {secret: f"Bearer {secret}", "a": f"url?key={secret}&x=1", "b": f"x{secret}y"}
    assert redact(value, [secret]) == {secret: "Bearer ***", "a": "url?key=***&x=1", "b": f"x{secret}y"}


def test_websocket_trace_never_logs_output_values() -> None:
    frame = '{"type": "executed", "data": {"node": "7", "output": {"text": ["sk-live-abc123"]}, "prompt_id": "p"}}'
    line = trace_line(frame)
    assert "sk-live-abc123" not in line and '"node": "7"' in line and "chars not logged" in line
    assert (
        trace_line('{"type": "progress_text", "data": {"node": "7", "text": "sk-live-abc123"}}').count("sk-")
        == 0
    )
    assert '"value": 3' in trace_line('{"type": "progress", "data": {"value": 3, "max": 8}}')


async def test_worker_trace_keeps_redacted_text_out_of_the_debug_log(
    comfy: ComfyTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "comfyui-job-secret-777"
    worker = Worker(make_settings(comfy, WEBSOCKET_TRACE="true"))
    workflow = {**wf.save_image(), "7": {"class_type": "PreviewAny", "inputs": {"source": secret}}}
    with caplog.at_level(logging.DEBUG):
        result = await worker.handle(
            {"id": "t", "input": {"workflow": workflow, "comfy_org_api_key": secret}}
        )
    assert "error" not in result, result
    assert result["text"][0]["text"] == "***"
    assert "ws <- " in caplog.text  # the trace ran
    assert secret not in caplog.text


async def test_secret_in_a_bad_s3config_endpoint_is_not_echoed(comfy: ComfyTestServer) -> None:
    worker = Worker(make_settings(comfy))
    s3 = {
        "endpointUrl": "AKIAEXAMPLE:wJalrSecretKey@minio",
        "accessId": "a",
        "accessSecret": "b",
        "bucketName": "bk",
    }
    result = await worker.handle({"id": "s", "input": {"workflow": wf.save_image()}, "s3Config": s3})
    assert result["error"].startswith("INVALID_INPUT") and "s3Config.endpointUrl" in result["error"]
    assert "wJalrSecretKey" not in str(result)
