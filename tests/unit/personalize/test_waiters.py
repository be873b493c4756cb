"""The custom waiters in plugins/waiters/personalize.json, checked against the facts module and the sensors."""

from __future__ import annotations

import json
from unittest import mock

import botocore.exceptions
import pytest

from hooks.personalize import WAITER_FILE, PersonalizeHook
from personalize_logic.facts.personalize import RESOURCE_KINDS

from .conftest import SENSORS

KINDS = sorted(RESOURCE_KINDS)
ARN = "arn:aws:personalize:us-east-1:123456789012:thing/x"


def waiter_config(kind: str) -> dict:
    return json.loads(WAITER_FILE.read_text())["waiters"][RESOURCE_KINDS[kind].waiter_name]


def cases(attribute: str):
    return [
        pytest.param(kind, state, id=f"{kind}-{state}")
        for kind in KINDS
        for state in getattr(SENSORS[kind], attribute)
    ]


def response(kind: str, status: str, reason: str | None = None) -> dict:
    spec = RESOURCE_KINDS[kind]
    body = {"status": status, spec.arn_param: ARN}
    if reason:
        body["failureReason"] = reason
    return {spec.describe_key: body}


@pytest.fixture
def hook(real_client):
    with mock.patch.object(PersonalizeHook, "conn", new=real_client):
        yield PersonalizeHook(aws_conn_id=None)


def test_hook_finds_the_plugin_waiters():
    hook = PersonalizeHook(aws_conn_id=None)
    assert str(hook.waiter_path) == str(WAITER_FILE)
    assert sorted(hook.list_waiters()) == sorted(spec.waiter_name for spec in RESOURCE_KINDS.values())


@pytest.mark.parametrize("kind", KINDS)
def test_waiter_json_matches_sensor_states(kind):
    """The acceptors and the sensor constants are one truth: same sets, same status expression."""
    config = waiter_config(kind)
    sensor = SENSORS[kind]
    spec = RESOURCE_KINDS[kind]
    by_state: dict[str, set[str]] = {"success": set(), "failure": set(), "retry": set()}
    for acceptor in config["acceptors"]:
        assert acceptor["matcher"] == "path"
        assert acceptor["argument"] == spec.status_query
        by_state[acceptor["state"]].add(acceptor["expected"])
    assert by_state["success"] == set(sensor.SUCCESS_STATES)
    assert by_state["failure"] == set(sensor.FAILURE_STATES)
    assert by_state["retry"] == set(sensor.INTERMEDIATE_STATES)
    operation = spec.describe_method.title().replace("_", "")
    assert config["operation"] == operation


def test_every_waiter_is_the_facts_of_one_resource():
    """Each waiter of the JSON waits on one resource of the facts module, with exactly its status sets."""
    waiters = json.loads(WAITER_FILE.read_text())["waiters"]
    by_waiter = {resource.waiter_name: resource for resource in RESOURCE_KINDS.values()}
    assert set(waiters) == set(by_waiter)
    for name, config in waiters.items():
        resource = by_waiter[name]
        by_state: dict[str, set[str]] = {"success": set(), "failure": set(), "retry": set()}
        for acceptor in config["acceptors"]:
            assert (acceptor["matcher"], acceptor["argument"]) == ("path", resource.status_query), name
            by_state[acceptor["state"]].add(acceptor["expected"])
        assert by_state == {
            "success": set(resource.success_states),
            "failure": set(resource.failure_states),
            "retry": set(resource.intermediate_states),
        }, name
        assert config["operation"] == resource.describe_method.title().replace("_", "")


@pytest.mark.parametrize("kind", KINDS)
def test_sensor_states_are_the_facts(kind):
    sensor, resource = SENSORS[kind], RESOURCE_KINDS[kind]
    assert sensor.resource is resource
    assert sensor.INTERMEDIATE_STATES is resource.intermediate_states
    assert sensor.FAILURE_STATES is resource.failure_states
    assert resource.success_states == sensor.SUCCESS_STATES


