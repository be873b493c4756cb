from __future__ import annotations

from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import AirflowException
from botocore.exceptions import WaiterError

from hooks.pinpoint import PinpointHook
from operators.audience_destinations import (
    AudienceSegment,
    CustomerProfilesSegmentDestination,
    PinpointImportedSegmentDestination,
)
from operators.pinpoint import PinpointCreateImportedSegmentOperator, ResolveSegmentEndpointsOperator
from triggers.pinpoint import PinpointImportJobCompleteTrigger

JOB = {"Id": "job-1", "JobStatus": "COMPLETED", "CreationDate": "2026-01-01T00:00:00Z",
       "Definition": {"SegmentId": "seg-1", "SegmentName": "S_20260101-000000", "S3Url": "s3://b/p/"}}  # fmt: skip


def _operator(**kwargs):
    params = dict(task_id="import", application_id="app", segment_name="S_20260101-000000", s3_url="s3://b/p/",
                  role_arn="arn:aws:iam::1:role/r", waiter_delay=0, waiter_max_attempts=2)  # fmt: skip
    params.update(kwargs)
    return PinpointCreateImportedSegmentOperator(**params)


@pytest.fixture
def conn():
    with mock.patch.object(PinpointHook, "conn") as conn:
        state = {"jobs": []}

        def create_import_job(ApplicationId, ImportJobRequest):
            state["jobs"].append(JOB)
            return {"ImportJobResponse": {**JOB, "JobStatus": "CREATED"}}

        conn.create_import_job.side_effect = create_import_job
        conn.get_import_jobs.side_effect = lambda **_: {"ImportJobsResponse": {"Item": list(state["jobs"])}}
        conn.get_import_job.return_value = {"ImportJobResponse": JOB}
        conn.get_segment.return_value = {"SegmentResponse": {"Id": "seg-1", "ImportDefinition": {"Size": 42}}}
        yield conn


@pytest.mark.parametrize(
    ("wait_for_completion", "deferrable"),
    [
        pytest.param(False, False, id="no_wait"),
        pytest.param(True, False, id="wait"),
        pytest.param(False, True, id="defer"),
    ],
)
def test_import_operator_wait_modes(conn, wait_for_completion, deferrable):
    op = _operator(wait_for_completion=wait_for_completion, deferrable=deferrable)
    with mock.patch.object(PinpointHook, "get_waiter") as get_waiter, mock.patch.object(op, "defer") as defer:
        result = op.execute({})
    request = conn.create_import_job.call_args.kwargs["ImportJobRequest"]
    assert request == {"DefineSegment": True, "Format": "CSV", "RoleArn": "arn:aws:iam::1:role/r",
                       "S3Url": "s3://b/p/", "SegmentName": "S_20260101-000000"}  # fmt: skip
    assert defer.call_count == deferrable
    assert get_waiter.call_count == wait_for_completion
    if deferrable:
        trigger = defer.call_args.kwargs["trigger"]
        assert isinstance(trigger, PinpointImportJobCompleteTrigger)
        assert trigger.waiter_args["JobId"] == "job-1"
    assert result == {"destination": "pinpoint", "segment_id": "seg-1", "segment_name": "S_20260101-000000",
                      "import_job_id": "job-1", "status": "COMPLETED", "size": 42}  # fmt: skip


def test_import_operator_is_idempotent(conn):
    with mock.patch.object(PinpointHook, "get_waiter"):
        first = _operator().execute({})
        second = _operator().execute({})
    assert conn.create_import_job.call_count == 1
    assert first == second
    with pytest.raises(AirflowException, match="already defines"):
        _operator(if_exists="fail").execute({})


def test_import_operator_failure_carries_failures(conn):
    conn.get_import_job.return_value = {
        "ImportJobResponse": {**JOB, "JobStatus": "FAILED", "Failures": ["didn't match the format"]}
    }
    with mock.patch.object(PinpointHook, "get_waiter") as get_waiter:
        get_waiter.return_value.wait.side_effect = WaiterError("import_job_complete", "terminal failure", {})
        with pytest.raises(AirflowException, match="didn't match the format"):
            _operator().execute({})


def test_import_operator_execute_complete(conn):
    op = _operator()
    assert op.execute_complete({}, {"status": "success", "job_id": "job-1"})["size"] == 42
    conn.get_import_job.return_value = {
        "ImportJobResponse": {**JOB, "JobStatus": "FAILED", "Failures": ["boom"]}
    }
    with pytest.raises(AirflowException, match="boom"):
        op.execute_complete({}, {"status": "error", "message": "failed", "job_id": "job-1"})


def test_failed_previous_job_is_not_reused(conn):
    conn.get_import_jobs.side_effect = None
    conn.get_import_jobs.return_value = {"ImportJobsResponse": {"Item": [{**JOB, "JobStatus": "FAILED"}]}}
    with mock.patch.object(PinpointHook, "get_waiter"):
        _operator().execute({})
    assert conn.create_import_job.call_count == 1


def test_template_fields():
    from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

    assert set(_operator().template_fields) == set(
        aws_template_fields("application_id", "segment_name", "s3_url", "role_arn")
    )
    resolve = ResolveSegmentEndpointsOperator(
        task_id="r", application_id="a", segment_output_s3_uri="s3://b/o/", output_s3_uri="s3://b/p"
    )
    for name in resolve.template_fields:
        assert hasattr(resolve, name)


def test_destination_prepare_rejects_non_s3():
    dest = PinpointImportedSegmentDestination(mock.Mock(), "app", "role")
    with pytest.raises(ValueError, match="S3"):
        dest.prepare(AudienceSegment(name="x", s3_url="/tmp/x.csv"))
    with pytest.raises(ValueError, match="if_exists"):
        PinpointImportedSegmentDestination(mock.Mock(), "app", "role", if_exists="maybe")


def test_customer_profiles_destination_is_a_documented_stub():
    dest = CustomerProfilesSegmentDestination(domain_name="d")
    assert "CreateUploadJob" in (CustomerProfilesSegmentDestination.__doc__ or "")
    with pytest.raises(NotImplementedError, match="CreateSegmentDefinition"):
        dest.prepare(AudienceSegment(name="x", s3_url="s3://b/x.csv"))


def test_end_of_support_warning_logged_once():
    import operators.pinpoint as module

    module._warned.clear()
    log = mock.Mock()
    module.warn_end_of_support(log)
    module.warn_end_of_support(log)
    assert log.warning.call_count == 1
    assert "2026-10-30" in log.warning.call_args.args[0]
