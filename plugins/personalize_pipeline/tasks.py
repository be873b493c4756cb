"""
The TaskFlow glue between the project's operators: small, idempotent tasks that move S3 URIs and
verdicts around. Heavy work stays in the operators; every function here is cheap and restartable.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk import task

from personalize_logic.layout import accepted_version_uri, latest_accepted_uri, split_s3, verdict_uri
from personalize_pipeline.records import read_json, version_id, write_json

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

log = logging.getLogger(__name__)


def _s3(aws_conn_id: str) -> S3Hook:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=aws_conn_id)


def _uri(asset: Any) -> str:
    return getattr(asset, "uri", None) or str(asset)


def _triggering_uris(context: dict[str, Any]) -> set[str]:
    """URIs of the Assets whose events triggered this run (empty for a manual or scheduled run)."""
    events = context.get("triggering_asset_events") or {}
    return {_uri(asset) for asset, asset_events in events.items() if asset_events}


def _event_extra(context: dict[str, Any], asset_uri: str) -> dict[str, Any] | None:
    """The ``extra`` of the newest event of ``asset_uri`` that triggered this run, if any."""
    events = context.get("triggering_asset_events") or {}
    newest: dict[str, Any] | None = None
    for asset, asset_events in events.items():
        if _uri(asset) != asset_uri:
            continue
        for event in asset_events:
            extra = dict(getattr(event, "extra", None) or {})
            if extra:
                newest = extra
    return newest


@task.short_circuit(ignore_downstream_trigger_rules=False)
def has_s3_data(location: str, aws_conn_id: str = "aws_default") -> bool:
    """Skip an optional dataset import (items, users) when its S3 location holds no data."""
    hook = _s3(aws_conn_id)
    bucket, key = split_s3(location)
    keys = [k for k in hook.list_keys(bucket_name=bucket, prefix=key) or [] if k.endswith(".csv")]
    if not keys:
        log.info("No CSV under %s: the import of this optional dataset is skipped.", location)
    return bool(keys)


@task.short_circuit(ignore_downstream_trigger_rules=False)
def import_needed(snapshot: dict[str, Any]) -> bool:
    """Skip the interactions import when the snapshot's import plan says so (INCREMENTAL, nothing due)."""
    skip = snapshot.get("import_skip")
    if skip:
        log.info("The interactions import is skipped this run: %s", skip)
    return not skip


@task
def record_import(
    snapshot: dict[str, Any], state_uri: str, aws_conn_id: str = "aws_default"
) -> dict[str, Any]:
    """
    After a successful import, record which partitions the dataset now holds in bulk: FULL replaced
    them all with the window's, INCREMENTAL added its partitions to those before. A retry rewrites
    the same record.
    """
    s3 = _s3(aws_conn_id)
    imported: dict[str, str] = {}
    if snapshot["import_mode"] == "INCREMENTAL":
        imported = dict((read_json(s3, state_uri) or {}).get("partitions", {}))
    imported.update(snapshot["import_partitions"])
    record = {
        "partitions": dict(sorted(imported.items())),
        "last_import": {
            "mode": snapshot["import_mode"],
            "uri": snapshot["import_uri"],
            "partitions": sorted(snapshot["import_partitions"]),
        },
    }
    write_json(s3, state_uri, record)
    return record


@task
def quality_gate(
    solution_version_arn: str,
    state_prefix: str,
    snapshot_uri: str,
    metric: str,
    max_regression: float,
    asset_uri: str,
    min_value: float | None = None,
    popularity_version_arn: str | None = None,
    min_baseline_ratio: float | None = None,
    aws_conn_id: str = "aws_default",
    **context: Any,
) -> dict[str, Any]:
    """
    Compare the new version's gate metric with the last accepted version of the same solution and,
    when ``min_baseline_ratio`` is set, with the Popularity-Count version ``popularity_version_arn``
    trained on the same data in this run (:func:`personalize_logic.quality_gate.evaluate_gate`).

    Accepted: record it (``<state>/accepted/<version>.json`` + ``latest.json``) and succeed; the
    task's outlet, the solution's Asset, gets an event whose extra names the version, and that
    event starts the batch DAG. Rejected: record the verdict and end *skipped* with the reason, so
    no Asset event is emitted and the batch jobs keep using the last accepted version. Re-running
    the gate for the same version gives the same verdict.
    """
    from airflow.providers.common.compat.sdk import AirflowSkipException

    from personalize_logic.quality_gate import evaluate_gate

    metrics = _solution_metrics(solution_version_arn, aws_conn_id)
    popularity = (
        _solution_metrics(popularity_version_arn, aws_conn_id)
        if popularity_version_arn and min_baseline_ratio is not None
        else None
    )
    s3 = _s3(aws_conn_id)
    latest = read_json(s3, latest_accepted_uri(state_prefix))
    baseline = _baseline_metrics(latest, solution_version_arn)
    verdict = evaluate_gate(
        metrics,
        metric=metric,
        max_regression=max_regression,
        previous=baseline,
        min_value=min_value,
        popularity_metrics=popularity,
        min_baseline_ratio=min_baseline_ratio,
    )
    record = {
        "solution_version_arn": solution_version_arn,
        "metrics": metrics,
        "baseline_metrics": baseline,
        "baseline_version": latest.get("solution_version_arn") if latest else None,
        "popularity_version_arn": popularity_version_arn if popularity is not None else None,
        "popularity_metrics": popularity,
        "snapshot_uri": snapshot_uri,
        "verdict": verdict.as_dict(),
        "run_id": context.get("run_id"),
    }
    vid = version_id(solution_version_arn)
    write_json(s3, verdict_uri(state_prefix, vid), record)
    if not verdict.accepted:
        log.warning("Quality gate REJECTED %s on %s: %s", solution_version_arn, metric, verdict.reason)
        raise AirflowSkipException(f"quality gate rejected {solution_version_arn}: {verdict.reason}")
    log.info("Quality gate accepted %s on %s: %s", solution_version_arn, metric, verdict.reason)
    _record_acceptance(s3, state_prefix, vid, record)
    _emit_solution_version_event(context, asset_uri, record)
    return record


