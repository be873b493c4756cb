"""Offline ranking metrics with the names and formulas Personalize reports (GetSolutionMetrics).

All functions are pure. ``recommended`` is a ranked list (best first), ``relevant`` the set of
held-out items of one user. Positions are 1-based.

* ``precision_at_k = |top_k ∩ relevant| / k``
* ``mrr_at_k = 1 / p`` where ``p`` is the position of the first relevant item in the top ``k``
  (0 when there is none)
* ``ndcg_at_k = DCG / IDCG`` with ``DCG = Σ_{p <= k, rec_p ∈ relevant} 1 / log(1 + p)`` and
  ``IDCG = Σ_{p=1}^{min(k, |relevant|)} 1 / log(1 + p)`` (the weight ``1/log(1+position)`` of the
  Personalize docs; the log base cancels out)
* ``coverage = |union of recommended lists| / catalog size``

USER_SEGMENTATION recipes report ``hit`` and ``recall`` instead ("hit (hit at K)": "the average number
of users in the predicted top relevant K results that match the actual users", "recall (recall at
K)": "the average percentage of predicted users in the predicted top relevant K results that match the
actual users"; "Actual users are the users who actually interacted with the items in the test set. K
is the top 1% of the most relevant users", Personalize developer guide, "Evaluating a solution version
with metrics"). :func:`segmentation_metrics` averages over the test items: ``hit = |top K ∩ actual|``
and **assumption** (the wording reads both ways) ``recall = |top K ∩ actual| / |actual|``, with
``K = ceil(1 % of all users)``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from typing import Any


def precision_at_k(recommended: Sequence[Any], relevant: Collection[Any], k: int) -> float:
    """Fraction of the top ``k`` recommendations that are relevant (denominator ``k``)."""
    if k <= 0:
        raise ValueError("k must be positive")
    rel = set(relevant)
    return sum(1 for item in recommended[:k] if item in rel) / k


def mrr_at_k(recommended: Sequence[Any], relevant: Collection[Any], k: int) -> float:
    """Reciprocal of the 1-based position of the first relevant item within the top ``k``, else 0."""
    if k <= 0:
        raise ValueError("k must be positive")
    rel = set(relevant)
    for position, item in enumerate(recommended[:k], start=1):
        if item in rel:
            return 1.0 / position
    return 0.0


def ndcg_at_k(recommended: Sequence[Any], relevant: Collection[Any], k: int) -> float:
    """Normalized discounted cumulative gain with binary relevance and weight ``1/log(1+position)``."""
    if k <= 0:
        raise ValueError("k must be positive")
    rel = set(relevant)
    if not rel:
        return 0.0
    dcg = sum(1.0 / math.log(1 + p) for p, item in enumerate(recommended[:k], start=1) if item in rel)
    idcg = sum(1.0 / math.log(1 + p) for p in range(1, min(k, len(rel)) + 1))
    return dcg / idcg


def coverage(recommended_lists: Iterable[Sequence[Any]], catalog_size: int) -> float:
    """Share of the catalog that appears in at least one recommendation list."""
    if catalog_size <= 0:
        return 0.0
    seen: set[Any] = set()
    for recs in recommended_lists:
        seen.update(recs)
    return len(seen) / catalog_size


def solution_metrics(
    recommended_lists: Sequence[Sequence[Any]], relevant_sets: Sequence[Collection[Any]], catalog_size: int
) -> dict[str, float]:
    """The GetSolutionMetrics key set, averaged over users, rounded to 4 decimals.

    :param recommended_lists: one ranked list (at least 25 long when possible) per test user.
    :param relevant_sets: the held-out items of the same users.
    :param catalog_size: number of items that could be recommended.
    """
    if len(recommended_lists) != len(relevant_sets):
        raise ValueError("recommended_lists and relevant_sets must have the same length")
    n = len(recommended_lists)
    out: dict[str, float] = {"coverage": coverage(recommended_lists, catalog_size)}
    sums = {
        "mean_reciprocal_rank_at_25": 0.0,
        "normalized_discounted_cumulative_gain_at_5": 0.0,
        "normalized_discounted_cumulative_gain_at_10": 0.0,
        "normalized_discounted_cumulative_gain_at_25": 0.0,
        "precision_at_5": 0.0,
        "precision_at_10": 0.0,
        "precision_at_25": 0.0,
    }
    for recs, rel in zip(recommended_lists, relevant_sets, strict=True):
        sums["mean_reciprocal_rank_at_25"] += mrr_at_k(recs, rel, 25)
        for k in (5, 10, 25):
            sums[f"normalized_discounted_cumulative_gain_at_{k}"] += ndcg_at_k(recs, rel, k)
            sums[f"precision_at_{k}"] += precision_at_k(recs, rel, k)
    for key, total in sums.items():
        out[key] = total / n if n else 0.0
    return {key: round(value, 4) for key, value in out.items()}


def segmentation_k(n_users: int) -> int:
    """K of the segmentation metrics: the top 1 % of the users, at least one."""
    return max(1, math.ceil(n_users * 0.01))


def segmentation_metrics(
    ranked_users: Sequence[Sequence[Any]], actual_users: Sequence[Collection[Any]], k: int
) -> dict[str, float]:
    """``hit`` and ``recall`` at ``k`` averaged over test items, rounded to 4 decimals.

    :param ranked_users: per test item, the users ranked by predicted affinity (best first).
    :param actual_users: per test item, the users who interacted with it in the test set.
    """
    if len(ranked_users) != len(actual_users):
        raise ValueError("ranked_users and actual_users must have the same length")
    if k <= 0:
        raise ValueError("k must be positive")
    hits: list[float] = []
    recalls: list[float] = []
    for ranked, actual in zip(ranked_users, actual_users, strict=True):
        truth = set(actual)
        if not truth:
            continue
        matched = sum(1 for user in ranked[:k] if user in truth)
        hits.append(float(matched))
        recalls.append(matched / len(truth))
    n = len(hits)
    return {
        "hit": round(sum(hits) / n, 4) if n else 0.0,
        "recall": round(sum(recalls) / n, 4) if n else 0.0,
    }
