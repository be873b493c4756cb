from __future__ import annotations

import boto3
import pytest
from moto.server import ThreadedMotoServer

from emulators.http_server import RunningServer, free_port
from emulators.pinpoint.responses import create_app


def _client(service: str, url: str):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="session")
def moto_url():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


class Stack:
    def __init__(self, state_dir, moto_url, min_job_seconds=0.7):
        self.state_dir = state_dir
        self.moto_url = moto_url
        self.min_job_seconds = min_job_seconds
        self.server = None
        self.start()

    def start(self):
        app = create_app(
            state_dir=self.state_dir, s3_endpoint_url=self.moto_url, min_job_seconds=self.min_job_seconds
        )
        self.server = RunningServer(app, name="pinpoint").start()
        self.url = self.server.url
        self.pinpoint = _client("pinpoint", self.url)

    def restart(self):
        self.server.shutdown()
        self.start()

    def stop(self):
        self.server.shutdown()


@pytest.fixture
def stack(tmp_path, moto_url):
    s = Stack(tmp_path / "state", moto_url)
    s.s3 = _client("s3", moto_url)
    yield s
    s.stop()


@pytest.fixture
def bucket(stack, request):
    import uuid

    name = f"pp-{uuid.uuid4().hex[:16]}"
    stack.s3.create_bucket(Bucket=name)
    return name