def _solution_metrics(solution_version_arn: str, aws_conn_id: str) -> dict[str, float]:
    from hooks.personalize import PersonalizeHook

    return PersonalizeHook(aws_conn_id=aws_conn_id).conn.get_solution_metrics(
        solutionVersionArn=solution_version_arn
    )["metrics"]


def _baseline_metrics(latest: dict[str, Any] | None, solution_version_arn: str) -> dict[str, Any] | None:
    """The metrics the new version is compared with: the last accepted version's."""
    if latest and latest.get("solution_version_arn") == solution_version_arn:
        return latest.get("baseline_metrics")  # a rerun: compare with what it was compared with
    return latest.get("metrics") if latest else None


def _record_acceptance(s3: S3Hook, state_prefix: str, vid: str, record: dict[str, Any]) -> None:
    """One record per accepted version (never replaced by another version's), then the pointer."""
    write_json(s3, accepted_version_uri(state_prefix, vid), record)
    write_json(s3, latest_accepted_uri(state_prefix), record)


def _emit_solution_version_event(context: dict[str, Any], asset_uri: str, record: dict[str, Any]) -> None:
    """The outlet event that starts the batch DAG on this version."""
    from airflow.sdk import Asset

    context["outlet_events"][Asset(asset_uri)].extra = {
        key: record[key] for key in ("solution_version_arn", "snapshot_uri", "metrics")
    }


@task
def resolve_solution_version(
    asset_uri: str, state_prefix: str, aws_conn_id: str = "aws_default", **context: Any
) -> dict[str, Any]:
    """
    The solution version this batch run uses: the one whose Asset event triggered the run, else
    (a manual run) the last version the quality gate accepted. No accepted version: skip.

    A run triggered by *another* solution's new version skips this solution's jobs: its accepted
    version has not changed, so re-running its batch jobs would only repeat their output.
    """
    from airflow.providers.common.compat.sdk import AirflowSkipException

    triggered_by = _triggering_uris(context)
    if triggered_by and asset_uri not in triggered_by:
        raise AirflowSkipException(
            f"this run was triggered by {sorted(triggered_by)}, not by {asset_uri}: "
            "this solution's version is unchanged, its batch jobs are not re-run"
        )
    extra = _event_extra(context, asset_uri)
    if extra and extra.get("solution_version_arn"):
        log.info("Triggered by the accepted version %s", extra["solution_version_arn"])
        return {k: extra[k] for k in ("solution_version_arn", "snapshot_uri") if k in extra}
    latest = read_json(_s3(aws_conn_id), latest_accepted_uri(state_prefix))
    if not latest:
        raise AirflowSkipException(f"no accepted solution version under {state_prefix} yet")
    log.info("Using the last accepted version %s", latest["solution_version_arn"])
    return {"solution_version_arn": latest["solution_version_arn"], "snapshot_uri": latest["snapshot_uri"]}


