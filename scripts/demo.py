"""
The main job: the whole pipeline on the embedded stack, on the Bingewatch sample.

``make demo`` (or ``python -m scripts.demo``):

1. starts the embedded stack (moto S3, the Personalize, Pinpoint, Customer Profiles and mParticle
   emulators);
2. seeds it: the Bingewatch interactions as mParticle event batches landed in S3 (one folder per
   day over the last ``--days`` days), the items and users datasets, the batch segment query, a
   Customer Profiles domain with one profile per Bingewatch user (its Personalize user id, the
   mpid, in ``Attributes.personalize_user_id``), and a Pinpoint project whose endpoints carry the
   same user ids (for the legacy destination, off in the shipped config);
3. starts a real Airflow 3 (api-server, scheduler, dag-processor, triggerer; LocalExecutor) on this
   repository's DAGs, pointed at the stack by two connections and four Variables;
4. backfills the export DAG over the window (``airflow backfill create``), then triggers training;
   the Assets do the rest: train → batch inference + batch segment jobs → mParticle uploads and a
   Customer Profiles segment;
5. prints what happened and writes ``build/demo/report.html`` and ``summary.json``.

``--keep-running`` leaves Airflow and the stack up afterwards so you can open the UI.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO / "plugins", REPO):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from emulators.stack import LocalStack, start_stack  # noqa: E402
from scripts.airflow_local import LocalAirflow  # noqa: E402

DATA = REPO / "include" / "data" / "bingewatch"
PROJECT = "bingewatch"
BUCKET = "airflow-personalize-demo"
ROLE_ARN = "arn:aws:iam::123456789012:role/PersonalizeS3Access"
PINPOINT_IMPORT_ROLE = "arn:aws:iam::123456789012:role/PinpointSegmentImport"
PINPOINT_EXPORT_ROLE = "arn:aws:iam::123456789012:role/PinpointEndpointExport"
PROFILES_DOMAIN = "bingewatch"
PROFILES_SNAPSHOT_ROLE = "arn:aws:iam::123456789012:role/CustomerProfilesSnapshot"
PROFILE_KEY = "Attributes.personalize_user_id"
SEGMENT_SOLUTION = "bw_aws-item-attribute-affinity"
RECS_SOLUTION = "bw_user-personalization"


def log(message: str) -> None:
    print(f"[demo {dt.datetime.now():%H:%M:%S}] {message}", flush=True)


# ------------------------------------------------------------------------------------------ seeding
def seed(stack: LocalStack, *, end_date: dt.date, days: int, bucket: str = BUCKET) -> dict[str, Any]:
    """Put the Bingewatch sample where the pipeline expects its inputs; return what was seeded."""
    from emulators.customer_profiles.seed import seed_profiles_from_users_csv
    from emulators.pinpoint.seed import seed_endpoints_from_csv
    from personalize_logic import layout
    from scripts.mparticle_generator import bingewatch_batches

    s3 = stack.client("s3")
    s3.create_bucket(Bucket=bucket)

    def sink(key: str, body: bytes) -> None:
        s3.put_object(Bucket=bucket, Key=key, Body=body)

    generated = bingewatch_batches(
        str(DATA / "interactions.csv"), end_date=end_date, days=days, prefix="mparticle/events", sink=sink
    )
    mpids = {user: str(mpid) for user, mpid in generated.mapping.items()}

    # Items as they are; users keyed by the same id Personalize sees in the interactions (the mpid).
    where = layout.BucketLayout(bucket, PROJECT)

    def put(uri: str, body: bytes) -> None:
        put_bucket, key = layout.split_s3(uri)
        s3.put_object(Bucket=put_bucket, Key=key, Body=body)

    put(layout.join(where.dataset_source_uri("items"), "items.csv"), (DATA / "items.csv").read_bytes())
    users = io.StringIO()
    with (DATA / "users.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        writer = csv.DictWriter(users, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        for row in reader:
            writer.writerow({**row, "USER_ID": mpids.get(row["USER_ID"], row["USER_ID"])})
    put(layout.join(where.dataset_source_uri("users"), "users.csv"), users.getvalue().encode())
    put(where.batch_job_config_uri(SEGMENT_SOLUTION), (DATA / "job_config.json").read_bytes())

    pinpoint = stack.client("pinpoint")
    app_id = pinpoint.create_app(CreateApplicationRequest={"Name": "bingewatch"})["ApplicationResponse"]["Id"]
    endpoints = seed_endpoints_from_csv(pinpoint, app_id, DATA / "endpoints.csv", user_id_map=mpids)
    profiles = seed_profiles_from_users_csv(
        stack.client("customer-profiles"),
        PROFILES_DOMAIN,
        DATA / "users.csv",
        profile_key=PROFILE_KEY,
        user_id_map=mpids,
    )
    return {
        "bucket": bucket,
        "batch_files": len(generated.files),
        "events": sum(generated.events_per_day.values()),
        "rows_per_day": generated.rows_per_day,
        "mpids": mpids,
        "pinpoint_application_id": app_id,
        "pinpoint_endpoints": endpoints,
        "profiles_domain": PROFILES_DOMAIN,
        "profiles": profiles,
    }


def airflow_env(stack: LocalStack, seeded: dict[str, Any]) -> dict[str, str]:
    return {
        **stack.airflow_connections(),
        "AIRFLOW_VAR_PERSONALIZE_BUCKET": seeded["bucket"],
        "AIRFLOW_VAR_PERSONALIZE_ROLE_ARN": ROLE_ARN,
        "AIRFLOW_VAR_PINPOINT_APPLICATION_ID": seeded["pinpoint_application_id"],
        "AIRFLOW_VAR_PINPOINT_IMPORT_ROLE_ARN": PINPOINT_IMPORT_ROLE,
        "AIRFLOW_VAR_PINPOINT_EXPORT_ROLE_ARN": PINPOINT_EXPORT_ROLE,
        "AIRFLOW_VAR_CUSTOMER_PROFILES_DOMAIN": seeded["profiles_domain"],
        "AIRFLOW_VAR_CUSTOMER_PROFILES_SNAPSHOT_ROLE_ARN": PROFILES_SNAPSHOT_ROLE,
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


# -------------------------------------------------------------------------------------- the pipeline
def run_pipeline(airflow: LocalAirflow, *, end_date: dt.date, days: int) -> dict[str, Any]:
    """Drive the DAGs through the REST API and the CLI, exactly as an operator would."""
    from personalize_pipeline.factory import CONFIG_DIR, build_project_dags

    generated = {d.dag_id for d in build_project_dags(CONFIG_DIR / f"{PROJECT}.json")}
    ids = {stage: f"{PROJECT}_{stage}" for stage in ("export", "train", "batch")}
    ids["mparticle"] = f"{PROJECT}_activate_mparticle"
    ids["segments"] = f"{PROJECT}_activate_segments"
    ids = {stage: dag_id for stage, dag_id in ids.items() if dag_id in generated}
    dags = airflow.wait_for_dags(ids.values())
    errors = airflow.import_errors()
    if errors:
        raise RuntimeError(f"DAG import errors: {errors}")
    log(f"Airflow parsed {len(dags)} DAGs with no import error")

    # Training waits until the whole window is exported (a paused DAG queues no Asset events).
    airflow.set_paused(ids["train"], True)
    for stage in ("export", "batch", "mparticle", "segments"):
        if stage in ids:
            airflow.set_paused(ids[stage], False)
    start = end_date - dt.timedelta(days=days - 1)
    log(f"airflow backfill create --dag-id {ids['export']} --from-date {start} --to-date {end_date}")
    airflow.backfill(ids["export"], start.isoformat(), (end_date + dt.timedelta(days=1)).isoformat())
    export_runs = airflow.wait_for_runs(ids["export"], count=days, timeout=1800)
    log(f"export: {len(export_runs)} interval runs succeeded")

    airflow.set_paused(ids["train"], False)
    train_run = airflow.trigger(ids["train"], conf={"import_mode": "FULL"})
    log(f"train: triggered {train_run}")
    airflow.wait_for_runs(ids["train"], count=1, timeout=1800)
    log("train: succeeded; the accepted solution versions update their Assets")
    airflow.wait_for_runs(ids["batch"], count=1, timeout=1800)
    log("batch: batch inference and batch segment jobs succeeded")
    for stage in ("mparticle", "segments"):
        if stage in ids:
            airflow.wait_for_runs(ids[stage], count=1, timeout=1800)
    log("activation: mParticle uploads and segments done")
    return {"dag_ids": ids, "export_runs": len(export_runs), "train_run": train_run}


# --------------------------------------------------------------------------------------- summarising
def summarise(stack: LocalStack, airflow: LocalAirflow, seeded: dict[str, Any], ran: dict[str, Any]) -> dict:
    from scripts.demo_summary import collect_summary

    return collect_summary(stack, airflow, seeded, ran, bucket=seeded["bucket"], project=PROJECT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--workdir", type=Path, default=REPO / "build" / "demo")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--db-url", default=os.environ.get("AP_DEMO_DB_URL"))
    parser.add_argument("--keep-running", action="store_true")
    args = parser.parse_args(argv)

    started = time.monotonic()
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    end_date = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    log(f"starting the embedded stack in {args.workdir / 'stack'}")
    stack = start_stack(args.workdir / "stack", min_job_seconds=2.0)
    airflow = None
    try:
        log(f"stack up: {json.dumps(stack.endpoints)}")
        seeded = seed(stack, end_date=end_date, days=args.days)
        log(
            f"seeded {seeded['events']} interactions as {seeded['batch_files']} mParticle batch files, "
            f"{seeded['profiles']} Customer Profiles profiles in domain {seeded['profiles_domain']}, "
            f"{seeded['pinpoint_endpoints']} Pinpoint endpoints"
        )
        from scripts.airflow_local import postgres_url

        db_url = args.db_url or postgres_url("airflow_personalize_demo")
        log(f"Airflow metadata database: {db_url or 'SQLite (no PostgreSQL on 127.0.0.1:5432)'}")
        airflow = LocalAirflow(args.workdir / "airflow", db_url=db_url, extra_env=airflow_env(stack, seeded))
        log("starting Airflow (api-server, scheduler, dag-processor, triggerer)")
        airflow.start()
        log(f"Airflow UI: {airflow.base_url}")
        ran = run_pipeline(airflow, end_date=end_date, days=args.days)
        summary = summarise(stack, airflow, seeded, ran)
        summary["started_at"] = started_at
        summary["duration_s"] = round(time.monotonic() - started, 1)
        from scripts.run_report import render_report

        (args.workdir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        report = render_report(summary, args.workdir / "report.html")
        from scripts.demo_summary import print_summary

        print_summary(summary, report)
        if args.keep_running:
            log(f"Airflow UI at {airflow.base_url} (Ctrl-C to stop)")
            while True:
                time.sleep(3600)
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        if airflow is not None:
            airflow.stop()
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
