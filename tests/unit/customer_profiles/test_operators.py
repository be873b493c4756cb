"""The Customer Profiles operators at the ``hook.conn`` boundary (botocore Stubber: every request is
checked against the ``customer-profiles`` model), with an in-memory S3 for files and claims."""

from __future__ import annotations

import datetime as dt
import hashlib
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from hooks.customer_profiles import CustomerProfilesHook
from operators.customer_profiles import (
    CustomerProfilesCreateSegmentOperator,
    CustomerProfilesUploadOperator,
    all_profiles_segment_groups,
    marker_attribute,
    membership_segment_groups,
    segment_definition_name,
    upload_fields,
)
from personalize_logic.layout import dag_run_key
from triggers.customer_profiles import CustomerProfilesUploadJobCompleteTrigger

JOB_ID = "0123456789abcdef0123456789abcdef"
CSV = b"user_id,segment\n1,S\n2,S\n"
CONTEXT = {
    "run_id": "manual__2026-01-01",
    "ti": mock.Mock(task_id="upload_segment", map_index=0, try_number=1),
}
STATE = "s3://bucket/proj/state/activation/customer_profiles"
MARKER = "ap_segment_abcd1234"


def _upload(**kwargs):
    params = dict(task_id="upload", domain_name="bw", segment_name="S_20260101-000000",
                  csv_s3_uri="s3://bucket/proj/customer_profiles/run/S/upload.csv", marker_attribute=MARKER,
                  profile_key="Attributes.personalize_user_id", data_expiry_days=365, state_uri=STATE,
                  waiter_delay=0, waiter_max_attempts=3)  # fmt: skip
    return CustomerProfilesUploadOperator(**{**params, **kwargs})


def _job(status, **extra):
    return {"JobId": JOB_ID, "Status": status, "DisplayName": "S", **extra}


@pytest.fixture
def csv(s3):
    s3.put_object(Bucket="bucket", Key="proj/customer_profiles/run/S/upload.csv", Body=CSV)
    return s3


SHA = hashlib.sha256(CSV).hexdigest()


def _expect_create(stubber, sha=SHA):
    stubber.add_response("list_upload_jobs", {"Items": []}, {"DomainName": "bw", "MaxResults": 500})
    stubber.add_response(
        "create_upload_job",
        {"JobId": JOB_ID},
        {
            "DomainName": "bw",
            "DisplayName": f"S_20260101-000000-{sha[:12]}",
            "Fields": upload_fields("Attributes.personalize_user_id", MARKER),
            "UniqueKey": "user_id",
            "DataExpiry": 365,
        },
    )


def _expect_put_and_start(stubber):
    stubber.add_response("get_upload_job", _job("CREATED"))
    stubber.add_response(
        "get_upload_job_path",
        {"Url": "https://upload.example/x", "ClientToken": "a2V5", "ValidUntil": dt.datetime(2030, 1, 1)},
        {"DomainName": "bw", "JobId": JOB_ID},
    )
    stubber.add_response("start_upload_job", {}, {"DomainName": "bw", "JobId": JOB_ID})


def test_create_put_start_wait_and_report(stubber, csv):
    _expect_create(stubber)
    _expect_put_and_start(stubber)
    stubber.add_response("get_upload_job", _job("IN_PROGRESS"))  # the waiter
    stubber.add_response("get_upload_job", _job("SUCCEEDED"))
    summary = {"CreatedRecords": 0, "UpdatedRecords": 2, "FailedRecords": 0}
    stubber.add_response("get_upload_job", _job("SUCCEEDED", ResultsSummary=summary))
    with mock.patch.object(CustomerProfilesHook, "put_upload_file") as put:
        result = _upload().execute(CONTEXT)
    url, token, _ = put.call_args.args
    assert (url, token) == ("https://upload.example/x", "a2V5")
    assert result == {"segment_name": "S_20260101-000000", "domain_name": "bw", "upload_job_id": JOB_ID,
                      "status": "SUCCEEDED", "status_reason": None, **summary}  # fmt: skip


def test_a_retry_reuses_the_recorded_job_and_uploads_nothing_again(stubber, csv):
    _expect_create(stubber)
    _expect_put_and_start(stubber)
    stubber.add_response("get_upload_job", _job("SUCCEEDED"))
    stubber.add_response("get_upload_job", _job("SUCCEEDED"))
    with mock.patch.object(CustomerProfilesHook, "put_upload_file") as put:
        _upload().execute(CONTEXT)
        # the retry: the claim names the job; it is running or done, so no create, no PUT, no start
        stubber.add_response("get_upload_job", _job("IN_PROGRESS"), {"DomainName": "bw", "JobId": JOB_ID})
        stubber.add_response("get_upload_job", _job("IN_PROGRESS"))
        stubber.add_response("get_upload_job", _job("SUCCEEDED"))
        stubber.add_response("get_upload_job", _job("SUCCEEDED"))
        assert _upload().execute(CONTEXT)["upload_job_id"] == JOB_ID
    assert put.call_count == 1


