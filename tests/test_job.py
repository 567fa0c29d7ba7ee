"""Input validation: every malformed job gets INVALID_INPUT naming the field, never an exception."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handler.error_result import error_result
from handler.errors import JobInputError
from handler.job import JobLimits, parse_job_input

from .conftest import b64, png_bytes

LIMITS = JobLimits(max_input_bytes=10_000, default_timeout_s=600.0, default_api_key="env-key-123")
WORKFLOW = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "t"}},
}


def rejected(raw: Any) -> str:
    with pytest.raises(JobInputError) as info:
        parse_job_input(raw, LIMITS)
    return info.value.message


def test_valid_input_with_defaults() -> None:
    request = parse_job_input({"workflow": WORKFLOW}, LIMITS)
    assert request.workflow == WORKFLOW
    assert request.images == ()
    assert request.timeout_s == 600.0
    assert request.api_key == "env-key-123"
    assert request.include_temp is False


def test_input_and_workflow_may_be_json_strings() -> None:
    request = parse_job_input(json.dumps({"workflow": json.dumps(WORKFLOW), "timeout": 5}), LIMITS)
    assert request.workflow["2"]["class_type"] == "SaveImage"
    assert request.timeout_s == 5.0


def test_job_api_key_overrides_env_default() -> None:
    request = parse_job_input({"workflow": WORKFLOW, "comfy_org_api_key": "job-key-456"}, LIMITS)
    assert request.api_key == "job-key-456"
    assert "job-key-456" not in repr(request)


def test_images_decoded_with_real_type_from_bytes() -> None:
    data = png_bytes()
    request = parse_job_input(
        {
            "workflow": WORKFLOW,
            "images": [
                {"name": "photo.jpg", "image": b64(data)},  # named .jpg, really a PNG
                {"name": "uri.png", "image": "data:image/png;base64," + b64(data)},
            ],
        },
        LIMITS,
    )
    assert [(i.name, i.mime_type, i.data) for i in request.images] == [
        ("photo.jpg", "image/png", data),
        ("uri.png", "image/png", data),
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "the job has no input"),
        ("{not json", "the job input is a string but not valid JSON"),
        ([1, 2], "must be a JSON object with a 'workflow' key, got a list"),
        ({}, "input.workflow is missing"),
        ({"workflow": "[oops"}, "input.workflow is a string but not valid JSON"),
        ({"workflow": 7}, "input.workflow must be a JSON object of nodes, got a number"),
        ({"workflow": {}}, "input.workflow has no nodes"),
        ({"workflow": {"nodes": [], "links": []}}, "UI-format export"),
        ({"workflow": {"1": "x"}}, "input.workflow['1'] must be an object"),
        ({"workflow": {"1": {"inputs": {}}}}, "input.workflow['1'] has no class_type"),
        (
            {"workflow": {"1": {"class_type": "X", "inputs": []}}},
            "input.workflow['1'].inputs must be an object",
        ),
        ({"workflow": WORKFLOW, "images": {"a": 1}}, "input.images must be a list"),
        ({"workflow": WORKFLOW, "images": ["x"]}, "input.images[0] must be an object"),
        ({"workflow": WORKFLOW, "images": [{"image": "aGk="}]}, "input.images[0].name must be a non-empty"),
        ({"workflow": WORKFLOW, "images": [{"name": "a.png"}]}, "input.images[0].image for 'a.png' must be"),
        ({"workflow": WORKFLOW, "images": [{"name": "a.png", "image": "%%%"}]}, "is not valid base64"),
        ({"workflow": WORKFLOW, "images": [{"name": "a.png", "image": "abcde"}]}, "bad length or padding"),
        ({"workflow": WORKFLOW, "images": [{"name": "../a.png", "image": "aGk="}]}, "not a plain file name"),
        ({"workflow": WORKFLOW, "images": [{"name": "sub/a.png", "image": "aGk="}]}, "not a plain file name"),
        ({"workflow": WORKFLOW, "images": [{"name": "a\\b.png", "image": "aGk="}]}, "not a plain file name"),
        (
            {
                "workflow": WORKFLOW,
                "images": [{"name": "a.png", "image": "aGk="}, {"name": "a.png", "image": "aGk="}],
            },
            "input.images[1].name 'a.png' is used twice",
        ),
        ({"workflow": WORKFLOW, "timeout": "10"}, "input.timeout must be a number of seconds"),
        ({"workflow": WORKFLOW, "timeout": True}, "input.timeout must be a number of seconds"),
        ({"workflow": WORKFLOW, "timeout": -1}, "input.timeout must be between 0 and"),
        ({"workflow": WORKFLOW, "timeout": 10**400}, "input.timeout must be between 0 and"),
        ({"workflow": WORKFLOW, "include_temp": "yes"}, "input.include_temp must be true or false"),
        (
            {"workflow": WORKFLOW, "comfy_org_api_key": 5},
            "input.comfy_org_api_key must be a non-empty string",
        ),
        (
            {"workflow": WORKFLOW, "images": [{"name": "a.png", "image": "data:image/png,abc"}]},
            "without ';base64,'",
        ),
    ],
)
def test_bad_input_names_the_problem(raw: Any, expected: str) -> None:
    assert expected in rejected(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Python refuses to convert integers over 4300 digits with a plain ValueError (no .msg/.pos).
        (
            '{"workflow": ' + "1" * 5000 + "}",
            "the job input is a string but not usable JSON: Exceeds the limit",
        ),
        (
            {"workflow": '{"1": ' + "7" * 5000 + "}"},
            "input.workflow is a string but not usable JSON: Exceeds",
        ),
        ({"workflow": "[" * 100_000}, "input.workflow is a string of JSON nested too deeply to read"),
        ("{", "the job input is a string but not valid JSON (Expecting property name"),
    ],
)
def test_unusable_json_string_is_invalid_input(raw: Any, expected: str) -> None:
    with pytest.raises(JobInputError) as info:
        parse_job_input(raw, LIMITS)
    result = error_result(info.value)
    assert result["error"].startswith("INVALID_INPUT: ")
    assert expected in result["error"]


def test_ui_format_export_gets_the_api_format_hint() -> None:
    message = rejected({"workflow": {"last_node_id": 9, "nodes": [{"id": 1}], "links": [], "version": 0.4}})
    assert "Export (API)" in message and "Save (API Format)" in message


def test_decoded_size_over_limit_names_the_setting() -> None:
    big = b64(b"x" * 4000)
    images = [{"name": f"{n}.bin", "image": big} for n in "abc"]
    message = rejected({"workflow": WORKFLOW, "images": images})
    assert "input.images[2]" in message and "COMFY_MAX_INPUT_BYTES" in message and "12000 bytes" in message


def test_one_file_too_big_for_comfyui_upload_form_names_both_limits() -> None:
    # ComfyUI's --max-upload-size counts the multipart form, so a file just under the limit gets 413.
    limits = JobLimits(max_input_bytes=100_000, default_timeout_s=600.0)
    image = {"name": "a.bin", "image": b64(b"x" * 99_000)}
    with pytest.raises(JobInputError) as caught:
        parse_job_input({"workflow": WORKFLOW, "images": [image]}, limits)
    message = caught.value.message
    assert "input.images[0]" in message and "COMFY_MAX_INPUT_BYTES" in message
    assert "within 95904 bytes" in message and "--max-upload-size" in message
    image = {"name": "a.bin", "image": b64(b"x" * 95_904)}
    assert len(parse_job_input({"workflow": WORKFLOW, "images": [image]}, limits).images[0].data) == 95_904


def test_error_result_shape() -> None:
    try:
        parse_job_input({"workflow": 1}, LIMITS)
    except JobInputError as exc:
        result = error_result(exc)
    assert result["error"].startswith("INVALID_INPUT: input.workflow must be a JSON object")
    assert "\n" not in result["error"]
    assert result["details"] == {}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
job_like = st.fixed_dictionaries(
    {},
    optional={
        "workflow": json_values | st.just(WORKFLOW),
        "images": json_values
        | st.lists(st.fixed_dictionaries({}, optional={"name": json_values, "image": json_values})),
        "timeout": json_values,
        "include_temp": json_values,
        "comfy_org_api_key": json_values,
    },
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(json_values, job_like, job_like.map(json.dumps)))
def test_any_json_gives_a_request_or_a_clear_error(raw: Any) -> None:
    try:
        request = parse_job_input(raw, LIMITS)
    except JobInputError as exc:
        result = error_result(exc)
        assert result["error"].startswith("INVALID_INPUT: ")
        assert "\n" not in result["error"] and len(result["error"]) < 1000
    else:
        assert request.workflow and all("class_type" in n for n in request.workflow.values())
