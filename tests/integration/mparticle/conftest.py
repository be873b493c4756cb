from __future__ import annotations

import json

import boto3
import pytest

from emulators.http_server import RunningServer, free_port
from emulators.mparticle import create_app

API_KEY, API_SECRET = "it-key", "it-secret"
BUCKET = "recs-bucket"


@pytest.fixture(scope="module")
def mparticle(tmp_path_factory):
    app = create_app(
        state_dir=tmp_path_factory.mktemp("mparticle-state"),
        api_key=API_KEY,
        api_secret=API_SECRET,
        rate_limit_per_s=100_000.0,
    )
    server = RunningServer(app, name="mparticle-emulator").start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def s3_url():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def stack_env(mparticle, s3_url):
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"region_name": "us-east-1", "endpoint_url": s3_url},
            }
        ),
        "AIRFLOW_CONN_MPARTICLE_DEFAULT": json.dumps(
            {"conn_type": "http", "host": mparticle.url, "login": API_KEY, "password": API_SECRET}
        ),
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield s3


@pytest.fixture(autouse=True)
def _reset_emulator(request):
    if "mparticle" in request.fixturenames:
        request.getfixturevalue("mparticle").app.reset()