def test_a_rerun_whose_csv_changed_fails_naming_what_differs(stubber, csv):
    _expect_create(stubber)
    _expect_put_and_start(stubber)
    stubber.add_response("get_upload_job", _job("SUCCEEDED"))
    stubber.add_response("get_upload_job", _job("SUCCEEDED"))
    with mock.patch.object(CustomerProfilesHook, "put_upload_file"):
        _upload().execute(CONTEXT)
    csv.put_object(
        Bucket="bucket", Key="proj/customer_profiles/run/S/upload.csv", Body=b"user_id,segment\n1,S\n"
    )
    with pytest.raises(AirflowException, match=r"differs in: csv_bytes: 24 → 20; csv_sha256"):
        _upload().execute(CONTEXT)
    csv.put_object(Bucket="bucket", Key="proj/customer_profiles/run/S/upload.csv", Body=CSV)
    with pytest.raises(AirflowException, match="differs in: data_expiry_days: 365 → 30"):
        _upload(data_expiry_days=30).execute(CONTEXT)


def test_a_recorded_job_that_failed_is_replaced(stubber, csv):
    _expect_create(stubber)
    _expect_put_and_start(stubber)  # first attempt: creates, uploads, starts, does not wait
    stubber.add_response("get_upload_job", _job("IN_PROGRESS"))
    # the retry: the recorded job FAILED (INTERNAL_FAILURE), so a new one is created and recorded
    stubber.add_response("get_upload_job", _job("FAILED", StatusReason="INTERNAL_FAILURE"))
    stubber.add_response("create_upload_job", {"JobId": "f" * 32})
    stubber.add_response("get_upload_job", {**_job("CREATED"), "JobId": "f" * 32})
    stubber.add_response("get_upload_job_path", {"Url": "https://u", "ClientToken": "a2V5"})
    stubber.add_response("start_upload_job", {})
    stubber.add_response("get_upload_job", {**_job("IN_PROGRESS"), "JobId": "f" * 32})
    with mock.patch.object(CustomerProfilesHook, "put_upload_file") as put:
        assert _upload(wait_for_completion=False).execute(CONTEXT)["upload_job_id"] == JOB_ID
        assert _upload(wait_for_completion=False).execute(CONTEXT)["upload_job_id"] == "f" * 32
    assert put.call_count == 2
    key = f"proj/state/activation/customer_profiles/{dag_run_key(CONTEXT['run_id'])}/S_20260101-000000.json"
    record = csv.get_object(Bucket="bucket", Key=key)
    assert b'"upload_job_id": "ffff' in record["Body"].read()


@pytest.mark.parametrize("fail_on_failed_records", [False, True])
def test_partial_success_reports_the_counts(stubber, csv, fail_on_failed_records):
    _expect_create(stubber)
    _expect_put_and_start(stubber)
    summary = {"CreatedRecords": 1, "UpdatedRecords": 5, "FailedRecords": 2}
    stubber.add_response("get_upload_job", _job("PARTIALLY_SUCCEEDED", ResultsSummary=summary))
    stubber.add_response("get_upload_job", _job("PARTIALLY_SUCCEEDED", ResultsSummary=summary))
    if fail_on_failed_records:
        stubber.add_response("get_upload_job", _job("PARTIALLY_SUCCEEDED", ResultsSummary=summary))
    op = _upload(fail_on_failed_records=fail_on_failed_records)
    with mock.patch.object(CustomerProfilesHook, "put_upload_file"):
        if fail_on_failed_records:
            with pytest.raises(AirflowException, match="FailedRecords=2"):
                op.execute(CONTEXT)
        else:
            assert op.execute(CONTEXT)["FailedRecords"] == 2


def test_a_failed_job_raises_with_its_reason_and_counts(stubber, csv):
    _expect_create(stubber)
    _expect_put_and_start(stubber)
    failed = _job("FAILED", StatusReason="VALIDATION_FAILURE", ResultsSummary={"FailedRecords": 2})
    stubber.add_response("get_upload_job", failed)  # the waiter's terminal failure
    stubber.add_response("get_upload_job", failed)
    with (
        mock.patch.object(CustomerProfilesHook, "put_upload_file"),
        pytest.raises(AirflowException, match=r"VALIDATION_FAILURE.*FailedRecords=2"),
    ):
        _upload().execute(CONTEXT)


def test_deferrable_defers_to_the_upload_trigger(stubber, csv):
    _expect_create(stubber)
    _expect_put_and_start(stubber)
    stubber.add_response("get_upload_job", _job("IN_PROGRESS"))
    op = _upload(deferrable=True)
    with mock.patch.object(CustomerProfilesHook, "put_upload_file"), mock.patch.object(op, "defer") as defer:
        op.execute(CONTEXT)
    trigger = defer.call_args.kwargs["trigger"]
    assert isinstance(trigger, CustomerProfilesUploadJobCompleteTrigger)
    assert trigger.waiter_args == {"DomainName": "bw", "JobId": JOB_ID}
    stubber.add_response("get_upload_job", _job("FAILED", StatusReason="INTERNAL_FAILURE"))
    with pytest.raises(AirflowException, match="INTERNAL_FAILURE"):
        op.execute_complete({}, {"status": "error", "message": "failed", "job_id": JOB_ID})


