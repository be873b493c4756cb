"""The metrics gate: accepted versions feed the batch jobs, regressions do not, and it says why."""

from __future__ import annotations

import pytest

from personalize_logic.quality_gate import evaluate_gate

M = "normalized_discounted_cumulative_gain_at_10"


def test_first_version_is_accepted_and_says_so() -> None:
    verdict = evaluate_gate({M: 0.2}, metric=M, max_regression=0.1)
    assert verdict.accepted
    assert "first accepted version" in verdict.reason


@pytest.mark.parametrize(
    ("new", "old", "accepted"),
    [
        pytest.param(0.30, 0.30, True, id="equal"),
        pytest.param(0.271, 0.30, True, id="within-margin"),
        pytest.param(0.27, 0.30, True, id="at-margin"),
        pytest.param(0.2699, 0.30, False, id="just-past-margin"),
        pytest.param(0.40, 0.30, True, id="better"),
    ],
)
def test_regression_against_last_accepted(new: float, old: float, accepted: bool) -> None:
    verdict = evaluate_gate({M: new}, metric=M, max_regression=0.1, previous={M: old})
    assert verdict.accepted is accepted
    assert verdict.baseline == old
    if not accepted:
        assert "below the last accepted" in verdict.reason
        assert "keep the accepted version" in verdict.reason


def test_floor_rejects_even_the_first_version() -> None:
    verdict = evaluate_gate({M: 0.05}, metric=M, max_regression=0.1, min_value=0.1)
    assert not verdict.accepted
    assert "below the floor" in verdict.reason


def test_missing_metric_is_rejected_with_the_available_names() -> None:
    verdict = evaluate_gate({"coverage": 0.5}, metric=M, max_regression=0.1)
    assert not verdict.accepted
    assert "coverage" in verdict.reason


# ----------------------------------------------------------------- per recipe type, Popularity-Count
def test_segmentation_metric_gates_a_segmentation_version() -> None:
    """AWS reports hit and recall for USER_SEGMENTATION versions: the gate passes on them."""
    verdict = evaluate_gate({"hit": 0.3, "recall": 0.2}, metric="hit", max_regression=0.1)
    assert verdict.accepted
    assert verdict.metric == "hit"
    assert verdict.reason.startswith("hit=0.3000")


def test_a_metric_the_version_does_not_report_names_the_ones_it_does() -> None:
    verdict = evaluate_gate({"hit": 0.3, "recall": 0.2}, metric=M, max_regression=0.1)
    assert not verdict.accepted
    assert "reports: hit, recall" in verdict.reason


@pytest.mark.parametrize(
    ("value", "popularity", "ratio", "accepted"),
    [
        pytest.param(0.30, 0.20, 1.0, True, id="better-than-popularity"),
        pytest.param(0.20, 0.20, 1.0, True, id="equal-to-popularity"),
        pytest.param(0.19, 0.20, 1.0, False, id="worse-than-popularity"),
        pytest.param(0.23, 0.20, 1.2, False, id="below-the-required-ratio"),
        pytest.param(0.01, 0.0, 1.0, True, id="popularity-scored-zero"),
    ],
)
def test_ratio_over_the_popularity_count_baseline(
    value: float, popularity: float, ratio: float, accepted: bool
) -> None:
    verdict = evaluate_gate(
        {M: value}, metric=M, max_regression=0.1, popularity_metrics={M: popularity}, min_baseline_ratio=ratio
    )
    assert verdict.accepted is accepted
    assert verdict.popularity_value == popularity
    assert verdict.min_baseline_ratio == ratio
    assert "Popularity-Count baseline" in verdict.reason
    if popularity:
        assert verdict.baseline_ratio == pytest.approx(value / popularity)


def test_the_baseline_ratio_is_checked_before_the_last_accepted_version() -> None:
    verdict = evaluate_gate(
        {M: 0.1},
        metric=M,
        max_regression=0.1,
        previous={M: 0.1},
        popularity_metrics={M: 0.2},
        min_baseline_ratio=1.0,
    )
    assert not verdict.accepted
    assert "0.50x the Popularity-Count baseline" in verdict.reason


def test_a_baseline_without_the_metric_rejects() -> None:
    verdict = evaluate_gate(
        {"hit": 0.3}, metric="hit", max_regression=0.1, popularity_metrics={M: 0.2}, min_baseline_ratio=1.0
    )
    assert not verdict.accepted
    assert "reports no 'hit'" in verdict.reason
