from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from emulators.pinpoint.seed import seed_endpoints_from_csv
from operators.pinpoint import PinpointCreateImportedSegmentOperator, ResolveSegmentEndpointsOperator
from tests.integration.pinpoint.test_emulator import ENDPOINTS_CSV, ROLE

pytestmark = pytest.mark.integration
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def aws_conn(stack, monkeypatch):
    conn = {"conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"region_name": "us-east-1", "endpoint_url": stack.moto_url,
                      "service_config": {"pinpoint": {"endpoint_url": stack.url}}}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(conn))


@pytest.fixture
def seeded(stack, bucket, aws_conn):
    pp = stack.pinpoint
    app_id = pp.create_app(CreateApplicationRequest={"Name": "personalize"})["ApplicationResponse"]["Id"]
    seed_endpoints_from_csv(pp, app_id, ENDPOINTS_CSV)
    pp.update_endpoints_batch(
        ApplicationId=app_id,
        EndpointBatchRequest={
            "Item": [
                {"Id": "sms-1", "ChannelType": "SMS", "Address": "+15555550100", "User": {"UserId": "1"}}
            ]
        },
    )
    lines = [
        {
            "input": {"itemAttributes": 'ITEMS.genres = "Action"'},
            "output": {"usersList": ["1", "2", "nobody"]},
            "error": None,
        },
        {"itemAttributes": 'ITEMS.genres = "Sci-Fi"', "output": {"recommendedUsers": ["3", "4"]}},
        {"input": {"itemId": "9"}, "output": None, "error": "boom"},
    ]
    body = "\n".join(json.dumps(line) for line in lines) + "\n"
    stack.s3.put_object(Bucket=bucket, Key="batch/out/job_config.json.out", Body=body.encode())
    return app_id


@pytest.mark.parametrize("threshold", [1000, 0], ids=["lookup", "export"])
def test_resolve_then_import(stack, bucket, seeded, threshold):
    app_id = seeded
    resolve = ResolveSegmentEndpointsOperator(
        task_id="resolve", application_id=app_id, segment_output_s3_uri=f"s3://{bucket}/batch/out/",
        output_s3_uri=f"s3://{bucket}/pinpoint/run1", segment_timestamp=WHEN, export_role_arn=ROLE,
        lookup_threshold=threshold, waiter_delay=1, waiter_max_attempts=30,
    )  # fmt: skip
    segments = resolve.execute({})
    assert next(s["segment_name"] for s in segments) == "ITEMSgenresAction_20260102-030405"
    assert len(segments) == 2
    action, scifi = segments
    assert (action["users"], action["endpoints"], action["users_without_endpoint"]) == (3, 3, 1)
    assert (scifi["users"], scifi["endpoints"], scifi["users_without_endpoint"]) == (2, 2, 0)
    assert scifi["segment_name"].startswith("ITEMSgenresSciFi-")
    errors = stack.s3.get_object(Bucket=bucket, Key="pinpoint/run1/_errors.jsonl")["Body"].read().decode()
    assert "boom" in errors
    results = []
    for seg in segments:
        op = PinpointCreateImportedSegmentOperator(
            task_id="import", application_id=app_id, segment_name=seg["segment_name"], s3_url=seg["s3_url"],
            role_arn=ROLE, waiter_delay=1, waiter_max_attempts=30,
        )  # fmt: skip
        results.append(op.execute({}))
        assert op.execute({}) == results[-1]  # retry reuses the job
    assert [r["size"] for r in results] == [3, 2]
    assert len(stack.pinpoint.get_segments(ApplicationId=app_id)["SegmentsResponse"]["Item"]) == 2
    assert len(stack.pinpoint.get_import_jobs(ApplicationId=app_id)["ImportJobsResponse"]["Item"]) == 2


def test_resolve_channel_filter_and_user_id_mode(stack, bucket, seeded):
    common = dict(application_id=seeded, segment_output_s3_uri=f"s3://{bucket}/batch/out/job_config.json.out",
                  segment_timestamp=WHEN, export_role_arn=ROLE, waiter_delay=1, waiter_max_attempts=30)  # fmt: skip
    sms = ResolveSegmentEndpointsOperator(
        task_id="r", output_s3_uri=f"s3://{bucket}/a", channel_types=["SMS"], lookup_threshold=0, **common
    ).execute({})
    assert (sms[0]["endpoints"], sms[0]["users_without_endpoint"]) == (1, 2)
    users = ResolveSegmentEndpointsOperator(
        task_id="r", output_s3_uri=f"s3://{bucket}/b", csv_column="User.UserId", **common
    ).execute({})
    body = stack.s3.get_object(Bucket=bucket, Key=users[0]["csv_uris"][0][len(f"s3://{bucket}/") :])[
        "Body"
    ].read()
    assert body == b"User.UserId\n1\n2\nnobody\n"
