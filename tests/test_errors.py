"""Error results: one line with a stable code; ComfyUI's recorded 400 bodies made readable."""

from __future__ import annotations

from typing import Any

import pytest

from handler.error_result import error_result, redact
from handler.errors import (
    ComfyCrashed,
    ComfyFrozen,
    ComfyNotReady,
    ComfyStalled,
    ComfyStuck,
    ExecutionFailed,
    FetchFailed,
    HistoryMissing,
    JobTimeout,
    StorageMisconfigured,
    UploadFailed,
    WorkerError,
    WorkflowInvalid,
)

from .conftest import recorded


def recorded_400_bodies() -> dict[str, Any]:
    bodies = {}
    for event in recorded("09_validation_errors")["events"]:
        if event["kind"] == "http" and event["response"]["status"] == 400:
            bodies[event["label"]] = event["response"]["json"]
    return bodies


BODIES = recorded_400_bodies()


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        (
            "unknown class_type (in a node that an output depends on)",
            "Cannot execute because node NoSuchNodeType does not exist (Node ID '#1'): install the custom node pack",
        ),
        (
            "missing required widget input (EmptyImage.width)",
            "node 1 (EmptyImage) input 'width': required input is missing",
        ),
        (
            "missing required link input (SaveImage.images)",
            "node 2 (SaveImage) input 'images': required input is missing",
        ),
        ("link to non-existent node id", "node 2 (SaveImage) validation raised KeyError: '99'"),
        (
            "link with wrong type (LATENT into IMAGE input)",
            "node 2 (SaveImage) input 'images': Return type mismatch between linked nodes: "
            "images, received_type(LATENT) mismatch input_type(IMAGE)",
        ),
        (
            "value below min (EmptyImage.width=0)",
            "node 1 (EmptyImage) input 'width': Value 0 smaller than min of 1",
        ),
        (
            "value of wrong type (width='abc')",
            "node 1 (EmptyImage) input 'width': Failed to convert an input value to a INT value",
        ),
        (
            "combo value not in list (ImageScale.upscale_method)",
            "node 2 (ImageScale) input 'upscale_method': value 'no-such-method' is not available. "
            "Available: ['nearest-exact', 'bilinear', 'area', 'bicubic', 'lanczos']",
        ),
        (
            "missing model file (CheckpointLoaderSimple ckpt_name not in list)",
            "node 1 (CheckpointLoaderSimple) input 'ckpt_name': value 'sd_xl_base_1.0.safetensors' is not available; "
            "the file is missing from ComfyUI's models folder. Available: none (the folder is empty)",
        ),
        (
            "LoadImage of a file that does not exist in input/",
            "node 1 (LoadImage) input 'image': Invalid image file: no_such_file_xyz.png; send the file in input.images",
        ),
        ("prompt without any output node", "Prompt has no outputs: add an output node such as SaveImage"),
        ("node without class_type", "a node is missing the class_type property"),
    ],
)
def test_recorded_validation_errors_become_readable_lines(label: str, expected: str) -> None:
    result = error_result(WorkflowInvalid(BODIES[label]))
    assert result["error"].startswith("WORKFLOW_INVALID: ComfyUI rejected the workflow: ")
    assert expected in result["error"]
    assert "\n" not in result["error"]
    assert result["details"]["comfy_response"] == BODIES[label]
    assert result["details"]["problems"]


def test_every_recorded_400_body_gives_a_problem_line() -> None:
    for label, body in BODIES.items():
        problems = WorkflowInvalid(body).details["problems"]
        assert problems and all(p.strip() for p in problems), label


def test_many_problems_are_summarised() -> None:
    body = {
        "node_errors": {
            str(i): {
                "class_type": "EmptyImage",
                "errors": [
                    {
                        "type": "required_input_missing",
                        "message": "Required input is missing",
                        "details": "width",
                        "extra_info": {"input_name": "width"},
                    }
                ],
            }
            for i in range(8)
        }
    }
    error = WorkflowInvalid(body)
    assert "(+3 more, see details.problems)" in error.message
    assert len(error.details["problems"]) == 8


def test_execution_error_from_recorded_message() -> None:
    events = recorded("10_execution_error")["events"]
    data = next(
        e["json"]["data"]
        for e in events
        if e["kind"] == "ws_recv" and e.get("json", {}).get("type") == "execution_error"
    )
    result = error_result(ExecutionFailed(data, prompt_id="p1"))
    assert result["error"].startswith(
        f"EXECUTION_FAILED: node {data['node_id']} ({data['node_type']}) raised PIL.UnidentifiedImageError: "
    )
    assert "\n" not in result["error"]
    details = result["details"]
    assert details["exception_type"] == "PIL.UnidentifiedImageError"
    assert details["traceback"] and len(details["traceback"]) <= 13
    assert details["prompt_id"] == "p1"


def test_long_tracebacks_are_truncated() -> None:
    data = {
        "node_id": "3",
        "node_type": "KSampler",
        "exception_type": "RuntimeError",
        "exception_message": "CUDA out of memory\n",
        "traceback": [f"frame {i}\n" for i in range(40)],
    }
    details = ExecutionFailed(data, prompt_id="p").details
    assert details["traceback"][0] == "... 28 earlier frame(s) omitted\n"
    assert details["traceback"][-1] == "frame 39\n"


