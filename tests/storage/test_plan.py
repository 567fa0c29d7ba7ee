"""The size guard: decide before encoding, measure after, never exceed the limit."""

from __future__ import annotations

import base64
import json

import pytest

from handler.errors import JobInputError, OutputTooLarge
from handler.job import resolve_mode
from handler.storage.plan import b64_length, plan_delivery, serialized_size


def test_b64_length_is_exact() -> None:
    for size in range(0, 50):
        assert b64_length(size) == len(base64.b64encode(b"x" * size))


def test_serialized_size_matches_json_dumps() -> None:
    result = {
        "images": [{"filename": "ä.png", "data": base64.b64encode(b"12345").decode()}],
        "files": [{"filename": "b", "data": "https://x/y?a=1&b=%2F"}],
        "text": [{"text": 'héllo "q"\n'}],
    }
    assert serialized_size(result) == len(json.dumps(result, ensure_ascii=False).encode())


def test_modes() -> None:
    assert resolve_mode(None, has_destination=True) == "s3"
    assert resolve_mode(None, has_destination=False) == "base64"
    assert resolve_mode("auto", has_destination=False) == "auto"
    with pytest.raises(JobInputError, match='input.output is "s3" but no bucket is configured'):
        resolve_mode("s3", has_destination=False)


def test_s3_mode_uploads_everything() -> None:
    assert plan_delivery([1, 2], mode="s3", has_destination=True, skeleton_bytes=10, limit_bytes=10) == {0, 1}


def test_auto_moves_the_largest_first_until_it_fits() -> None:
    sizes = [3000, 30000, 300, 15000]
    assert (
        plan_delivery(sizes, mode="auto", has_destination=True, skeleton_bytes=100, limit_bytes=100_000)
        == set()
    )
    assert plan_delivery(
        sizes, mode="auto", has_destination=True, skeleton_bytes=100, limit_bytes=30_000
    ) == {1}
    assert plan_delivery(sizes, mode="auto", has_destination=True, skeleton_bytes=100, limit_bytes=9_000) == {
        1,
        3,
    }


def test_too_large_without_destination_names_the_settings() -> None:
    with pytest.raises(OutputTooLarge) as info:
        plan_delivery(
            [9_000_000], mode="base64", has_destination=False, skeleton_bytes=200, limit_bytes=9_000_000
        )
    message = info.value.message
    assert (
        "12.0 MB, over the 9.0 MB" in message and "BUCKET_ENDPOINT_URL" in message and "s3Config" in message
    )


def test_explicit_base64_that_does_not_fit_points_to_auto() -> None:
    with pytest.raises(OutputTooLarge, match='send input.output = "auto" or "s3"'):
        plan_delivery(
            [9_000_000], mode="base64", has_destination=True, skeleton_bytes=200, limit_bytes=9_000_000
        )
