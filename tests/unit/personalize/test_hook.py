"""PersonalizeHook find-by-name helpers, driven through botocore's Stubber on a real client."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hooks.personalize import PersonalizeHook

from .conftest import ARN_PREFIX, DATASET_ARN, DATASET_GROUP_ARN, SOLUTION_ARN, SOLUTION_VERSION_ARN


@pytest.fixture
def hook():
    return PersonalizeHook(aws_conn_id=None)


def test_client_type():
    assert PersonalizeHook(aws_conn_id=None).client_type == "personalize"


def test_find_dataset_group_follows_next_token(stubbed, hook):
    other = f"{ARN_PREFIX}:dataset-group/other"
    stubbed.add_response(
        "list_dataset_groups",
        {"datasetGroups": [{"name": "other", "datasetGroupArn": other}], "nextToken": "t1"},
        {},
    )
    stubbed.add_response(
        "list_dataset_groups",
        {"datasetGroups": [{"name": "bingewatch", "datasetGroupArn": DATASET_GROUP_ARN}]},
        {"nextToken": "t1"},
    )
    assert hook.find_dataset_group_arn("bingewatch") == DATASET_GROUP_ARN


def test_find_returns_none_when_missing(stubbed, hook):
    stubbed.add_response("list_schemas", {"schemas": []}, {})
    assert hook.find_schema_arn("nope") is None


def test_find_schema(stubbed, hook):
    arn = f"{ARN_PREFIX}:schema/interactions"
    stubbed.add_response("list_schemas", {"schemas": [{"name": "interactions", "schemaArn": arn}]}, {})
    assert hook.find_schema_arn("interactions") == arn


@pytest.mark.parametrize("dataset_type", ["Interactions", "INTERACTIONS", "interactions"])
def test_find_dataset_by_type(stubbed, hook, dataset_type):
    stubbed.add_response(
        "list_datasets",
        {
            "datasets": [
                {"name": "items", "datasetArn": f"{DATASET_GROUP_ARN}/ITEMS", "datasetType": "ITEMS"},
                {"name": "interactions", "datasetArn": DATASET_ARN, "datasetType": "INTERACTIONS"},
            ]
        },
        {"datasetGroupArn": DATASET_GROUP_ARN},
    )
    assert hook.find_dataset_arn(DATASET_GROUP_ARN, dataset_type) == DATASET_ARN


def test_find_filter_uses_capital_f_key(stubbed, hook):
    arn = f"{ARN_PREFIX}:filter/no-watched"
    stubbed.add_response(
        "list_filters",
        {"Filters": [{"name": "no-watched", "filterArn": arn}]},
        {"datasetGroupArn": DATASET_GROUP_ARN},
    )
    assert hook.find_filter_arn(DATASET_GROUP_ARN, "no-watched") == arn


def test_find_solution(stubbed, hook):
    stubbed.add_response(
        "list_solutions",
        {"solutions": [{"name": "bingewatch-upv2", "solutionArn": SOLUTION_ARN}]},
        {"datasetGroupArn": DATASET_GROUP_ARN},
    )
    assert hook.find_solution_arn(DATASET_GROUP_ARN, "bingewatch-upv2") == SOLUTION_ARN


def test_find_campaign(stubbed, hook):
    arn = f"{ARN_PREFIX}:campaign/live"
    stubbed.add_response("list_campaigns", {"campaigns": [{"name": "live", "campaignArn": arn}]}, {})
    assert hook.find_campaign_arn("live") == arn


@pytest.mark.parametrize(
    ("kind", "list_method", "list_key", "parent_param", "arn_key", "parent"),
    [
        ("dataset_import_job", "list_dataset_import_jobs", "datasetImportJobs", "datasetArn", "datasetImportJobArn", DATASET_ARN),
        ("batch_inference_job", "list_batch_inference_jobs", "batchInferenceJobs", "solutionVersionArn", "batchInferenceJobArn", SOLUTION_VERSION_ARN),
        ("batch_segment_job", "list_batch_segment_jobs", "batchSegmentJobs", "solutionVersionArn", "batchSegmentJobArn", SOLUTION_VERSION_ARN),
    ],
)  # fmt: skip
def test_find_job_arn(stubbed, hook, kind, list_method, list_key, parent_param, arn_key, parent):
    stubbed.add_response(
        list_method,
        {list_key: [{"jobName": "other", arn_key: f"{ARN_PREFIX}:x/other"}], "nextToken": "n"},
        {parent_param: parent},
    )
    stubbed.add_response(
        list_method,
        {list_key: [{"jobName": "mine", arn_key: f"{ARN_PREFIX}:x/mine"}]},
        {parent_param: parent, "nextToken": "n"},
    )
    assert hook.find_job_arn(kind, "mine", parent) == f"{ARN_PREFIX}:x/mine"


def test_find_job_arn_rejects_unknown_kind(hook):
    with pytest.raises(ValueError, match="Unknown Personalize job kind"):
        hook.find_job_arn("campaign", "x", "arn")


def test_find_solution_version_describes_newest_first(stubbed, hook):
    old, new = f"{SOLUTION_ARN}/old", f"{SOLUTION_ARN}/new"
    stubbed.add_response(
        "list_solution_versions",
        {
            "solutionVersions": [
                {"solutionVersionArn": old, "creationDateTime": datetime(2024, 1, 1, tzinfo=UTC)},
                {"solutionVersionArn": new, "creationDateTime": datetime(2025, 1, 1, tzinfo=UTC)},
            ]
        },
        {"solutionArn": SOLUTION_ARN},
    )
    stubbed.add_response(
        "describe_solution_version",
        {"solutionVersion": {"solutionVersionArn": new, "name": "train-mine"}},
        {"solutionVersionArn": new},
    )
    assert hook.find_job_arn("solution_version", "train-mine", SOLUTION_ARN) == new


def test_get_status_reads_failure_reason(stubbed, hook):
    arn = f"{SOLUTION_VERSION_ARN}/job"
    stubbed.add_response(
        "describe_batch_inference_job",
        {
            "batchInferenceJob": {
                "batchInferenceJobArn": arn,
                "status": "CREATE FAILED",
                "failureReason": "Bad input",
            }
        },
        {"batchInferenceJobArn": arn},
    )
    status, reason, job = hook.get_status("batch_inference_job", arn)
    assert (status, reason, job["batchInferenceJobArn"]) == ("CREATE FAILED", "Bad input", arn)


def test_get_status_of_campaign_prefers_latest_update(stubbed, hook):
    arn = f"{ARN_PREFIX}:campaign/live"
    stubbed.add_response(
        "describe_campaign",
        {
            "campaign": {
                "campaignArn": arn,
                "status": "ACTIVE",
                "latestCampaignUpdate": {"status": "CREATE FAILED", "failureReason": "TPS too high"},
            }
        },
        {"campaignArn": arn},
    )
    assert hook.get_status("campaign", arn)[:2] == ("CREATE FAILED", "TPS too high")
