"""
The project's parsers against the samples AWS and mParticle document (``tests/contract/README.md``).

No stack: pure parsers. ``test_emulators.py`` holds the emulators to the same samples.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path
from typing import Any

import botocore
import pytest

from personalize_logic.batch_output import iter_output_records
from personalize_logic.facts import recipes
from personalize_logic.quality_gate import evaluate_gate
from personalize_logic.segments import EndpointIndex, iter_segment_lines

HERE = Path(__file__).resolve().parent
PERSONALIZE = HERE / "personalize"
PINPOINT = HERE / "pinpoint"
REPO = HERE.parents[1]


def shared_mparticle() -> Path:
    """``../shared/reference/mparticle`` beside the clone (``AP_SHARED_DIR`` overrides the shared folder)."""
    for shared in (os.environ.get("AP_SHARED_DIR"), REPO.parent / "shared", Path("/work/shared")):
        if shared and (Path(shared) / "reference" / "mparticle" / "sample_batch.json").exists():
            return Path(shared) / "reference" / "mparticle"
    pytest.skip("../shared/reference/mparticle is not beside this clone")


def fixture_lines(name: str) -> list[bytes]:
    return (PERSONALIZE / name).read_bytes().splitlines(keepends=True)


def botocore_shape(service: str, shape: str) -> dict[str, Any]:
    path = next((Path(botocore.__file__).parent / "data" / service).glob("*/service-2.json.gz"))
    return json.loads(gzip.decompress(path.read_bytes()))["shapes"][shape]


# ------------------------------------------------------------------------------------------ README
def test_the_readme_lists_every_fixture_with_a_source() -> None:
    readme = (HERE / "README.md").read_text()
    listed = set(re.findall(r"^\| `((?:personalize|pinpoint)/[^`]+)` \|", readme, re.M))
    present = {str(p.relative_to(HERE)) for p in HERE.rglob("*") if p.is_file() and p.parent != HERE}
    present = {p for p in present if not p.startswith(("__pycache__", "customer_profiles/"))}
    assert listed == present
    for line in readme.splitlines():
        if line.startswith("| `personalize/") or line.startswith("| `pinpoint/"):
            assert "https://" in line or "same page" in line, line


# ------------------------------------------------------------------------------- batch inference
BATCH_INFERENCE = {
    "batch_inference_user_personalization.out": ("userId",),
    "batch_inference_popular_items.out": ("userId",),
    "batch_inference_personalized_ranking.out": ("userId", "itemList"),
    "batch_inference_related_items.out": ("itemId",),
}


@pytest.mark.parametrize(("name", "input_keys"), BATCH_INFERENCE.items())
@pytest.mark.parametrize("keep_scores", [True, False])
def test_batch_inference_reader_reads_every_documented_sample(
    name: str, input_keys: tuple[str, ...], keep_scores: bool
) -> None:
    records = list(iter_output_records(iter(fixture_lines(name)), keep_scores=keep_scores))
    assert len(records) == 3
    for record in records:
        assert record.ok, record
        assert tuple(sorted(record.input or {})) == tuple(sorted(input_keys))
        items = record.output["recommendedItems"]  # type: ignore[index]
        assert items
        assert all(isinstance(i, str) for i in items)
        if keep_scores and "scores" in (record.output or {}):
            assert len(record.output["scores"]) == len(items)  # type: ignore[index]
        if not keep_scores:
            assert "scores" not in (record.output or {})


def test_batch_inference_input_keys_are_the_recipe_tables() -> None:
    """The facts table's batch input per recipe type is what the documented output echoes."""
    for name, row in (
        ("batch_inference_user_personalization.out", recipes.RECIPES["aws-user-personalization"]),
        ("batch_inference_popular_items.out", recipes.RECIPES["aws-popularity-count"]),
        ("batch_inference_personalized_ranking.out", recipes.RECIPES["aws-personalized-ranking"]),
        ("batch_inference_related_items.out", recipes.RECIPES["aws-sims"]),
    ):
        first = json.loads(fixture_lines(name)[0])
        assert tuple(first["input"]) == row.batch_input, name


