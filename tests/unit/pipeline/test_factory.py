"""The generated DAGs: structure, Asset wiring, Params, intervals and alerting."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from personalize_pipeline.factory import assets, build_project_dags

from personalize_logic.layout import dag_run_key as run_key
from personalize_logic.project_config import load_config

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "include" / "config" / "bingewatch.json"


@pytest.fixture(scope="module")
def dags() -> dict:
    return {dag.dag_id: dag for dag in build_project_dags(CONFIG)}


def test_one_dag_per_stage(dags: dict) -> None:
    assert set(dags) == {
        "bingewatch_export",
        "bingewatch_train",
        "bingewatch_batch",
        "bingewatch_activate_mparticle",
        "bingewatch_activate_segments",
    }


def test_the_unmodified_mpe_file_generates_train_and_batch_dags(tmp_path: Path) -> None:
    shutil.copy(CONFIG, tmp_path / "bingewatch.json")
    ids = {dag.dag_id for dag in build_project_dags(tmp_path / "bingewatch.json")}
    # no export source and no destinations configured: training and the segment job only
    assert ids == {"bingewatch_train", "bingewatch_batch"}


def test_export_runs_have_a_real_data_interval(dags: dict) -> None:
    # A cron string would become a CronTriggerTimetable (data_interval_start == end in Airflow 3).
    from personalize_pipeline.compat import CronDataIntervalTimetable

    timetable = dags["bingewatch_export"].timetable
    assert isinstance(timetable, CronDataIntervalTimetable)
    assert dags["bingewatch_export"].start_date == datetime(2026, 9, 1, tzinfo=UTC)


def test_assets_link_the_stages(dags: dict) -> None:
    cfg = load_config(CONFIG)
    found = assets(cfg)
    export_outlets = {a.uri for t in dags["bingewatch_export"].tasks for a in t.outlets}
    assert found["interactions"].uri in export_outlets

    def uris(condition) -> set[str]:  # type: ignore[no-untyped-def]
        if hasattr(condition, "objects"):  # AssetAll / AssetAny
            return set().union(*(uris(o) for o in condition.objects))
        return {condition.uri}

    def consumed(dag) -> set[str]:  # type: ignore[no-untyped-def]
        return uris(dag.timetable.asset_condition)

    assert consumed(dags["bingewatch_train"]) == {found["interactions"].uri}
    assert consumed(dags["bingewatch_batch"]) == {
        found["solution:bw_aws-item-attribute-affinity"].uri,
        found["solution:bw_user-personalization"].uri,
    }
    assert consumed(dags["bingewatch_activate_mparticle"]) == {found["recommendations"].uri}
    assert consumed(dags["bingewatch_activate_segments"]) == {found["segments"].uri}
    train_outlets = {a.uri for t in dags["bingewatch_train"].tasks for a in t.outlets}
    assert train_outlets == {
        found["solution:bw_aws-item-attribute-affinity"].uri,
        found["solution:bw_user-personalization"].uri,
    }


def test_train_order_and_gate(dags: dict) -> None:
    train = dags["bingewatch_train"]
    assert train.get_task("training_snapshot").downstream_task_ids == {
        "validate_interactions",
        "import_needed",
        "record_import",
    }
    assert train.get_task("validate_interactions").downstream_task_ids == {"import_needed"}
    assert train.get_task("import_needed").downstream_task_ids == {"import_interactions"}
    assert "record_import" in train.get_task("import_interactions").downstream_task_ids
    gate = train.get_task("quality_gate_bw_user_personalization")
    # the shipped gate compares NDCG@10 with a Popularity-Count version trained in the same run
    assert gate.upstream_task_ids == {
        "solution_version_bw_user_personalization",
        "solution_version_popularity_baseline",
    }
    segments_gate = train.get_task("quality_gate_bw_aws_item_attribute_affinity")
    assert segments_gate.upstream_task_ids == {"solution_version_bw_aws_item_attribute_affinity"}
    assert segments_gate.op_kwargs["metric"] == "hit"
    assert segments_gate.op_kwargs["min_baseline_ratio"] is None
    assert gate.op_kwargs["metric"] == "normalized_discounted_cumulative_gain_at_10"
    assert gate.op_kwargs["min_baseline_ratio"] == 0.2
    baseline = train.get_task("solution_popularity_baseline")
    assert baseline.recipe_arn == "arn:aws:personalize:::recipe/aws-popularity-count"
    assert train.get_task("solution_version_popularity_baseline").training_mode == "FULL"
    # the gate is the solution's last task: its outlet (the solution's Asset) starts the batch DAG
    assert gate.downstream_task_ids == set()
    assert [a.uri for a in gate.outlets] == [
        assets(load_config(CONFIG))["solution:bw_user-personalization"].uri
    ]
    # every solution waits for every import (interactions, items, users)
    solution = train.get_task("solution_bw_aws_item_attribute_affinity")
    assert {"import_interactions", "import_items", "import_users"} <= solution.upstream_task_ids
    assert train.get_task("solution_bw_user_personalization").perform_auto_training is False


def test_manual_triggers_take_params(dags: dict) -> None:
    assert dags["bingewatch_train"].params["import_mode"] == "FULL"
    assert dags["bingewatch_train"].params["training_mode"] == "CONFIG"
    assert dags["bingewatch_batch"].params["num_results"] == 25
    assert dags["bingewatch_activate_segments"].params["output_path"] == ""


def test_mparticle_upload_is_mapped_per_output_file(dags: dict) -> None:
    upload = dags["bingewatch_activate_mparticle"].get_task("upload_recommendations")
    assert type(upload).__name__ == "MappedOperator"
    assert upload.max_active_tis_per_dagrun == 1


def test_every_dag_retries_with_backoff_and_an_owner(dags: dict) -> None:
    for dag in dags.values():
        for task in dag.tasks:
            assert task.retries >= 2, (dag.dag_id, task.task_id)
            assert task.owner == "personalization"
        assert dag.default_args["retry_exponential_backoff"] is True


def test_run_key_is_stable_and_s3_safe() -> None:
    key = run_key("manual__2026-11-22T17:26:49.100398+00:00")
    assert key == run_key("manual__2026-11-22T17:26:49.100398+00:00")
    assert key != run_key("manual__2026-11-22T17:26:49.100399+00:00")
    assert all(c.isalnum() or c in "-_" for c in key)


def test_alerting_uses_the_providers_notifiers(tmp_path: Path) -> None:
    data = json.loads(CONFIG.read_text())
    sidecar = json.loads((CONFIG.parent / "bingewatch.pipeline.json").read_text())
    sidecar["pipeline"]["alerting"] = {
        "snsTopicArn": "arn:aws:sns:us-east-1:123456789012:alerts",
        "emails": ["oncall@example.com"],
    }
    (tmp_path / "bingewatch.json").write_text(json.dumps(data))
    (tmp_path / "bingewatch.pipeline.json").write_text(json.dumps(sidecar))
    from airflow.providers.amazon.aws.notifications.sns import SnsNotifier
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    for dag in build_project_dags(tmp_path / "bingewatch.json"):
        callbacks = dag.default_args["on_failure_callback"]
        assert [type(c) for c in callbacks] == [SnsNotifier, SmtpNotifier]
        assert callbacks[0].target_arn == "arn:aws:sns:us-east-1:123456789012:alerts"


def test_stages_select_their_dags_and_an_unknown_stage_is_an_error() -> None:
    assert {d.dag_id for d in build_project_dags(CONFIG, stages=("activate",))} == {
        "bingewatch_activate_mparticle",
        "bingewatch_activate_segments",
    }
    assert [d.dag_id for d in build_project_dags(CONFIG, stages=("train",))] == ["bingewatch_train"]
    with pytest.raises(ValueError, match="unknown stage"):
        build_project_dags(CONFIG, stages=("training",))


def test_batch_inference_excludes_interacted_items_through_a_filter(dags: dict) -> None:
    """The shipped config's excludeInteracted: a filter created if missing, passed as filterArn."""
    batch = dags["bingewatch_batch"]
    flt = batch.get_task("filter_exclude_interacted")
    assert flt.name == "bingewatch-exclude-interacted"
    assert flt.filter_expression.startswith('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase"')
    job = batch.get_task("batch_inference_bw_user_personalization")
    assert "filter_exclude_interacted" in job.upstream_task_ids
    assert getattr(job.filter_arn, "operator", None) is flt
    segments = batch.get_task("batch_segment_bw_aws_item_attribute_affinity")
    assert segments.filter_arn is None  # an item filter: batch segment jobs take UserID filters only