@task
def prepare_inference_input(
    resolved: dict[str, Any], input_uri: str, aws_conn_id: str = "aws_default"
) -> str:
    """
    Write the batch inference input (``{"userId": …}`` per line) for every user of the training
    snapshot, streamed file by file. Rewriting it for the same run gives the same object.
    """
    s3 = _s3(aws_conn_id)
    bucket, prefix = split_s3(resolved["snapshot_uri"])
    users: set[str] = set()
    for key in sorted(k for k in s3.list_keys(bucket_name=bucket, prefix=prefix) or [] if k.endswith(".csv")):
        body = s3.get_key(key, bucket_name=bucket).get()["Body"]
        reader = csv.DictReader(io.TextIOWrapper(body, encoding="utf-8", newline=""))
        users.update(row["USER_ID"] for row in reader)
    lines = "".join(json.dumps({"userId": user}) + "\n" for user in sorted(users))
    out_bucket, out_key = split_s3(input_uri)
    s3.load_string(lines, out_key, bucket_name=out_bucket, replace=True)
    log.info("Batch inference input: %d users → %s", len(users), input_uri)
    return input_uri


@task
def prepare_segment_input(
    queries: list[dict[str, str]] | str,
    default_source: str | None,
    input_uri: str,
    aws_conn_id: str = "aws_default",
) -> str:
    """
    Write the batch segment input: the run's queries (Param ``segment_queries``, else the config's
    ``pipeline.batchSegment.queries``), else a copy of ``default_source``.
    """
    s3 = _s3(aws_conn_id)
    out_bucket, out_key = split_s3(input_uri)
    if isinstance(queries, str):  # rendered from the run's Param as JSON
        queries = json.loads(queries) if queries.strip() else []
    if queries:
        body = "".join(json.dumps(q) + "\n" for q in queries)
    elif default_source:
        src_bucket, src_key = split_s3(default_source)
        body = s3.read_key(src_key, bucket_name=src_bucket)
    else:
        raise ValueError("no segment queries: set pipeline.batchSegment.queries/jobInput or the run's Param")
    s3.load_string(body, out_key, bucket_name=out_bucket, replace=True)
    return input_uri


@task
def publish_batch_output(kind: str, job_arn: str, output_path: str, asset_uri: str, **context: Any) -> dict:
    """Update the ``recommendations`` / ``segments`` Asset with where the job wrote its output."""
    from airflow.sdk import Asset

    extra = {"kind": kind, "job_arn": job_arn, "output_path": output_path}
    context["outlet_events"][Asset(asset_uri)].extra = extra
    return extra


@task
def resolve_batch_output(asset_uri: str, param_output: str | None = None, **context: Any) -> str:
    """The batch job output this activation run reads: its Param, else the triggering Asset event."""
    from airflow.providers.common.compat.sdk import AirflowSkipException

    if param_output:
        return param_output
    extra = _event_extra(context, asset_uri)
    if extra and extra.get("output_path"):
        return extra["output_path"]
    raise AirflowSkipException(
        "no batch output to activate: trigger with the Param 'output_path' or let the batch DAG trigger it"
    )


def _event_extras(context: dict[str, Any], asset_uri: str) -> list[dict[str, Any]]:
    """The ``extra`` of every event of ``asset_uri`` that triggered this run, oldest first."""
    events = context.get("triggering_asset_events") or {}
    found: list[dict[str, Any]] = []
    for asset, asset_events in events.items():
        if _uri(asset) == asset_uri:
            found.extend(dict(getattr(event, "extra", None) or {}) for event in asset_events)
    return found


@task
def resolve_batch_outputs(asset_uri: str, param_output: str | None = None, **context: Any) -> list[str]:
    """
    Every batch job output this activation run reads: its Param, else the output of *each* Asset
    event that triggered it (several batch runs can land before one activation run starts; each
    event's output is activated, none is dropped). Duplicates are read once.
    """
    from airflow.providers.common.compat.sdk import AirflowSkipException

    if param_output:
        return [param_output]
    outputs = list(
        dict.fromkeys(e["output_path"] for e in _event_extras(context, asset_uri) if e.get("output_path"))
    )
    if not outputs:
        raise AirflowSkipException(
            "no batch output to activate: trigger with the Param 'output_path' or let the batch DAG trigger it"
        )
    log.info("Activating %d batch output(s): %s", len(outputs), outputs)
    return outputs


@task
def segment_requests(prepared: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """
    The keyword arguments (``keys`` of each entry) of one mapped activation task per prepared
    segment that has rows to activate; a segment with none is logged, with its counts, and left out.
    """
    requests = []
    for segment in prepared:
        if not segment.get("rows"):
            counts = {k: v for k, v in segment.items() if k.startswith("users")}
            log.warning(
                "Segment %s (%s) has nothing to activate %s: skipped",
                segment["segment_name"],
                segment.get("query"),
                counts,
            )
            continue
        requests.append({key: segment[key] for key in keys})
    return requests


@task
def list_output_files(output_prefix: str, aws_conn_id: str = "aws_default") -> list[str]:
    """The ``.out`` files of a batch inference output: one mapped upload task each."""
    from operators.mparticle import list_batch_output_files

    files = list_batch_output_files(output_prefix, aws_conn_id=aws_conn_id)
    log.info("%d output file(s) under %s", len(files), output_prefix)
    return files