# --------------------------------------------------------------------------------- batch segment
@pytest.mark.parametrize(
    ("name", "kind", "first_query", "first_users"),
    [
        ("batch_segment_item_affinity.out", "itemId", "105", ("106", "107", "49")),
        (
            "batch_segment_item_attribute_affinity.out",
            "itemAttributes",
            'ITEMS.genres = "Comedy" AND ITEMS.genres = "Action"',
            ("25", "78", "108"),
        ),
    ],
)
def test_segment_line_parser_reads_every_documented_sample(
    name: str, kind: str, first_query: str, first_users: tuple[str, ...]
) -> None:
    lines = list(iter_segment_lines(fixture_lines(name), source=name))
    assert len(lines) == 3
    assert all(line.ok and line.query_kind == kind and line.users for line in lines)
    assert (lines[0].query, lines[0].users) == (first_query, first_users)


# ------------------------------------------------------------------------------ GetSolutionMetrics
METRICS = {
    "get_solution_metrics_user_personalization.json": "aws-user-personalization",
    "get_solution_metrics_user_personalization_objective.json": "aws-user-personalization",
    "get_solution_metrics_user_segmentation.json": "aws-item-attribute-affinity",
}


@pytest.mark.parametrize(("name", "recipe"), METRICS.items())
def test_documented_metrics_responses_fit_the_recipe_table_and_pass_the_gate(name: str, recipe: str) -> None:
    response = json.loads((PERSONALIZE / name).read_text())
    shape = botocore_shape("personalize", "GetSolutionMetricsResponse")
    assert set(response) == set(shape["members"])
    metrics = response["metrics"]
    assert all(isinstance(v, float) for v in metrics.values())
    row = recipes.RECIPES[recipe]
    assert set(row.metrics) <= set(metrics)
    extra = set(metrics) - set(row.metrics)
    assert extra <= {"average_rewards_at_k"}  # only with an optimization objective (metrics page)
    verdict = evaluate_gate(metrics, metric=row.default_gate_metric, max_regression=0.1)
    assert verdict.accepted, verdict.reason


def test_the_old_ndcg_gate_rejects_a_documented_segmentation_response() -> None:
    """The bug this table fixes: NDCG on a USER_SEGMENTATION version is missing, so it was rejected."""
    metrics = json.loads((PERSONALIZE / "get_solution_metrics_user_segmentation.json").read_text())["metrics"]
    verdict = evaluate_gate(metrics, metric="normalized_discounted_cumulative_gain_at_10", max_regression=0.1)
    assert not verdict.accepted
    assert "reports: hit, recall" in verdict.reason


# -------------------------------------------------------------------------------- Pinpoint export
def test_export_lines_are_endpoint_responses() -> None:
    members = set(botocore_shape("pinpoint", "EndpointResponse")["members"])
    for line in (PINPOINT / "endpoint_export.jsonl").read_text().splitlines():
        assert set(json.loads(line)) <= members


@pytest.mark.parametrize("compressed", [False, True])
def test_the_endpoint_index_reads_the_documented_export_lines(tmp_path: Path, compressed: bool) -> None:
    body = (PINPOINT / "endpoint_export.jsonl").read_bytes()
    path = tmp_path / ("part-0.gz" if compressed else "part-0.json")
    path.write_bytes(gzip.compress(body) if compressed else body)
    with EndpointIndex([path], tmp_path / "work") as index:
        assert index.size == 3  # the endpoint without a user cannot be in a segment
    with EndpointIndex([path], tmp_path / "work-email", channel_types=["EMAIL"]) as index:
        rows = sorted(index._run("SELECT user_id, value FROM keys"))  # value: the endpoint id
    assert rows == [("example-user-id-2", "ep-email-1"), ("example-user-id-2", "ep-email-2")]


# ------------------------------------------------------------------------------------- mParticle
def test_mparticles_sample_batch_is_valid_against_its_schema() -> None:
    import jsonschema

    folder = shared_mparticle()
    schema = json.loads((folder / "mparticle.inbound.eventsapi.schema.json").read_text())
    sample = json.loads((folder / "sample_batch.json").read_text())
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(sample)
