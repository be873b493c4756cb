"""The recipe facts table: every row complete and consistent, the look-ups' errors name what to use."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import botocore
import pytest

from personalize_logic.facts import recipes as R

MODEL = next((Path(botocore.__file__).parent / "data" / "personalize").glob("*/service-2.json.gz"))


def _doc(shape: str, member: str) -> str:
    shapes = json.loads(gzip.decompress(MODEL.read_bytes()))["shapes"]
    return shapes[shape]["members"][member]["documentation"]


def test_every_row_cites_an_aws_page_and_is_consistent() -> None:
    types = {R.USER_PERSONALIZATION, R.POPULAR_ITEMS, R.PERSONALIZED_RANKING, R.RELATED_ITEMS}
    for row in R.RECIPES.values():
        assert row.source.startswith("https://docs.aws.amazon.com/personalize/latest/dg/"), row.name
        assert row.default_gate_metric in row.metrics, row.name
        assert "FULL" in row.training_modes, row.name
        assert not (row.batch_inference and row.batch_segment), row.name
        if row.batch_inference or row.batch_segment:
            assert row.batch_input, row.name
        if row.recipe_type == R.USER_SEGMENTATION:
            assert row.batch_segment
            assert row.metrics == ("hit", "recall")
            assert row.filter_kinds == (R.USER_FILTER,)
        elif row.recipe_type in types:
            assert row.metrics == R.RANKING_METRICS
            assert row.filter_kinds == (R.ITEM_FILTER,)


def test_the_recipes_the_project_served_before_are_all_rows() -> None:
    """Every recipe the config or the emulator accepted before the table existed is in it."""
    for name in (
        "aws-user-personalization",
        "aws-user-personalization-v2",
        "aws-popularity-count",
        "aws-sims",
        "aws-similar-items",
        "aws-personalized-ranking",
        "aws-personalized-ranking-v2",
        "aws-item-affinity",
        "aws-item-attribute-affinity",
    ):
        assert R.recipe(R.RECIPE_ARN_PREFIX + name).name == name


def test_update_training_only_where_botocore_documents_it() -> None:
    doc = _doc("CreateSolutionVersionRequest", "trainingMode")
    assert "User-Personalization" in doc
    assert "UPDATE" in doc
    updatable = sorted(r.name for r in R.RECIPES.values() if "UPDATE" in r.training_modes)
    assert updatable == ["aws-user-personalization"]
    assert R.training_mode_error(R.RECIPE_ARN_PREFIX + "aws-user-personalization", "UPDATE") is None
    problem = R.training_mode_error(R.RECIPE_ARN_PREFIX + "aws-item-attribute-affinity", "UPDATE")
    assert problem is not None
    assert "aws-item-attribute-affinity" in problem
    assert "FULL only" in problem


def test_incremental_update_only_for_semantic_similarity() -> None:
    assert "semantic-similarity recipe" in _doc("CreateSolutionRequest", "performIncrementalUpdate")
    assert [r.name for r in R.RECIPES.values() if r.incremental_update] == ["aws-semantic-similarity"]


def test_item_attribute_affinity_takes_no_interaction_filters() -> None:
    assert R.RECIPES["aws-item-attribute-affinity"].interaction_filters is False
    assert R.RECIPES["aws-item-affinity"].interaction_filters is True


def test_batch_jobs_per_recipe() -> None:
    assert not R.RECIPES["aws-trending-now"].batch_inference
    assert not R.RECIPES["aws-next-best-action"].batch_inference
    assert R.RECIPES["aws-similar-items"].theme_generation
    assert [r.name for r in R.RECIPES.values() if r.theme_generation] == ["aws-similar-items"]
    assert R.RECIPES["aws-item-affinity"].max_batch_input_lines == 500
    assert R.RECIPES["aws-item-attribute-affinity"].max_batch_input_lines == 10


def test_baseline_is_popularity_count() -> None:
    baseline = R.RECIPES[R.BASELINE_RECIPE]
    assert baseline.recipe_type == R.POPULAR_ITEMS
    assert "hit" not in baseline.metrics


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        ("arn:aws:personalize:::recipe/aws-nope", "unknown recipe"),
        ("arn:aws:personalize:::recipe/aws-hrnn-coldstart", "no longer available"),
        ("arn:aws:personalize:us-east-1:1:recipe/aws-sims", "unknown recipe"),
    ],
)
def test_unknown_and_legacy_recipes_are_refused(arn: str, expected: str) -> None:
    with pytest.raises(R.UnknownRecipeError, match=expected) as err:
        R.recipe(arn)
    if expected == "unknown recipe":
        assert "aws-user-personalization-v2" in str(err.value)


def test_metric_error_lists_the_reported_metrics() -> None:
    arn = R.RECIPE_ARN_PREFIX + "aws-item-affinity"
    assert R.metric_error(arn, "hit") is None
    problem = R.metric_error(arn, "normalized_discounted_cumulative_gain_at_10")
    assert problem is not None
    assert "hit, recall" in problem


def test_customer_profiles_spells_the_segmentation_keys_like_personalize() -> None:
    """The corroborating source for the keys ``hit`` and ``recall`` (see the module docstring)."""
    path = next((Path(botocore.__file__).parent / "data" / "customer-profiles").glob("*/service-2.json.gz"))
    enum = json.loads(gzip.decompress(path.read_bytes()))["shapes"]["TrainingMetricName"]["enum"]
    assert {"hit", "recall", "coverage"} <= set(enum)
    # newer models list Personalize's ranking keys too, spelled exactly as GetSolutionMetrics does
    ranking_like = {m for m in enum if m.startswith(("mean_", "normalized_", "precision_"))}
    assert ranking_like <= set(R.RANKING_METRICS)
