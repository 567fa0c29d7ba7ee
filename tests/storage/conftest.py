"""Real S3 APIs on loopback: moto's server (no auth, for URLs) and one with IAM auth (for credentials)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import boto3
import pytest

from handler.destination import Destination, build_destination
from handler.storage.s3 import make_client

from ..conftest import free_port


@pytest.fixture
def destination(moto_url: str, bucket: str) -> Destination:
    return build_destination(
        endpoint_url=moto_url,
        bucket=bucket,
        access_key_id="AKIATESTKEY0001",
        secret_access_key="test-secret-value-123",
    )


@pytest.fixture(scope="session")
def authed_moto() -> Iterator[dict[str, str]]:
    """moto_server with IAM authentication on: only a real user's key (created here) gets in."""
    port = free_port()
    # The first 3 actions (create user, key, policy) run unauthenticated; everything after is checked.
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "4"}
    moto_server = os.path.join(os.path.dirname(sys.executable), "moto_server")
    process = subprocess.Popen(
        [moto_server, "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.1)
    iam = boto3.client(
        "iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    iam.create_user(UserName="worker")
    key = iam.create_access_key(UserName="worker")["AccessKey"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="worker", PolicyName="s3", PolicyDocument=json.dumps(policy))
    good = build_destination(
        endpoint_url=url,
        bucket="authed-outputs",
        access_key_id=key["AccessKeyId"],
        secret_access_key=key["SecretAccessKey"],
    )
    make_client(good).create_bucket(Bucket="authed-outputs")
    try:
        yield {"url": url, "access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}
    finally:
        process.terminate()
        process.wait(10)
