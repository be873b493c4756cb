"""Personalize sensors: poke per state, reschedule mode, deferral to the operators' trigger."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, TaskDeferred

from personalize_logic.facts.personalize import RESOURCE_KINDS

from .conftest import SENSORS, TRIGGERS, make_context

ARN = "arn:aws:personalize:us-east-1:123456789012:x/mine"
KINDS = sorted(SENSORS)


def describe_response(kind: str, status: str, reason: str | None = None) -> dict:
    body: dict = {"status": status}
    if reason:
        body["failureReason"] = reason
    return {RESOURCE_KINDS[kind].describe_key: body}


def cases(attribute: str):
    return [pytest.param(k, s, id=f"{k}-{s}") for k in KINDS for s in getattr(SENSORS[k], attribute)]


def sensor(kind: str, **kwargs):
    return SENSORS[kind](task_id=f"wait_{kind}", arn=ARN, **kwargs)


@pytest.mark.parametrize(("kind", "state"), cases("SUCCESS_STATES"))
def test_poke_success(mock_conn, kind, state):
    getattr(mock_conn, RESOURCE_KINDS[kind].describe_method).return_value = describe_response(kind, state)
    assert sensor(kind).poke(make_context()) is True
    getattr(mock_conn, RESOURCE_KINDS[kind].describe_method).assert_called_once_with(
        **{RESOURCE_KINDS[kind].arn_param: ARN}
    )


@pytest.mark.parametrize(("kind", "state"), cases("INTERMEDIATE_STATES"))
def test_poke_intermediate(mock_conn, kind, state):
    getattr(mock_conn, RESOURCE_KINDS[kind].describe_method).return_value = describe_response(kind, state)
    assert sensor(kind).poke(make_context()) is False


@pytest.mark.parametrize(("kind", "state"), cases("FAILURE_STATES"))
def test_poke_failure_raises_with_failure_reason(mock_conn, kind, state):
    getattr(mock_conn, RESOURCE_KINDS[kind].describe_method).return_value = describe_response(
        kind, state, "S3 access denied"
    )
    with pytest.raises(AirflowFailException, match="S3 access denied"):
        sensor(kind).poke(make_context())


def test_unknown_state_keeps_waiting(mock_conn):
    mock_conn.describe_batch_segment_job.return_value = describe_response(
        "batch_segment_job", "SOMETHING NEW"
    )
    assert sensor("batch_segment_job").poke(make_context()) is False


def test_reschedule_mode_is_supported(mock_conn):
    mock_conn.describe_dataset_import_job.return_value = describe_response("dataset_import_job", "ACTIVE")
    task = sensor("dataset_import_job", mode="reschedule", poke_interval=300)
    assert task.mode == "reschedule"
    assert task.poke(make_context()) is True


@pytest.mark.parametrize("kind", KINDS)
def test_deferrable_defers_to_the_operators_trigger(mock_conn, kind):
    task = sensor(kind, deferrable=True, poke_interval=30, max_retries=10, region_name="eu-west-1")
    with pytest.raises(TaskDeferred) as deferred:
        task.execute(make_context())
    trigger = deferred.value.trigger
    assert type(trigger) is TRIGGERS[kind]
    assert deferred.value.method_name == "execute_complete"
    assert trigger.waiter_delay == 30
    assert trigger.attempts == 10
    assert trigger.region_name == "eu-west-1"
    assert trigger.serialized_fields == {"arn": ARN}
    mock_conn.assert_not_called()


def test_execute_complete_success(mock_conn):
    assert (
        sensor("solution_version").execute_complete(make_context(), {"status": "success", "arn": ARN}) == ARN
    )
    mock_conn.describe_solution_version.assert_not_called()


def test_execute_complete_failure_reports_failure_reason(mock_conn):
    mock_conn.describe_solution_version.return_value = describe_response(
        "solution_version", "CREATE FAILED", "Too few users"
    )
    with pytest.raises(AirflowFailException, match="Too few users"):
        sensor("solution_version").execute_complete(
            make_context(), {"status": "error", "message": "waiter failed", "arn": ARN}
        )


def test_execute_complete_timeout_is_retryable(mock_conn):
    mock_conn.describe_solution_version.return_value = describe_response(
        "solution_version", "CREATE IN_PROGRESS"
    )
    with pytest.raises(AirflowException, match="max attempts") as error:
        sensor("solution_version").execute_complete(
            make_context(), {"status": "error", "message": "Waiter error: max attempts reached", "arn": ARN}
        )
    assert not isinstance(error.value, AirflowFailException)


def test_execute_complete_requires_event(mock_conn):
    with pytest.raises(AirflowException, match="event is None"):
        sensor("dataset_group").execute_complete(make_context(), None)


@pytest.mark.parametrize("kind", KINDS)
def test_template_fields(kind):
    assert "arn" in SENSORS[kind].template_fields


@pytest.mark.parametrize("kind", KINDS)
def test_sensor_defers_to_the_trigger_of_its_resource(kind):
    assert SENSORS[kind].trigger_class.resource is SENSORS[kind].resource


def test_deferral_hands_every_connection_setting_to_the_trigger(mock_conn):
    config = {"retries": {"max_attempts": 3}}
    task = sensor("batch_inference_job", deferrable=True, aws_conn_id="aws_other", verify=False,
                  botocore_config=config)  # fmt: skip
    with pytest.raises(TaskDeferred) as deferred:
        task.execute(make_context())
    trigger = deferred.value.trigger
    assert (trigger.aws_conn_id, trigger.verify, trigger.botocore_config) == ("aws_other", False, config)
