"""
Config validation rejects what AWS rejects, each error naming the file and the key (issue 12):
unknown recipes, training modes and incremental updates a recipe does not take, gate metrics a
recipe does not report, batch jobs a recipe has none of, numResults out of range, a bucket given as a
URL or empty, a role that is not an IAM role ARN, INCREMENTAL imports beside batch segment jobs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from personalize_logic.project_config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[3]
BINGEWATCH = REPO / "include" / "config" / "bingewatch.json"
SIDECAR = REPO / "include" / "config" / "bingewatch.pipeline.json"
SEGMENTS = "bw_aws-item-attribute-affinity"
RECS = "bw_user-personalization"


def _project(tmp_path: Path, mutate: Any) -> Path:
    data = json.loads(BINGEWATCH.read_text())
    sidecar = json.loads(SIDECAR.read_text())
    data["solutions"] += sidecar.pop("solutions")
    data.update(sidecar)
    mutate(data)
    path = tmp_path / "project.json"
    path.write_text(json.dumps(data))
    return path


def _solution(data: dict, name: str) -> dict:
    return next(s for s in data["solutions"] if s["serviceConfig"]["name"] == name)


def _gate(data: dict) -> dict:
    return data["pipeline"]["training"]["qualityGate"]


def _error(tmp_path: Path, mutate: Any) -> str:
    path = _project(tmp_path, mutate)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: invalid key ")
    return message


@pytest.mark.parametrize(
    ("mutate", "key", "reason"),
    [
        pytest.param(
            lambda d: _solution(d, RECS)["serviceConfig"].update(
                recipeArn="arn:aws:personalize:::recipe/aws-nope"
            ),
            "solutions.1.serviceConfig.recipeArn",
            "unknown recipe",
            id="unknown-recipe",
        ),
        pytest.param(
            lambda d: _solution(d, RECS)["serviceConfig"].update(
                recipeArn="arn:aws:personalize:::recipe/aws-hrnn"
            ),
            "solutions.1.serviceConfig.recipeArn",
            "no longer available",
            id="legacy-recipe",
        ),
        pytest.param(
            lambda d: _solution(d, SEGMENTS)["serviceConfig"].update(
                solutionVersion={"trainingMode": "UPDATE"}
            ),
            "solutions.0.serviceConfig.solutionVersion.trainingMode",
            "not available for the recipe aws-item-attribute-affinity",
            id="update-on-segmentation",
        ),
        pytest.param(
            lambda d: _solution(d, RECS)["serviceConfig"].update(solutionVersion={"trainingMode": "UPDATE"}),
            "solutions.1.serviceConfig.solutionVersion.trainingMode",
            "aws-user-personalization-v2",
            id="update-on-user-personalization-v2",
        ),
        pytest.param(
            lambda d: _solution(d, RECS)["serviceConfig"].update(performIncrementalUpdate=True),
            "solutions.1.serviceConfig.performIncrementalUpdate",
            "semantic-similarity recipe only",
            id="incremental-update",
        ),
        pytest.param(
            lambda d: _gate(d)["solutions"][RECS].update(metric="normalised_dcg_at_10"),
            f"pipeline.training.qualityGate.solutions.{RECS}.metric",
            "GetSolutionMetrics reports: coverage, mean_reciprocal_rank_at_25",
            id="gate-metric-typo",
        ),
        pytest.param(
            lambda d: _gate(d).update(metric="normalized_discounted_cumulative_gain_at_10", solutions={}),
            "pipeline.training.qualityGate.metric",
            f"solution '{SEGMENTS}': the recipe aws-item-attribute-affinity (USER_SEGMENTATION) does not report",
            id="ndcg-for-a-segmentation-solution",
        ),
        pytest.param(
            lambda d: _gate(d)["solutions"].update(nope={"metric": "hit"}),
            "pipeline.training.qualityGate.solutions.nope",
            "no solution is named 'nope'",
            id="gate-of-an-unknown-solution",
        ),
        pytest.param(
            lambda d: _gate(d)["solutions"][SEGMENTS].update(minBaselineRatio=1.1),
            f"pipeline.training.qualityGate.solutions.{SEGMENTS}.minBaselineRatio",
            "aws-popularity-count does not report 'hit'",
            id="baseline-ratio-without-a-baseline",
        ),
        pytest.param(
            lambda d: _solution(d, RECS)["batchInferenceJobs"][0]["serviceConfig"].update(numResults=-5),
            "solutions.1.batchInferenceJobs.0.serviceConfig.numResults",
            "must be a positive integer, got -5",
            id="num-results-negative",
        ),
        pytest.param(
            lambda d: _solution(d, RECS)["batchInferenceJobs"][0]["serviceConfig"].update(numResults=501),
            "solutions.1.batchInferenceJobs.0.serviceConfig.numResults",
            "at most 500",
            id="num-results-over-500",
        ),
        pytest.param(
            lambda d: _solution(d, SEGMENTS)["batchSegmentJobs"][0]["serviceConfig"].update(
                numResults=5_000_001
            ),
            "solutions.0.batchSegmentJobs.0.serviceConfig.numResults",
            "at most 5000000",
            id="segment-num-results-over-5-million",
        ),
        pytest.param(
            lambda d: d["pipeline"]["batchInference"].update(numResults=-5),
            "pipeline.batchInference.numResults",
            ">= 1",
            id="pipeline-num-results-negative",
        ),
        pytest.param(
            lambda d: _solution(d, RECS)["serviceConfig"].update(
                recipeArn="arn:aws:personalize:::recipe/aws-trending-now"
            ),
            "solutions.1.batchInferenceJobs",
            "has no batch inference jobs",
            id="batch-inference-on-trending-now",
        ),
        pytest.param(
            lambda d: _solution(d, RECS)["batchInferenceJobs"][0]["serviceConfig"].update(
                batchInferenceJobMode="THEME_GENERATION"
            ),
            "solutions.1.batchInferenceJobs.0.serviceConfig.batchInferenceJobMode",
            "Similar-Items",
            id="themes-on-user-personalization",
        ),
        pytest.param(
            lambda d: d["pipeline"].update(bucket="s3://my-bucket"),
            "pipeline.bucket",
            "not a bucket name",
            id="bucket-as-url",
        ),
        pytest.param(
            lambda d: d["pipeline"].update(bucket=""), "pipeline.bucket", "is empty", id="bucket-empty"
        ),
        pytest.param(
            lambda d: d["pipeline"].update(bucket="My_Bucket"),
            "pipeline.bucket",
            "not a valid S3 bucket name",
            id="bucket-invalid",
        ),
        pytest.param(
            lambda d: d["pipeline"].update(roleArn="PersonalizeRole"),
            "pipeline.roleArn",
            "not an IAM role ARN",
            id="role-not-an-arn",
        ),
        pytest.param(
            lambda d: d["pipeline"].update(roleArn="arn:aws:iam::123456789012:user/bob"),
            "pipeline.roleArn",
            "not an IAM role ARN",
            id="role-is-a-user",
        ),
        pytest.param(
            lambda d: d["datasets"].update(serviceConfig={"importMode": "INCREMENTAL"}),
            "datasets.serviceConfig.importMode",
            "consider only bulk data imported with FULL",
            id="incremental-beside-segment-jobs",
        ),
        pytest.param(
            lambda d: d["pipeline"]["export"].update(source="none"),
            "pipeline.batchInference.excludeInteracted.eventTypes",
            "required unless export.source is 'mparticle'",
            id="exclusion-filter-without-event-types",
        ),
    ],
)
def test_what_aws_rejects_config_validation_rejects(
    tmp_path: Path, mutate: Any, key: str, reason: str
) -> None:
    message = _error(tmp_path, mutate)
    assert f"invalid key {key}: " in message
    assert reason in message


@pytest.mark.parametrize(
    "values",
    [
        {"bucket": "{{ var.value.personalize_bucket }}", "roleArn": "{{ var.value.personalize_role_arn }}"},
        {"bucket": "my-bucket.data", "roleArn": "arn:aws:iam::123456789012:role/service-role/Personalize"},
        {"bucket": "abc", "roleArn": "arn:aws-cn:iam::123456789012:role/x"},
    ],
)
def test_templated_and_valid_bucket_and_role_load(tmp_path: Path, values: dict) -> None:
    cfg = load_config(_project(tmp_path, lambda d: d["pipeline"].update(values)))
    assert cfg.pipeline.bucket == values["bucket"]


def test_gate_defaults_by_recipe_type(tmp_path: Path) -> None:
    cfg = load_config(_project(tmp_path, lambda d: _gate(d).update(solutions={}, minBaselineRatio=None)))
    gate = cfg.pipeline.training.qualityGate
    by_name = {s.name: gate.gate_for(s) for s in cfg.solutions}
    assert by_name[SEGMENTS].metric == "hit"
    assert by_name[RECS].metric == "normalized_discounted_cumulative_gain_at_10"
    assert not cfg.baseline_needed()


def test_the_global_baseline_ratio_applies_where_popularity_count_reports_the_metric(tmp_path: Path) -> None:
    cfg = load_config(_project(tmp_path, lambda d: _gate(d).update(solutions={}, minBaselineRatio=1.2)))
    gate = cfg.pipeline.training.qualityGate
    by_name = {s.name: gate.gate_for(s) for s in cfg.solutions}
    assert by_name[RECS].min_baseline_ratio == 1.2
    assert by_name[SEGMENTS].min_baseline_ratio is None  # Popularity-Count reports no hit
    assert cfg.baseline_needed()


def test_the_shipped_config_excludes_interacted_items_with_the_exported_event_types() -> None:
    cfg = load_config(BINGEWATCH)
    assert cfg.exclusion_filter_name() == "bingewatch-exclude-interacted"
    assert cfg.exclusion_filter_expression() == (
        'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase", "view_detail", "add_to_cart", '
        '"add_to_wishlist")'
    )


def test_exclusion_event_types_from_the_config(tmp_path: Path) -> None:
    cfg = load_config(
        _project(
            tmp_path,
            lambda d: d["pipeline"]["batchInference"].update(excludeInteracted={"eventTypes": ["watch"]}),
        )
    )
    assert cfg.exclusion_filter_expression() == 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")'
