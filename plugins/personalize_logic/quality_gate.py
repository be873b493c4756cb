"""
The metrics gate between training and the batch jobs (pure logic), one gate per solution.

A new solution version feeds the batch jobs only if its gate metric

* is one the version reports (the metric defaults by recipe type, see
  :mod:`personalize_logic.facts.recipes`; config validation already rejects a metric the recipe does
  not report, so a missing one here means AWS answered something unexpected, and the verdict lists
  what it did report);
* is not below an optional absolute floor;
* is at least ``min_baseline_ratio`` times the same metric of a Popularity-Count version trained on
  the same data in the same run, when the gate asks for it ("To generate a baseline for comparison
  purposes, we recommend using the Popularity-Count recipe", Personalize developer guide,
  "Evaluating a solution version with metrics");
* is not more than ``max_regression`` (relative) below the last *accepted* version of the same
  solution. The first version of a solution has nothing to compare with on this count.

The verdict names the metric, its value, the baseline ratio when there is one, and a sentence saying
why, which the DAG run logs, records and the demo summary shows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class GateVerdict:
    accepted: bool
    reason: str
    metric: str
    value: float | None
    baseline: float | None  # the last accepted version's value of ``metric``
    popularity_value: float | None = None  # the Popularity-Count baseline's value of ``metric``
    baseline_ratio: float | None = None  # value / popularity_value
    min_baseline_ratio: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(value: float, popularity: float) -> float | None:
    return value / popularity if popularity > 0 else None


def evaluate_gate(
    metrics: dict[str, float],
    *,
    metric: str,
    max_regression: float,
    previous: dict[str, float] | None = None,
    min_value: float | None = None,
    popularity_metrics: dict[str, float] | None = None,
    min_baseline_ratio: float | None = None,
) -> GateVerdict:
    """
    Decide whether a solution version may feed the batch jobs.

    :param metrics: ``GetSolutionMetrics`` of the new version.
    :param metric: the gate metric, e.g. ``normalized_discounted_cumulative_gain_at_10`` or ``hit``.
    :param max_regression: allowed relative drop against the last accepted version (0.1 = 10 %).
    :param previous: metrics of the last accepted version, or None for the first one.
    :param min_value: optional absolute floor.
    :param popularity_metrics: ``GetSolutionMetrics`` of the Popularity-Count baseline version
        (required when ``min_baseline_ratio`` is set).
    :param min_baseline_ratio: optional: ``value / popularity value`` must be at least this.
    """
    if metric not in metrics:
        available = ", ".join(sorted(metrics)) or "none"
        return GateVerdict(
            False,
            f"the version reports no {metric!r} (it reports: {available}); set the solution's gate metric "
            "to one of those",
            metric,
            None,
            None,
        )
    value = float(metrics[metric])
    baseline_part: dict[str, Any] = {}
    if min_baseline_ratio is not None:
        if not popularity_metrics or metric not in popularity_metrics:
            return GateVerdict(
                False,
                f"{metric}={value:.4f}; the Popularity-Count baseline reports no {metric!r}, so the "
                f"required ratio {min_baseline_ratio:.2f} cannot be checked",
                metric,
                value,
                None,
                min_baseline_ratio=min_baseline_ratio,
            )
        popularity = float(popularity_metrics[metric])
        ratio = _ratio(value, popularity)
        baseline_part = {
            "popularity_value": popularity,
            "baseline_ratio": ratio,
            "min_baseline_ratio": min_baseline_ratio,
        }
        if ratio is not None and ratio < min_baseline_ratio:
            return GateVerdict(
                False,
                f"{metric}={value:.4f} is {ratio:.2f}x the Popularity-Count baseline {popularity:.4f} "
                f"(required {min_baseline_ratio:.2f}x); the batch jobs keep the accepted version",
                metric,
                value,
                None,
                **baseline_part,
            )
    versus = (
        f"; {baseline_part['baseline_ratio']:.2f}x the Popularity-Count baseline "
        f"{baseline_part['popularity_value']:.4f} (required {min_baseline_ratio:.2f}x)"
        if baseline_part.get("baseline_ratio") is not None
        else ("; the Popularity-Count baseline scored 0, any value passes the ratio" if baseline_part else "")
    )
    if min_value is not None and value < min_value:
        return GateVerdict(
            False,
            f"{metric}={value:.4f} is below the floor {min_value:.4f}{versus}",
            metric,
            value,
            None,
            **baseline_part,
        )
    if not previous or metric not in previous:
        return GateVerdict(
            True,
            f"{metric}={value:.4f}{versus}; first accepted version (nothing to compare with)",
            metric,
            value,
            None,
            **baseline_part,
        )
    last = float(previous[metric])
    threshold = last * (1.0 - max_regression)
    if value < threshold:
        drop = (last - value) / last if last else 0.0
        return GateVerdict(
            False,
            f"{metric}={value:.4f} is {drop:.1%} below the last accepted {last:.4f} "
            f"(allowed drop {max_regression:.1%}){versus}; the batch jobs keep the accepted version",
            metric,
            value,
            last,
            **baseline_part,
        )
    return GateVerdict(
        True,
        f"{metric}={value:.4f} vs last accepted {last:.4f} (allowed drop {max_regression:.1%}){versus}",
        metric,
        value,
        last,
        **baseline_part,
    )
