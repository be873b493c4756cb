"""The Customer Profiles operators through boto3 against the embedded stack: prepare → upload →
segment, the users-without-profile policy, failures, retries, reruns and concurrent attempts."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from emulators.customer_profiles.seed import seed_profiles_from_users_csv
from operators.customer_profiles import (
    CustomerProfilesCreateSegmentOperator,
    CustomerProfilesPrepareUploadsOperator,
    CustomerProfilesUploadOperator,
)

pytestmark = pytest.mark.integration
USERS_CSV = Path(__file__).resolve().parents[3] / "include" / "data" / "bingewatch" / "users.csv"
KEY = "Attributes.personalize_user_id"
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ROLE = "arn:aws:iam::123456789012:role/profiles-snapshot"
CONTEXT = {"run_id": "manual__2026-01-02", "ti": None}


@pytest.fixture
def domain(local_stack) -> str:
    name = f"d-{uuid.uuid4().hex[:10]}"
    seed_profiles_from_users_csv(local_stack.client("customer-profiles"), name, USERS_CSV, profile_key=KEY)
    return name


@pytest.fixture
def output(local_stack, s3_bucket) -> str:
    lines = [
        {"input": {"itemAttributes": 'ITEMS.genres = "Action"'}, "output": {"usersList": ["1", "2", "3", "1", "ghost"]}},
        {"input": {"itemAttributes": 'ITEMS.genres = "Drama"'}, "output": {"usersList": ["3", "4"]}},
        {"input": {"itemId": "9"}, "output": None, "error": "boom"},
    ]  # fmt: skip
    body = "".join(json.dumps(line) + "\n" for line in lines)
    local_stack.client("s3").put_object(
        Bucket=s3_bucket, Key="batch/segments/job-1/q.json.out", Body=body.encode()
    )
    return f"s3://{s3_bucket}/batch/segments/job-1/"


def _prepare(domain, bucket, output, **kwargs):
    params = dict(task_id="prepare_uploads", domain_name=domain, profile_key=KEY, snapshot_role_arn=ROLE,
                  segment_output_s3_uris=[output], output_s3_uri=f"s3://{bucket}/p/customer_profiles/run1",
                  segment_timestamp=WHEN, waiter_delay=1, waiter_max_attempts=30)  # fmt: skip
    return CustomerProfilesPrepareUploadsOperator(**{**params, **kwargs}).execute(CONTEXT)


def _upload(domain, bucket, segment, **kwargs):
    params = dict(task_id="upload_segment", domain_name=domain, segment_name=segment["segment_name"],
                  csv_s3_uri=segment["csv_s3_uri"], marker_attribute=segment["marker_attribute"], profile_key=KEY,
                  data_expiry_days=365, state_uri=f"s3://{bucket}/p/state/activation/customer_profiles",
                  waiter_delay=1, waiter_max_attempts=30)  # fmt: skip
    return CustomerProfilesUploadOperator(**{**params, **kwargs})


def _segment(domain, segment):
    return CustomerProfilesCreateSegmentOperator(
        task_id="create_segment", domain_name=domain, segment_name=segment["segment_name"],
        segment_definition_name=segment["segment_definition_name"], marker_attribute=segment["marker_attribute"],
        query=segment["query"], waiter_delay=1, waiter_max_attempts=30,
    )  # fmt: skip


def test_segments_reach_customer_profiles_with_their_size(local_stack, s3_bucket, domain, output):
    prepared = _prepare(domain, s3_bucket, output)
    action, drama = prepared
    assert action["segment_name"] == "ITEMSgenresAction_20260102-030405"
    # users matched by the profile key; "ghost" has no profile: counted, left out
    assert (action["users"], action["rows"], action["users_without_profile"]) == (4, 3, 1)
    assert (drama["users"], drama["rows"], drama["users_without_profile"]) == (2, 2, 0)
    s3 = local_stack.client("s3")
    errors = s3.get_object(Bucket=s3_bucket, Key="p/customer_profiles/run1/_errors.jsonl")["Body"].read()
    assert b"boom" in errors
    results = []
    for segment in prepared:
        upload = _upload(domain, s3_bucket, segment).execute(CONTEXT)
        assert (upload["status"], upload["CreatedRecords"], upload["FailedRecords"]) == ("SUCCEEDED", 0, 0)
        results.append(_segment(domain, segment).execute(CONTEXT))
    assert [r["size"] for r in results] == [3, 2]
    assert results[0]["segment_definition_arn"].endswith(
        f"domains/{domain}/segment-definitions/{action['segment_definition_name']}"
    )
    cp = local_stack.client("customer-profiles")
    assert len(cp.list_upload_jobs(DomainName=domain)["Items"]) == 2
    # the ghost got no profile: the domain still holds the 100 seeded ones
    snapshot = local_stack.client("s3").list_objects_v2(
        Bucket=s3_bucket, Prefix="p/customer_profiles/run1/_profile_snapshot/"
    )
    assert len(snapshot["Contents"]) == 1
    again = _prepare(domain, s3_bucket, output, output_s3_uri=f"s3://{s3_bucket}/p/customer_profiles/run2")
    assert again[0]["users_without_profile"] == 1


def test_create_missing_profiles_uploads_every_user(local_stack, s3_bucket, domain, output):
    action = _prepare(domain, s3_bucket, output, create_missing_profiles=True, snapshot_role_arn=None)[0]
    assert (action["rows"], action["users_without_profile"]) == (4, None)
    upload = _upload(domain, s3_bucket, action).execute(CONTEXT)
    assert (upload["UpdatedRecords"], upload["CreatedRecords"]) == (3, 1)
    assert _segment(domain, action).execute(CONTEXT)["size"] == 4


def test_a_retry_reuses_the_upload_job_and_the_segment(local_stack, s3_bucket, domain, output):
    action = _prepare(domain, s3_bucket, output)[0]
    first = _upload(domain, s3_bucket, action).execute(CONTEXT)
    assert _upload(domain, s3_bucket, action).execute(CONTEXT) == first
    segment = _segment(domain, action).execute(CONTEXT)
    assert _segment(domain, action).execute(CONTEXT) == segment
    cp = local_stack.client("customer-profiles")
    assert len(cp.list_upload_jobs(DomainName=domain)["Items"]) == 1
    assert [
        s["SegmentDefinitionName"] for s in cp.list_segment_definitions(DomainName=domain)["Items"]
    ].count(action["segment_definition_name"]) == 1


def test_a_rerun_whose_input_changed_fails_naming_what_differs(local_stack, s3_bucket, domain, output):
    action = _prepare(domain, s3_bucket, output)[0]
    _upload(domain, s3_bucket, action).execute(CONTEXT)
    line = {"input": {"itemAttributes": 'ITEMS.genres = "Action"'}, "output": {"usersList": ["1"]}}
    local_stack.client("s3").put_object(
        Bucket=s3_bucket, Key="batch/segments/job-1/q.json.out", Body=(json.dumps(line) + "\n").encode()
    )
    changed = _prepare(domain, s3_bucket, output)[0]
    with pytest.raises(AirflowException, match=r"differs in: csv_bytes: .*csv_sha256"):
        _upload(domain, s3_bucket, changed).execute(CONTEXT)
    assert len(local_stack.client("customer-profiles").list_upload_jobs(DomainName=domain)["Items"]) == 1


def test_two_concurrent_attempts_create_one_upload_job_and_one_segment(
    local_stack, s3_bucket, domain, output
):
    action = _prepare(domain, s3_bucket, output)[0]
    results: list[dict] = []
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            _upload(domain, s3_bucket, action).execute(CONTEXT)
            results.append(_segment(domain, action).execute(CONTEXT))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({r["segment_definition_arn"] for r in results}) == 1
    cp = local_stack.client("customer-profiles")
    assert len(cp.list_upload_jobs(DomainName=domain)["Items"]) == 1
    names = [s["SegmentDefinitionName"] for s in cp.list_segment_definitions(DomainName=domain)["Items"]]
    assert names.count(action["segment_definition_name"]) == 1


def test_an_upload_customer_profiles_rejects_fails_with_its_reason(local_stack, s3_bucket, domain, output):
    action = _prepare(domain, s3_bucket, output)[0]
    bucket_key = action["csv_s3_uri"][len(f"s3://{s3_bucket}/") :]
    local_stack.client("s3").put_object(Bucket=s3_bucket, Key=bucket_key, Body=b"user_id,segment\n,x\n")
    with pytest.raises(
        AirflowException, match=r"status 'FAILED', StatusReason='VALIDATION_FAILURE'.*FailedRecords=1"
    ):
        _upload(domain, s3_bucket, action).execute(CONTEXT)


def test_a_domain_that_does_not_exist_fails_the_prepare_step(s3_bucket, output):
    with pytest.raises(Exception, match="ResourceNotFoundException"):
        _prepare("no-such-domain", s3_bucket, output)