def test_documented_state_decisions():
    assert {"CREATE STOPPING", "CREATE STOPPED"} <= set(SENSORS["solution_version"].FAILURE_STATES)
    for kind in ("batch_inference_job", "batch_segment_job"):
        # Both spellings: botocore's "PENDING / IN PROGRESS" and "CREATE PENDING / CREATE IN_PROGRESS".
        assert {"PENDING", "IN PROGRESS", "CREATE PENDING", "CREATE IN_PROGRESS"} == set(
            SENSORS[kind].INTERMEDIATE_STATES
        )
    for kind in ("dataset_group", "dataset", "filter", "solution", "campaign"):
        assert {"DELETE PENDING", "DELETE IN_PROGRESS"} <= set(SENSORS[kind].FAILURE_STATES)


def _wait(hook, kind, attempts=3):
    spec = RESOURCE_KINDS[kind]
    hook.get_waiter(spec.waiter_name).wait(
        **{spec.arn_param: ARN}, WaiterConfig={"Delay": 0, "MaxAttempts": attempts}
    )


@pytest.mark.parametrize(("kind", "state"), cases("SUCCESS_STATES"))
def test_waiter_success(hook, kind, state):
    with mock.patch.object(hook.conn, RESOURCE_KINDS[kind].describe_method) as describe:
        describe.return_value = response(kind, state)
        _wait(hook, kind)
    describe.assert_called_once_with(**{RESOURCE_KINDS[kind].arn_param: ARN})


@pytest.mark.parametrize(("kind", "state"), cases("INTERMEDIATE_STATES"))
def test_waiter_retries_then_succeeds(hook, kind, state):
    with mock.patch.object(hook.conn, RESOURCE_KINDS[kind].describe_method) as describe:
        describe.side_effect = [response(kind, state), response(kind, state), response(kind, "ACTIVE")]
        _wait(hook, kind)
    assert describe.call_count == 3


@pytest.mark.parametrize(("kind", "state"), cases("FAILURE_STATES"))
def test_waiter_failure(hook, kind, state):
    with mock.patch.object(hook.conn, RESOURCE_KINDS[kind].describe_method) as describe:
        describe.return_value = response(kind, state, reason="Insufficient data")
        with pytest.raises(botocore.exceptions.WaiterError, match="terminal failure") as error:
            _wait(hook, kind)
    assert describe.call_count == 1
    assert (
        error.value.last_response[RESOURCE_KINDS[kind].describe_key]["failureReason"] == "Insufficient data"
    )


@pytest.mark.parametrize(("kind", "state"), cases("INTERMEDIATE_STATES"))
def test_waiter_max_attempts(hook, kind, state):
    with mock.patch.object(hook.conn, RESOURCE_KINDS[kind].describe_method) as describe:
        describe.return_value = response(kind, state)
        with pytest.raises(botocore.exceptions.WaiterError, match="Max attempts exceeded"):
            _wait(hook, kind, attempts=2)


@pytest.mark.parametrize(
    ("campaign", "expected"),
    [
        pytest.param({"status": "ACTIVE"}, "success", id="no-update"),
        pytest.param(
            {"status": "ACTIVE", "latestCampaignUpdate": {"status": "CREATE IN_PROGRESS"}},
            "retry",
            id="updating",
        ),
        pytest.param(
            {"status": "ACTIVE", "latestCampaignUpdate": {"status": "ACTIVE"}}, "success", id="updated"
        ),
        pytest.param(
            {"status": "ACTIVE", "latestCampaignUpdate": {"status": "CREATE FAILED", "failureReason": "bad"}},
            "failure",
            id="update-failed",
        ),
        pytest.param({"status": "CREATE PENDING"}, "retry", id="creating"),
    ],
)
def test_campaign_waiter_follows_latest_update(hook, campaign, expected):
    """``campaign.latestCampaignUpdate.status || campaign.status``: an update in flight is waited for."""
    with mock.patch.object(hook.conn, "describe_campaign") as describe:
        describe.side_effect = [{"campaign": campaign}, {"campaign": {"status": "ACTIVE"}}]
        if expected == "failure":
            with pytest.raises(botocore.exceptions.WaiterError, match="terminal failure"):
                _wait(hook, "campaign")
        else:
            _wait(hook, "campaign")
            assert describe.call_count == (2 if expected == "retry" else 1)
