"""A DAG run through ``dag.test()`` (the in-process runner) against the embedded stack."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "include" / "config" / "bingewatch.json"


@pytest.fixture(scope="module")
def airflow_db() -> None:
    """Airflow's metadata database for dag.test(): the session's SQLite (tests/conftest.py)."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run(
        [airflow, "db", "migrate"], env=dict(os.environ), check=True, capture_output=True, timeout=600
    )


def test_export_dag_with_dag_test(local_stack, airflow_db, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from personalize_pipeline.factory import build_project_dags

    from scripts.mparticle_generator import bingewatch_batches

    bucket = "dagtest-export"
    s3 = local_stack.client("s3")
    s3.create_bucket(Bucket=bucket)
    generated = bingewatch_batches(
        str(REPO / "include" / "data" / "bingewatch" / "interactions.csv"),
        end_date=dt.date(2026, 11, 10),
        days=10,
        prefix="mparticle/events",
        sink=lambda key, body: s3.put_object(Bucket=bucket, Key=key, Body=body),
    )
    monkeypatch.setenv("AIRFLOW_VAR_PERSONALIZE_BUCKET", bucket)
    monkeypatch.setenv("AIRFLOW_VAR_PERSONALIZE_ROLE_ARN", "arn:aws:iam::123456789012:role/p")

    dag = {d.dag_id: d for d in build_project_dags(CONFIG)}["bingewatch_export"]
    run = dag.test(logical_date=dt.datetime(2026, 11, 6, tzinfo=dt.UTC))

    assert run.state == "success"
    # A manual run exports the interval Airflow infers for it: a full day, named by its start.
    start, end = run.data_interval_start, run.data_interval_end
    assert (end - start) == dt.timedelta(days=1)
    day = start.date().isoformat()
    manifest = json.loads(
        s3.get_object(Bucket=bucket, Key=f"bingewatch/interactions/dt={day}/_manifest.json")["Body"].read()
    )
    assert manifest["rows"] == generated.rows_per_day[day] == 150
    assert manifest["interval"]["start"].startswith(day)
