"""The batch DAG's version resolution: only the solution whose new version triggered the run re-runs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowSkipException
from personalize_pipeline.tasks import resolve_solution_version

MINE = "x-personalize://p/mine/solution-version"
OTHER = "x-personalize://p/other/solution-version"


def _events(uri: str, arn: str) -> dict:
    event = SimpleNamespace(extra={"solution_version_arn": arn, "snapshot_uri": "s3://b/snap/"})
    return {"triggering_asset_events": {Asset(uri): [event]}}


def test_the_triggering_version_is_used() -> None:
    resolved = resolve_solution_version.function(
        asset_uri=MINE, state_prefix="s3://b/p/state/mine", **_events(MINE, "arn:new")
    )
    assert resolved == {"solution_version_arn": "arn:new", "snapshot_uri": "s3://b/snap/"}


def test_a_run_triggered_by_another_solution_skips_this_one() -> None:
    with pytest.raises(AirflowSkipException, match="not re-run"):
        resolve_solution_version.function(
            asset_uri=MINE, state_prefix="s3://b/p/state/mine", **_events(OTHER, "arn:other")
        )
