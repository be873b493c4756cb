"""Export operators against a moto S3 server (own fixture) and the machine's PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import pathlib
import socket
import types

import boto3
import pytest

from scripts.mparticle_generator import bingewatch_batches

ROOT = pathlib.Path(__file__).resolve().parents[3]
BINGE = ROOT / "include/data/bingewatch/interactions.csv"
BUCKET = "personalize-data"

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_url():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def s3(s3_url):
    mp = pytest.MonkeyPatch()
    conn = {"conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"region_name": "us-east-1", "endpoint_url": s3_url}}  # fmt: skip
    mp.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(conn))
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3", endpoint_url=s3_url, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")  # fmt: skip
    client.create_bucket(Bucket=BUCKET)
    generated = bingewatch_batches(
        str(BINGE), end_date="2024-01-30", days=30, prefix="landing/mparticle",
        sink=lambda key, body: client.put_object(Bucket=BUCKET, Key=key, Body=body), late_fraction=0.2,
    )  # fmt: skip
    client.generated = generated  # type: ignore[attr-defined]
    yield client
    mp.undo()


def ctx(run_id="scheduled__2024-01-05T00:00:00+00:00", try_number=1):
    return {"run_id": run_id, "ti": types.SimpleNamespace(try_number=try_number)}


def read(client, key) -> bytes:
    return client.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def keys(client, prefix) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def mparticle_op(day: str, task_id="export"):
    from operators.interactions_export import MParticleBatchesToInteractionsOperator

    start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    nxt = (start + dt.timedelta(days=1)).date().isoformat()
    return MParticleBatchesToInteractionsOperator(
        task_id=task_id, bucket=BUCKET, prefix="export",
        source_prefixes=[f"landing/mparticle/dt={day}/", f"landing/mparticle/dt={nxt}/"],
        partition_date=day, interval_start=start.isoformat(),
        interval_end=(start + dt.timedelta(days=1)).isoformat(),
    )  # fmt: skip


def partition_rows(client, manifest) -> list[list[str]]:
    rows = []
    for f in manifest["files"]:
        rows += list(csv.reader(io.StringIO(read(client, f["key"]).decode())))[1:]
    return rows


def test_mparticle_day_publish_rerun_and_isolation(s3):
    expected = s3.generated.rows_per_day
    for day in ("2024-01-04", "2024-01-05"):
        out = mparticle_op(day).execute(ctx(f"scheduled__{day}T00:00:00+00:00"))
        assert out["rows"] == expected[day]
        assert out["partition"] == day
        assert not out["empty"]
    other_before = read(s3, "export/interactions/dt=2024-01-04/_manifest.json")

    first = json.loads(read(s3, "export/interactions/dt=2024-01-05/_manifest.json"))
    first_rows = partition_rows(s3, first)
    assert len(first_rows) == expected["2024-01-05"]
    assert first["stats"]["events_out_of_interval"] > 0  # the look-around folder had other days
    assert {r[0] for r in first_rows} <= {str(m) for m in s3.generated.mapping.values()}
    old_files = {f["key"]: read(s3, f["key"]) for f in first["files"]}

    second_out = mparticle_op("2024-01-05").execute(ctx(try_number=2))
    second = json.loads(read(s3, "export/interactions/dt=2024-01-05/_manifest.json"))
    assert second["run_key"] != first["run_key"]
    assert second_out["run_key"].endswith(".try2")
    assert partition_rows(s3, second) == first_rows  # deterministic content
    for key, body in old_files.items():  # previous run untouched
        assert read(s3, key) == body
    assert read(s3, f"export/interactions/dt=2024-01-05/run={first['run_key']}/_manifest.json")
    assert read(s3, "export/interactions/dt=2024-01-04/_manifest.json") == other_before


def test_empty_interval_publishes_header_only(s3):
    out = mparticle_op("2023-06-01").execute(ctx("manual__empty"))
    assert out["empty"]
    assert out["rows"] == 0
    assert out["source_files"] == 0
    manifest = json.loads(read(s3, "export/interactions/dt=2023-06-01/_manifest.json"))
    assert read(s3, manifest["files"][0]["key"]) == b"USER_ID,ITEM_ID,EVENT_TYPE,TIMESTAMP,EVENT_VALUE\n"


def test_quarantine_threshold_fails_without_publishing(s3):
    from airflow.providers.common.compat.sdk import AirflowException

    s3.put_object(Bucket=BUCKET, Key="landing/bad/dt=2024-02-01/b.json", Body=b"garbage\n" * 10)
    from operators.interactions_export import MParticleBatchesToInteractionsOperator

    op = MParticleBatchesToInteractionsOperator(
        task_id="bad", bucket=BUCKET, prefix="badexport", source_prefixes="landing/bad/dt=2024-02-01/",
        partition_date="2024-02-01", interval_start="2024-02-01T00:00:00+00:00",
        interval_end="2024-02-02T00:00:00+00:00",
    )  # fmt: skip
    with pytest.raises(AirflowException, match="quarantined share"):
        op.execute(ctx("manual__bad"))
    assert not keys(s3, "badexport/interactions/dt=2024-02-01/_manifest.json")
    q = [json.loads(x) for x in read(s3, keys(s3, "badexport/")[0]).splitlines()]
    assert len(q) == 10
    assert q[0]["reason"] == "malformed_json"


def test_truncated_file_fails_by_default(s3):
    from airflow.providers.common.compat.sdk import AirflowException

    from operators.interactions_export import MParticleBatchesToInteractionsOperator

    body = read(s3, "landing/mparticle/dt=2024-01-10/batches-0000.json.gz")
    s3.put_object(Bucket=BUCKET, Key="landing/trunc/dt=2024-01-10/b.json.gz", Body=body[: len(body) - 40])
    kwargs = dict(task_id="t", bucket=BUCKET, prefix="truncexport", source_prefixes="landing/trunc/",
                  partition_date="2024-01-10", interval_start="2024-01-10T00:00:00+00:00",
                  interval_end="2024-01-11T00:00:00+00:00", max_quarantine_share=0.5)  # fmt: skip
    with pytest.raises(AirflowException, match="truncated"):
        MParticleBatchesToInteractionsOperator(**kwargs).execute(ctx())
    out = MParticleBatchesToInteractionsOperator(allow_truncated_files=True, **kwargs).execute(ctx())
    assert out["quarantined"] == 1
    assert out["rows"] > 0


def test_snapshot_and_validate(s3):
    from airflow.providers.common.compat.sdk import AirflowException

    from operators.interactions_export import BuildTrainingSnapshotOperator, ValidateInteractionsOperator

    for day in range(1, 31):
        ds = f"2024-01-{day:02d}"
        mparticle_op(ds).execute(ctx(f"backfill__{ds}"))
    snap = BuildTrainingSnapshotOperator(task_id="snap", bucket=BUCKET, prefix="export",
                                         snapshot_date="2024-01-30", lookback_days=30).execute(ctx("r1"))  # fmt: skip
    assert snap["partitions"] == 30
    assert snap["rows"] == 1500
    assert not snap["missing"]
    assert snap["snapshot_uri"] == f"s3://{BUCKET}/export/snapshots/2024-01-30-lb30-r1.try1/interactions/"
    files = keys(s3, "export/snapshots/2024-01-30-lb30-r1.try1/interactions/")
    assert len(files) == 30
    assert all(k.endswith(".csv") for k in files)
    report = ValidateInteractionsOperator(task_id="v", s3_uri=snap["snapshot_uri"]).execute(ctx())
    assert report["ok"]
    assert report["rows"] == 1500
    assert report["users"] == 100

    with pytest.raises(AirflowException, match="no manifest"):
        BuildTrainingSnapshotOperator(task_id="s2", bucket=BUCKET, prefix="export",
                                      snapshot_date="2024-02-05", lookback_days=10).execute(ctx())  # fmt: skip

    short = BuildTrainingSnapshotOperator(task_id="s3", bucket=BUCKET, prefix="export",
                                          snapshot_date="2024-01-03", lookback_days=3).execute(ctx("r2"))  # fmt: skip
    with pytest.raises(AirflowException, match=r"150 rows; at least 1000"):
        ValidateInteractionsOperator(task_id="v2", s3_uri=short["snapshot_uri"]).execute(ctx())

    bad_key = "export/snapshots/broken/interactions/x.csv"
    s3.put_object(
        Bucket=BUCKET, Key=bad_key, Body=b"USER_ID,ITEM_ID,EVENT_TYPE,TIMESTAMP\n1,a,v,1700000000000\n"
    )
    with pytest.raises(
        AirflowException, match=rf"s3://{BUCKET}/{bad_key}:2 \[TIMESTAMP\]: looks like epoch milli"
    ):
        ValidateInteractionsOperator(task_id="v3", s3_uri=f"s3://{BUCKET}/export/snapshots/broken/").execute(
            ctx()
        )


@pytest.fixture
def pg_table(monkeypatch):
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        conn = psycopg2.connect(
            host="127.0.0.1", port=5432, user="postgres", dbname="test", connect_timeout=3
        )
    except Exception as exc:  # pragma: no cover - environment without PostgreSQL
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("DROP SCHEMA IF EXISTS export_it CASCADE; CREATE SCHEMA export_it")
    cur.execute("CREATE TABLE export_it.interactions (user_id VARCHAR, item_id VARCHAR, event_type VARCHAR,"
                " event_value FLOAT, event_ts BIGINT)")  # fmt: skip
    with open(BINGE, newline="") as fh:
        rows = [(r["USER_ID"], r["ITEM_ID"], r["EVENT_TYPE"], float(r["EVENT_VALUE"]), int(r["TIMESTAMP"]))
                for r in csv.DictReader(fh)]  # fmt: skip
    cur.executemany("INSERT INTO export_it.interactions VALUES (%s,%s,%s,%s,%s)", rows)
    monkeypatch.setenv("AIRFLOW_CONN_PG_EXPORT", "postgresql://postgres@127.0.0.1:5432/test")
    yield rows
    cur.execute("DROP SCHEMA export_it CASCADE")
    conn.close()


def test_sql_to_interactions_postgres(s3, pg_table):
    import jinja2
    import pendulum

    from operators.interactions_export import SqlToInteractionsOperator

    start, end = pendulum.datetime(2009, 1, 1), pendulum.datetime(2010, 1, 1)
    template = (ROOT / "include/sql/unload_interactions.sql").read_text()
    sql = jinja2.Template(template).render(
        params={"interactions_table": "export_it.interactions"},
        data_interval_start=start,
        data_interval_end=end,
    )
    expected = sorted(r for r in pg_table if start.int_timestamp <= r[4] < end.int_timestamp)
    op = SqlToInteractionsOperator(task_id="sql", sql=sql, conn_id="pg_export", bucket=BUCKET,
                                   prefix="sqlexport", partition_date="2009-01-01", fetch_size=7)  # fmt: skip
    out = op.execute(ctx("scheduled__2009"))
    assert out["rows"] == len(expected) > 10
    manifest = json.loads(read(s3, "sqlexport/interactions/dt=2009-01-01/_manifest.json"))
    assert manifest["header"] == ["USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP", "EVENT_VALUE"]
    got = sorted((r[0], r[1], r[2], float(r[4]), int(r[3])) for r in partition_rows(s3, manifest))
    assert got == expected
    again = op.execute(ctx("scheduled__2009", try_number=2))
    assert again["run_key"] != out["run_key"]
    assert again["rows"] == out["rows"]


def test_incremental_snapshot_imports_only_partitions_not_imported_before(s3):
    """INCREMENTAL: the window's partitions missing from the import record, copied apart (issue 12)."""
    import json

    from operators.interactions_export import BuildTrainingSnapshotOperator

    for day in range(1, 31):
        ds = f"2024-01-{day:02d}"
        mparticle_op(ds).execute(ctx(f"backfill__{ds}"))

    def snapshot(run: str) -> dict:
        return BuildTrainingSnapshotOperator(
            task_id="snap", bucket=BUCKET, prefix="export", snapshot_date="2024-01-30", lookback_days=30,
            import_mode="INCREMENTAL",
        ).execute(ctx(run))  # fmt: skip

    first = snapshot("i0")  # nothing imported yet: AWS takes INCREMENTAL only after a bulk import
    assert first["import_mode"] == "FULL"
    assert first["import_uri"] == first["snapshot_uri"]
    assert len(first["import_partitions"]) == 30

    def record(days: range) -> None:
        pointers = {}
        for day in days:
            ds = f"2024-01-{day:02d}"
            manifest = json.loads(
                s3.get_object(Bucket=BUCKET, Key=f"export/interactions/dt={ds}/_manifest.json")["Body"].read()
            )
            pointers[ds] = manifest["run_key"]
        s3.put_object(
            Bucket=BUCKET,
            Key="export/state/imports/interactions.json",
            Body=json.dumps({"partitions": pointers}),
        )

    record(range(1, 11))
    second = snapshot("i1")
    assert second["import_mode"] == "INCREMENTAL"
    assert sorted(second["import_partitions"]) == [f"2024-01-{d:02d}" for d in range(11, 31)]
    assert second["import_rows"] == 1000
    assert second["import_skip"] is None
    assert (
        second["import_uri"]
        == f"s3://{BUCKET}/export/snapshots/2024-01-30-lb30-i1.try1/interactions-increment/"
    )
    increment = keys(s3, "export/snapshots/2024-01-30-lb30-i1.try1/interactions-increment/")
    assert len(increment) == 20
    assert all(k.rsplit("/", 1)[-1] >= "2024-01-11" for k in increment)
    # the full window is still there for validation and the batch users
    assert len(keys(s3, "export/snapshots/2024-01-30-lb30-i1.try1/interactions/")) == 30

    record(range(1, 26))
    third = snapshot("i2")  # 5 new partitions, 250 rows: under AWS's 1000 per import job
    assert third["import_skip"] is not None
    assert "fewer than the 1000" in third["import_skip"]
    assert keys(s3, "export/snapshots/2024-01-30-lb30-i2.try1/interactions-increment/") == []


