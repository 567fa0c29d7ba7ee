"""`images`/`files` entries with a URL: accepted shapes and every rejection naming the entry."""

from __future__ import annotations

from typing import Any

import pytest

from handler.error_result import error_result
from handler.errors import JobInputError
from handler.job import JobLimits, parse_job_input

from ..conftest import b64, png_bytes

LIMITS = JobLimits(max_input_bytes=10_000, default_timeout_s=600.0)
WORKFLOW = {"1": {"class_type": "LoadImage", "inputs": {"image": "photo.png"}}}


def parse(**fields: Any):
    return parse_job_input({"workflow": WORKFLOW, **fields}, LIMITS)


def rejected(**fields: Any) -> str:
    with pytest.raises(JobInputError) as info:
        parse(**fields)
    assert error_result(info.value)["error"].startswith("INVALID_INPUT: ")
    return info.value.message


def test_url_entries_become_remote_inputs_next_to_base64_ones() -> None:
    request = parse(
        images=[
            {"name": "a.png", "image": b64(png_bytes())},
            {"name": "photo.png", "url": "https://cdn.example.com/p.png?X-Amz-Signature=abc"},
        ],
        files=[
            {"name": "clip.mp4", "url": "s3://my-bucket/clips/clip.mp4"},
            {"name": "b.png", "data": b64(png_bytes())},
        ],
    )
    assert [image.name for image in request.images] == ["a.png", "b.png"]
    photo, clip = request.remote_inputs
    assert (photo.name, photo.kind, photo.where) == ("photo.png", "image", "input.images[1]")
    assert photo.shown_url == "https://cdn.example.com/p.png"  # never the signature
    assert (clip.name, clip.kind, clip.where) == ("clip.mp4", "file", "input.files[0]")


def test_headers_are_kept_but_never_in_the_repr() -> None:
    request = parse(
        images=[
            {"name": "p.png", "url": "https://x.example/p.png", "headers": {"Authorization": "Bearer s3cr3t"}}
        ]
    )
    [entry] = request.remote_inputs
    assert entry.headers == (("Authorization", "Bearer s3cr3t"),)
    assert "s3cr3t" not in repr(entry) and "s3cr3t" not in repr(request)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"name": "p.png", "url": "ftp://x.example/p.png"}, "input.images[0].url for 'p.png' uses ftp:"),
        ({"name": "p.png", "url": "file:///etc/passwd"}, "uses file:"),
        ({"name": "p.png", "url": "gopher://x:70/"}, "only http://, https:// and s3://"),
        ({"name": "p.png", "url": "//x.example/p.png"}, "uses no scheme"),
        ({"name": "p.png", "url": "https:///p.png"}, "has no host"),
        ({"name": "p.png", "url": "https://user:pw@x.example/p.png"}, "carries user:password"),
        ({"name": "p.png", "url": "https://x.example:99999/p.png"}, "is not a valid URL"),
        ({"name": "p.png", "url": "https://x.example/a b.png"}, "percent-encode it"),
        ({"name": "p.png", "url": ""}, "must be a non-empty http(s) or s3:// URL"),
        ({"name": "p.png", "url": 5}, "must be a non-empty"),
        ({"name": "p.png", "url": "s3://bucket-only"}, "must look like s3://bucket/path/to/key"),
        ({"name": "p.png", "url": "https://x.example/p", "image": "AAAA"}, "has both 'url' and 'image'"),
        (
            {"name": "p.png", "image": b64(png_bytes()), "headers": {"A": "b"}},
            "only applies to an entry with",
        ),
        ({"name": "p.png", "url": "https://x.example/p", "headers": ["A"]}, "must be an object like"),
        ({"name": "p.png", "url": "https://x.example/p", "headers": {"Host": "evil"}}, ".Host cannot be set"),
        ({"name": "p.png", "url": "https://x.example/p", "headers": {"X": "a\r\nB: c"}}, "on one line"),
        (
            {"name": "p.png", "url": "https://x.example/p", "headers": {"bad name": "v"}},
            "not a valid HTTP token",
        ),
        ({"name": "p.png", "url": "s3://b/k.png", "headers": {"A": "v"}}, "not headers"),
        ({"name": "../p.png", "url": "https://x.example/p"}, "is not a plain file name"),
    ],
)
def test_bad_url_entries_name_the_entry_and_the_fix(entry: dict[str, Any], expected: str) -> None:
    assert expected in rejected(images=[entry])


def test_a_header_value_is_never_echoed_in_a_rejection() -> None:
    message = rejected(images=[{"name": "p.png", "url": "https://x/p", "headers": {"X": "tok-9f\nA"}}])
    assert "tok-9f" not in message


def test_names_are_unique_across_images_and_files() -> None:
    message = rejected(
        images=[{"name": "p.png", "url": "https://x.example/1"}],
        files=[{"name": "p.png", "url": "https://x.example/2"}],
    )
    assert message.startswith("input.files[0].name 'p.png' is used twice")


def test_files_must_be_a_list() -> None:
    assert rejected(files={"name": "p.png"}).startswith("input.files must be a list")
