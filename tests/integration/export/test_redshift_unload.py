"""``source: redshift`` end to end on the embedded stack: UNLOAD through the Redshift Data API emulator,
which runs the project's SQL file (Redshift dialect, transpiled) on the machine's PostgreSQL and
writes the files into the stack's S3; then the publish step. boto3 / the provider's hook make the very
same calls as on AWS."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
import types
from pathlib import Path

import jinja2
import pendulum
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
BINGE = ROOT / "include/data/bingewatch/interactions.csv"
SQL_FILE = ROOT / "include/sql/unload_interactions.sql"
DATABASE = "ap_it_redshift"
ROLE = "arn:aws:iam::123456789012:role/unload"
HEADER = ["USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP", "EVENT_VALUE"]
# ids Personalize accepts that CSV must quote (r_UNLOAD: delimiter, quotation mark)
HOSTILE = [("u,1", 'item "quoted"', "watch", 1230768000, 1.5), ("u2", "i,2", "watch", 1230768001, None)]


@pytest.fixture(scope="module")
def warehouse(local_stack):
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(
            host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3
        )
    except Exception as exc:  # pragma: no cover - environment without PostgreSQL
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    admin.autocommit = True
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    admin.cursor().execute(f"CREATE DATABASE {DATABASE}")
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=DATABASE)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("CREATE SCHEMA analytics")
    cur.execute("CREATE TABLE analytics.interactions (user_id VARCHAR, item_id VARCHAR, event_type VARCHAR,"
                " event_value FLOAT, event_ts BIGINT)")  # fmt: skip
    with open(BINGE, newline="") as fh:
        rows = [(r["USER_ID"], r["ITEM_ID"], r["EVENT_TYPE"], int(r["TIMESTAMP"]), float(r["EVENT_VALUE"]))
                for r in csv.DictReader(fh)]  # fmt: skip
    rows += HOSTILE
    cur.executemany("INSERT INTO analytics.interactions (user_id, item_id, event_type, event_ts, event_value)"
                    " VALUES (%s,%s,%s,%s,%s)", rows)  # fmt: skip
    yield types.SimpleNamespace(rows=rows, cursor=cur)
    conn.close()
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    admin.close()


def _sql(start: pendulum.DateTime, end: pendulum.DateTime) -> str:
    return jinja2.Template(SQL_FILE.read_text()).render(
        params={}, data_interval_start=start, data_interval_end=end
    )


def _expected(rows, start: pendulum.DateTime, end: pendulum.DateTime) -> list[tuple[str, ...]]:
    def value(v):
        return "" if v is None else repr(float(v))

    return sorted(
        (u, i, e, str(t), value(v)) for u, i, e, t, v in rows if start.int_timestamp <= t < end.int_timestamp
    )


def _ctx(run_id: str, try_number: int = 1) -> dict:
    ti = types.SimpleNamespace(try_number=try_number, xcom_push=lambda **_: None, stats_tags={})
    return {"run_id": run_id, "ti": ti}


def _wait(client, statement_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = client.describe_statement(Id=statement_id)
        if desc["Status"] in ("FINISHED", "FAILED", "ABORTED"):
            return desc
        time.sleep(0.2)
    raise AssertionError(f"statement {statement_id} still {desc['Status']}")


def _rows(s3, bucket: str, keys: list[str]) -> list[tuple[str, ...]]:
    out = []
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        lines = list(csv.reader(io.StringIO(body)))
        assert lines[0] == HEADER, key  # HEADER on top of every file
        out += [tuple(r) for r in lines[1:]]
    return sorted(out)


def test_unload_through_the_data_api_writes_csv_parts_and_a_verbose_manifest(
    local_stack, warehouse, s3_bucket
):
    client, s3 = local_stack.client("redshift-data"), local_stack.client("s3")
    start, end = pendulum.datetime(2009, 1, 1), pendulum.datetime(2010, 1, 1)
    from personalize_logic.redshift_unload import unload_statement

    sql = unload_statement(_sql(start, end), f"s3://{s3_bucket}/out/part-", ROLE)
    statement = client.execute_statement(ClusterIdentifier="warehouse", Database=DATABASE, Sql=sql)
    desc = _wait(client, statement["Id"])
    assert desc["Status"] == "FINISHED", desc.get("Error")
    assert desc["QueryString"] == sql
    expected = _expected(warehouse.rows, start, end)
    assert desc["ResultRows"] == len(expected) > 50
    manifest = json.loads(s3.get_object(Bucket=s3_bucket, Key="out/part-manifest")["Body"].read())
    keys = [e["url"].removeprefix(f"s3://{s3_bucket}/") for e in manifest["entries"]]
    assert keys == ["out/part-0000_part_00.csv", "out/part-0001_part_00.csv"]  # two slices, EXTENSION 'csv'
    assert _rows(s3, s3_bucket, keys) == expected  # hostile ids round-trip through CSV quoting
    assert manifest["meta"]["record_count"] == len(expected) + 2  # HEADER lines are counted
    for entry, key in zip(manifest["entries"], keys, strict=True):
        head = s3.head_object(Bucket=s3_bucket, Key=key)
        assert entry["meta"]["content_length"] == head["ContentLength"]

    again = client.execute_statement(ClusterIdentifier="warehouse", Database=DATABASE, Sql=sql)
    failed = _wait(client, again["Id"])
    assert failed["Status"] == "FAILED"
    assert "ALLOWOVERWRITE" in failed["Error"]  # UNLOAD never overwrites by default


def test_a_failing_statement_and_a_cancelled_one(local_stack, warehouse):
    client = local_stack.client("redshift-data")
    bad = client.execute_statement(
        WorkgroupName="serverless", Database=DATABASE, Sql="SELECT * FROM nowhere.nothing"
    )
    desc = _wait(client, bad["Id"])
    assert desc["Status"] == "FAILED"
    assert "nowhere.nothing" in desc["Error"]

    slow = client.execute_statement(
        ClusterIdentifier="warehouse", Database=DATABASE, Sql="SELECT pg_sleep(30)"
    )
    deadline = time.monotonic() + 10
    while client.describe_statement(Id=slow["Id"])["Status"] != "STARTED" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.cancel_statement(Id=slow["Id"])["Status"] is True
    assert _wait(client, slow["Id"], timeout=10)["Status"] == "ABORTED"
    with pytest.raises(client.exceptions.ValidationException, match="already in ABORTED"):
        client.cancel_statement(Id=slow["Id"])
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_statement(Id="00000000-0000-0000-0000-000000000000")


def test_a_select_returns_its_records(local_stack, warehouse):
    client = local_stack.client("redshift-data")
    stmt = client.execute_statement(ClusterIdentifier="warehouse", Database=DATABASE,
                                    Sql="SELECT user_id, event_ts, event_value FROM analytics.interactions "
                                        "WHERE item_id = 'i,2'")  # fmt: skip
    assert _wait(client, stmt["Id"])["HasResultSet"] is True
    result = client.get_statement_result(Id=stmt["Id"])
    assert result["Records"] == [[{"stringValue": "u2"}, {"longValue": 1230768001}, {"isNull": True}]]
    assert [c["name"] for c in result["ColumnMetadata"]] == ["user_id", "event_ts", "event_value"]


def _operators(bucket: str, start: pendulum.DateTime, end: pendulum.DateTime, **kwargs):
    from operators.interactions_export import (
        PublishUnloadedPartitionOperator,
        RedshiftUnloadToPartitionOperator,
    )

    unload = RedshiftUnloadToPartitionOperator(
        task_id="export_interactions_unload", bucket=bucket, prefix="rs", select_query=_sql(start, end),
        iam_role_arn=ROLE, partition_date=start.to_date_string(), database=DATABASE,
        cluster_identifier="warehouse", poll_interval=1, **kwargs,
    )  # fmt: skip
    return unload, lambda info: PublishUnloadedPartitionOperator(
        task_id="export_interactions", bucket=bucket, prefix="rs", unload=info, expected_header=HEADER
    )


def test_operators_unload_and_publish_one_interval_per_attempt(local_stack, warehouse, s3_bucket):
    s3 = local_stack.client("s3")
    start, end = pendulum.datetime(2009, 1, 1), pendulum.datetime(2010, 1, 1)
    unload, publish = _operators(s3_bucket, start, end, deferrable=False)
    info = unload.execute(_ctx("scheduled__2009"))
    assert info["run_prefix"] == "rs/interactions/dt=2009-01-01/run=scheduled__2009.try1/"
    out = publish(info).execute(_ctx("scheduled__2009"))
    expected = _expected(warehouse.rows, start, end)
    assert out["rows"] == len(expected)
    manifest = json.loads(
        s3.get_object(Bucket=s3_bucket, Key="rs/interactions/dt=2009-01-01/_manifest.json")["Body"].read()
    )
    assert manifest["header"] == HEADER
    assert _rows(s3, s3_bucket, [f["key"] for f in manifest["files"]]) == expected
    first_files = {
        f["key"]: s3.get_object(Bucket=s3_bucket, Key=f["key"])["Body"].read() for f in manifest["files"]
    }

    unload2, publish2 = _operators(s3_bucket, start, end, deferrable=False)
    info2 = unload2.execute(_ctx("scheduled__2009", try_number=2))
    assert info2["run_key"] == "scheduled__2009.try2"
    assert publish2(info2).execute(_ctx("scheduled__2009"))["rows"] == len(expected)
    for key, body in first_files.items():  # the earlier attempt's files are untouched
        assert s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == body


def test_an_empty_interval_publishes_header_only_parts(local_stack, warehouse, s3_bucket):
    start, end = pendulum.datetime(1999, 1, 1), pendulum.datetime(1999, 1, 2)
    unload, publish = _operators(s3_bucket, start, end, deferrable=False)
    out = publish(unload.execute(_ctx("manual__empty"))).execute(_ctx("manual__empty"))
    assert out["rows"] == 0
    assert out["empty"] is True


def test_the_deferred_path_waits_in_the_trigger_and_completes(local_stack, warehouse, s3_bucket):
    from airflow.providers.common.compat.sdk import TaskDeferred

    start, end = pendulum.datetime(2009, 1, 1), pendulum.datetime(2009, 7, 1)
    unload, publish = _operators(s3_bucket, start, end, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        unload.execute(_ctx("scheduled__deferred"))
    trigger = deferred.value.trigger

    async def first_event():
        async for event in trigger.run():
            return event.payload

    event = asyncio.run(first_event())
    assert event["status"] == "success"
    fresh, _ = _operators(s3_bucket, start, end, deferrable=True)  # resumed tasks are new instances
    info = fresh.execute_complete(_ctx("scheduled__deferred"), event)
    assert info["run_prefix"] == "rs/interactions/dt=2009-01-01/run=scheduled__deferred.try1/"
    assert publish(info).execute(_ctx("scheduled__deferred"))["rows"] == len(
        _expected(warehouse.rows, start, end)
    )


def test_a_failed_unload_fails_the_task_with_the_database_error(local_stack, warehouse, s3_bucket):
    from airflow.providers.amazon.aws.hooks.redshift_data import RedshiftDataQueryFailedError

    from operators.interactions_export import RedshiftUnloadToPartitionOperator

    op = RedshiftUnloadToPartitionOperator(
        task_id="u", bucket=s3_bucket, prefix="rs", select_query='SELECT x AS "USER_ID" FROM missing_table',
        iam_role_arn=ROLE, partition_date="2009-01-01", database=DATABASE, cluster_identifier="warehouse",
        poll_interval=1, deferrable=False,
    )  # fmt: skip
    with pytest.raises(RedshiftDataQueryFailedError, match="missing_table"):
        op.execute(_ctx("manual__failing"))
