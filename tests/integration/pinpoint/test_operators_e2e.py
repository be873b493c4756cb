from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from emulators.pinpoint.seed import seed_endpoints_from_csv
from operators.pinpoint import PinpointCreateImportedSegmentOperator, ResolveSegmentEndpointsOperator
from tests.integration.pinpoint.test_emulator import ENDPOINTS_CSV, ROLE

pytestmark = pytest.mark.integration
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CONTEXT = {"run_id": "manual__2026-01-02", "ti": None}


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
        task_id="resolve", application_id=app_id, segment_output_s3_uris=[f"s3://{bucket}/batch/out/"],
        output_s3_uri=f"s3://{bucket}/pinpoint/run1", segment_timestamp=WHEN, export_role_arn=ROLE,
        lookup_threshold=threshold, waiter_delay=1, waiter_max_attempts=30,
    )  # fmt: skip
    segments = resolve.execute(CONTEXT)
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
            role_arn=ROLE, state_uri=f"s3://{bucket}/state/activation/pinpoint", waiter_delay=1,
            waiter_max_attempts=30,
        )  # fmt: skip
        results.append(op.execute(CONTEXT))
        assert op.execute(CONTEXT) == results[-1]  # retry reuses the job
    assert [r["size"] for r in results] == [3, 2]
    assert len(stack.pinpoint.get_segments(ApplicationId=app_id)["SegmentsResponse"]["Item"]) == 2
    assert len(stack.pinpoint.get_import_jobs(ApplicationId=app_id)["ImportJobsResponse"]["Item"]) == 2


def test_resolve_channel_filter_and_user_id_mode(stack, bucket, seeded):
    common = dict(application_id=seeded, segment_output_s3_uris=[f"s3://{bucket}/batch/out/job_config.json.out"],
                  segment_timestamp=WHEN, export_role_arn=ROLE, waiter_delay=1, waiter_max_attempts=30)  # fmt: skip
    sms = ResolveSegmentEndpointsOperator(
        task_id="r", output_s3_uri=f"s3://{bucket}/a", channel_types=["SMS"], lookup_threshold=0, **common
    ).execute(CONTEXT)
    assert (sms[0]["endpoints"], sms[0]["users_without_endpoint"]) == (1, 2)
    users = ResolveSegmentEndpointsOperator(
        task_id="r", output_s3_uri=f"s3://{bucket}/b", csv_column="User.UserId", **common
    ).execute(CONTEXT)
    # the User.UserId layout has no endpoint count: its rows are the users, so it is imported
    assert (users[0]["endpoints"], users[0]["rows"]) == (0, 3)
    body = stack.s3.get_object(Bucket=bucket, Key=users[0]["csv_uris"][0][len(f"s3://{bucket}/") :])[
        "Body"
    ].read()
    assert sorted(body.decode().splitlines()) == ["1", "2", "User.UserId", "nobody"]


def _import(app_id, bucket, segment, **kwargs):
    params = dict(task_id="import", application_id=app_id, segment_name=segment["segment_name"],
                  s3_url=segment["s3_url"], role_arn=ROLE, state_uri=f"s3://{bucket}/state/activation/pinpoint",
                  waiter_delay=1, waiter_max_attempts=30)  # fmt: skip
    return PinpointCreateImportedSegmentOperator(**{**params, **kwargs})


def _resolved(bucket, app_id, output="run1"):
    return ResolveSegmentEndpointsOperator(
        task_id="resolve", application_id=app_id, segment_output_s3_uris=[f"s3://{bucket}/batch/out/"],
        output_s3_uri=f"s3://{bucket}/pinpoint/{output}", segment_timestamp=WHEN,
    ).execute(CONTEXT)  # fmt: skip


def test_a_rerun_whose_segment_file_changed_fails_and_keeps_the_first_import(stack, bucket, seeded):
    action = _resolved(bucket, seeded)[0]
    first = _import(seeded, bucket, action).execute(CONTEXT)
    key = action["csv_uris"][0][len(f"s3://{bucket}/") :]
    stack.s3.put_object(Bucket=bucket, Key=key, Body=b"Id\nonly-one\n")
    with pytest.raises(AirflowException, match=r"already activated from a different input.*files"):
        _import(seeded, bucket, action).execute(CONTEXT)
    jobs = stack.pinpoint.get_import_jobs(ApplicationId=seeded)["ImportJobsResponse"]["Item"]
    assert [job["Id"] for job in jobs] == [first["import_job_id"]]


def test_two_concurrent_attempts_create_one_segment(stack, bucket, seeded):
    action = _resolved(bucket, seeded)[0]
    results: list[dict] = []
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            results.append(_import(seeded, bucket, action).execute(CONTEXT))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({r["import_job_id"] for r in results}) == 1
    assert len(stack.pinpoint.get_segments(ApplicationId=seeded)["SegmentsResponse"]["Item"]) == 1


def test_every_triggering_output_is_activated(stack, bucket, seeded):
    line = {"input": {"itemAttributes": 'ITEMS.genres = "Drama"'}, "output": {"usersList": ["1"]}}
    stack.s3.put_object(
        Bucket=bucket, Key="batch/out2/job_config.json.out", Body=(json.dumps(line) + "\n").encode()
    )
    segments = ResolveSegmentEndpointsOperator(
        task_id="resolve", application_id=seeded, output_s3_uri=f"s3://{bucket}/pinpoint/two",
        segment_output_s3_uris=json.dumps([f"s3://{bucket}/batch/out/", f"s3://{bucket}/batch/out2/"]),
        segment_timestamp=WHEN,
    ).execute(CONTEXT)  # fmt: skip
    assert [s["query"] for s in segments] == [
        'ITEMS.genres = "Action"',
        'ITEMS.genres = "Sci-Fi"',
        'ITEMS.genres = "Drama"',
    ]


def test_the_export_reader_reads_only_gz_parts(stack, bucket, seeded):
    export = f"s3://{bucket}/pinpoint/gz/_endpoint_export/"
    stack.s3.put_object(Bucket=bucket, Key="pinpoint/gz/_endpoint_export/_SUCCESS", Body=b"not json")
    stack.s3.put_object(Bucket=bucket, Key="pinpoint/gz/_endpoint_export/manifest.json", Body=b"{}")
    segments = ResolveSegmentEndpointsOperator(
        task_id="resolve", application_id=seeded, output_s3_uri=f"s3://{bucket}/pinpoint/gz",
        segment_output_s3_uris=[f"s3://{bucket}/batch/out/"], segment_timestamp=WHEN, export_role_arn=ROLE,
        export_s3_uri=export, lookup_threshold=0, waiter_delay=1, waiter_max_attempts=30,
    ).execute(CONTEXT)  # fmt: skip
    assert segments[0]["endpoints"] == 3
