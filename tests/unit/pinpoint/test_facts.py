"""personalize_logic.facts.pinpoint: the JobStatus sets, describe_failure, and the hook's use of them."""

from __future__ import annotations

from unittest import mock

import botocore.session
import pytest

from hooks.pinpoint import PinpointHook
from personalize_logic.facts.pinpoint import (
    FAILURE_STATES,
    INTERMEDIATE_STATES,
    SUCCESS_STATES,
    describe_failure,
)
from sensors.pinpoint import PinpointExportJobSensor, PinpointImportJobSensor

MODEL = botocore.session.get_session().get_service_model("pinpoint")


def test_the_sets_split_the_job_status_enum():
    sets = (INTERMEDIATE_STATES, FAILURE_STATES, SUCCESS_STATES)
    everything = [state for states in sets for state in states]
    assert len(everything) == len(set(everything))
    for response in ("ImportJobResponse", "ExportJobResponse"):
        assert sorted(everything) == sorted(MODEL.shape_for(response).members["JobStatus"].enum)


@pytest.mark.parametrize("sensor", [PinpointImportJobSensor, PinpointExportJobSensor])
def test_sensors_hold_the_facts(sensor):
    assert sensor.INTERMEDIATE_STATES is INTERMEDIATE_STATES
    assert sensor.FAILURE_STATES is FAILURE_STATES
    assert sensor.SUCCESS_STATES is SUCCESS_STATES


def test_describe_failure_reports_the_documented_members():
    job = {"JobStatus": "FAILED", "Failures": ["row 3: bad Id"], "FailedPieces": 1, "TotalPieces": 4}
    assert describe_failure(job) == (
        "status 'FAILED', Failures=['row 3: bad Id'], FailedPieces=1, TotalPieces=4"
    )
    assert describe_failure({}) == "status None, Failures=[], FailedPieces=None, TotalPieces=None"
    members = MODEL.shape_for("ImportJobResponse").members
    assert {"JobStatus", "Failures", "FailedPieces", "TotalPieces"} <= set(members)


def _job(job_id: str, status: str, created: str, **definition: str) -> dict:
    return {"Id": job_id, "JobStatus": status, "CreationDate": created, "Definition": definition}


@pytest.mark.parametrize("failed", FAILURE_STATES)
def test_hook_finders_skip_jobs_in_a_failure_state(failed):
    imports = [
        _job("old", "COMPLETED", "2026-01-01", SegmentName="S"),
        _job("new-failed", failed, "2026-01-02", SegmentName="S"),
        _job("other", "COMPLETED", "2026-01-03", SegmentName="T"),
    ]
    exports = [
        _job("old", "PROCESSING", "2026-01-01", S3UrlPrefix="s3://b/x/"),
        _job("new-failed", failed, "2026-01-02", S3UrlPrefix="s3://b/x/"),
    ]
    with mock.patch.object(PinpointHook, "conn") as conn:
        conn.get_import_jobs.return_value = {"ImportJobsResponse": {"Item": imports}}
        conn.get_export_jobs.return_value = {"ExportJobsResponse": {"Item": exports}}
        hook = PinpointHook(aws_conn_id=None)
        assert hook.find_import_job("app", "S")["Id"] == "old"
        assert hook.find_export_job("app", "s3://b/x/")["Id"] == "old"
