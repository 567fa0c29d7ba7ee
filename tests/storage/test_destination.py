"""Destinations from env-style settings and s3Config; URL forms users already have."""

from __future__ import annotations

from typing import Any

import pytest

from handler.config import ConfigError, Settings
from handler.destination import DestinationError, build_destination
from handler.errors import JobInputError
from handler.job import parse_s3_config

KEYS: dict[str, Any] = {"access_key_id": "AKIA0000", "secret_access_key": "s3cr3t-value"}


@pytest.mark.parametrize(
    ("endpoint", "bucket", "expected"),
    [
        (
            "https://my-bucket.s3.eu-west-1.amazonaws.com",
            None,
            ("https://s3.eu-west-1.amazonaws.com", "my-bucket", "eu-west-1"),
        ),
        ("https://my-bucket.s3.amazonaws.com/", None, ("https://s3.amazonaws.com", "my-bucket", None)),
        (
            "https://acc123.r2.cloudflarestorage.com/renders",
            None,
            ("https://acc123.r2.cloudflarestorage.com", "renders", None),
        ),
        (
            "https://s3api-eu-ro-1.runpod.io/vol-abc",
            None,
            ("https://s3api-eu-ro-1.runpod.io", "vol-abc", None),
        ),
        (
            "https://s3.us-west-002.backblazeb2.com",
            "b2-bucket",
            ("https://s3.us-west-002.backblazeb2.com", "b2-bucket", None),
        ),
        ("http://127.0.0.1:9000/minio-bucket", "explicit", ("http://127.0.0.1:9000", "explicit", None)),
        (None, "aws-only", (None, "aws-only", None)),
    ],
)
def test_bucket_and_endpoint_from_the_forms_users_set(
    endpoint: str | None, bucket: str | None, expected: tuple
) -> None:
    destination = build_destination(endpoint_url=endpoint, bucket=bucket, **KEYS)
    assert (destination.endpoint_url, destination.bucket, destination.region) == expected


def test_object_key_layout() -> None:
    destination = build_destination(endpoint_url=None, bucket="b1", prefix="/renders/", **KEYS)
    assert (
        destination.object_key("job-1", "video", "clip_00001_.mp4") == "renders/job-1/video/clip_00001_.mp4"
    )
    assert destination.object_key("job-1", "", "a.png") == "renders/job-1/a.png"
    assert "s3cr3t" not in repr(destination) and "AKIA0000" not in repr(destination)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BUCKET_ENDPOINT_URL": "https://host.example.com"}, "no bucket name: set BUCKET_NAME"),
        (
            {"BUCKET_ENDPOINT_URL": "https://h.example.com/b1"},
            "BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY must be set",
        ),
        ({"BUCKET_NAME": "b1", "BUCKET_ACCESS_KEY_ID": "a"}, "BUCKET_SECRET_ACCESS_KEY must be set"),
        (
            {
                "BUCKET_ENDPOINT_URL": "ftp://x/b",
                "BUCKET_ACCESS_KEY_ID": "a",
                "BUCKET_SECRET_ACCESS_KEY": "b",
            },
            "BUCKET_ENDPOINT_URL is not an http(s) URL",
        ),
        ({"BUCKET_ACCESS_KEY_ID": "a", "BUCKET_SECRET_ACCESS_KEY": "b"}, "no bucket is"),
        (
            {
                "BUCKET_NAME": "b1",
                "BUCKET_ACCESS_KEY_ID": "a",
                "BUCKET_SECRET_ACCESS_KEY": "b",
                "BUCKET_URL_EXPIRY_S": "999999999",
            },
            "BUCKET_URL_EXPIRY_S must be between 1 and 604800",
        ),
        (
            {
                "BUCKET_NAME": "b1",
                "BUCKET_ACCESS_KEY_ID": "a",
                "BUCKET_SECRET_ACCESS_KEY": "b",
                "BUCKET_PUBLIC_URL": "cdn.example.com",
            },
            "BUCKET_PUBLIC_URL='cdn.example.com' must start with http",
        ),
        ({"RESULT_MAX_BYTES": "12"}, "RESULT_MAX_BYTES='12' must be at least 1024"),
    ],
)
def test_bad_storage_settings_stop_the_worker(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert message in str(info.value)


def test_env_settings_and_secret_files(tmp_path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    settings = Settings.from_env(
        {
            "BUCKET_ENDPOINT_URL": "https://acc.r2.cloudflarestorage.com",
            "BUCKET_NAME": "renders",
            "BUCKET_ACCESS_KEY_ID": "AKIA1",
            "BUCKET_SECRET_ACCESS_KEY_FILE": str(secret),
            "BUCKET_REGION": "auto",
            "BUCKET_PREFIX": "comfy",
            "BUCKET_URL_EXPIRY_S": "600",
            "BUCKET_PUBLIC_URL": "https://cdn.example.com/",
            "RESULT_MAX_BYTES": "5000000",
            "BUCKET_UPLOAD_CONCURRENCY": "8",
        }
    )
    storage = settings.storage
    assert storage is not None
    assert (storage.bucket, storage.region, storage.prefix, storage.url_expiry_s) == (
        "renders",
        "auto",
        "comfy",
        600,
    )
    assert storage.secret_access_key == "from-a-file" and storage.public_url == "https://cdn.example.com"
    assert settings.result_max_bytes == 5_000_000 and settings.upload_concurrency == 8
    assert Settings.from_env({}).storage is None


def test_s3_config_overrides_per_job_and_names_its_fields() -> None:
    env = build_destination(
        endpoint_url=None,
        bucket="env-bucket",
        prefix="p",
        url_expiry_s=300,
        public_url="https://cdn.example.com",
        **KEYS,
    )
    job = parse_s3_config(
        {
            "accessId": "AKIAJOB",
            "accessSecret": "job-secret",
            "bucketName": "job-bucket",
            "endpointUrl": "https://acc.r2.cloudflarestorage.com",
        },
        defaults=env,
    )
    assert job is not None
    assert (job.bucket, job.prefix, job.url_expiry_s, job.public_url, job.source) == (
        "job-bucket",
        "p",
        300,
        None,
        "s3Config",
    )
    assert parse_s3_config(None, defaults=env) is None
    with pytest.raises(JobInputError, match="s3Config.accessSecret must be set"):
        parse_s3_config(
            {"accessId": "a", "bucketName": "b1", "endpointUrl": "https://h.example.com"}, defaults=None
        )
    with pytest.raises(JobInputError, match="s3Config must be an object"):
        parse_s3_config("x", defaults=None)
    with pytest.raises(JobInputError, match="s3Config.accessId must be a string"):
        parse_s3_config({"accessId": 5}, defaults=None)
    with pytest.raises(JobInputError, match=r"no bucket name: set s3Config.bucketName"):
        parse_s3_config(
            {"accessId": "a", "accessSecret": "b", "endpointUrl": "https://h.example.com"}, defaults=None
        )


def test_destination_error_is_a_value_error() -> None:
    with pytest.raises(DestinationError):
        build_destination(endpoint_url=None, bucket="-bad-", **KEYS)
