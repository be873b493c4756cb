"""Shared test set-up: a sandboxed Airflow home and AWS environment, and the embedded stack fixture."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
for path in (REPO / "plugins", REPO):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

# -- sandbox: set before anything imports airflow or boto3 --------------------------------------------
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="ap-airflow-home-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__CORE__TEMPLATE_SEARCHPATH": str(REPO / "include"),
        # No real AWS: fixed fake credentials, no instance-metadata look-ups.
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "OPENBLAS_NUM_THREADS": "1",
    }
)
os.environ.pop("AWS_PROFILE", None)


def _available(service: str) -> bool:
    if service == "s3":
        return True
    return importlib.util.find_spec(f"emulators.{service.replace('-', '_')}.responses") is not None


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """
    The embedded stack (moto S3 + the project's emulators) on free loopback ports for the session.

    Sets ``AIRFLOW_CONN_AWS_DEFAULT`` / ``AIRFLOW_CONN_MPARTICLE_DEFAULT`` so operators reach it
    through the very same code path they use on AWS.
    """
    from emulators.stack import SERVICES, start_stack

    services = tuple(s for s in SERVICES if _available(s))
    stack = start_stack(
        tmp_path_factory.mktemp("stack"),
        min_job_seconds=float(os.environ.get("AP_TEST_MIN_JOB_SECONDS", "0.5")),
        services=services,
    )
    saved = {k: os.environ.get(k) for k in stack.airflow_connections()}
    os.environ.update(stack.airflow_connections())
    try:
        yield stack
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        stack.stop()


@pytest.fixture
def s3_bucket(local_stack) -> str:  # type: ignore[no-untyped-def]
    """A fresh bucket on the stack's S3, unique per test."""
    import uuid

    name = f"test-{uuid.uuid4().hex[:12]}"
    local_stack.client("s3").create_bucket(Bucket=name)
    return name
