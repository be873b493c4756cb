"""The Athena engine on the embedded stack: the Athena emulator's query lifecycle through boto3 (DDL into
moto's Glue, DuckDB over the stack's S3, results, failure, cancel), and the export operators on it.
On the simple cases (the Bingewatch batches, hostile mpids) the query's rows equal the Python
exporter's: the full equality test over the hardened exporter comes with the complete query."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import gzip
import io
import json
import time
import types
from pathlib import Path

import jinja2
import pendulum
import pytest

from scripts.mparticle_generator import bingewatch_batches

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
BINGE = ROOT / "include/data/bingewatch/interactions.csv"
SQL = ROOT / "include/sql/athena"
HEADER = ["USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP", "EVENT_VALUE"]
ACTIONS = ["purchase", "view_detail", "add_to_cart", "add_to_wishlist"]
DAY = "2024-01-05"
# mpids at the edges of int64 and past 2^53 (a float would round them), ids CSV must quote
HOSTILE = [
    {"mpid": -9223372036854775808, "events": [{"event_type": "commerce_event", "data": {
        "timestamp_unixtime_ms": 1704456000123, "product_action": {"action": "purchase", "products": [
            {"id": 'a "b", c', "price": 9.99}, {"sku": "sku-only"}, {"id": "", "sku": "fallback", "price": 3.25}]}}}]},
    {"mpid": 9007199254740993, "events": [{"event_type": "commerce_event", "data": {
        "timestamp_unixtime_ms": 1704456001000, "product_action": {"action": "view_detail", "products": [{"id": "x"}]}}}]},
    {"mpid": 0, "events": [{"event_type": "commerce_event", "data": {  # unknown user: not a row
        "timestamp_unixtime_ms": 1704456001000, "product_action": {"action": "purchase", "products": [{"id": "y"}]}}}]},
]  # fmt: skip


def _render(name: str, **params) -> str:
    from airflow.sdk.execution_time import macros

    start = pendulum.parse(DAY)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["ds"] = lambda value: value.strftime("%Y-%m-%d")
    return env.from_string((SQL / name).read_text()).render(
        params=params, data_interval_start=start, data_interval_end=start.add(days=1), macros=macros,
        task=types.SimpleNamespace(location=params.get("location")),
    )  # fmt: skip


@pytest.fixture(scope="module")
def landed(local_stack):
    """The Bingewatch batches landed as mParticle lands them, plus a file of hostile batches."""
    s3 = local_stack.client("s3")
    bucket = "athena-it"
    s3.create_bucket(Bucket=bucket)
    generated = bingewatch_batches(
        str(BINGE), end_date="2024-01-10", days=10, prefix="landing/mparticle",
        sink=lambda key, body: s3.put_object(Bucket=bucket, Key=key, Body=body), late_fraction=0.2,
    )  # fmt: skip
    hostile = gzip.compress("".join(json.dumps(b) + "\n" for b in HOSTILE).encode())
    s3.put_object(Bucket=bucket, Key=f"landing/mparticle/dt={DAY}/hostile.json.gz", Body=hostile)
    s3.put_object(Bucket=bucket, Key=f"landing/mparticle/dt={DAY}/_SUCCESS", Body=b"not data")  # ignored
    params = {"database": "mp_it", "table": "batches", "location": f"s3://{bucket}/landing/mparticle/",
              "actions": ACTIONS, "user_id_source": "mpid"}  # fmt: skip
    return types.SimpleNamespace(bucket=bucket, generated=generated, params=params)


def _run(client, query: str, bucket: str, **kwargs) -> dict:
    qid = client.start_query_execution(
        QueryString=query, ResultConfiguration={"OutputLocation": f"s3://{bucket}/athena-results/"}, **kwargs
    )["QueryExecutionId"]
    return _wait(client, qid)


def _wait(client, qid: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        if execution["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return execution
        time.sleep(0.1)
    raise AssertionError(f"query {qid} did not finish")


@pytest.fixture(scope="module")
def table(local_stack, landed):
    client = local_stack.client("athena")
    for name in ("mparticle_database.sql", "mparticle_batches_table.sql"):
        execution = _run(client, _render(name, **landed.params), landed.bucket)
        assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"].get("StateChangeReason")
        assert execution["StatementType"] == "DDL"
    return landed


def _python_rows(s3, landed) -> list[tuple[str, ...]]:
    """What the Python exporter writes for the same interval and files."""
    from personalize_logic.mparticle_interactions import MParticleExportConfig, MParticleInteractionsExporter

    rows: list[tuple[str, ...]] = []
    start = int(dt.datetime.fromisoformat(DAY).replace(tzinfo=dt.UTC).timestamp() * 1000)
    exporter = MParticleInteractionsExporter(
        MParticleExportConfig(), interval_start_ms=start, interval_end_ms=start + 86_400_000,
        row_sink=rows.extend, quarantine_sink=lambda record: None,
    )  # fmt: skip
    next_day = (dt.date.fromisoformat(DAY) + dt.timedelta(days=1)).isoformat()
    for day in (DAY, next_day):
        listing = s3.list_objects_v2(Bucket=landed.bucket, Prefix=f"landing/mparticle/dt={day}/")
        for item in listing.get("Contents", []):
            if not item["Key"].rsplit("/", 1)[1].startswith("_"):
                exporter.process_stream(
                    item["Key"], s3.get_object(Bucket=landed.bucket, Key=item["Key"])["Body"]
                )
    return sorted(rows)


def _csv_rows(body: bytes) -> tuple[list[str], list[tuple[str, ...]]]:
    lines = list(csv.reader(io.StringIO(body.decode())))
    return lines[0], sorted(tuple(r) for r in lines[1:])


def test_ddl_lands_in_glue_with_the_serde_and_the_projection(local_stack, table):
    glue = local_stack.client("glue")
    got = glue.get_table(DatabaseName="mp_it", Name="batches")["Table"]
    assert (
        got["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    )
    assert got["StorageDescriptor"]["Location"] == table.params["location"]
    assert [c["Name"] for c in got["StorageDescriptor"]["Columns"]] == ["mpid", "user_identities", "events"]
    assert got["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    assert got["Parameters"]["projection.enabled"] == "true"
    again = _run(
        local_stack.client("athena"), _render("mparticle_batches_table.sql", **table.params), table.bucket
    )
    assert again["Status"]["State"] == "SUCCEEDED"  # IF NOT EXISTS: every export run may run it


def test_the_interval_query_returns_the_python_exporters_rows_on_simple_batches(local_stack, table):
    client, s3 = local_stack.client("athena"), local_stack.client("s3")
    execution = _run(client, _render("mparticle_interactions.sql", **table.params), table.bucket,
                     QueryExecutionContext={"Database": "mp_it"})  # fmt: skip
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"].get("StateChangeReason")
    result_uri = execution["ResultConfiguration"]["OutputLocation"]
    assert result_uri.endswith(f"/athena-results/{execution['QueryExecutionId']}.csv")
    body = s3.get_object(Bucket=table.bucket, Key=result_uri.split("/", 3)[3])["Body"].read()
    assert body.startswith(b'"USER_ID","ITEM_ID","EVENT_TYPE","TIMESTAMP","EVENT_VALUE"\n')  # Athena quotes
    _header, rows = _csv_rows(body)
    expected = _python_rows(s3, table)
    assert len(expected) > table.generated.rows_per_day[DAY]  # the hostile rows are in
    assert rows == expected
    assert ("-9223372036854775808", 'a "b", c', "purchase", "1704456000", "9.99") in rows
    assert ("9007199254740993", "x", "view_detail", "1704456001", "") in rows
    stats = client.get_query_runtime_statistics(QueryExecutionId=execution["QueryExecutionId"])
    assert stats["QueryRuntimeStatistics"]["Rows"]["OutputRows"] == len(rows)
    assert execution["Statistics"]["DataScannedInBytes"] > 0

    first = client.get_query_results(QueryExecutionId=execution["QueryExecutionId"], MaxResults=5)
    assert [d["VarCharValue"] for d in first["ResultSet"]["Rows"][0]["Data"]] == HEADER
    assert [c["Type"] for c in first["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]] == [
        "varchar", "varchar", "varchar", "bigint", "double",
    ]  # fmt: skip
    paged = list(first["ResultSet"]["Rows"])
    token = first.get("NextToken")
    while token:
        page = client.get_query_results(QueryExecutionId=execution["QueryExecutionId"], NextToken=token)
        paged += page["ResultSet"]["Rows"]
        token = page.get("NextToken")
    assert len(paged) == len(rows) + 1
    assert {} in [cell for row in paged for cell in row["Data"]]  # NULL has no VarCharValue


def test_a_failing_query_a_cancelled_one_and_request_errors(local_stack, table):
    client = local_stack.client("athena")
    failed = _run(client, "SELECT * FROM mp_it.nowhere", table.bucket)
    assert failed["Status"]["State"] == "FAILED"
    assert "mp_it.nowhere does not exist" in failed["Status"]["StateChangeReason"]
    with pytest.raises(client.exceptions.InvalidRequestException, match="Current state: FAILED"):
        client.get_query_results(QueryExecutionId=failed["QueryExecutionId"])

    qid = client.start_query_execution(
        QueryString="SELECT 1", ResultConfiguration={"OutputLocation": f"s3://{table.bucket}/athena-results/"}
    )["QueryExecutionId"]
    client.stop_query_execution(QueryExecutionId=qid)
    assert _wait(client, qid)["Status"]["State"] == "CANCELLED"

    with pytest.raises(client.exceptions.InvalidRequestException, match="No output location provided"):
        client.start_query_execution(QueryString="SELECT 1")
    token = "t" * 40
    one = client.start_query_execution(QueryString="SELECT 2", ClientRequestToken=token,
                                       ResultConfiguration={"OutputLocation": f"s3://{table.bucket}/r/"})  # fmt: skip
    two = client.start_query_execution(QueryString="SELECT 2", ClientRequestToken=token,
                                       ResultConfiguration={"OutputLocation": f"s3://{table.bucket}/r/"})  # fmt: skip
    assert one["QueryExecutionId"] == two["QueryExecutionId"]  # idempotent: runs once
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.get_query_execution(QueryExecutionId="no-such-query")


def _ctx(run_id: str, try_number: int = 1) -> dict:
    ti = types.SimpleNamespace(try_number=try_number, xcom_push=lambda **_: None, stats_tags={})
    return {"run_id": run_id, "ti": ti}


def _query_op(table, **kwargs):
    from operators.interactions_export import AthenaQueryToPartitionOperator

    return AthenaQueryToPartitionOperator(
        task_id="export_interactions_query", query=_render("mparticle_interactions.sql", **table.params),
        database="mp_it", bucket=table.bucket, prefix="exp", partition_date=DAY, sleep_time=1, **kwargs,
    )  # fmt: skip


def _publish(info):
    from operators.interactions_export import PublishAthenaResultOperator

    return PublishAthenaResultOperator(task_id="export_interactions", bucket=info["bucket"], prefix="exp",
                                       query=info, expected_header=HEADER)  # fmt: skip


def test_operators_query_and_publish_the_partition(local_stack, table):
    s3 = local_stack.client("s3")
    info = _query_op(table, deferrable=False).execute(_ctx("scheduled__athena"))
    assert info["run_prefix"] == f"exp/interactions/dt={DAY}/run=scheduled__athena.try1/"
    out = _publish(info).execute(_ctx("scheduled__athena"))
    manifest = json.loads(
        s3.get_object(Bucket=table.bucket, Key=f"exp/interactions/dt={DAY}/_manifest.json")["Body"].read()
    )
    assert [f["key"] for f in manifest["files"]] == [info["run_prefix"] + "part-00000.csv"]
    body = s3.get_object(Bucket=table.bucket, Key=manifest["files"][0]["key"])["Body"].read()
    assert body.startswith(
        b"USER_ID,ITEM_ID,EVENT_TYPE,TIMESTAMP,EVENT_VALUE\n"
    )  # the header Personalize reads
    _header, rows = _csv_rows(body)
    assert rows == _python_rows(s3, table)
    assert out["rows"] == manifest["rows"] == len(rows)
    assert manifest["source"]["athena"]["query_execution_id"] == info["query_execution_id"]

    from operators.interactions_export import ValidateInteractionsOperator

    report = ValidateInteractionsOperator(task_id="v", s3_uri=f"s3://{table.bucket}/{info['run_prefix']}part-",
                                          min_rows=1).execute(_ctx("v"))  # fmt: skip
    assert report["ok"], report


def test_the_deferred_query_waits_in_the_provider_trigger(local_stack, table):
    from airflow.providers.common.compat.sdk import TaskDeferred

    with pytest.raises(TaskDeferred) as deferred:
        _query_op(table, deferrable=True).execute(_ctx("scheduled__deferred"))

    async def first_event():
        async for event in deferred.value.trigger.run():
            return event.payload

    event = asyncio.run(first_event())
    assert event["status"] == "success"
    info = _query_op(table, deferrable=True).execute_complete(_ctx("scheduled__deferred"), event)
    assert _publish(info).execute(_ctx("scheduled__deferred"))["rows"] > 0


def test_copy_with_header_copies_large_results_server_side(local_stack):
    from operators.interactions_export import HEAD_PART_BYTES, copy_with_header

    s3 = local_stack.client("s3")
    s3.create_bucket(Bucket="copy-it")
    row = b'"123","item","purchase","1700000000","1.5"\n'
    body = b'"USER_ID","ITEM_ID","EVENT_TYPE","TIMESTAMP","EVENT_VALUE"\n' + row * (
        HEAD_PART_BYTES // len(row) + 80_000
    )
    s3.put_object(Bucket="copy-it", Key="result.csv", Body=body)
    size = copy_with_header(s3, ("copy-it", "result.csv"), ("copy-it", "part.csv"), HEADER, "test")
    copied = s3.get_object(Bucket="copy-it", Key="part.csv")["Body"].read()
    assert len(copied) == size > HEAD_PART_BYTES
    assert copied == b"USER_ID,ITEM_ID,EVENT_TYPE,TIMESTAMP,EVENT_VALUE\n" + body.split(b"\n", 1)[1]
    s3.put_object(Bucket="copy-it", Key="wrong.csv", Body=b'"user_id"\n"1"\n')
    from airflow.providers.common.compat.sdk import AirflowException

    with pytest.raises(AirflowException, match=r"result header \['user_id'\]"):
        copy_with_header(s3, ("copy-it", "wrong.csv"), ("copy-it", "x.csv"), HEADER, "test")
