"""Real S3 APIs on loopback: moto's server (no auth, for URLs) and one with IAM auth (for credentials)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from handler.storage.destination import Destination, build_destination
from handler.storage.s3 import make_client


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_admin(url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="admin",
        aws_secret_access_key="admin-secret",
    )


@pytest.fixture
def bucket(moto_url: str) -> str:
    name = f"outputs-{uuid.uuid4().hex[:10]}"
    s3_admin(moto_url).create_bucket(Bucket=name)
    return name


@pytest.fixture
def destination(moto_url: str, bucket: str) -> Destination:
    return build_destination(
        endpoint_url=moto_url,
        bucket=bucket,
        access_key_id="AKIATESTKEY0001",
        secret_access_key="test-secret-value-123",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
