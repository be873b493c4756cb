"""End-to-end fixtures: the Bingewatch pipeline run once in a real Airflow, shared by the e2e tests."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "build" / "e2e"
DAYS = 30


@pytest.fixture(scope="session")
def airflow_pipeline(local_stack) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """
    Seed the stack, start api-server + scheduler + dag-processor + triggerer on PostgreSQL, run the
    whole pipeline through the REST API and ``airflow backfill create``; yield what it produced.
    """
    from scripts.airflow_local import LocalAirflow, postgres_url
    from scripts.demo import airflow_env, run_pipeline, seed, summarise

    db_url = os.environ.get("AP_E2E_DB_URL") or postgres_url("airflow_personalize_e2e")
    if db_url is None:
        pytest.skip("no PostgreSQL on 127.0.0.1:5432 for Airflow's metadata database (.ci/run starts it)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    end_date = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    seeded = seed(local_stack, end_date=end_date, days=DAYS, bucket="e2e-pipeline")
    airflow = LocalAirflow(
        ARTIFACTS / "airflow-home", db_url=db_url, extra_env=airflow_env(local_stack, seeded)
    )
    airflow.wipe()
    airflow.start()
    try:
        ran = run_pipeline(airflow, end_date=end_date, days=DAYS)
        summary = summarise(local_stack, airflow, seeded, ran)
        yield {"airflow": airflow, "seeded": seeded, "ran": ran, "summary": summary, "stack": local_stack}
    except Exception:
        print(airflow.component_logs(tail=80))
        raise
    finally:
        airflow.stop()
