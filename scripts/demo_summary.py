"""
What the demo prints and reports: facts read back from the stack itself (S3, the Personalize,
Customer Profiles, Pinpoint and mParticle emulators) and from Airflow's REST API — not from the
demo's own memory.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
from pathlib import Path
from typing import Any

from personalize_logic import layout
from personalize_logic.facts import recipes
from personalize_logic.layout import BucketLayout, folder, split_s3


def _s3_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def _export(s3: Any, bucket: str, project: str) -> dict[str, Any]:
    root = layout.dataset_root_prefix(project, "interactions")
    # the partition pointers, not the run folders' copies
    manifests = [k for k in _keys(s3, bucket, root) if layout.is_manifest_key(k, project, "interactions")]
    rows = quarantined = out_of_interval = beyond = 0
    late: dict[str, int] = {}
    for key in manifests:
        manifest = _s3_json(s3, bucket, key) or {}
        rows += int(manifest.get("rows") or 0)
        stats = manifest.get("stats") or {}
        quarantined += int((manifest.get("quarantine") or {}).get("records") or stats.get("quarantined") or 0)
        out_of_interval += int(stats.get("rows_out_of_interval") or 0)
        late[str(manifest.get("partition"))] = int(stats.get("late_events") or 0)
        beyond += int(stats.get("events_beyond_lateness") or 0)
    return {
        "intervals": len(manifests),
        "rows": rows,
        "quarantined": quarantined,
        "out_of_interval": out_of_interval,
        "late_events": sum(late.values()),
        "late_events_by_interval": dict(sorted(late.items())),
        "events_beyond_lateness": beyond,
        "partitions_uri": folder(BucketLayout(bucket, project).dataset_root_uri("interactions")),
    }


def _personalize(stack: Any, bucket: str, project: str) -> dict[str, Any]:
    personalize = stack.client("personalize")
    s3 = stack.client("s3")
    group = next(g for g in personalize.list_dataset_groups()["datasetGroups"] if g["name"] == project)
    imports = []
    for dataset in personalize.list_datasets(datasetGroupArn=group["datasetGroupArn"])["datasets"]:
        for job in personalize.list_dataset_import_jobs(datasetArn=dataset["datasetArn"])[
            "datasetImportJobs"
        ]:
            imports.append(
                {"dataset": dataset["name"], "job_arn": job["datasetImportJobArn"], "status": job["status"]}
            )
    training = []
    for solution in personalize.list_solutions(datasetGroupArn=group["datasetGroupArn"])["solutions"]:
        detail = personalize.describe_solution(solutionArn=solution["solutionArn"])["solution"]
        versions = personalize.list_solution_versions(solutionArn=solution["solutionArn"])["solutionVersions"]
        if not versions:
            continue
        version_arn = versions[0]["solutionVersionArn"]
        metrics = personalize.get_solution_metrics(solutionVersionArn=version_arn)["metrics"]
        state = BucketLayout(bucket, project).solution_state_uri(solution["name"])
        verdict = _s3_json(s3, bucket, split_s3(layout.verdict_uri(state, version_arn.rsplit("/", 1)[-1]))[1])
        training.append(
            {
                "solution": solution["name"],
                "recipe": detail["recipeArn"].rsplit("/", 1)[-1],
                "solution_version_arn": version_arn,
                "metrics": metrics,
                "gate": (verdict or {}).get("verdict", {}),
                "baseline": detail["recipeArn"].endswith("/" + recipes.BASELINE_RECIPE) and not verdict,
            }
        )
    return {"import": imports, "training": training, "dataset_group_arn": group["datasetGroupArn"]}


def _batch_inference(stack: Any, bucket: str, project: str) -> dict[str, Any]:
    s3 = stack.client("s3")
    batch_root = split_s3(folder(BucketLayout(bucket, project).batch_root_uri()))[1]
    outs = [
        k for k in _keys(s3, bucket, batch_root) if f"/{layout.BATCH_INFERENCE}/" in k and k.endswith(".out")
    ]
    users = errors = 0
    scores: list[float] = []
    for key in outs:
        for line in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_lines():
            if not line.strip():
                continue
            record = json.loads(line)
            if record.get("error"):
                errors += 1
                continue
            users += 1
            scores.extend((record.get("output") or {}).get("scores") or [])
    return {
        "users": users,
        "errors": errors,
        "output_uri": folder(layout.s3_uri(bucket, posixpath.dirname(outs[0]))) if outs else None,
        "scores": scores[:20000],
    }


def _segment_size(profiles: Any, domain: str, groups: dict[str, Any]) -> int | None:
    """The size Customer Profiles estimates for ``groups`` (``CreateSegmentEstimate``, polled)."""
    import time

    estimate_id = profiles.create_segment_estimate(DomainName=domain, SegmentQuery=groups)["EstimateId"]
    for _ in range(120):
        answer = profiles.get_segment_estimate(DomainName=domain, EstimateId=estimate_id)
        if answer["Status"] != "RUNNING":
            digits = "".join(ch for ch in str(answer.get("Estimate") or "") if ch.isdigit())
            return int(digits) if digits else None
        time.sleep(0.5)
    return None


def _customer_profiles_segments(
    stack: Any, domain: str, prepared: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The segment definitions the run created in ``domain``, with their size, read from Customer
    Profiles; the prepare step's counts (users, matched, without profile) beside them."""
    profiles = stack.client("customer-profiles")
    by_name = {p["segment_definition_name"]: p for p in prepared}
    found = []
    for item in profiles.list_segment_definitions(DomainName=domain)["Items"]:
        facts = by_name.get(item["SegmentDefinitionName"])
        if facts is None:  # not one of this run's segments (e.g. the every-profile definition)
            continue
        definition = profiles.get_segment_definition(
            DomainName=domain, SegmentDefinitionName=item["SegmentDefinitionName"]
        )
        found.append(
            {
                "destination": "Customer Profiles",
                "name": facts["segment_name"],
                "domain": domain,
                "segment_id": definition["SegmentDefinitionName"],
                "segment_arn": definition["SegmentDefinitionArn"],
                "size": _segment_size(profiles, domain, definition["SegmentGroups"]),
                "query": facts.get("query"),
                "users": facts.get("users"),
                "matched": facts.get("rows"),
                "users_without_match": facts.get("users_without_profile"),
                "csv_uris": [facts["csv_s3_uri"]],
            }
        )
    return found


