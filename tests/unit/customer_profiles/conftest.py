"""Fixtures of the Customer Profiles unit tests: a real client with botocore's Stubber as
``CustomerProfilesHook.conn`` (every request is validated against the service model), and an
in-memory S3 for the activation claims and the files."""

from __future__ import annotations

from unittest import mock

import boto3
import pytest
from botocore.stub import Stubber

from hooks.customer_profiles import CustomerProfilesHook
from tests.unit.segments.fake_s3 import FakeS3


@pytest.fixture(autouse=True)
def aws_sandbox(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT", '{"conn_type": "aws", "extra": {"region_name": "us-east-1"}}'
    )


@pytest.fixture
def client():
    return boto3.client("customer-profiles", region_name="us-east-1")


@pytest.fixture
def stubber(client):
    with mock.patch.object(CustomerProfilesHook, "conn", new=client), Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def s3():
    fake = FakeS3()
    with mock.patch("operators.customer_profiles.s3_client", return_value=fake):
        yield fake