def _landing(client, day: str, event_day: str, mpid: int, n: int) -> None:
    """``n`` purchase events of ``event_day`` (at noon) landing in the folder of ``day``."""
    ts = int(dt.datetime.fromisoformat(event_day).replace(hour=12, tzinfo=dt.UTC).timestamp() * 1000)
    event = {"event_type": "commerce_event", "data": {"timestamp_unixtime_ms": ts,
             "product_action": {"action": "purchase", "products": [{"id": f"late-{event_day}", "price": 1}]}}}  # fmt: skip
    batch = {"environment": "production", "mpid": mpid, "events": [event] * n}
    client.put_object(Bucket=BUCKET, Key=f"late/dt={day}/b-{event_day}.json", Body=json.dumps(batch).encode())


def late_op(day: str, lateness: int):
    from personalize_pipeline.factory import landing_day_ds

    from operators.interactions_export import MParticleBatchesToInteractionsOperator

    start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    later = [(start + dt.timedelta(days=d)).date().isoformat() for d in range(1, lateness + 1)]
    assert landing_day_ds(1) == "{{ macros.ds_add(data_interval_start | ds, 1) }}"
    return MParticleBatchesToInteractionsOperator(
        task_id=f"late_{lateness}", bucket=BUCKET, prefix=f"late{lateness}",
        source_prefixes=f"late/dt={day}/", late_source_prefixes=[f"late/dt={d}/" for d in later],
        lateness_days=lateness, partition_date=day, interval_start=start.isoformat(),
        interval_end=(start + dt.timedelta(days=1)).isoformat(),
    )  # fmt: skip