def _pinpoint_segments(
    stack: Any, application_id: str, resolved: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The Pinpoint segments the run imported (legacy destination), with the resolve step's counts."""
    pinpoint = stack.client("pinpoint")
    by_name = {s["segment_name"]: s for s in resolved}
    found = []
    for segment in pinpoint.get_segments(ApplicationId=application_id)["SegmentsResponse"]["Item"]:
        facts = by_name.get(segment.get("Name"), {})
        found.append(
            {
                "destination": "Pinpoint",
                "name": segment.get("Name"),
                "domain": application_id,
                "segment_id": segment["Id"],
                "size": (segment.get("ImportDefinition") or {}).get("Size"),
                "query": facts.get("query"),
                "users": facts.get("users"),
                "matched": facts.get("endpoints"),
                "users_without_match": facts.get("users_without_endpoint"),
                "csv_uris": facts.get("csv_uris"),
            }
        )
    return found


def _mparticle(stack: Any, mpids: dict[str, str]) -> dict[str, Any]:
    import requests

    base = stack.endpoints["mparticle"]
    with_recs = 0
    sample = None
    for customer_id, mpid in sorted(mpids.items(), key=lambda kv: int(kv[0])):
        response = requests.get(f"{base}/_emulator/profiles/{mpid}", timeout=10)
        if response.status_code != 200:
            continue
        profile = response.json()
        recs = (profile.get("user_attributes") or {}).get("product_recs")
        if recs:
            with_recs += 1
            if sample is None:
                sample = {"mpid": mpid, "customer_id": customer_id, "product_recs": recs}
    stats = requests.get(f"{base}/_emulator/stats", timeout=10).json()
    return {"users_uploaded": with_recs, "emulator_stats": stats, "sample_profile": sample}


def _task_results(airflow: Any, dag_id: str, task_id: str) -> list[Any]:
    """The return values of ``task_id`` (every map index) in the newest successful run of ``dag_id``."""
    runs = [r for r in airflow.dag_runs(dag_id) if r["state"] == "success"]
    if not runs:
        return []
    run_id = runs[-1]["dag_run_id"]
    results = []
    for ti in airflow.task_instances(dag_id, run_id):
        if ti["task_id"] == task_id and ti["state"] == "success":
            results.append(airflow.xcom(dag_id, run_id, task_id, map_index=ti.get("map_index", -1)))
    return results


def collect_summary(
    stack: Any, airflow: Any, seeded: dict[str, Any], ran: dict[str, Any], *, bucket: str, project: str
) -> dict[str, Any]:
    s3 = stack.client("s3")
    where = BucketLayout(bucket, project)
    personalize = _personalize(stack, bucket, project)
    summary: dict[str, Any] = {
        "project": project,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "status": "success",
        "airflow": {
            "url": airflow.base_url,
            # what the running Airflow reports, not what the demo asked for
            "version": airflow.api("GET", "/version")["version"],
            "dag_ids": ran["dag_ids"],
            "export_runs": ran["export_runs"],
        },
        "export": _export(s3, bucket, project),
        "import": personalize["import"][0] if personalize["import"] else {},
        "imports": personalize["import"],
        "training": personalize["training"],
        "batch_inference": _batch_inference(stack, bucket, project),
        "segments": [],
        "outputs": {
            "interactions partitions": folder(where.dataset_root_uri("interactions")),
            "training snapshots": folder(where.snapshots_uri()),
            "batch outputs": folder(where.batch_root_uri()),
            "quality-gate records": folder(where.state_root_uri()),
        },
    }
    interactions_import = [j for j in personalize["import"] if "interactions" in j["job_arn"]]
    if interactions_import:
        summary["import"] = {**interactions_import[0], "mode": "FULL", "rows": summary["export"]["rows"]}
    segments_dag = ran["dag_ids"].get("segments")
    if segments_dag:
        prepared = [
            s for r in _task_results(airflow, segments_dag, "customer_profiles.prepare_uploads") for s in r
        ]
        if prepared:
            summary["segments"] += _customer_profiles_segments(stack, seeded["profiles_domain"], prepared)
            summary["outputs"]["Customer Profiles upload CSVs"] = folder(
                where.segment_root_uri(layout.CUSTOMER_PROFILES)
            )
        resolved = [s for r in _task_results(airflow, segments_dag, "pinpoint.resolve_endpoints") for s in r]
        if resolved:
            summary["segments"] += _pinpoint_segments(stack, seeded["pinpoint_application_id"], resolved)
            summary["outputs"]["Pinpoint segment CSVs"] = folder(where.segment_root_uri())
    if "mparticle" in stack.endpoints:
        summary["mparticle"] = _mparticle(stack, seeded["mpids"])
        mparticle_dag = ran["dag_ids"].get("mparticle")
        uploads = _task_results(airflow, mparticle_dag, "upload_recommendations") if mparticle_dag else []
        for field in ("requests", "dead_lettered", "errors_in_output"):
            summary["mparticle"][field] = sum(int(u.get(field) or 0) for u in uploads)
        summary["mparticle"]["files"] = len(uploads)
    return summary


def gate_line(solution: dict[str, Any]) -> str:
    """One solution's gate verdict, naming the metric it was judged on (it differs per recipe type)."""
    gate = solution.get("gate") or {}
    metrics = solution.get("metrics") or {}
    if not gate:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(metrics.items())[:3])
        return f"no gate verdict ({shown}){' — the gate baseline' if solution.get('baseline') else ''}"
    ratio = gate.get("baseline_ratio")
    versus = f", {ratio:.2f}x the Popularity-Count baseline" if isinstance(ratio, int | float) else ""
    return (
        f"gate on {gate.get('metric')}={gate.get('value')}{versus} — "
        f"{'ACCEPTED' if gate.get('accepted') else 'REJECTED'}: {gate.get('reason')}"
    )


