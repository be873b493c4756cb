"""The Customer Profiles emulator through boto3 (and the pre-signed PUT through requests): the
behaviour the operators rely on, and what it refuses."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

from emulators.customer_profiles.seed import seed_profiles_from_users_csv
from operators.customer_profiles import all_profiles_segment_groups, membership_segment_groups, upload_fields
from personalize_logic.facts.customer_profiles import sse_c_headers

pytestmark = pytest.mark.integration
USERS_CSV = Path(__file__).resolve().parents[3] / "include" / "data" / "bingewatch" / "users.csv"
KEY = "Attributes.personalize_user_id"


@pytest.fixture
def cp(local_stack):
    return local_stack.client("customer-profiles")


@pytest.fixture
def domain(cp) -> str:
    name = f"d-{uuid.uuid4().hex[:10]}"
    seed_profiles_from_users_csv(cp, name, USERS_CSV, profile_key=KEY)
    return name


def _job(cp, domain, marker="ap_segment_x", expiry=30) -> str:
    return cp.create_upload_job(
        DomainName=domain,
        DisplayName="t",
        Fields=upload_fields(KEY, marker),
        UniqueKey="user_id",
        DataExpiry=expiry,
    )["JobId"]


def _wait(cp, domain, job_id) -> tuple[list[str], dict]:
    seen: list[str] = []
    deadline = time.time() + 20
    while time.time() < deadline:
        job = cp.get_upload_job(DomainName=domain, JobId=job_id)
        if not seen or seen[-1] != job["Status"]:
            seen.append(job["Status"])
        if job["Status"] not in ("CREATED", "IN_PROGRESS"):
            return seen, job
        time.sleep(0.1)
    raise AssertionError(f"job did not finish: {seen}")


def _upload(cp, domain, job_id, body: bytes) -> requests.Response:
    path = cp.get_upload_job_path(DomainName=domain, JobId=job_id)
    return requests.put(path["Url"], data=body, headers=sse_c_headers(path["ClientToken"]), timeout=10)


def test_the_upload_url_enforces_the_sse_c_headers(cp, domain):
    job_id = _job(cp, domain)
    path = cp.get_upload_job_path(DomainName=domain, JobId=job_id)
    headers = sse_c_headers(path["ClientToken"])
    no_headers = requests.put(path["Url"], data=b"user_id,segment\n1,S\n", timeout=10)
    assert (no_headers.status_code, "<Code>InvalidRequest</Code>" in no_headers.text) == (400, True)
    bad_md5 = {
        **headers,
        "x-amz-server-side-encryption-customer-key-MD5": base64.b64encode(b"0" * 16).decode(),
    }
    assert "did not match" in requests.put(path["Url"], data=b"x", headers=bad_md5, timeout=10).text
    other_key = sse_c_headers(base64.b64encode(b"k" * 32).decode())
    assert requests.put(path["Url"], data=b"x", headers=other_key, timeout=10).status_code == 403
    aes = {**headers, "x-amz-server-side-encryption-customer-algorithm": "aws:kms"}
    assert requests.put(path["Url"], data=b"x", headers=aes, timeout=10).status_code == 400
    tampered = path["Url"].replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert requests.put(tampered, data=b"x", headers=headers, timeout=10).status_code == 403
    # nothing was accepted: the job cannot start
    with pytest.raises(ClientError, match="has no file"):
        cp.start_upload_job(DomainName=domain, JobId=job_id)
    assert (
        requests.put(path["Url"], data=b"user_id,segment\n1,S\n", headers=headers, timeout=10).status_code
        == 200
    )


def test_an_upload_updates_matching_profiles_creates_the_others_and_reports_counts(cp, domain):
    job_id = _job(cp, domain)
    assert cp.get_upload_job(DomainName=domain, JobId=job_id)["Status"] == "CREATED"
    assert _upload(cp, domain, job_id, b"user_id,segment\n1,S\n2,S\nnew-user,S\n,S\n").status_code == 200
    cp.start_upload_job(DomainName=domain, JobId=job_id)
    seen, job = _wait(cp, domain, job_id)
    assert seen == ["IN_PROGRESS", "PARTIALLY_SUCCEEDED"]
    assert job["ResultsSummary"] == {"UpdatedRecords": 2, "CreatedRecords": 1, "FailedRecords": 1}
    assert job["DataExpiry"] == 30
    listed = cp.list_upload_jobs(DomainName=domain)["Items"]
    assert [(j["JobId"], j["Status"]) for j in listed] == [(job_id, "PARTIALLY_SUCCEEDED")]


@pytest.mark.parametrize(
    "body",
    [
        b"user_id,segment\n,S\n",
        b"user.id,segment\n1,S\n",
        "user_id,segment\n1,S\n".encode("utf-16"),
        b"other\n1\n",
    ],
    ids=["every-row-fails", "dotted-header", "not-utf8", "column-missing"],
)
def test_a_file_the_job_cannot_use_fails_with_validation_failure(cp, domain, body):
    job_id = _job(cp, domain)
    _upload(cp, domain, job_id, body)
    cp.start_upload_job(DomainName=domain, JobId=job_id)
    _, job = _wait(cp, domain, job_id)
    assert (job["Status"], job["StatusReason"]) == ("FAILED", "VALIDATION_FAILURE")


def test_requests_are_validated_against_the_model(cp, domain):
    with pytest.raises(ClientError, match="DataExpiry"):
        _job(cp, domain, expiry=2000)
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        cp.get_upload_job(DomainName=domain, JobId="0" * 32)


def test_a_stopped_job_stays_stopped(cp, domain):
    job_id = _job(cp, domain)
    cp.stop_upload_job(DomainName=domain, JobId=job_id)
    assert cp.get_upload_job(DomainName=domain, JobId=job_id)["Status"] == "STOPPED"


def test_segment_definitions_are_unique_evaluated_and_estimated(cp, domain):
    job_id = _job(cp, domain, marker="ap_segment_q1")
    _upload(cp, domain, job_id, b"user_id,segment\n1,S1\n2,S1\n3,S1\n")
    cp.start_upload_job(DomainName=domain, JobId=job_id)
    _wait(cp, domain, job_id)
    groups = membership_segment_groups("ap_segment_q1", "S1")
    arn = cp.create_segment_definition(
        DomainName=domain, SegmentDefinitionName="S1", DisplayName="S1", SegmentGroups=groups
    )["SegmentDefinitionArn"]
    assert arn.endswith(f"domains/{domain}/segment-definitions/S1")
    with pytest.raises(ClientError, match="already exists"):
        cp.create_segment_definition(
            DomainName=domain, SegmentDefinitionName="S1", DisplayName="S1", SegmentGroups=groups
        )
    assert cp.get_segment_definition(DomainName=domain, SegmentDefinitionName="S1")["SegmentGroups"] == groups

    def estimate(query):
        estimate_id = cp.create_segment_estimate(DomainName=domain, SegmentQuery=query)["EstimateId"]
        for _ in range(50):
            answer = cp.get_segment_estimate(DomainName=domain, EstimateId=estimate_id)
            if answer["Status"] != "RUNNING":
                return answer["Estimate"]
            time.sleep(0.1)
        raise AssertionError("estimate did not finish")

    assert estimate(groups) == "3"
    none = {**groups, "Include": "NONE"}
    assert estimate(none) == "97"  # every other seeded profile
    assert estimate(all_profiles_segment_groups()) == "100"


@pytest.mark.parametrize(
    "dimension",
    [
        {"CalculatedAttributes": {"x": {"DimensionType": "EQUAL", "Values": ["1"]}}},
        {"ProfileAttributes": {"BirthDate": {"DimensionType": "BEFORE", "Values": ["2000-01-01"]}}},
        {"ProfileAttributes": {"Attributes": {"n": {"DimensionType": "GREATER_THAN", "Values": ["1"]}}}},
    ],
    ids=["calculated", "date", "numeric"],
)
def test_what_the_emulator_cannot_evaluate_is_rejected_naming_it(cp, domain, dimension):
    groups = {"Include": "ALL", "Groups": [{"Type": "ALL", "Dimensions": [dimension]}]}
    with pytest.raises(ClientError, match="not supported by the emulator"):
        cp.create_segment_definition(
            DomainName=domain, SegmentDefinitionName="X", DisplayName="X", SegmentGroups=groups
        )


def test_a_snapshot_writes_the_segments_profiles_as_json_lines(local_stack, cp, domain, s3_bucket):
    cp.create_segment_definition(
        DomainName=domain,
        SegmentDefinitionName="all",
        DisplayName="all",
        SegmentGroups=all_profiles_segment_groups(),
    )
    snapshot_id = cp.create_segment_snapshot(
        DomainName=domain, SegmentDefinitionName="all", DataFormat="JSONL",
        DestinationUri=f"s3://{s3_bucket}/snap/", RoleArn="arn:aws:iam::123456789012:role/snapshot",
    )["SnapshotId"]  # fmt: skip
    for _ in range(50):
        status = cp.get_segment_snapshot(
            DomainName=domain, SegmentDefinitionName="all", SnapshotId=snapshot_id
        )["Status"]
        if status != "IN_PROGRESS":
            break
        time.sleep(0.1)
    assert status == "COMPLETED"
    s3 = local_stack.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="snap/")["Contents"]]
    assert keys == [f"snap/{snapshot_id}/part-00000.jsonl"]
    lines = s3.get_object(Bucket=s3_bucket, Key=keys[0])["Body"].read().decode().splitlines()
    assert len(lines) == 100
    assert "personalize_user_id" in json.loads(lines[0])["Attributes"]
    with pytest.raises(ClientError, match="DataFormat CSV"):
        cp.create_segment_snapshot(
            DomainName=domain, SegmentDefinitionName="all", DataFormat="CSV", DestinationUri="s3://x/y"
        )