def test_data_expiry_outside_the_service_range_is_an_error(stubber, csv):
    with pytest.raises(AirflowException, match="1-1098"):
        _upload(data_expiry_days=0).execute(CONTEXT)


# --------------------------------------------------------------------------------------------------
# the segment definition
# --------------------------------------------------------------------------------------------------

ARN = "arn:aws:profile:us-east-1:123456789012:domains/bw/segment-definitions/S_20260101-000000"


def _segment(**kwargs):
    params = dict(task_id="segment", domain_name="bw", segment_name="S_20260101-000000",
                  segment_definition_name="S_20260101-000000", marker_attribute=MARKER,
                  query='ITEMS.genres = "Action"', waiter_delay=0, waiter_max_attempts=3)  # fmt: skip
    return CustomerProfilesCreateSegmentOperator(**{**params, **kwargs})


def _expect_estimate(stubber, estimate="1,234"):
    groups = membership_segment_groups(MARKER, "S_20260101-000000")
    stubber.add_response(
        "create_segment_estimate", {"EstimateId": "e1"}, {"DomainName": "bw", "SegmentQuery": groups}
    )
    stubber.add_response("get_segment_estimate", {"Status": "RUNNING"})
    stubber.add_response("get_segment_estimate", {"Status": "SUCCEEDED", "Estimate": estimate})
    stubber.add_response("get_segment_estimate", {"Status": "SUCCEEDED", "Estimate": estimate})


def _not_found(stubber):
    stubber.add_client_error("get_segment_definition", "ResourceNotFoundException", http_status_code=404)


def test_the_segment_selects_the_marked_profiles_and_reports_its_size(stubber):
    _not_found(stubber)
    groups = membership_segment_groups(MARKER, "S_20260101-000000")
    stubber.add_response(
        "create_segment_definition",
        {"SegmentDefinitionName": "S_20260101-000000", "SegmentDefinitionArn": ARN},
        {"DomainName": "bw", "SegmentDefinitionName": "S_20260101-000000", "DisplayName": "S_20260101-000000",
         "SegmentGroups": groups, "Description": 'Amazon Personalize batch segment: ITEMS.genres = "Action"'},
    )  # fmt: skip
    _expect_estimate(stubber)
    assert _segment().execute({}) == {"segment_name": "S_20260101-000000", "domain_name": "bw",
                                      "segment_definition_name": "S_20260101-000000",
                                      "segment_definition_arn": ARN, "size": 1234}  # fmt: skip


def test_a_retry_reuses_the_same_definition(stubber):
    groups = membership_segment_groups(MARKER, "S_20260101-000000")
    # AWS may answer defaults the request left out (SourceType here): still the same selection
    groups["Groups"][0]["SourceType"] = "ALL"
    stubber.add_response("get_segment_definition", {"SegmentDefinitionArn": ARN, "SegmentGroups": groups})
    _expect_estimate(stubber, "7")
    assert _segment().execute({})["size"] == 7


def test_a_definition_of_that_name_selecting_other_profiles_is_an_error(stubber):
    other = membership_segment_groups(MARKER, "another-run")
    stubber.add_response("get_segment_definition", {"SegmentDefinitionArn": ARN, "SegmentGroups": other})
    with pytest.raises(AirflowException, match="selects other profiles"):
        _segment().execute({})


def test_a_concurrent_attempt_that_created_it_first_is_joined(stubber):
    groups = membership_segment_groups(MARKER, "S_20260101-000000")
    _not_found(stubber)
    stubber.add_client_error("create_segment_definition", "BadRequestException", "already exists")
    stubber.add_response("get_segment_definition", {"SegmentDefinitionArn": ARN, "SegmentGroups": groups})
    assert _segment(wait_for_completion=False).execute({})["segment_definition_arn"] == ARN


def test_a_failed_estimate_raises_with_its_message(stubber):
    groups = membership_segment_groups(MARKER, "S_20260101-000000")
    stubber.add_response("get_segment_definition", {"SegmentDefinitionArn": ARN, "SegmentGroups": groups})
    stubber.add_response("create_segment_estimate", {"EstimateId": "e1"})
    stubber.add_response("get_segment_estimate", {"Status": "FAILED", "Message": "too big"})
    stubber.add_response("get_segment_estimate", {"Status": "FAILED", "Message": "too big"})
    with pytest.raises(AirflowException, match="too big"):
        _segment().execute({})


def test_request_builders():
    assert segment_definition_name("x" * 80) == segment_definition_name("x" * 80)
    assert len(segment_definition_name("x" * 80)) == 64
    assert segment_definition_name("short") == "short"
    assert marker_attribute("ap_segment", "q") != marker_attribute("ap_segment", "q2")
    every = all_profiles_segment_groups()
    assert every["Include"] == "ANY"
    assert [g["Dimensions"][0]["ProfileAttributes"]["ProfileType"]["Values"] for g in every["Groups"]] == [
        ["PROFILE"],
        ["ACCOUNT_PROFILE"],
    ]
