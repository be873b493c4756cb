"""The batch DAG's version resolution: only the solution whose new version triggered the run re-runs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.sdk import AirflowSkipException
from airflow.sdk import Asset
from airflow.sdk.definitions.asset import AssetUniqueKey
from airflow.sdk.execution_time.context import OutletEventAccessors, TriggeringAssetEventsAccessor
from personalize_pipeline.tasks import resolve_solution_version

MINE = "x-personalize://p/mine/solution-version"
OTHER = "x-personalize://p/other/solution-version"


def _events(uri: str, arn: str) -> dict:
    # Airflow's own accessor: it keys events by AssetUniqueKey (an Asset is not hashable on 3.1).
    event = SimpleNamespace(extra={"solution_version_arn": arn, "snapshot_uri": "s3://b/snap/"})
    events = TriggeringAssetEventsAccessor({AssetUniqueKey.from_asset(Asset(uri)): [event]})
    return {"triggering_asset_events": events}


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


class _FakeS3:
    """The three S3Hook methods the records helpers use, over a dict."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], str] = {}

    def check_for_key(self, key: str, bucket_name: str) -> bool:
        return (bucket_name, key) in self.objects

    def read_key(self, key: str, bucket_name: str) -> str:
        return self.objects[(bucket_name, key)]

    def load_string(self, data: str, key: str, bucket_name: str, replace: bool) -> None:
        self.objects[(bucket_name, key)] = data


class _OutletEvents(OutletEventAccessors):
    """The accessor a task's ``outlet_events`` is at run time."""


@pytest.fixture
def gate_env(monkeypatch: pytest.MonkeyPatch) -> tuple[_FakeS3, dict]:
    from personalize_pipeline import tasks

    from hooks.personalize import PersonalizeHook

    s3 = _FakeS3()
    metrics: dict = {}
    client = SimpleNamespace(
        get_solution_metrics=lambda solutionVersionArn: {"metrics": metrics[solutionVersionArn]}
    )
    monkeypatch.setattr(PersonalizeHook, "conn", client)
    monkeypatch.setattr(tasks, "_s3", lambda aws_conn_id: s3)
    return s3, metrics


def _gate(arn: str, events: _OutletEvents | None = None) -> tuple[dict, _OutletEvents]:
    from personalize_pipeline.tasks import quality_gate

    events = _OutletEvents() if events is None else events
    result = quality_gate.function(
        solution_version_arn=arn,
        state_prefix="s3://b/p/state/mine",
        snapshot_uri="s3://b/p/snap/",
        metric="ndcg",
        max_regression=0.10,
        asset_uri=MINE,
        outlet_events=events,
        run_id="r1",
    )
    return result, events


def test_an_accepted_version_updates_the_solution_asset_and_becomes_the_baseline(gate_env) -> None:  # type: ignore[no-untyped-def]
    s3, metrics = gate_env
    metrics["arn:sv/v1"] = {"ndcg": 0.30}
    record, events = _gate("arn:sv/v1")
    assert record["verdict"]["accepted"] is True
    assert events[Asset(MINE)].extra == {
        "solution_version_arn": "arn:sv/v1",
        "snapshot_uri": "s3://b/p/snap/",
        "metrics": {"ndcg": 0.30},
    }
    assert ("b", "p/state/mine/accepted/latest.json") in s3.objects


def test_a_rejected_version_ends_skipped_with_the_reason_and_emits_no_asset_event(gate_env) -> None:  # type: ignore[no-untyped-def]
    s3, metrics = gate_env
    metrics["arn:sv/v1"] = {"ndcg": 0.30}
    _gate("arn:sv/v1")
    metrics["arn:sv/v2"] = {"ndcg": 0.20}  # 33 % below the accepted version, 10 % allowed
    events = _OutletEvents()
    with pytest.raises(AirflowSkipException, match="quality gate rejected arn:sv/v2"):
        _gate("arn:sv/v2", events)
    assert len(events) == 0  # the gate touched no outlet event
    assert '"arn:sv/v1"' in s3.objects[("b", "p/state/mine/accepted/latest.json")]
    assert '"accepted": false' in s3.objects[("b", "p/state/mine/verdicts/v2.json")]