def test_crash_asks_runpod_to_replace_the_worker() -> None:
    result = error_result(ComfyCrashed(stage="running node 3 (KSampler)", prompt_id="p"))
    assert result["error"].startswith(
        "COMFY_CRASHED: ComfyUI's process exited while running the prompt (running node 3 (KSampler))"
    )
    assert result["refresh_worker"] is True


@pytest.mark.parametrize(
    ("error", "start"),
    [
        (
            ComfyCrashed(pid_file="/tmp/comfyui.pid"),
            "ComfyUI is not running (the process in /tmp/comfyui.pid exited, at start-up or during an earlier",
        ),
        (ComfyCrashed(stage="running", prompt_id="p", host="h:1"), "ComfyUI stopped answering at h:1 while"),
        (ComfyNotReady(host="h:1", timeout_s=5, last_error="x"), "ComfyUI at h:1 did not answer within 5 s"),
        (HistoryMissing(prompt_id="p1"), "ComfyUI reported prompt p1 finished but /history has no entry"),
        (
            StorageMisconfigured(label="bucket 'b'", reason="denied", details={}),
            "bucket 'b' cannot be used: denied",
        ),
        (
            UploadFailed(label="bucket 'b'", reason="503", filename="a.png", details={}),
            "output 'a.png' could not be uploaded to bucket 'b': 503",
        ),
        (FetchFailed("a.png", "GET /view answered not found"), "output 'a.png' could not be fetched"),
    ],
)
def test_each_error_class_words_its_own_message(error: WorkerError, start: str) -> None:
    # Callers pass facts; the class says what happened and what to do, in one line.
    assert error.message.startswith(start)
    assert "\n" not in error.message
    assert error_result(error)["error"] == f"{error.code}: {error.message}"


def test_timeout_says_what_to_raise() -> None:
    result = error_result(JobTimeout(2.5, stage="running node 3 (KSampler)", prompt_id="p"))
    assert result["error"] == (
        "TIMEOUT: the job did not finish within 2.5 s (it was running node 3 (KSampler)); the prompt was "
        "interrupted and ComfyUI has let go of it. Raise input.timeout or COMFY_JOB_TIMEOUT_S if the "
        "workflow needs longer"
    )


def test_timeout_says_when_the_prompt_is_still_running() -> None:
    error = JobTimeout(2.5, stage="running node 3 (Slow)", prompt_id="p", prompt_state="still_running")
    result = error_result(error)
    assert "ComfyUI has NOT let go of it" in result["error"]
    assert "restarts ComfyUI if it does not within COMFY_INTERRUPT_SETTLE_S" in result["error"]
    assert result["details"]["prompt_state"] == "still_running"
    assert "refresh_worker" not in result  # the worker deals with it in place


@pytest.mark.parametrize(
    ("error", "refresh", "start"),
    [
        (
            ComfyFrozen(
                stage="running", prompt_id="p", host="h:1", silent_s=4, stopped_pid=42, restartable=True
            ),
            False,
            "COMFY_FROZEN: ComfyUI's process (pid 42) is stopped (SIGSTOP or a debugger)",
        ),
        (
            ComfyFrozen(
                stage="running", prompt_id="p", host="h:1", silent_s=11, stopped_pid=None, restartable=False
            ),
            True,
            "COMFY_FROZEN: ComfyUI at h:1 has given no sign of life for 11 s",
        ),
        (
            ComfyStalled(prompt_id="p", waited_s=10, restartable=True),
            False,
            "COMFY_STALLED: ComfyUI stopped executing prompts: the job's prompt waited 10 s",
        ),
        (ComfyStuck(why="prompt p did not stop"), True, "COMFY_STUCK: ComfyUI on this worker is unusable"),
    ],
)
def test_liveness_errors_say_whether_the_worker_is_replaced(
    error: WorkerError, refresh: bool, start: str
) -> None:
    result = error_result(error)
    assert result["error"].startswith(start)
    assert bool(result.get("refresh_worker")) is refresh
    assert ("will be replaced" in result["error"]) is refresh


def test_unexpected_exception_is_generic_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    result = error_result(KeyError("internal detail"))
    assert result["error"].startswith("INTERNAL_ERROR: the worker hit an unexpected KeyError")
    assert "internal detail" not in result["error"]
    assert "unexpected error in the worker" in caplog.text


def test_secrets_are_redacted_everywhere() -> None:
    value = {"error": "key sk-secret-1234 leaked", "details": {"list": ["x sk-secret-1234"]}}
    assert redact(value, ["sk-secret-1234", None]) == {
        "error": "key *** leaked",
        "details": {"list": ["x ***"]},
    }


def test_result_redaction_leaves_output_data_alone() -> None:
    from handler.error_result import redact_result

    url = "http://minio:9000/b/k?X-Amz-Credential=minioadmin%2F20261127&X-Amz-Signature=abc"
    result = {
        "images": [{"filename": "minioadmin.png", "data": "bWluaW9hZG1pbg=="}],
        "files": [{"filename": "a.mp4", "type": "s3_url", "data": url}],
        "text": [{"node_id": "1", "text": "key minioadmin"}],
        "errors": ["minioadmin failed"],
    }
    redacted = redact_result(result, ["minioadmin"])
    assert redacted["files"][0]["data"] == url and redacted["images"][0]["data"] == "bWluaW9hZG1pbg=="
    assert redacted["images"][0]["filename"] == "***.png"
    assert redacted["text"][0]["text"] == "key ***" and redacted["errors"] == ["*** failed"]
    assert list(redacted) == list(result)
