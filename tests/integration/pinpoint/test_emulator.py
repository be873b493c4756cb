from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from emulators.pinpoint.models import JOB_PATH
from emulators.pinpoint.seed import seed_endpoints_from_csv

pytestmark = pytest.mark.integration
ENDPOINTS_CSV = Path(__file__).resolve().parents[3] / "include" / "data" / "bingewatch" / "endpoints.csv"
ROLE = "arn:aws:iam::123456789012:role/pinpoint-import"


def _app(stack) -> str:
    return stack.pinpoint.create_app(CreateApplicationRequest={"Name": "personalize"})["ApplicationResponse"][
        "Id"
    ]


def _wait(get, app_id, job_id, key):
    seen = []
    deadline = time.time() + 20
    while time.time() < deadline:
        job = get(ApplicationId=app_id, JobId=job_id)[key]
        if not seen or seen[-1] != job["JobStatus"]:
            seen.append(job["JobStatus"])
        if job["JobStatus"] in ("COMPLETED", "FAILED"):
            return job, seen
        time.sleep(0.02)
    raise AssertionError(f"job did not finish: {seen}")


def test_apps_and_endpoints(stack):
    pp = stack.pinpoint
    app_id = _app(stack)
    assert pp.get_app(ApplicationId=app_id)["ApplicationResponse"]["Name"] == "personalize"
    assert app_id in [a["Id"] for a in pp.get_apps()["ApplicationsResponse"]["Item"]]
    assert seed_endpoints_from_csv(pp, app_id, ENDPOINTS_CSV) == 100
    pp.update_endpoints_batch(
        ApplicationId=app_id,
        EndpointBatchRequest={
            "Item": [
                {"Id": "sms-1", "ChannelType": "SMS", "Address": "+15555550100", "User": {"UserId": "1"}}
            ]
        },
    )
    items = pp.get_user_endpoints(ApplicationId=app_id, UserId="1")["EndpointsResponse"]["Item"]
    assert sorted(i["ChannelType"] for i in items) == ["EMAIL", "SMS"]
    assert items[0]["User"]["UserAttributes"] or items[1]["User"]["UserAttributes"]
    with pytest.raises(ClientError) as err:
        pp.get_user_endpoints(ApplicationId=app_id, UserId="nobody")
    assert err.value.response["Error"]["Code"] == "NotFoundException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    pp.update_endpoint(ApplicationId=app_id, EndpointId="sms-1", EndpointRequest={"Attributes": {"x": ["y"]}})
    got = pp.get_endpoint(ApplicationId=app_id, EndpointId="sms-1")["EndpointResponse"]
    assert got["Attributes"] == {"x": ["y"]}
    assert got["Address"] == "+15555550100"
    pp.delete_endpoint(ApplicationId=app_id, EndpointId="sms-1")
    with pytest.raises(ClientError, match="NotFound"):
        pp.get_endpoint(ApplicationId=app_id, EndpointId="sms-1")
    with pytest.raises(ClientError, match="BadRequest"):
        pp.update_endpoints_batch(
            ApplicationId=app_id, EndpointBatchRequest={"Item": [{"Id": str(i)} for i in range(101)]}
        )


def test_export_job_writes_gzipped_json_lines(stack, bucket):
    pp = stack.pinpoint
    app_id = _app(stack)
    seed_endpoints_from_csv(pp, app_id, ENDPOINTS_CSV)
    job = pp.create_export_job(
        ApplicationId=app_id, ExportJobRequest={"RoleArn": ROLE, "S3UrlPrefix": f"s3://{bucket}/export"}
    )
    job, _seen = _wait(pp.get_export_job, app_id, job["ExportJobResponse"]["Id"], "ExportJobResponse")
    assert job["JobStatus"] == "COMPLETED"
    assert job["TotalProcessed"] == 100
    keys = [o["Key"] for o in stack.s3.list_objects_v2(Bucket=bucket, Prefix="export/")["Contents"]]
    assert keys
    assert all(k.endswith(".gz") and f"/{app_id}/" in k for k in keys)
    rows = [
        json.loads(line)
        for k in keys
        for line in gzip.decompress(stack.s3.get_object(Bucket=bucket, Key=k)["Body"].read()).splitlines()
    ]
    assert len(rows) == 100
    assert {"Id", "ChannelType", "Address", "User"} <= set(rows[0])
    assert pp.get_export_jobs(ApplicationId=app_id)["ExportJobsResponse"]["Item"][0]["Id"] == job["Id"]


