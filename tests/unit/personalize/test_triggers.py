"""Personalize triggers: serialization round-trip and run() events (async waiter on a real aiobotocore client)."""

from __future__ import annotations

import importlib
from unittest import mock

import pytest
from aiobotocore.session import AioSession

from hooks.personalize import PersonalizeHook
from personalize_logic.facts.personalize import RESOURCE_KINDS
from triggers.personalize import PersonalizeBaseTrigger

from .conftest import TRIGGERS

ARN = "arn:aws:personalize:us-east-1:123456789012:batch-inference-job/mine"
KINDS = sorted(TRIGGERS)


def build(kind: str, **kwargs) -> PersonalizeBaseTrigger:
    params = {
        "arn": ARN,
        "waiter_delay": 0,
        "waiter_max_attempts": 3,
        "aws_conn_id": "aws_default",
        "region_name": "us-east-1",
        "botocore_config": {"retries": {"max_attempts": 2}},
    }
    params.update(kwargs)
    return TRIGGERS[kind](**params)


def test_every_kind_has_a_trigger():
    assert set(TRIGGERS) == set(RESOURCE_KINDS)
    for kind, cls in TRIGGERS.items():
        assert cls.kind == kind
        assert cls.aws_hook_class is PersonalizeHook


@pytest.mark.parametrize("kind", KINDS)
def test_serialize_round_trip(kind):
    trigger = build(kind)
    classpath, kwargs = trigger.serialize()
    assert classpath == f"triggers.personalize.{type(trigger).__name__}"
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["arn"] == ARN
    spec = RESOURCE_KINDS[kind]
    assert rebuilt.waiter_name == spec.waiter_name
    assert rebuilt.waiter_args == {spec.arn_param: ARN}
    assert rebuilt.status_queries == [spec.status_query, spec.failure_reason_query]
    assert rebuilt.return_key == "arn"


@pytest.mark.parametrize("kind", KINDS)
def test_hook_built_from_serialized_settings(kind):
    hook = build(kind).hook()
    assert isinstance(hook, PersonalizeHook)
    assert hook.aws_conn_id == "aws_default"
    assert hook.region_name == "us-east-1"


def _describe_response(kind: str, status: str, reason: str | None = None) -> dict:
    spec = RESOURCE_KINDS[kind]
    body = {"status": status, spec.arn_param: ARN, "failureReason": reason} if reason else {"status": status}
    return {spec.describe_key: body}


async def _run(kind: str, responses: list[dict]):
    session = AioSession()
    async with session.create_client(
        "personalize", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    ) as client:
        describe = mock.AsyncMock(side_effect=responses)
        setattr(client, RESOURCE_KINDS[kind].describe_method, describe)

        class _ClientContext:
            async def __aenter__(self):
                return client

            async def __aexit__(self, *exc):
                return False

        with mock.patch.object(
            PersonalizeHook, "get_async_conn", mock.AsyncMock(return_value=_ClientContext())
        ):
            generator = build(kind).run()
            event = await generator.asend(None)
        return event, describe


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
async def test_run_success(kind):
    pending = "IN PROGRESS" if kind.startswith("batch_") else "CREATE IN_PROGRESS"
    event, describe = await _run(
        kind, [_describe_response(kind, pending), _describe_response(kind, "ACTIVE")]
    )
    assert event.payload == {"status": "success", "arn": ARN}
    assert describe.await_count == 2
    describe.assert_awaited_with(**{RESOURCE_KINDS[kind].arn_param: ARN})


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
async def test_run_failure_carries_failure_reason(kind):
    event, _ = await _run(kind, [_describe_response(kind, "CREATE FAILED", "Not enough interactions")])
    assert event.payload["status"] == "error"
    assert event.payload["arn"] == ARN
    assert "CREATE FAILED" in event.payload["message"]
    assert "Not enough interactions" in event.payload["message"]


@pytest.mark.asyncio
async def test_run_max_attempts_is_an_error_event():
    kind = "dataset_import_job"
    event, describe = await _run(kind, [_describe_response(kind, "CREATE PENDING")] * 3)
    assert event.payload["status"] == "error"
    assert "max attempts" in event.payload["message"]
    assert describe.await_count == 3
