from __future__ import annotations

from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import AirflowException
from botocore.exceptions import WaiterError

from hooks.pinpoint import PinpointHook
from operators.pinpoint import PinpointCreateImportedSegmentOperator, ResolveSegmentEndpointsOperator
from tests.unit.segments.fake_s3 import FakeS3
from triggers.pinpoint import PinpointImportJobCompleteTrigger

JOB = {"Id": "job-1", "JobStatus": "COMPLETED", "CreationDate": "2026-01-01T00:00:00Z",
       "Definition": {"SegmentId": "seg-1", "SegmentName": "S_20260101-000000", "S3Url": "s3://b/p/"}}  # fmt: skip
CONTEXT = {"run_id": "manual__2026-01-01", "ti": mock.Mock(task_id="import", map_index=0, try_number=1)}
STATE = "s3://bucket/proj/state/activation/pinpoint"


def _operator(**kwargs):
    params = dict(task_id="import", application_id="app", segment_name="S_20260101-000000", s3_url="s3://b/p/",
                  role_arn="arn:aws:iam::1:role/r", state_uri=STATE, waiter_delay=0, waiter_max_attempts=2)  # fmt: skip
    params.update(kwargs)
    return PinpointCreateImportedSegmentOperator(**params)


@pytest.fixture
def s3():
    fake = FakeS3()
    fake.put_object(Bucket="b", Key="p/S-00000.csv", Body=b"Id\ne1\ne2\n")
    with mock.patch("operators.pinpoint.s3_client", return_value=fake):
        yield fake


@pytest.fixture
def conn(s3):
    with mock.patch.object(PinpointHook, "conn") as conn:
        conn.create_import_job.side_effect = [
            {"ImportJobResponse": {**JOB, "Id": f"job-{n}", "JobStatus": "CREATED"}} for n in range(1, 5)
        ]
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
        result = op.execute(CONTEXT)
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


def test_a_retry_reuses_the_import_job_it_recorded(conn):
    with mock.patch.object(PinpointHook, "get_waiter"):
        first = _operator().execute(CONTEXT)
        second = _operator().execute(CONTEXT)
    assert conn.create_import_job.call_count == 1
    assert first == second


def test_a_rerun_with_changed_files_fails_naming_the_difference(conn, s3):
    with mock.patch.object(PinpointHook, "get_waiter"):
        _operator().execute(CONTEXT)
        s3.put_object(Bucket="b", Key="p/S-00000.csv", Body=b"Id\ne1\n")
        with pytest.raises(AirflowException, match=r"differs in: files: .*S-00000.csv"):
            _operator().execute(CONTEXT)
        s3.put_object(Bucket="b", Key="p/S-00000.csv", Body=b"Id\ne1\ne2\n")
        with pytest.raises(AirflowException, match="differs in: RoleArn"):
            _operator(role_arn="arn:aws:iam::1:role/other").execute(CONTEXT)
    assert conn.create_import_job.call_count == 1


def test_another_dag_run_creates_its_own_job(conn):
    with mock.patch.object(PinpointHook, "get_waiter"):
        _operator().execute(CONTEXT)
        _operator().execute({**CONTEXT, "run_id": "manual__2026-01-02"})
    assert conn.create_import_job.call_count == 2


def test_a_failed_recorded_job_is_replaced(conn):
    with mock.patch.object(PinpointHook, "get_waiter"):
        _operator(wait_for_completion=False).execute(CONTEXT)
        conn.get_import_job.return_value = {"ImportJobResponse": {**JOB, "JobStatus": "FAILED"}}
        _operator(wait_for_completion=False).execute(CONTEXT)
    assert conn.create_import_job.call_count == 2


def test_import_operator_failure_carries_failures(conn):
    conn.get_import_job.return_value = {
        "ImportJobResponse": {**JOB, "JobStatus": "FAILED", "Failures": ["didn't match the format"]}
    }
    with mock.patch.object(PinpointHook, "get_waiter") as get_waiter:
        get_waiter.return_value.wait.side_effect = WaiterError("import_job_complete", "terminal failure", {})
        with pytest.raises(AirflowException, match="didn't match the format"):
            _operator().execute(CONTEXT)


def test_import_operator_execute_complete(conn):
    op = _operator()
    assert op.execute_complete({}, {"status": "success", "job_id": "job-1"})["size"] == 42
    conn.get_import_job.return_value = {
        "ImportJobResponse": {**JOB, "JobStatus": "FAILED", "Failures": ["boom"]}
    }
    with pytest.raises(AirflowException, match="boom"):
        op.execute_complete({}, {"status": "error", "message": "failed", "job_id": "job-1"})


def test_import_operator_rejects_a_non_s3_location(conn):
    with pytest.raises(AirflowException, match="S3"):
        _operator(s3_url="/tmp/x.csv").execute(CONTEXT)


def test_template_fields():
    from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

    assert set(_operator().template_fields) == set(
        aws_template_fields("application_id", "segment_name", "s3_url", "role_arn", "state_uri")
    )
    resolve = ResolveSegmentEndpointsOperator(
        task_id="r", application_id="a", segment_output_s3_uris=["s3://b/o/"], output_s3_uri="s3://b/p"
    )
    for name in resolve.template_fields:
        assert hasattr(resolve, name)


def test_every_pinpoint_task_logs_the_end_of_support_notice(conn):
    log = mock.Mock()
    op = _operator(wait_for_completion=False)
    with mock.patch.object(type(op), "log", log):
        op.execute(CONTEXT)
        op.execute(CONTEXT)
    notices = [c for c in log.warning.call_args_list if "2026-10-30" in str(c.args[0])]
    assert len(notices) == 2