@pytest.mark.parametrize("layout", ["Id", "User.UserId"])
def test_import_defines_segment(stack, bucket, layout):
    pp = stack.pinpoint
    app_id = _app(stack)
    seed_endpoints_from_csv(pp, app_id, ENDPOINTS_CSV)
    pp.update_endpoints_batch(
        ApplicationId=app_id,
        EndpointBatchRequest={
            "Item": [
                {"Id": "sms-1", "ChannelType": "SMS", "Address": "+15555550100", "User": {"UserId": "1"}}
            ]
        },
    )
    if layout == "Id":
        ids = [
            e["Id"]
            for u in ("1", "2", "3")
            for e in pp.get_user_endpoints(ApplicationId=app_id, UserId=u)["EndpointsResponse"]["Item"]
        ]
        body = "Id\n" + "\n".join(ids) + "\n"
    else:
        body = "User.UserId\n1\n2\n3\n"
    stack.s3.put_object(Bucket=bucket, Key="seg/sub/part-00000.csv", Body=body.encode())
    stack.s3.put_object(Bucket=bucket, Key="seg/ignored.json", Body=b"{}")
    created = pp.create_import_job(
        ApplicationId=app_id,
        ImportJobRequest={
            "DefineSegment": True,
            "Format": "CSV",
            "RoleArn": ROLE,
            "S3Url": f"s3://{bucket}/seg/",
            "SegmentName": "ITEMSgenresAction_20220802-154955",
        },
    )["ImportJobResponse"]
    assert created["JobStatus"] == "CREATED"
    assert created["Definition"]["SegmentId"]
    job, seen = _wait(pp.get_import_job, app_id, created["Id"], "ImportJobResponse")
    assert job["JobStatus"] == "COMPLETED", job
    assert seen == [s for s in JOB_PATH if s in seen]
    assert len(seen) >= 3
    segment = pp.get_segment(ApplicationId=app_id, SegmentId=created["Definition"]["SegmentId"])[
        "SegmentResponse"
    ]
    assert segment["Name"] == "ITEMSgenresAction_20220802-154955"
    assert segment["SegmentType"] == "IMPORT"
    assert segment["ImportDefinition"]["Size"] == 4
    assert segment["ImportDefinition"]["ChannelCounts"] == {"EMAIL": 3, "SMS": 1}
    names = [s["Name"] for s in pp.get_segments(ApplicationId=app_id)["SegmentsResponse"]["Item"]]
    assert names == ["ITEMSgenresAction_20220802-154955"]
    # exporting the segment returns its endpoints
    exp = pp.create_export_job(
        ApplicationId=app_id,
        ExportJobRequest={
            "RoleArn": ROLE,
            "S3UrlPrefix": f"s3://{bucket}/segexp/",
            "SegmentId": segment["Id"],
        },
    )
    exp, _ = _wait(pp.get_export_job, app_id, exp["ExportJobResponse"]["Id"], "ExportJobResponse")
    assert exp["TotalProcessed"] == 4
    pp.delete_segment(ApplicationId=app_id, SegmentId=segment["Id"])
    assert pp.get_segments(ApplicationId=app_id)["SegmentsResponse"]["Item"] == []


def test_import_registers_full_definitions(stack, bucket):
    pp = stack.pinpoint
    app_id = _app(stack)
    stack.s3.put_object(Bucket=bucket, Key="full.csv", Body=ENDPOINTS_CSV.read_bytes())
    created = pp.create_import_job(
        ApplicationId=app_id,
        ImportJobRequest={
            "DefineSegment": True,
            "Format": "CSV",
            "RoleArn": ROLE,
            "S3Url": f"s3://{bucket}/full.csv",
            "SegmentName": "all",
            "RegisterEndpoints": True,
        },
    )["ImportJobResponse"]
    job, _ = _wait(pp.get_import_job, app_id, created["Id"], "ImportJobResponse")
    assert job["JobStatus"] == "COMPLETED"
    assert job["TotalProcessed"] == 100
    assert pp.get_user_endpoints(ApplicationId=app_id, UserId="7")["EndpointsResponse"]["Item"][0]["User"][
        "UserAttributes"
    ]["Gender"]


@pytest.mark.parametrize("body", [b"Nope\n1\n", b"Id,ChannelType\n1\n", b"\x1f\x8b\x08compressed"])
def test_malformed_file_fails(stack, bucket, body):
    pp = stack.pinpoint
    app_id = _app(stack)
    stack.s3.put_object(Bucket=bucket, Key="bad.csv", Body=body)
    created = pp.create_import_job(
        ApplicationId=app_id,
        ImportJobRequest={
            "DefineSegment": True,
            "Format": "CSV",
            "RoleArn": ROLE,
            "S3Url": f"s3://{bucket}/bad.csv",
            "SegmentName": "bad",
        },
    )["ImportJobResponse"]
    job, _seen = _wait(pp.get_import_job, app_id, created["Id"], "ImportJobResponse")
    assert job["JobStatus"] == "FAILED"
    assert job["FailedPieces"] == 1
    assert "didn't match the format we expected" in job["Failures"][0]
    assert pp.get_segments(ApplicationId=app_id)["SegmentsResponse"]["Item"] == []


def test_request_validation_and_unknown_job(stack):
    pp = stack.pinpoint
    app_id = _app(stack)
    with pytest.raises(ClientError, match="NotFound"):
        pp.get_import_job(ApplicationId=app_id, JobId="nope")
    with pytest.raises(ClientError, match="NotFound"):
        pp.get_app(ApplicationId="nope")


def test_restart_survival(stack, bucket):
    pp = stack.pinpoint
    app_id = _app(stack)
    seed_endpoints_from_csv(pp, app_id, ENDPOINTS_CSV)
    stack.s3.put_object(Bucket=bucket, Key="u.csv", Body=b"User.UserId\n1\n2\n")
    created = pp.create_import_job(
        ApplicationId=app_id,
        ImportJobRequest={
            "DefineSegment": True,
            "Format": "CSV",
            "RoleArn": ROLE,
            "S3Url": f"s3://{bucket}/u.csv",
            "SegmentName": "s",
        },
    )["ImportJobResponse"]
    stack.restart()
    pp = stack.pinpoint
    job, _ = _wait(pp.get_import_job, app_id, created["Id"], "ImportJobResponse")
    assert job["JobStatus"] == "COMPLETED"
    stack.restart()
    assert (
        stack.pinpoint.get_segment(ApplicationId=app_id, SegmentId=created["Definition"]["SegmentId"])[
            "SegmentResponse"
        ]["ImportDefinition"]["Size"]
        == 2
    )
    assert (
        len(stack.pinpoint.get_user_endpoints(ApplicationId=app_id, UserId="1")["EndpointsResponse"]["Item"])
        == 1
    )
