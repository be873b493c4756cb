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
