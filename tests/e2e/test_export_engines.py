"""The warehouse export paths as generated DAGs, run by ``dag.test()`` against the embedded stack: the
SQL templates rendered by Airflow from ``include/``, the deferrable Data API / Athena waits run by
their triggers, the partition published."""

from __future__ import annotations

import collections
import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
BINGE = REPO / "include" / "data" / "bingewatch" / "interactions.csv"
HEADER = ["USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP", "EVENT_VALUE"]


@pytest.fixture(scope="module")
def airflow_db() -> None:
    """Airflow's metadata database for dag.test(): the session's SQLite (tests/conftest.py)."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run(
        [airflow, "db", "migrate"], env=dict(os.environ), check=True, capture_output=True, timeout=600
    )


def _export_dag(tmp_path: Path, export: dict, bucket: str, monkeypatch) -> object:  # type: ignore[no-untyped-def]
    """The Bingewatch project with ``export`` as its export block; its export DAG."""
    from personalize_pipeline.factory import build_project_dags

    config = REPO / "include" / "config"
    (tmp_path / "bingewatch.json").write_text((config / "bingewatch.json").read_text())
    sidecar = json.loads((config / "bingewatch.pipeline.json").read_text())
    sidecar["pipeline"]["export"] = export
    exclude = sidecar["pipeline"].get("batchInference", {}).get("excludeInteracted")
    if exclude is not None and export.get("source") != "mparticle":
        exclude["eventTypes"] = ["purchase", "view_detail"]  # mParticle's actions are the default
    (tmp_path / "bingewatch.pipeline.json").write_text(json.dumps(sidecar))
    monkeypatch.setenv("AIRFLOW_VAR_PERSONALIZE_BUCKET", bucket)
    monkeypatch.setenv("AIRFLOW_VAR_PERSONALIZE_ROLE_ARN", "arn:aws:iam::123456789012:role/p")
    return {d.dag_id: d for d in build_project_dags(tmp_path / "bingewatch.json")}["bingewatch_export"]


def _partition(s3, bucket: str, day: str) -> tuple[dict, list[list[str]]]:  # type: ignore[no-untyped-def]
    manifest = json.loads(
        s3.get_object(Bucket=bucket, Key=f"bingewatch/interactions/dt={day}/_manifest.json")["Body"].read()
    )
    rows: list[list[str]] = []
    for entry in manifest["files"]:
        lines = list(
            csv.reader(io.StringIO(s3.get_object(Bucket=bucket, Key=entry["key"])["Body"].read().decode()))
        )
        assert lines[0] == HEADER
        rows += lines[1:]
    return manifest, rows


def test_athena_engine_export_dag(local_stack, airflow_db, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from scripts.mparticle_generator import bingewatch_batches

    bucket = "dagtest-athena"
    s3 = local_stack.client("s3")
    s3.create_bucket(Bucket=bucket)
    generated = bingewatch_batches(
        str(BINGE), end_date=dt.date(2026, 11, 10), days=10, prefix="mparticle/events",
        sink=lambda key, body: s3.put_object(Bucket=bucket, Key=key, Body=body),
    )  # fmt: skip
    export = {
        "source": "mparticle", "engine": "athena", "startDate": "2026-09-01",
        "mparticle": {"sourcePrefix": "s3://{{ var.value.personalize_bucket }}/mparticle/events/"},
    }  # fmt: skip
    run = _export_dag(tmp_path, export, bucket, monkeypatch).test(
        logical_date=dt.datetime(2026, 11, 6, tzinfo=dt.UTC)
    )

    assert run.state == "success"
    day = run.data_interval_start.date().isoformat()
    manifest, rows = _partition(s3, bucket, day)
    # the same number of rows as the Python engine exports for the day (test_dag_test.py)
    assert manifest["rows"] == len(rows) == generated.rows_per_day[day] == 150
    assert manifest["source"]["athena"]["query_execution_id"]
    table = local_stack.client("glue").get_table(DatabaseName="bingewatch", Name="mparticle_batches")["Table"]
    assert (
        table["StorageDescriptor"]["Location"] == f"s3://{bucket}/mparticle/events/"
    )  # the template rendered


@pytest.fixture
def warehouse():  # type: ignore[no-untyped-def]
    """The Bingewatch interactions in a PostgreSQL database the Redshift Data API emulator runs on."""
    psycopg2 = pytest.importorskip("psycopg2")
    name = "ap_dagtest_redshift"
    try:
        admin = psycopg2.connect(
            host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3
        )
    except Exception as exc:  # pragma: no cover - environment without PostgreSQL
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    admin.autocommit = True
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.cursor().execute(f"CREATE DATABASE {name}")
    with (
        psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=name) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("CREATE SCHEMA analytics")
        cur.execute("CREATE TABLE analytics.interactions (user_id VARCHAR, item_id VARCHAR, event_type VARCHAR,"
                    " event_value FLOAT, event_ts BIGINT)")  # fmt: skip
        with open(BINGE, newline="") as fh:
            rows = [(r["USER_ID"], r["ITEM_ID"], r["EVENT_TYPE"], float(r["EVENT_VALUE"]), int(r["TIMESTAMP"]))
                    for r in csv.DictReader(fh)]  # fmt: skip
        cur.executemany("INSERT INTO analytics.interactions VALUES (%s,%s,%s,%s,%s)", rows)
    yield name, rows
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


def test_redshift_unload_export_dag(local_stack, airflow_db, warehouse, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    database, rows = warehouse
    per_day = collections.Counter(dt.datetime.fromtimestamp(r[4], tz=dt.UTC).date() for r in rows)
    day, expected = per_day.most_common(1)[0]
    bucket = "dagtest-redshift"
    s3 = local_stack.client("s3")
    s3.create_bucket(Bucket=bucket)
    export = {
        "source": "redshift", "startDate": "2000-01-01",
        "redshift": {"iamRoleArn": "arn:aws:iam::123456789012:role/unload", "database": database,
                     "clusterIdentifier": "warehouse"},
    }  # fmt: skip
    logical = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    run = _export_dag(tmp_path, export, bucket, monkeypatch).test(logical_date=logical)

    assert run.state == "success"
    assert run.data_interval_start.date() == day
    manifest, exported = _partition(s3, bucket, day.isoformat())
    assert manifest["rows"] == len(exported) == expected
    assert manifest["source"]["unload"] is True
    assert all(f["key"].rsplit("/", 1)[1].startswith("part-") for f in manifest["files"])
