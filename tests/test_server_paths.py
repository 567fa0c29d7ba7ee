"""Server paths in error results (handler/server_paths.py) and how out-of-memory errors are told
apart (handler/errors.py), from the texts ComfyUI really sends."""

from __future__ import annotations

from typing import Any

import pytest

from handler.errors import ExecutionFailed, OutOfMemory, execution_failure, is_out_of_memory
from handler.server_paths import hide_server_paths

from .conftest import recorded


def test_a_recorded_traceback_keeps_comfyui_paths_and_hides_the_rest() -> None:
    # Transcript 10: a LoadImage failure from a real ComfyUI at /comfyui with its venv at /opt/venv.
    frames = [
        m["json"]["data"]
        for m in recorded("10_execution_error")["events"]
        if m.get("json", {}).get("type") == "execution_error"
    ]
    data: dict[str, Any] = frames[0]
    error = ExecutionFailed(data, prompt_id="p")
    result = {"error": f"{error.code}: {error.message}", "details": error.details}
    hidden = hide_server_paths(result, keep=["/comfyui"])
    text = str(hidden)
    assert "/opt/venv" not in text
    assert "<python>/PIL/Image.py" in text
    assert "/comfyui/execution.py" in text and "/comfyui/input/probe_not_an_image" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("open /etc/shadow/x failed", "open <server path>/x failed"),
        ('File "/usr/lib/python3.11/threading.py"', 'File "<server path>/threading.py"'),
        ("see http://127.0.0.1:8188/api/view?x=1", "see http://127.0.0.1:8188/api/view?x=1"),
        ("POST /upload/image answered 413", "POST /upload/image answered 413"),
        ("an input/x.png and/or output/y", "an input/x.png and/or output/y"),
        ("/comfyuiX/secret.txt", "<server path>/secret.txt"),  # a prefix is not the folder
    ],
)
def test_paths_outside_comfyui_are_replaced(text: str, expected: str) -> None:
    assert hide_server_paths({"error": text}, keep=["/comfyui"])["error"] == expected


def test_results_without_an_error_are_left_alone() -> None:
    result = {"images": [{"filename": "/tmp/a/b.png"}]}
    assert hide_server_paths(result, keep=["/comfyui"]) == result


@pytest.mark.parametrize(
    ("exception_type", "message"),
    [
        ("torch.OutOfMemoryError", "CUDA out of memory. Tried to allocate 2.00 GiB."),
        ("torch.cuda.OutOfMemoryError", "Allocation on device"),
        ("RuntimeError", "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
        ("RuntimeError", "MPS backend out of memory (MPS allocated: 1.2 GB)"),
        ("Exception", "boom\nThis error means you ran out of memory on your GPU."),
    ],
)
def test_out_of_memory_is_recognised(exception_type: str, message: str) -> None:
    data = {
        "node_id": "5",
        "node_type": "KSampler",
        "exception_type": exception_type,
        "exception_message": message,
    }
    assert is_out_of_memory(data)
    error = execution_failure(data, prompt_id="p")
    assert isinstance(error, OutOfMemory) and error.code == "OUT_OF_MEMORY"
    assert error.message.startswith("node 5 (KSampler) ran out of memory")


def test_other_errors_stay_execution_failed() -> None:
    data = {
        "node_id": "3",
        "node_type": "LoadImage",
        "exception_type": "PIL.UnidentifiedImageError",
        "exception_message": "cannot identify image file",
    }
    error = execution_failure(data, prompt_id="p")
    assert type(error) is ExecutionFailed and error.code == "EXECUTION_FAILED"