def print_summary(summary: dict[str, Any], report: Path) -> None:
    export = summary["export"]
    lines = [
        "",
        "=== airflow-personalize demo: what happened ===",
        f"airflow     Apache Airflow {summary['airflow'].get('version')} at {summary['airflow'].get('url')}",
        f"export      {export['rows']} interactions in {export['intervals']} daily partitions "
        f"({export['quarantined']} quarantined, {export['late_events']} late events exported, "
        f"{export['events_beyond_lateness']} beyond the lateness window) → {export['partitions_uri']}",
    ]
    for job in summary.get("imports", []):
        lines.append(f"import      {job['dataset']}: {job['status']} ({job['job_arn']})")
    for solution in summary["training"]:
        lines.append(f"training    {solution['solution']} ({solution['recipe']}): {gate_line(solution)}")
    batch = summary["batch_inference"]
    lines.append(f"recs        {batch['users']} users with recommendations → {batch['output_uri']}")
    for segment in summary["segments"]:
        profiles = segment.get("destination") == "Customer Profiles"
        where, unit = ("domain", "profiles") if profiles else ("project", "endpoints")
        lines.append(
            f"segment     {segment['name']}: {segment['size']} {unit} in {segment.get('destination')} {where} "
            f"{segment.get('domain')} (segment {segment['segment_id']}; {segment.get('users')} users, "
            f"{segment.get('users_without_match')} without a match)"
        )
    if "mparticle" in summary:
        mp = summary["mparticle"]
        sample = mp.get("sample_profile") or {}
        lines.append(
            f"mparticle   {mp['users_uploaded']} profiles carry product_recs; e.g. mpid {sample.get('mpid')}: "
            f"{(sample.get('product_recs') or [])[:5]}"
        )
    for name, uri in summary["outputs"].items():
        lines.append(f"output      {name}: {uri}")
    lines.append(f"report      {report}")
    lines.append(f"took        {summary.get('duration_s')} s")
    print("\n".join(lines), flush=True)
