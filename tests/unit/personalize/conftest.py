"""Fixtures for the Personalize unit tests: an isolated AWS environment, no network, no metadata DB."""

from __future__ import annotations

from typing import Any
from unittest import mock

import boto3
import pytest

import sensors.personalize
import triggers.personalize
from hooks.personalize import PersonalizeHook


def by_kind(module: Any, base: type) -> dict[str, Any]:
    """The subclasses of ``base`` defined in ``module``, by the ``kind`` of the resource they name."""
    classes = [
        cls
        for cls in vars(module).values()
        if isinstance(cls, type)
        and issubclass(cls, base)
        and cls is not base
        and cls.__module__ == module.__name__
    ]
    found = {cls.resource.kind: cls for cls in classes}
    assert len(found) == len(classes), f"two classes of {module.__name__} name the same resource"
    return found


#: The sensor of each kind of resource (parametrizes the tests; the plugins need no such table).
SENSORS = by_kind(sensors.personalize, sensors.personalize.PersonalizeBaseSensor)
#: The trigger of each kind of resource.
TRIGGERS = by_kind(triggers.personalize, triggers.personalize.PersonalizeBaseTrigger)

REGION = "us-east-1"
ACCOUNT = "123456789012"
ARN_PREFIX = f"arn:aws:personalize:{REGION}:{ACCOUNT}"
DATASET_GROUP_ARN = f"{ARN_PREFIX}:dataset-group/bingewatch"
DATASET_ARN = f"{DATASET_GROUP_ARN}/INTERACTIONS"
SOLUTION_ARN = f"{ARN_PREFIX}:solution/bingewatch-upv2"
SOLUTION_VERSION_ARN = f"{SOLUTION_ARN}/a1b2c3d4"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/personalize"


@pytest.fixture(autouse=True)
def aws_sandbox(monkeypatch):
    """Fake credentials and region, and an ``aws_default`` connection defined in the environment."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT", f'{{"conn_type": "aws", "extra": {{"region_name": "{REGION}"}}}}'
    )


@pytest.fixture
def mock_conn():
    """``PersonalizeHook.conn`` replaced by a MagicMock (the unit-test boundary)."""
    with mock.patch.object(PersonalizeHook, "conn") as conn:
        yield conn


@pytest.fixture
def real_client():
    """A real botocore Personalize client (never sends: used with Stubber or patched methods)."""
    return boto3.client("personalize", region_name=REGION)


@pytest.fixture
def stubbed(real_client):
    """A botocore ``Stubber`` on a real client installed as ``PersonalizeHook.conn``.

    Every request is validated against the real service model, so a wrong parameter name fails.
    """
    from botocore.stub import Stubber

    with Stubber(real_client) as stubber, mock.patch.object(PersonalizeHook, "conn", new=real_client):
        yield stubber
        stubber.assert_no_pending_responses()


def make_context(
    dag_id: str = "personalize_train", run_id: str = "scheduled__2025-01-01T00:00:00+00:00", **ti_attrs: Any
) -> dict[str, Any]:
    """A minimal task Context: only what the operators read (``ti``), plus an XCom sink."""
    ti = mock.MagicMock(name="ti")
    ti.dag_id = dag_id
    ti.run_id = run_id
    ti.task_id = ti_attrs.get("task_id", "task")
    ti.map_index = ti_attrs.get("map_index", -1)
    return {"ti": ti, "task_instance": ti, "run_id": run_id}
