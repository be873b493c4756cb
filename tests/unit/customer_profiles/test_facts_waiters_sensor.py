"""facts.customer_profiles against the botocore model; the waiter JSON, trigger and sensor against the facts."""

from __future__ import annotations

import base64
import hashlib
import json
from unittest import mock

import botocore.session
import pytest
from airflow.providers.common.compat.sdk import AirflowException

from hooks.customer_profiles import WAITER_FILE, CustomerProfilesHook
from personalize_logic.facts import customer_profiles as facts
from sensors.customer_profiles import CustomerProfilesUploadJobSensor
from triggers.customer_profiles import CustomerProfilesUploadJobCompleteTrigger

MODEL = botocore.session.get_session().get_service_model("customer-profiles")
WAITERS = {
    "upload_job_complete": ("GetUploadJob", facts.UPLOAD_INTERMEDIATE_STATES, facts.UPLOAD_FAILURE_STATES, facts.UPLOAD_SUCCESS_STATES),
    "segment_estimate_complete": ("GetSegmentEstimate", facts.ESTIMATE_INTERMEDIATE_STATES, facts.ESTIMATE_FAILURE_STATES, facts.ESTIMATE_SUCCESS_STATES),
    "segment_snapshot_complete": ("GetSegmentSnapshot", facts.SNAPSHOT_INTERMEDIATE_STATES, facts.SNAPSHOT_FAILURE_STATES, facts.SNAPSHOT_SUCCESS_STATES),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(WAITERS))
def test_the_sets_split_the_model_enum_and_the_waiters_use_them(name):
    operation, retry, failure, success = WAITERS[name]
    enum = MODEL.operation_model(operation).output_shape.members["Status"].enum
    assert sorted(retry + failure + success) == sorted(enum)
    waiter = json.loads(WAITER_FILE.read_text())["waiters"][name]
    assert waiter["operation"] == operation
    found: dict[str, set[str]] = {"retry": set(), "failure": set(), "success": set()}
    for acceptor in waiter["acceptors"]:
        found[acceptor["state"]].add(acceptor["expected"])
    assert found == {"retry": set(retry), "failure": set(failure), "success": set(success)}


def test_limits_and_names_match_the_model():
    create = MODEL.operation_model("CreateUploadJob").input_shape.members
    assert (create["DataExpiry"].metadata["min"], create["DataExpiry"].metadata["max"]) == (
        facts.MIN_DATA_EXPIRY_DAYS,
        facts.MAX_DATA_EXPIRY_DAYS,
    )
    assert create["DisplayName"].metadata["max"] == facts.MAX_DISPLAY_NAME_LENGTH
    name = MODEL.operation_model("CreateSegmentDefinition").input_shape.members["SegmentDefinitionName"]
    assert (name.metadata["pattern"], name.metadata["max"]) == (
        facts.NAME_PATTERN.pattern,
        facts.MAX_NAME_LENGTH,
    )
    assert set(MODEL.shape_for("StatusReason").enum) == set(facts.UPLOAD_STATUS_REASONS)
    assert list(MODEL.shape_for("ResultsSummary").members) == [
        "UpdatedRecords",
        "CreatedRecords",
        "FailedRecords",
    ]
    profile_dimensions = {
        n for n, m in MODEL.shape_for("ProfileAttributes").members.items() if m.name == "ProfileDimension"
    }
    assert profile_dimensions == set(facts.STRING_PROFILE_ATTRIBUTES)
    assert set(MODEL.shape_for("ProfileTypeDimension").members["Values"].member.enum) == set(
        facts.PROFILE_TYPES
    )


def test_profile_keys():
    assert facts.is_profile_key("AccountNumber")
    assert facts.is_profile_key("Attributes.personalize_user_id")
    assert not facts.is_profile_key("Address")  # not a string dimension
    assert not facts.is_profile_key("Attributes.with.dot")


def test_sse_c_headers_carry_the_md5_of_the_decoded_key():
    key = bytes(range(32))
    token = base64.b64encode(key).decode()
    headers = facts.sse_c_headers(token)
    assert headers["x-amz-server-side-encryption-customer-algorithm"] == "AES256"
    assert headers["x-amz-server-side-encryption-customer-key"] == token
    assert (
        headers["x-amz-server-side-encryption-customer-key-MD5"]
        == base64.b64encode(hashlib.md5(key).digest()).decode()
    )
    with pytest.raises(ValueError, match="not base64"):
        facts.sse_c_headers("not base64!")


def test_describe_failure_reports_reason_and_every_count():
    text = facts.describe_failure(
        {"Status": "FAILED", "StatusReason": "VALIDATION_FAILURE", "ResultsSummary": {"FailedRecords": 3}}
    )
    assert (
        text
        == "status 'FAILED', StatusReason='VALIDATION_FAILURE', CreatedRecords=0, UpdatedRecords=0, FailedRecords=3"
    )


def test_the_trigger_serializes_what_it_waits_on():
    trigger = CustomerProfilesUploadJobCompleteTrigger(
        domain_name="d", job_id="a" * 32, waiter_delay=3, waiter_max_attempts=4
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "triggers.customer_profiles.CustomerProfilesUploadJobCompleteTrigger"
    assert (kwargs["domain_name"], kwargs["job_id"], kwargs["waiter_delay"]) == ("d", "a" * 32, 3)
    assert trigger.waiter_name == "upload_job_complete"
    assert trigger.waiter_args == {"DomainName": "d", "JobId": "a" * 32}
    assert isinstance(trigger.hook(), CustomerProfilesHook)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [("CREATED", False), ("IN_PROGRESS", False), ("SUCCEEDED", True), ("PARTIALLY_SUCCEEDED", True),
     ("FAILED", "VALIDATION_FAILURE"), ("STOPPED", "STOPPED"), ("SOMETHING_NEW", "unexpected")],
)  # fmt: skip
def test_the_sensor_pokes_every_status(status, outcome):
    sensor = CustomerProfilesUploadJobSensor(task_id="s", domain_name="d", job_id="j")
    job = {"Status": status, "StatusReason": "VALIDATION_FAILURE"}
    with mock.patch.object(CustomerProfilesHook, "conn") as conn:
        conn.get_upload_job.return_value = job
        if isinstance(outcome, bool):
            assert sensor.poke({}) is outcome
        else:
            with pytest.raises(AirflowException, match=outcome):
                sensor.poke({})