def test_train_params_offer_what_the_recipes_and_jobs_allow(dags: dict) -> None:
    params = dags["bingewatch_train"].params
    # batch segment jobs use FULL bulk data only, and no solution here takes UPDATE (v2, segmentation)
    assert params.get_param("import_mode").schema["enum"] == ["FULL"]
    assert params.get_param("training_mode").schema["enum"] == ["CONFIG", "FULL"]


def _with_activation(tmp_path: Path, **activation: object) -> Path:
    """A copy of the Bingewatch config whose ``pipeline.activation`` blocks are replaced."""
    sidecar = json.loads((CONFIG.parent / "bingewatch.pipeline.json").read_text())
    sidecar["pipeline"]["activation"].update(activation)
    shutil.copy(CONFIG, tmp_path / "bingewatch.json")
    (tmp_path / "bingewatch.pipeline.json").write_text(json.dumps(sidecar))
    return tmp_path / "bingewatch.json"


def test_the_segment_dag_has_one_group_per_enabled_destination(dags: dict, tmp_path: Path) -> None:
    shipped = dags["bingewatch_activate_segments"]
    assert {t.task_id for t in shipped.tasks} == {
        "resolve_batch_outputs",
        "customer_profiles.prepare_uploads",
        "customer_profiles.upload_requests",
        "customer_profiles.upload_segment",
        "customer_profiles.segment_requests",
        "customer_profiles.create_segment",
    }
    upload = shipped.get_task("customer_profiles.upload_segment")
    assert upload.partial_kwargs["data_expiry_days"] == 365
    assert shipped.get_task("customer_profiles.create_segment").upstream_task_ids >= {
        "customer_profiles.upload_segment"
    }
    pinpoint = json.loads((CONFIG.parent / "bingewatch.pipeline.json").read_text())["pipeline"]["activation"][
        "pinpoint"
    ]
    both = build_project_dags(
        _with_activation(tmp_path, pinpoint={**pinpoint, "enabled": True}), ("activate",)
    )
    ids = {t.task_id for d in both if d.dag_id.endswith("segments") for t in d.tasks}
    assert {
        "customer_profiles.upload_segment",
        "pinpoint.resolve_endpoints",
        "pinpoint.import_segment",
    } <= ids
    assert "legacy" in next(d for d in both if d.dag_id.endswith("segments")).doc_md


def test_no_segment_destination_no_segment_dag(tmp_path: Path) -> None:
    sidecar = json.loads((CONFIG.parent / "bingewatch.pipeline.json").read_text())
    blocks = sidecar["pipeline"]["activation"]
    off = {key: {**blocks[key], "enabled": False} for key in ("customerProfiles", "pinpoint")}
    ids = {d.dag_id for d in build_project_dags(_with_activation(tmp_path, **off))}
    assert "bingewatch_activate_segments" not in ids