def test_lateness_window_exports_late_events_and_counts_them_per_interval(s3):
    """Issue 13: events landing more than one day late were never exported, only counted out of interval."""
    _landing(s3, "2024-03-10", "2024-03-10", 1, 3)  # on time
    _landing(s3, "2024-03-11", "2024-03-10", 2, 2)  # one day late
    _landing(s3, "2024-03-12", "2024-03-10", 3, 4)  # two days late
    one = late_op("2024-03-10", 1).execute(ctx("scheduled__2024-03-10T00:00:00+00:00"))
    assert (one["rows"], one["late_events"]) == (5, 2)
    two = late_op("2024-03-10", 2).execute(ctx("scheduled__2024-03-10T00:00:00+00:00"))
    assert (two["rows"], two["late_events"]) == (9, 6)
    manifest = json.loads(read(s3, "late2/interactions/dt=2024-03-10/_manifest.json"))
    assert manifest["stats"]["late_events"] == 6
    assert manifest["source"]["late_prefixes"] == ["late/dt=2024-03-11/", "late/dt=2024-03-12/"]
    # the export of the day they landed on says, with a one-day window, that no export takes them
    landing = late_op("2024-03-12", 1).execute(ctx("scheduled__2024-03-12T00:00:00+00:00"))
    assert landing["events_beyond_lateness"] == 4
    assert (
        late_op("2024-03-12", 2).execute(ctx("scheduled__2024-03-12T00:00:00+00:00"))[
            "events_beyond_lateness"
        ]
        == 0
    )