def test_the_gate_reads_the_popularity_count_baseline_and_records_the_ratio(gate_env) -> None:  # type: ignore[no-untyped-def]
    from personalize_pipeline.tasks import quality_gate

    s3, metrics = gate_env
    metrics["arn:sv/v1"] = {"ndcg": 0.15}
    metrics["arn:popularity/v1"] = {"ndcg": 0.20}
    with pytest.raises(AirflowSkipException, match=r"0.75x the Popularity-Count baseline"):
        quality_gate.function(
            solution_version_arn="arn:sv/v1",
            state_prefix="s3://b/p/state/mine",
            snapshot_uri="s3://b/p/snap/",
            metric="ndcg",
            max_regression=0.10,
            asset_uri=MINE,
            popularity_version_arn="arn:popularity/v1",
            min_baseline_ratio=1.0,
            outlet_events=_OutletEvents(),
            run_id="r1",
        )
    import json

    verdict = json.loads(s3.objects[("b", "p/state/mine/verdicts/v1.json")])
    assert verdict["popularity_version_arn"] == "arn:popularity/v1"
    assert verdict["verdict"]["baseline_ratio"] == pytest.approx(0.75)
    assert verdict["verdict"]["metric"] == "ndcg"


def test_import_record_full_replaces_incremental_adds(gate_env) -> None:  # type: ignore[no-untyped-def]
    import json

    from personalize_pipeline.tasks import import_needed, record_import

    s3, _ = gate_env
    state = "s3://b/p/state/imports/interactions.json"
    full = {"import_mode": "FULL", "import_uri": "s3://b/snap/", "import_partitions": {"2024-01-01": "r1"}}
    record_import.function(full, state_uri=state)
    increment = {
        "import_mode": "INCREMENTAL",
        "import_uri": "s3://b/snap-inc/",
        "import_partitions": {"2024-01-02": "r2"},
    }
    record_import.function(increment, state_uri=state)
    assert json.loads(s3.objects[("b", "p/state/imports/interactions.json")])["partitions"] == {
        "2024-01-01": "r1",
        "2024-01-02": "r2",
    }
    record_import.function({**full, "import_partitions": {"2024-01-03": "r3"}}, state_uri=state)
    assert json.loads(s3.objects[("b", "p/state/imports/interactions.json")])["partitions"] == {
        "2024-01-03": "r3"
    }
    assert import_needed.function({"import_skip": None}) is True
    assert import_needed.function({"import_skip": "nothing new"}) is False


SEGMENTS = "x-personalize://p/segments"


def _segment_events(*outputs: str) -> dict:
    events = [SimpleNamespace(extra={"kind": "segments", "output_path": out}) for out in outputs]
    return {
        "triggering_asset_events": TriggeringAssetEventsAccessor(
            {AssetUniqueKey.from_asset(Asset(SEGMENTS)): events}
        )
    }


def test_every_batch_output_that_triggered_the_run_is_activated() -> None:
    from personalize_pipeline.tasks import resolve_batch_outputs

    # two batch runs landed before the activation run started: both outputs are activated, once each
    found = resolve_batch_outputs.function(
        asset_uri=SEGMENTS, **_segment_events("s3://b/1/", "s3://b/2/", "s3://b/1/")
    )
    assert found == ["s3://b/1/", "s3://b/2/"]
    assert resolve_batch_outputs.function(asset_uri=SEGMENTS, param_output="s3://b/manual/") == [
        "s3://b/manual/"
    ]
    with pytest.raises(AirflowSkipException, match="no batch output"):
        resolve_batch_outputs.function(asset_uri=SEGMENTS)


def test_segment_requests_keep_the_segments_with_rows_and_only_the_asked_keys() -> None:
    from personalize_pipeline.tasks import segment_requests

    prepared = [
        {"segment_name": "A", "s3_url": "s3://b/A/", "rows": 3, "users": 3, "query": "q"},
        {"segment_name": "B", "s3_url": "s3://b/B/", "rows": 0, "users": 2, "users_without_endpoint": 2},
    ]
    assert segment_requests.function(prepared, keys=["segment_name", "s3_url"]) == [
        {"segment_name": "A", "s3_url": "s3://b/A/"}
    ]
