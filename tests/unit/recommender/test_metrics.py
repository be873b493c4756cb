from __future__ import annotations

import math

import pytest

from emulators.personalize.metrics import coverage, mrr_at_k, ndcg_at_k, precision_at_k, solution_metrics


def test_precision_counts_hits_over_k() -> None:
    assert precision_at_k(["a", "b", "c", "d", "e"], {"b", "e", "z"}, 5) == pytest.approx(2 / 5)
    assert precision_at_k(["a", "b"], {"a"}, 5) == pytest.approx(1 / 5)  # denominator is k
    assert precision_at_k(["a", "b", "c"], {"c"}, 2) == 0.0


def test_mrr_uses_first_relevant_position() -> None:
    assert mrr_at_k(["a", "b", "c"], {"c", "b"}, 25) == pytest.approx(1 / 2)
    assert mrr_at_k(["a", "b", "c"], {"c"}, 2) == 0.0
    assert mrr_at_k(["x"], {"x"}, 1) == 1.0


def test_ndcg_hand_computed() -> None:
    # hits at positions 1 and 3, two relevant items: DCG = 1/log2 + 1/log4, IDCG = 1/log2 + 1/log3
    dcg = 1 / math.log(2) + 1 / math.log(4)
    idcg = 1 / math.log(2) + 1 / math.log(3)
    assert ndcg_at_k(["a", "x", "b"], {"a", "b"}, 3) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["a", "b"], {"a", "b"}, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], {"a"}, 10) == 0.0
    assert ndcg_at_k(["x"], set(), 10) == 0.0
    # IDCG is capped at k: 3 relevant items, k = 1, hit at 1 → perfect
    assert ndcg_at_k(["a"], {"a", "b", "c"}, 1) == pytest.approx(1.0)


def test_coverage_and_bad_k() -> None:
    assert coverage([["a", "b"], ["b", "c"]], 6) == pytest.approx(0.5)
    assert coverage([], 0) == 0.0
    with pytest.raises(ValueError, match="k must be positive"):
        precision_at_k(["a"], {"a"}, 0)


def test_solution_metrics_keys_and_rounding() -> None:
    out = solution_metrics([["a", "b", "c"], ["d"]], [{"c"}, {"q"}], catalog_size=8)
    assert set(out) == {
        "coverage",
        "mean_reciprocal_rank_at_25",
        "normalized_discounted_cumulative_gain_at_5",
        "normalized_discounted_cumulative_gain_at_10",
        "normalized_discounted_cumulative_gain_at_25",
        "precision_at_5",
        "precision_at_10",
        "precision_at_25",
    }
    assert out["coverage"] == 0.5
    assert out["mean_reciprocal_rank_at_25"] == round((1 / 3) / 2, 4)
    assert out["precision_at_5"] == round((1 / 5) / 2, 4)
    assert out["normalized_discounted_cumulative_gain_at_10"] == round((math.log(2) / math.log(4)) / 2, 4)
    assert solution_metrics([], [], 5)["precision_at_5"] == 0.0
