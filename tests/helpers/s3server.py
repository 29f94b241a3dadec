"""A real S3 server for tests: moto's standalone server, in this process, on a free local port.

    with s3_server() as endpoint:          # "http://127.0.0.1:<port>"
        make_bucket(endpoint, "team-assets")
        ... RemoteCache("s3://team-assets/prefix", options={"endpoint_url": endpoint}) ...

Plain functions (not fixtures) so any test module can wrap them in a fixture of the scope it needs.
Clients need credentials in the environment; moto accepts any (``fake_aws_env`` gives the usual ones).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never read the developer's own AWS config or ask an instance-metadata endpoint for credentials.
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}
# Variables that would override FAKE_AWS_ENV's credentials if left set.
AWS_ENV_TO_CLEAR = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL",
                    "AWS_ENDPOINT_URL_S3", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN")


@contextmanager
def s3_server() -> Iterator[str]:
    """Run moto's S3 server in a thread until the block ends; yields its endpoint URL."""
    # werkzeug logs every request to stderr; only real problems are worth showing.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def make_bucket(endpoint: str, name: str) -> None:
    """Create bucket ``name`` on the server at ``endpoint`` (credentials from the environment)."""
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    try:
        client.create_bucket(Bucket=name)
    finally:
        client.close()


def put_object(endpoint: str, bucket: str, key: str, data: bytes) -> None:
    """Write an object behind the code under test's back (e.g. to corrupt it)."""
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    try:
        client.put_object(Bucket=bucket, Key=key, Body=data)
    finally:
        client.close()


def get_object(endpoint: str, bucket: str, key: str) -> bytes:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()
    finally:
        client.close()


def closed_port() -> int:
    """A local port nothing listens on (bound then released), for a remote that is down."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def use_aws_env(monkeypatch: Any, values: Mapping[str, str] = FAKE_AWS_ENV) -> None:
    """Credentials only through the environment, as a developer or a CI runner has them: clear what
    would override them, then set ``values`` (pytest's ``monkeypatch`` undoes both)."""
    for name in AWS_ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
