from __future__ import annotations

import json
from unittest import mock

import boto3
import botocore.exceptions
import botocore.session
import pytest
from airflow.providers.common.compat.sdk import AirflowException
from airflow.triggers.base import TriggerEvent

from hooks.pinpoint import WAITER_FILE, PinpointHook
from personalize_logic.facts.pinpoint import FAILURE_STATES, INTERMEDIATE_STATES, SUCCESS_STATES
from sensors.pinpoint import PinpointExportJobSensor, PinpointImportJobSensor
from triggers.pinpoint import PinpointExportJobCompleteTrigger, PinpointImportJobCompleteTrigger

WAITERS = [("import_job_complete", "get_import_job", "ImportJobResponse"),
           ("export_job_complete", "get_export_job", "ExportJobResponse")]  # fmt: skip


def test_states_cover_the_model_enum_and_match_the_waiter_json():
    enum = botocore.session.get_session().get_service_model("pinpoint").shape_for("JobStatus").enum
    assert sorted(INTERMEDIATE_STATES + FAILURE_STATES + SUCCESS_STATES) == sorted(enum)
    doc = json.loads(WAITER_FILE.read_text())
    for name, _, _ in WAITERS:
        by_state: dict[str, set[str]] = {"retry": set(), "failure": set(), "success": set()}
        for acceptor in doc["waiters"][name]["acceptors"]:
            by_state[acceptor["state"]].add(acceptor["expected"])
        assert by_state == {
            "retry": set(INTERMEDIATE_STATES),
            "failure": set(FAILURE_STATES),
            "success": set(SUCCESS_STATES),
        }
    assert PinpointImportJobSensor.FAILURE_STATES == FAILURE_STATES


@pytest.fixture
def hook():
    hook = PinpointHook(aws_conn_id=None, region_name="us-east-1")
    client = boto3.client(
        "pinpoint", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with mock.patch.object(PinpointHook, "conn", new=client):
        yield hook, client


def _job(key, status):
    return {key: {"JobStatus": status, "Id": "j", "ApplicationId": "a", "CreationDate": "c", "Type": "IMPORT",
                  "Definition": {}, "Failures": ["boom"]}}  # fmt: skip


@pytest.mark.parametrize(("waiter", "method", "key"), WAITERS)
@pytest.mark.parametrize("state", SUCCESS_STATES)
def test_waiter_success(hook, waiter, method, key, state):
    hook_, client = hook
    with mock.patch.object(client, method, return_value=_job(key, state)):
        hook_.get_waiter(waiter, client=client).wait(
            ApplicationId="a", JobId="j", WaiterConfig={"Delay": 0, "MaxAttempts": 1}
        )


@pytest.mark.parametrize(("waiter", "method", "key"), WAITERS)
@pytest.mark.parametrize("state", FAILURE_STATES)
def test_waiter_failure(hook, waiter, method, key, state):
    hook_, client = hook
    with (
        mock.patch.object(client, method, return_value=_job(key, state)),
        pytest.raises(botocore.exceptions.WaiterError, match="terminal failure"),
    ):
        hook_.get_waiter(waiter, client=client).wait(
            ApplicationId="a", JobId="j", WaiterConfig={"Delay": 0, "MaxAttempts": 3}
        )


@pytest.mark.parametrize(("waiter", "method", "key"), WAITERS)
@pytest.mark.parametrize("state", INTERMEDIATE_STATES)
def test_waiter_retry_then_success(hook, waiter, method, key, state):
    hook_, client = hook
    with mock.patch.object(client, method, side_effect=[_job(key, state), _job(key, "COMPLETED")]) as get:
        hook_.get_waiter(waiter, client=client).wait(
            ApplicationId="a", JobId="j", WaiterConfig={"Delay": 0, "MaxAttempts": 3}
        )
    assert get.call_count == 2


@pytest.mark.parametrize("cls", [PinpointImportJobCompleteTrigger, PinpointExportJobCompleteTrigger])
def test_trigger_serialize_round_trip(cls):
    trigger = cls(
        application_id="app", job_id="j1", waiter_delay=3, waiter_max_attempts=4, aws_conn_id="aws_x"
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == f"triggers.pinpoint.{cls.__name__}"
    assert kwargs == {
        "application_id": "app",
        "job_id": "j1",
        "waiter_delay": 3,
        "waiter_max_attempts": 4,
        "aws_conn_id": "aws_x",
    }
    again = cls(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    assert again.waiter_args == {"ApplicationId": "app", "JobId": "j1"}


@pytest.mark.asyncio
@pytest.mark.parametrize("fail", [False, True])
async def test_trigger_run(fail):
    trigger = PinpointImportJobCompleteTrigger(
        application_id="app", job_id="j1", waiter_delay=0, waiter_max_attempts=2
    )
    with (
        mock.patch.object(PinpointHook, "get_async_conn") as get_conn,
        mock.patch.object(PinpointHook, "get_waiter") as get_waiter,
    ):
        get_conn.return_value.__aenter__.return_value = mock.MagicMock()
        wait = mock.AsyncMock()
        if fail:
            wait.side_effect = botocore.exceptions.WaiterError(
                name="import_job_complete",
                reason="terminal failure",
                last_response=_job("ImportJobResponse", "FAILED"),
            )
        get_waiter.return_value.wait = wait
        event = await trigger.run().asend(None)
    if fail:
        assert event.payload["status"] == "error"
        assert event.payload["job_id"] == "j1"
    else:
        assert event == TriggerEvent({"status": "success", "job_id": "j1"})


@pytest.mark.parametrize("sensor_cls", [PinpointImportJobSensor, PinpointExportJobSensor])
def test_sensor_states(sensor_cls):
    sensor = sensor_cls(task_id="s", application_id="app", job_id="j1")
    key = sensor_cls.response_key
    with mock.patch.object(PinpointHook, "conn") as conn:
        getter = getattr(conn, sensor_cls.get_method)
        for state in SUCCESS_STATES:
            getter.return_value = _job(key, state)
            assert sensor.poke({}) is True
        for state in INTERMEDIATE_STATES:
            getter.return_value = _job(key, state)
            assert sensor.poke({}) is False
        for state in FAILURE_STATES:
            getter.return_value = _job(key, state)
            with pytest.raises(AirflowException, match="boom"):
                sensor.poke({})
        getter.return_value = _job(key, "WEIRD")
        with pytest.raises(AirflowException, match="unexpected"):
            sensor.poke({})


def test_sensor_execute_complete():
    sensor = PinpointImportJobSensor(task_id="s", application_id="app", job_id="j1")
    assert sensor.execute_complete({}, {"status": "success", "job_id": "j1"}) == "j1"
    with mock.patch.object(PinpointHook, "conn") as conn:
        conn.get_import_job.return_value = _job("ImportJobResponse", "FAILED")
        with pytest.raises(AirflowException, match="boom"):
            sensor.execute_complete({}, {"status": "error", "message": "x", "job_id": "j1"})


def test_sensor_defers():
    sensor = PinpointImportJobSensor(task_id="s", application_id="app", job_id="j1", deferrable=True)
    with mock.patch.object(sensor, "defer") as defer:
        defer.side_effect = RuntimeError("deferred")
        with pytest.raises(RuntimeError):
            sensor.execute({})
    assert isinstance(defer.call_args.kwargs["trigger"], PinpointImportJobCompleteTrigger)
