"""
The metrics gate between training and the batch jobs (pure logic).

A new solution version feeds the batch jobs only if its key metric is not more than
``max_regression`` (relative) below the last *accepted* version of the same solution, and not
below an optional absolute floor. The first version of a solution has nothing to compare with and
is accepted if it passes the floor. The verdict always carries a sentence saying why, which the
DAG run logs and returns.
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
    baseline: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_gate(
    metrics: dict[str, float],
    *,
    metric: str,
    max_regression: float,
    previous: dict[str, float] | None = None,
    min_value: float | None = None,
) -> GateVerdict:
    """
    Decide whether a solution version may feed the batch jobs.

    :param metrics: ``GetSolutionMetrics`` of the new version.
    :param metric: the key metric, e.g. ``normalized_discounted_cumulative_gain_at_10``.
    :param max_regression: allowed relative drop against the last accepted version (0.1 = 10 %).
    :param previous: metrics of the last accepted version, or None for the first one.
    :param min_value: optional absolute floor.
    """
    if metric not in metrics:
        available = ", ".join(sorted(metrics)) or "none"
        return GateVerdict(
            False, f"metric {metric!r} is missing (available: {available})", metric, None, None
        )
    value = float(metrics[metric])
    if min_value is not None and value < min_value:
        return GateVerdict(
            False, f"{metric}={value:.4f} is below the floor {min_value:.4f}", metric, value, None
        )
    if not previous or metric not in previous:
        return GateVerdict(
            True,
            f"{metric}={value:.4f}; first accepted version (nothing to compare with)",
            metric,
            value,
            None,
        )
    baseline = float(previous[metric])
    threshold = baseline * (1.0 - max_regression)
    if value < threshold:
        drop = (baseline - value) / baseline if baseline else 0.0
        return GateVerdict(
            False,
            f"{metric}={value:.4f} is {drop:.1%} below the last accepted {baseline:.4f} "
            f"(allowed drop {max_regression:.1%}); the batch jobs keep the accepted version",
            metric,
            value,
            baseline,
        )
    return GateVerdict(
        True,
        f"{metric}={value:.4f} vs last accepted {baseline:.4f} (allowed drop {max_regression:.1%})",
        metric,
        value,
        baseline,
    )
