"""Personalize operators: wait modes, idempotency, definition checks, failures, Stubber-checked requests."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
import textwrap
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, TaskDeferred
from botocore.exceptions import ClientError, WaiterError

import operators.personalize as personalize_operators
from hooks.personalize import PersonalizeHook
from operators.personalize import (
    PersonalizeBaseOperator,
    PersonalizeCreateBatchInferenceJobOperator,
    PersonalizeCreateBatchSegmentJobOperator,
    PersonalizeCreateDatasetGroupOperator,
    PersonalizeCreateDatasetImportJobOperator,
    PersonalizeCreateDatasetOperator,
    PersonalizeCreateFilterOperator,
    PersonalizeCreateOrUpdateCampaignOperator,
    PersonalizeCreateSchemaOperator,
    PersonalizeCreateSolutionOperator,
    PersonalizeCreateSolutionVersionOperator,
    PersonalizeDefinitionMismatchError,
    first_difference,
)
from personalize_logic.facts.personalize import RESOURCE_KINDS
from personalize_logic.naming import job_name

from .conftest import (
    ARN_PREFIX,
    DATASET_ARN,
    DATASET_GROUP_ARN,
    ROLE_ARN,
    SENSORS,
    SOLUTION_ARN,
    SOLUTION_VERSION_ARN,
    TRIGGERS,
    make_context,
)

JOB_ARN = f"{ARN_PREFIX}:job/mine"
CONTEXT_ARGS = {"dag_id": "personalize_batch", "run_id": "scheduled__2025-01-01T00:00:00+00:00"}

# kind -> (operator factory kwargs, create method, parent list method, list key, parent param, name key)
JOB_OPERATORS = {
    "dataset_import_job": (
        PersonalizeCreateDatasetImportJobOperator,
        {"dataset_arn": DATASET_ARN, "data_location": "s3://bucket/interactions/", "role_arn": ROLE_ARN},
    ),
    "solution_version": (PersonalizeCreateSolutionVersionOperator, {"solution_arn": SOLUTION_ARN}),
    "batch_inference_job": (
        PersonalizeCreateBatchInferenceJobOperator,
        {
            "solution_version_arn": SOLUTION_VERSION_ARN,
            "job_input": "s3://bucket/batch/input/users.json",
            "job_output": "s3://bucket/batch/output/",
            "role_arn": ROLE_ARN,
            "num_results": 25,
        },
    ),
    "batch_segment_job": (
        PersonalizeCreateBatchSegmentJobOperator,
        {
            "solution_version_arn": SOLUTION_VERSION_ARN,
            "job_input": "s3://bucket/segments/input/items.json",
            "job_output": "s3://bucket/segments/output/",
            "role_arn": ROLE_ARN,
        },
    ),
}


def job_operator(kind: str, **kwargs):
    cls, params = JOB_OPERATORS[kind]
    return cls(task_id=f"create_{kind}", **{**params, **kwargs})


def context_for(task) -> dict:
    return make_context(task_id=task.task_id, **CONTEXT_ARGS)


def expected_name(task) -> str:
    return job_name(task.job_name_prefix or task.default_job_name_prefix, CONTEXT_ARGS["dag_id"],
                    CONTEXT_ARGS["run_id"], task.task_id, -1)  # fmt: skip


def describe_body(kind: str, status: str, **extra) -> dict:
    return {
        RESOURCE_KINDS[kind].describe_key: {
            "status": status,
            RESOURCE_KINDS[kind].arn_param: JOB_ARN,
            **extra,
        }
    }


class FakeJobs:
    """Stateful fake of the list/create/describe calls of one job kind on ``mock_conn``."""

    def __init__(self, conn, kind: str, status: str = "ACTIVE", reason: str | None = None):
        self.spec = RESOURCE_KINDS[kind]
        self.kind = kind
        self.created: list[dict] = []
        self.status = status
        self.reason = reason
        create = self.spec.describe_method.replace("describe_", "create_", 1)
        getattr(conn, create).side_effect = self.create
        getattr(conn, self.spec.list_method).side_effect = self.list
        getattr(conn, self.spec.describe_method).side_effect = self.describe
        conn.get_solution_metrics.return_value = {
            "solutionVersionArn": JOB_ARN,
            "metrics": {"normalized_discounted_cumulative_gain_at_10": 0.31, "coverage": 0.6},
        }
        self.create_mock = getattr(conn, create)

    def create(self, **request):
        self.created.append(request)
        return {self.spec.arn_param: JOB_ARN}

    def list(self, **kwargs):
        summaries = []
        for request in self.created:
            summary = {self.spec.arn_param: JOB_ARN, "status": self.status}
            if self.spec.name_key:
                summary[self.spec.name_key] = request["jobName"]
            summaries.append(summary)
        return {self.spec.list_key: summaries}

    def describe(self, **kwargs):
        request = self.created[-1] if self.created else {}
        body = {
            **request,  # AWS describes a job with the fields it was created with
            "status": self.status,
            self.spec.arn_param: JOB_ARN,
            "name": request.get("name"),
            "jobName": request.get("jobName"),
            "jobOutput": request.get("jobOutput", {}),
        }
        if self.reason:
            body["failureReason"] = self.reason
        return {self.spec.describe_key: body}


# ---------------------------------------------------------------------------- wait modes


@pytest.mark.parametrize("kind", sorted(JOB_OPERATORS))
@pytest.mark.parametrize(
    ("wait_for_completion", "deferrable"),
    [
        pytest.param(False, False, id="no_wait"),
        pytest.param(True, False, id="wait"),
        pytest.param(False, True, id="defer"),
    ],
)
def test_job_operator_wait_modes(mock_conn, kind, wait_for_completion, deferrable):
    fake = FakeJobs(mock_conn, kind)
    task = job_operator(
        kind,
        wait_for_completion=wait_for_completion,
        deferrable=deferrable,
        waiter_delay=7,
        waiter_max_attempts=9,
    )
    spec = RESOURCE_KINDS[kind]
    with mock.patch.object(PersonalizeHook, "get_waiter") as get_waiter:
        if deferrable:
            with pytest.raises(TaskDeferred) as deferred:
                task.execute(context_for(task))
            trigger = deferred.value.trigger
            assert type(trigger) is TRIGGERS[kind]
            assert deferred.value.method_name == "execute_complete"
            assert trigger.serialized_fields == {"arn": JOB_ARN}
            assert (trigger.waiter_delay, trigger.attempts) == (7, 9)
            assert trigger.aws_conn_id == "aws_default"
        else:
            task.execute(context_for(task))
    assert fake.create_mock.call_count == 1
    assert get_waiter.call_count == int(wait_for_completion and not deferrable)
    if wait_for_completion and not deferrable:
        get_waiter.assert_called_once_with(spec.waiter_name)
        get_waiter.return_value.wait.assert_called_once_with(
            **{spec.arn_param: JOB_ARN}, WaiterConfig={"Delay": 7, "MaxAttempts": 9}
        )


@pytest.mark.parametrize("kind", sorted(JOB_OPERATORS))
def test_job_operator_execute_complete(mock_conn, kind):
    fake = FakeJobs(mock_conn, kind)
    fake.created.append(
        {"jobName": "x", "name": "x", "jobOutput": {"s3DataDestination": {"path": "s3://o/x/"}}}
    )
    task = job_operator(kind, deferrable=True)
    context = context_for(task)
    result = task.execute_complete(context, {"status": "success", "arn": JOB_ARN})
    if kind == "solution_version":
        assert result == {
            "solution_version_arn": JOB_ARN,
            "metrics": {"normalized_discounted_cumulative_gain_at_10": 0.31, "coverage": 0.6},
        }
    elif kind.startswith("batch_"):
        assert result == JOB_ARN
        pushed = {c.kwargs["key"]: c.kwargs["value"] for c in context["ti"].xcom_push.call_args_list}
        assert pushed["job_name"] == "x"
        assert pushed["output_path"] == "s3://o/x/"
    else:
        assert result == JOB_ARN


def test_deferral_hands_every_connection_setting_to_the_trigger(mock_conn):
    FakeJobs(mock_conn, "batch_segment_job")
    config = {"retries": {"max_attempts": 3}}
    task = job_operator(
        "batch_segment_job",
        deferrable=True,
        aws_conn_id="aws_other",
        region_name="eu-west-1",
        verify=False,
        botocore_config=config,
    )
    with pytest.raises(TaskDeferred) as deferred:
        task.execute(context_for(task))
    trigger = deferred.value.trigger
    assert (trigger.aws_conn_id, trigger.region_name, trigger.verify) == ("aws_other", "eu-west-1", False)
    assert trigger.botocore_config == config


# ---------------------------------------------------------------------------- idempotency


@pytest.mark.parametrize("kind", sorted(JOB_OPERATORS))
@pytest.mark.parametrize("status", ["ACTIVE", "IN PROGRESS", "CREATE IN_PROGRESS"])
def test_rerun_of_the_same_run_creates_one_job(mock_conn, kind, status):
    fake = FakeJobs(mock_conn, kind, status=status)
    with mock.patch.object(PersonalizeHook, "get_waiter") as get_waiter:
        first = job_operator(kind).execute(context_for(job_operator(kind)))
        second_task = job_operator(kind)
        second = second_task.execute(context_for(second_task))
    assert fake.create_mock.call_count == 1
    assert first == second
    # The second attempt waits on the running job, or returns at once when it is ACTIVE.
    assert get_waiter.return_value.wait.call_count == (1 if status == "ACTIVE" else 2)


@pytest.mark.parametrize("kind", sorted(JOB_OPERATORS))
def test_job_name_is_derived_from_the_run(mock_conn, kind):
    fake = FakeJobs(mock_conn, kind)
    task = job_operator(kind, wait_for_completion=False)
    task.execute(context_for(task))
    name_key = "name" if kind == "solution_version" else "jobName"
    assert fake.created[0][name_key] == expected_name(task)


def test_explicit_job_name_is_validated(mock_conn):
    FakeJobs(mock_conn, "batch_segment_job")
    task = job_operator("batch_segment_job", job_name="bad name!")
    with pytest.raises(ValueError, match="must match"):
        task.execute(context_for(task))
    mock_conn.create_batch_segment_job.assert_not_called()


def test_if_job_exists_fail(mock_conn):
    fake = FakeJobs(mock_conn, "dataset_import_job")
    task = job_operator("dataset_import_job", wait_for_completion=False)
    task.execute(context_for(task))
    again = job_operator("dataset_import_job", if_job_exists="fail")
    with pytest.raises(AirflowFailException, match="already exists"):
        again.execute(context_for(again))
    assert len(fake.created) == 1


def test_if_job_exists_is_checked(mock_conn):
    task = job_operator("dataset_import_job", if_job_exists="replace")
    with pytest.raises(ValueError, match="if_job_exists"):
        task.execute(context_for(task))


def test_create_race_already_exists_reuses(mock_conn):
    fake = FakeJobs(mock_conn, "batch_inference_job")
    lists = iter([{"batchInferenceJobs": []}])
    mock_conn.list_batch_inference_jobs.side_effect = lambda **kw: next(lists, None) or fake.list(**kw)

    def already_exists(**request):
        fake.created.append(request)  # a concurrent attempt won
        raise ClientError(
            {"Error": {"Code": "ResourceAlreadyExistsException", "Message": "exists"}}, "Create"
        )

    mock_conn.create_batch_inference_job.side_effect = already_exists
    task = job_operator("batch_inference_job", wait_for_completion=False)
    assert task.execute(context_for(task)) == JOB_ARN


# ---------------------------------------------------------------------------- failures


@pytest.mark.parametrize("kind", sorted(JOB_OPERATORS))
def test_failed_job_sync_path_reports_failure_reason(mock_conn, kind):
    fake = FakeJobs(mock_conn, kind, status="CREATE FAILED", reason="Input file has fewer than 1000 records")
    task = job_operator(kind)
    error = WaiterError(name="w", reason="Waiter encountered a terminal failure state", last_response={})
    with mock.patch.object(PersonalizeHook, "get_waiter") as get_waiter:
        get_waiter.return_value.wait.side_effect = error
        with pytest.raises(AirflowFailException, match="fewer than 1000 records") as raised:
            task.execute(context_for(task))
    assert "CREATE FAILED" in str(raised.value)
    assert len(fake.created) == 1


@pytest.mark.parametrize("kind", sorted(JOB_OPERATORS))
def test_failed_job_deferred_path_reports_failure_reason(mock_conn, kind):
    FakeJobs(mock_conn, kind, status="CREATE FAILED", reason="Role cannot read s3://bucket")
    task = job_operator(kind, deferrable=True)
    event = {
        "status": "error",
        "message": "failed: CREATE FAILED - Role cannot read s3://bucket",
        "arn": JOB_ARN,
    }
    with pytest.raises(AirflowFailException, match="Role cannot read"):
        task.execute_complete(context_for(task), event)


def test_waiter_timeout_is_retryable_and_says_so(mock_conn):
    FakeJobs(mock_conn, "solution_version", status="CREATE IN_PROGRESS")
    task = job_operator("solution_version")
    with mock.patch.object(PersonalizeHook, "get_waiter") as get_waiter:
        get_waiter.return_value.wait.side_effect = WaiterError("w", "Max attempts exceeded", {})
        with pytest.raises(AirflowException, match="resumes waiting") as raised:
            task.execute(context_for(task))
    assert not isinstance(raised.value, AirflowFailException)


@pytest.mark.parametrize("kind", sorted(JOB_OPERATORS))
def test_rerun_finding_a_failed_job_raises_without_creating(mock_conn, kind):
    fake = FakeJobs(mock_conn, kind, status="CREATE FAILED", reason="Bad schema")
    fake.created.append(
        {"jobName": expected_name(job_operator(kind)), "name": expected_name(job_operator(kind))}
    )
    if kind == "solution_version":
        mock_conn.list_solution_versions.side_effect = lambda **kw: {
            "solutionVersions": [{"solutionVersionArn": JOB_ARN, "status": "CREATE FAILED"}]
        }
    task = job_operator(kind)
    with pytest.raises(AirflowFailException, match="Bad schema"):
        task.execute(context_for(task))
    assert len(fake.created) == 1


# ---------------------------------------------------------------------------- outputs and results


def test_batch_output_path_contains_the_job_name(mock_conn):
    fake = FakeJobs(mock_conn, "batch_inference_job")
    task = job_operator("batch_inference_job", wait_for_completion=False)
    context = context_for(task)
    assert task.execute(context) == JOB_ARN
    name = expected_name(task)
    output = f"s3://bucket/batch/output/{name}/"
    assert fake.created[0]["jobOutput"] == {"s3DataDestination": {"path": output}}
    pushed = {c.kwargs["key"]: c.kwargs["value"] for c in context["ti"].xcom_push.call_args_list}
    assert pushed["job_name"] == name
    assert pushed["output_path"] == output


def test_batch_job_dict_config_and_passthrough(mock_conn):
    fake = FakeJobs(mock_conn, "batch_inference_job")
    task = job_operator(
        "batch_inference_job",
        job_input={"s3DataSource": {"path": "s3://in/", "kmsKeyArn": "k"}},
        job_output={"s3DataDestination": {"path": "s3://out", "kmsKeyArn": "k"}},
        append_job_name_to_output=False,
        num_results="50",  # as rendered by Jinja
        filter_arn=f"{ARN_PREFIX}:filter/f",
        batch_inference_job_config={"itemExplorationConfig": {"explorationWeight": "0.3"}},
        create_kwargs={"batchInferenceJobMode": "BATCH_INFERENCE"},
        wait_for_completion=False,
    )
    task.execute(context_for(task))
    request = fake.created[0]
    assert request["jobInput"] == {"s3DataSource": {"path": "s3://in/", "kmsKeyArn": "k"}}
    assert request["jobOutput"] == {"s3DataDestination": {"path": "s3://out", "kmsKeyArn": "k"}}
    assert request["numResults"] == 50
    assert request["filterArn"] == f"{ARN_PREFIX}:filter/f"
    assert request["batchInferenceJobConfig"] == {"itemExplorationConfig": {"explorationWeight": "0.3"}}
    assert request["batchInferenceJobMode"] == "BATCH_INFERENCE"


def test_create_kwargs_cannot_override_the_job_name(mock_conn):
    FakeJobs(mock_conn, "batch_segment_job")
    task = job_operator("batch_segment_job", create_kwargs={"jobName": "other"})
    with pytest.raises(ValueError, match="jobName"):
        task.execute(context_for(task))


def test_solution_version_no_wait_returns_no_metrics(mock_conn):
    FakeJobs(mock_conn, "solution_version")
    task = job_operator("solution_version", wait_for_completion=False, training_mode="UPDATE")
    assert task.execute(context_for(task)) == {"solution_version_arn": JOB_ARN, "metrics": None}
    assert mock_conn.create_solution_version.call_args.kwargs["trainingMode"] == "UPDATE"
    mock_conn.get_solution_metrics.assert_not_called()


def test_solution_version_wait_returns_metrics(mock_conn):
    FakeJobs(mock_conn, "solution_version")
    task = job_operator("solution_version")
    with mock.patch.object(PersonalizeHook, "get_waiter"):
        result = task.execute(context_for(task))
    assert result["metrics"]["coverage"] == 0.6
    mock_conn.get_solution_metrics.assert_called_once_with(solutionVersionArn=JOB_ARN)


def test_console_link_is_persisted(mock_conn):
    FakeJobs(mock_conn, "batch_segment_job")
    mock_conn.meta.client.meta.region_name = "us-east-1"
    mock_conn.meta.client.meta.partition = "aws"
    task = job_operator("batch_segment_job", wait_for_completion=False)
    context = context_for(task)
    task.execute(context)
    pushes = {c.kwargs["key"]: c.kwargs["value"] for c in context["ti"].xcom_push.call_args_list}
    value = pushes["personalize_batch_segment_job"]
    assert value["arn"] == JOB_ARN
    assert value["region_name"] == "us-east-1"
    link = task.operator_extra_links[0]
    assert link.format_link(**value) == (
        f"https://console.aws.amazon.com/personalize/home?region=us-east-1#{JOB_ARN}"
    )


# ---------------------------------------------------------------------------- Stubber: real API names


def test_import_job_request_matches_the_service_model(stubbed):
    task = job_operator("dataset_import_job", import_mode="INCREMENTAL", wait_for_completion=False)
    name = expected_name(task)
    stubbed.add_response("list_dataset_import_jobs", {"datasetImportJobs": []}, {"datasetArn": DATASET_ARN})
    stubbed.add_response(
        "create_dataset_import_job",
        {"datasetImportJobArn": JOB_ARN},
        {
            "jobName": name,
            "datasetArn": DATASET_ARN,
            "dataSource": {"dataLocation": "s3://bucket/interactions/"},
            "roleArn": ROLE_ARN,
            "importMode": "INCREMENTAL",
        },
    )
    assert task.execute(context_for(task)) == JOB_ARN


def test_batch_segment_request_matches_the_service_model(stubbed):
    task = job_operator("batch_segment_job", num_results=1000, wait_for_completion=False)
    name = expected_name(task)
    output = f"s3://bucket/segments/output/{name}/"
    stubbed.add_response(
        "list_batch_segment_jobs", {"batchSegmentJobs": []}, {"solutionVersionArn": SOLUTION_VERSION_ARN}
    )
    stubbed.add_response(
        "create_batch_segment_job",
        {"batchSegmentJobArn": JOB_ARN},
        {
            "jobName": name,
            "solutionVersionArn": SOLUTION_VERSION_ARN,
            "jobInput": {"s3DataSource": {"path": "s3://bucket/segments/input/items.json"}},
            "jobOutput": {"s3DataDestination": {"path": output}},
            "roleArn": ROLE_ARN,
            "numResults": 1000,
        },
    )
    stubbed.add_response(
        "describe_batch_segment_job",
        {"batchSegmentJob": {"jobName": name, "jobOutput": {"s3DataDestination": {"path": output}}}},
        {"batchSegmentJobArn": JOB_ARN},
    )
    context = context_for(task)
    assert task.execute(context) == JOB_ARN
    context["ti"].xcom_push.assert_any_call(key="output_path", value=output)


def test_solution_version_request_matches_the_service_model(stubbed):
    task = job_operator("solution_version", wait_for_completion=False)
    stubbed.add_response("list_solution_versions", {"solutionVersions": []}, {"solutionArn": SOLUTION_ARN})
    stubbed.add_response(
        "create_solution_version",
        {"solutionVersionArn": JOB_ARN},
        {"name": expected_name(task), "solutionArn": SOLUTION_ARN, "trainingMode": "FULL"},
    )
    assert task.execute(context_for(task))["solution_version_arn"] == JOB_ARN


def test_campaign_update_request_matches_the_service_model(stubbed):
    arn = f"{ARN_PREFIX}:campaign/live"
    new_version = f"{SOLUTION_ARN}/new"
    task = PersonalizeCreateOrUpdateCampaignOperator(
        task_id="deploy",
        name="live",
        solution_version_arn=new_version,
        min_provisioned_tps=2,
        wait_for_completion=False,
    )
    stubbed.add_response("list_campaigns", {"campaigns": [{"name": "live", "campaignArn": arn}]}, {})
    stubbed.add_response(
        "describe_campaign",
        {
            "campaign": {
                "campaignArn": arn,
                "status": "ACTIVE",
                "solutionVersionArn": SOLUTION_VERSION_ARN,
                "minProvisionedTPS": 2,
            }
        },
        {"campaignArn": arn},
    )
    stubbed.add_response(
        "update_campaign",
        {"campaignArn": arn},
        {"campaignArn": arn, "solutionVersionArn": new_version, "minProvisionedTPS": 2},
    )
    assert task.execute(make_context()) == arn


# ---------------------------------------------------------------------------- named resources


def named_cases():
    schema = {"type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema",
              "fields": [{"name": "USER_ID", "type": "string"}], "version": "1.0"}  # fmt: skip
    return [
        pytest.param(
            lambda **kw: PersonalizeCreateDatasetGroupOperator(task_id="dsg", name="bingewatch", domain="VIDEO_ON_DEMAND", **kw),
            "dataset_group", "list_dataset_groups", {"datasetGroups": [{"name": "bingewatch", "datasetGroupArn": DATASET_GROUP_ARN}]},
            {"name": "bingewatch", "domain": "ECOMMERCE"}, "domain", id="dataset_group",
        ),
        pytest.param(
            lambda **kw: PersonalizeCreateDatasetOperator(task_id="ds", name="interactions", dataset_group_arn=DATASET_GROUP_ARN,
                                                           dataset_type="Interactions", schema_arn=f"{ARN_PREFIX}:schema/new", **kw),
            "dataset", "list_datasets", {"datasets": [{"name": "interactions", "datasetArn": DATASET_ARN, "datasetType": "INTERACTIONS"}]},
            {"name": "interactions", "schemaArn": f"{ARN_PREFIX}:schema/old"}, "schemaArn", id="dataset",
        ),
        pytest.param(
            lambda **kw: PersonalizeCreateFilterOperator(task_id="f", name="unwatched", dataset_group_arn=DATASET_GROUP_ARN,
                                                          filter_expression='EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")', **kw),
            "filter", "list_filters", {"Filters": [{"name": "unwatched", "filterArn": f"{ARN_PREFIX}:filter/unwatched"}]},
            {"name": "unwatched", "filterExpression": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")'},
            "filterExpression", id="filter",
        ),
        pytest.param(
            lambda **kw: PersonalizeCreateSolutionOperator(task_id="s", name="upv2", dataset_group_arn=DATASET_GROUP_ARN,
                                                            recipe_arn="arn:aws:personalize:::recipe/aws-user-personalization-v2",
                                                            solution_config={"algorithmHyperParameters": {"max_user_history_length_percentile": "0.99"}}, **kw),
            "solution", "list_solutions", {"solutions": [{"name": "upv2", "solutionArn": SOLUTION_ARN}]},
            {"name": "upv2", "recipeArn": "arn:aws:personalize:::recipe/aws-user-personalization-v2", "performAutoTraining": False,
             "solutionConfig": {"algorithmHyperParameters": {"max_user_history_length_percentile": "0.95", "other": "x"}}},
            "solutionConfig.algorithmHyperParameters.max_user_history_length_percentile", id="solution",
        ),
        pytest.param(
            lambda **kw: PersonalizeCreateSchemaOperator(task_id="sc", name="interactions", schema=schema, **kw),
            None, "list_schemas", {"schemas": [{"name": "interactions", "schemaArn": f"{ARN_PREFIX}:schema/interactions"}]},
            {"name": "interactions", "schema": json.dumps({**schema, "fields": []})}, "schema", id="schema",
        ),
    ]  # fmt: skip


@pytest.mark.parametrize(("factory", "kind", "list_method", "listing", "existing", "field"), named_cases())
def test_named_resource_with_different_definition_is_a_clear_error(
    mock_conn, factory, kind, list_method, listing, existing, field
):
    getattr(mock_conn, list_method).return_value = listing
    describe = RESOURCE_KINDS[kind].describe_method if kind else "describe_schema"
    key = RESOURCE_KINDS[kind].describe_key if kind else "schema"
    getattr(mock_conn, describe).return_value = {key: {**existing, "status": "ACTIVE"}}
    with pytest.raises(PersonalizeDefinitionMismatchError, match=f"different {field}:") as error:
        factory().execute(make_context())
    assert isinstance(error.value, AirflowException)
    create = (RESOURCE_KINDS[kind].describe_method if kind else "describe_schema").replace(
        "describe_", "create_"
    )
    getattr(mock_conn, create).assert_not_called()


@pytest.mark.parametrize(("factory", "kind", "list_method", "listing", "existing", "field"), named_cases())
def test_named_resource_is_created_once_then_reused(
    mock_conn, factory, kind, list_method, listing, existing, field
):
    create = (RESOURCE_KINDS[kind].describe_method if kind else "describe_schema").replace(
        "describe_", "create_"
    )
    arn_key = RESOURCE_KINDS[kind].arn_param if kind else "schemaArn"
    arn = next(iter(listing.values()))[0][arn_key]
    state: dict = {}

    def do_create(**request):
        state["request"] = request
        return {arn_key: arn}

    getattr(mock_conn, create).side_effect = do_create
    getattr(mock_conn, list_method).side_effect = lambda **kw: listing if state else {next(iter(listing)): []}
    describe = RESOURCE_KINDS[kind].describe_method if kind else "describe_schema"
    key = RESOURCE_KINDS[kind].describe_key if kind else "schema"
    getattr(mock_conn, describe).side_effect = lambda **kw: {key: {**state["request"], "status": "ACTIVE"}}
    with mock.patch.object(PersonalizeHook, "get_waiter") as get_waiter:
        assert factory().execute(make_context()) == arn
        assert factory().execute(make_context()) == arn
    assert getattr(mock_conn, create).call_count == 1
    # Only the fresh resource is waited for (schemas have no status).
    assert get_waiter.return_value.wait.call_count == (1 if kind else 0)


def test_schema_is_compared_as_normalized_json(mock_conn):
    schema = {"type": "record", "fields": [{"name": "USER_ID", "type": "string"}], "name": "Users"}
    arn = f"{ARN_PREFIX}:schema/users"
    mock_conn.list_schemas.return_value = {"schemas": [{"name": "users", "schemaArn": arn}]}
    reordered = '{"name": "Users",  "fields": [{"type": "string", "name": "USER_ID"}], "type": "record"}'
    mock_conn.describe_schema.return_value = {
        "schema": {"name": "users", "schemaArn": arn, "schema": reordered}
    }
    assert (
        PersonalizeCreateSchemaOperator(task_id="s", name="users", schema=json.dumps(schema)).execute(
            make_context()
        )
        == arn
    )
    mock_conn.create_schema.assert_not_called()


def test_solution_defaults_to_no_auto_training(mock_conn):
    mock_conn.list_solutions.return_value = {"solutions": []}
    mock_conn.create_solution.return_value = {"solutionArn": SOLUTION_ARN}
    PersonalizeCreateSolutionOperator(
        task_id="s",
        name="upv2",
        dataset_group_arn=DATASET_GROUP_ARN,
        create_kwargs={"tags": [{"tagKey": "team", "tagValue": "recs"}]},
        wait_for_completion=False,
    ).execute(make_context())
    request = mock_conn.create_solution.call_args.kwargs
    assert request["performAutoTraining"] is False
    assert request["tags"] == [{"tagKey": "team", "tagValue": "recs"}]


def test_existing_failed_named_resource_raises_failure_reason(mock_conn):
    mock_conn.list_dataset_groups.return_value = {
        "datasetGroups": [{"name": "bingewatch", "datasetGroupArn": DATASET_GROUP_ARN}]
    }
    mock_conn.describe_dataset_group.return_value = {
        "datasetGroup": {"name": "bingewatch", "status": "CREATE FAILED", "failureReason": "KMS key disabled"}
    }
    with pytest.raises(AirflowFailException, match="KMS key disabled"):
        PersonalizeCreateDatasetGroupOperator(task_id="dsg", name="bingewatch").execute(make_context())


@pytest.mark.parametrize(
    ("wait_for_completion", "deferrable"), [(False, False), (True, False), (False, True)]
)
def test_named_resource_wait_modes(mock_conn, wait_for_completion, deferrable):
    mock_conn.list_filters.return_value = {"Filters": []}
    mock_conn.create_filter.return_value = {"filterArn": f"{ARN_PREFIX}:filter/f"}
    task = PersonalizeCreateFilterOperator(
        task_id="f", name="f", dataset_group_arn=DATASET_GROUP_ARN, filter_expression="EXCLUDE ItemID WHERE Items.GENRE IN (\"x\")",
        wait_for_completion=wait_for_completion, deferrable=deferrable,
    )  # fmt: skip
    with mock.patch.object(PersonalizeHook, "get_waiter") as get_waiter:
        if deferrable:
            with pytest.raises(TaskDeferred) as deferred:
                task.execute(make_context())
            assert type(deferred.value.trigger) is TRIGGERS["filter"]
        else:
            assert task.execute(make_context()) == f"{ARN_PREFIX}:filter/f"
    assert get_waiter.return_value.wait.call_count == int(wait_for_completion and not deferrable)
    if wait_for_completion and not deferrable:
        get_waiter.assert_called_once_with("filter_active")


# ---------------------------------------------------------------------------- campaign


CAMPAIGN_ARN = f"{ARN_PREFIX}:campaign/live"


def campaign_task(**kwargs):
    params = {"task_id": "deploy", "name": "live", "solution_version_arn": SOLUTION_VERSION_ARN}
    return PersonalizeCreateOrUpdateCampaignOperator(**{**params, **kwargs})


def test_campaign_created_when_missing(mock_conn):
    mock_conn.list_campaigns.return_value = {"campaigns": []}
    mock_conn.create_campaign.return_value = {"campaignArn": CAMPAIGN_ARN}
    with mock.patch.object(PersonalizeHook, "get_waiter") as get_waiter:
        assert campaign_task(min_provisioned_tps="1").execute(make_context()) == CAMPAIGN_ARN
    mock_conn.create_campaign.assert_called_once_with(
        name="live", solutionVersionArn=SOLUTION_VERSION_ARN, minProvisionedTPS=1
    )
    get_waiter.assert_called_once_with("campaign_active")


def test_campaign_up_to_date_is_a_no_op(mock_conn):
    mock_conn.list_campaigns.return_value = {"campaigns": [{"name": "live", "campaignArn": CAMPAIGN_ARN}]}
    mock_conn.describe_campaign.return_value = {
        "campaign": {"status": "ACTIVE", "solutionVersionArn": SOLUTION_VERSION_ARN, "minProvisionedTPS": 1}
    }
    with mock.patch.object(PersonalizeHook, "get_waiter") as get_waiter:
        assert campaign_task(min_provisioned_tps=1).execute(make_context()) == CAMPAIGN_ARN
    mock_conn.update_campaign.assert_not_called()
    mock_conn.create_campaign.assert_not_called()
    get_waiter.assert_not_called()


@pytest.mark.parametrize(
    ("current", "requested"),
    [
        pytest.param({"solutionVersionArn": f"{SOLUTION_ARN}/old", "minProvisionedTPS": 1}, {}, id="new-version"),
        pytest.param({"solutionVersionArn": SOLUTION_VERSION_ARN, "minProvisionedTPS": 1}, {"min_provisioned_tps": 5}, id="tps"),
    ],
)  # fmt: skip
def test_campaign_updated_when_different(mock_conn, current, requested):
    mock_conn.list_campaigns.return_value = {"campaigns": [{"name": "live", "campaignArn": CAMPAIGN_ARN}]}
    mock_conn.describe_campaign.return_value = {"campaign": {"status": "ACTIVE", **current}}
    with mock.patch.object(PersonalizeHook, "get_waiter") as get_waiter:
        campaign_task(**requested).execute(make_context())
    mock_conn.update_campaign.assert_called_once()
    assert mock_conn.update_campaign.call_args.kwargs["solutionVersionArn"] == SOLUTION_VERSION_ARN
    get_waiter.assert_called_once_with("campaign_active")


def test_campaign_rerun_after_update_does_not_update_again(mock_conn):
    mock_conn.list_campaigns.return_value = {"campaigns": [{"name": "live", "campaignArn": CAMPAIGN_ARN}]}
    mock_conn.describe_campaign.return_value = {
        "campaign": {
            "status": "ACTIVE",
            "solutionVersionArn": f"{SOLUTION_ARN}/old",
            "latestCampaignUpdate": {
                "status": "CREATE IN_PROGRESS",
                "solutionVersionArn": SOLUTION_VERSION_ARN,
            },
        }
    }
    with mock.patch.object(PersonalizeHook, "get_waiter") as get_waiter:
        campaign_task().execute(make_context())
    mock_conn.update_campaign.assert_not_called()
    get_waiter.return_value.wait.assert_called_once()


def test_campaign_deferred_update(mock_conn):
    mock_conn.list_campaigns.return_value = {"campaigns": [{"name": "live", "campaignArn": CAMPAIGN_ARN}]}
    mock_conn.describe_campaign.return_value = {
        "campaign": {"status": "ACTIVE", "solutionVersionArn": f"{SOLUTION_ARN}/old"}
    }
    with pytest.raises(TaskDeferred) as deferred:
        campaign_task(deferrable=True).execute(make_context())
    assert type(deferred.value.trigger) is TRIGGERS["campaign"]
    mock_conn.update_campaign.assert_called_once()


# ---------------------------------------------------------------------------- constructors & templating


ALL_OPERATORS = [
    obj
    for _, obj in inspect.getmembers(personalize_operators, inspect.isclass)
    if issubclass(obj, PersonalizeBaseOperator) and obj.__module__ == personalize_operators.__name__
]
CONCRETE_OPERATORS = [cls for cls in ALL_OPERATORS if "template_fields" in cls.__dict__]


def _allowed_statement(node: ast.stmt) -> bool:
    """``self.x = name``, ``self.x = name or <literal>``, ``super().__init__(...)``, docstrings."""
    if isinstance(node, ast.Expr):
        if isinstance(node.value, ast.Constant):
            return True
        call = node.value
        return (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "__init__"
            and isinstance(call.func.value, ast.Call)
            and getattr(call.func.value.func, "id", None) == "super"
            and all(isinstance(k.value, ast.Name) for k in call.keywords)
        )
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target, value = node.targets[0], node.value
        if not (isinstance(target, ast.Attribute) and getattr(target.value, "id", None) == "self"):
            return False
        if isinstance(value, ast.Name):
            return True
        return (
            isinstance(value, ast.BoolOp)
            and isinstance(value.op, ast.Or)
            and isinstance(value.values[0], ast.Name)
            and all(isinstance(v, ast.Constant | ast.Dict | ast.List) for v in value.values[1:])
        )
    return False


@pytest.mark.parametrize("cls", ALL_OPERATORS + list(SENSORS.values()), ids=lambda c: c.__name__)
def test_constructors_only_assign(cls):
    if "__init__" not in cls.__dict__:
        return
    source = textwrap.dedent(inspect.getsource(cls.__init__))
    function = ast.parse(source).body[0]
    assert isinstance(function, ast.FunctionDef)
    bad = [ast.unparse(node) for node in function.body if not _allowed_statement(node)]
    assert not bad, f"{cls.__name__}.__init__ does more than assign: {bad}"


REQUIRED = {
    PersonalizeCreateDatasetGroupOperator: {"name"},
    PersonalizeCreateSchemaOperator: {"name", "schema"},
    PersonalizeCreateDatasetOperator: {"name", "dataset_group_arn", "dataset_type", "schema_arn"},
    PersonalizeCreateFilterOperator: {"name", "dataset_group_arn", "filter_expression"},
    PersonalizeCreateSolutionOperator: {"name", "dataset_group_arn"},
    PersonalizeCreateOrUpdateCampaignOperator: {"name", "solution_version_arn"},
    PersonalizeCreateDatasetImportJobOperator: {"dataset_arn", "data_location"},
    PersonalizeCreateSolutionVersionOperator: {"solution_arn"},
    PersonalizeCreateBatchInferenceJobOperator: {
        "solution_version_arn",
        "job_input",
        "job_output",
        "role_arn",
    },
    PersonalizeCreateBatchSegmentJobOperator: {"solution_version_arn", "job_input", "job_output", "role_arn"},
}


@pytest.mark.parametrize("cls", CONCRETE_OPERATORS, ids=lambda c: c.__name__)
def test_operator_names_its_create_call_waiter_and_trigger(cls):
    """Readable in one file: the class body itself names its create call, waiter and trigger."""
    assert "create" in cls.__dict__
    if not getattr(cls, "has_status", True):  # schemas: nothing to wait for
        return
    assert {"resource", "waiter_name", "trigger_class"} <= set(cls.__dict__)
    assert cls.waiter_name == cls.resource.waiter_name
    assert cls.trigger_class.resource is cls.resource
    assert cls.trigger_class is TRIGGERS[cls.resource.kind]


def test_every_concrete_operator_is_covered():
    assert set(CONCRETE_OPERATORS) == set(REQUIRED)


@pytest.mark.parametrize("cls", sorted(REQUIRED, key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_templated_fields_are_stored_unrendered_and_no_hook_is_built(cls):
    fields = [f for f in cls.template_fields if f not in ("aws_conn_id", "region_name", "verify")]
    values = {field: "{{ var.value." + field + " }}" for field in fields}
    with mock.patch.object(PersonalizeHook, "__init__", side_effect=AssertionError("hook built in __init__")):
        task = cls(task_id="t", **values)
    for field in fields:
        assert getattr(task, field) == values[field], field
    assert "hook" not in task.__dict__
    assert set(REQUIRED[cls]) <= set(fields)
    for field, renderer in getattr(cls, "template_fields_renderers", {}).items():
        assert field in cls.template_fields
        assert renderer == "json"


@pytest.mark.parametrize("cls", sorted(REQUIRED, key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_operator_has_console_link(cls):
    assert [type(link) for link in cls.operator_extra_links] == [cls.link_class]


def test_default_deferrable_comes_from_config():
    sig = inspect.signature(PersonalizeBaseOperator.__init__)
    assert sig.parameters["deferrable"].default is False  # [operators] default_deferrable unset in tests


def test_first_difference():
    assert first_difference({"a": 1}, {"a": 1, "b": 2}, "x") is None
    assert first_difference({"a": {"b": "1"}}, {"a": {"b": "2"}}, "x") == ("x.a.b", "1", "2")
    assert first_difference("5", 5, "tps") is None
    assert first_difference(False, True, "performAutoTraining") == ("performAutoTraining", False, True)


def test_importing_operators_is_light():
    code = (
        "import sys; import operators.personalize, sensors.personalize, triggers.personalize, hooks.personalize; "
        "print(sorted(m for m in ('pandas', 'pyarrow', 'numpy', 'duckdb') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("kind", "changed", "field"),
    [
        pytest.param(
            "dataset_import_job",
            {"data_location": "s3://bucket/snapshots/try2/"},
            "dataSource.dataLocation",
            id="import-new-snapshot",
        ),
        pytest.param("solution_version", {"training_mode": "UPDATE"}, "trainingMode", id="training-mode"),
        pytest.param(
            "batch_inference_job",
            {"solution_version_arn": SOLUTION_VERSION_ARN + "-retrained"},
            "solutionVersionArn",
            id="batch-new-version",
        ),
        pytest.param("batch_inference_job", {"num_results": 50}, "numResults", id="batch-num-results"),
    ],
)
def test_rerun_with_changed_inputs_does_not_reuse_the_old_job(mock_conn, kind, changed, field):
    """Same (run, task) name, different request: a clear error, never the stale job's output."""
    fake = FakeJobs(mock_conn, kind)
    first = job_operator(kind, wait_for_completion=False)
    first.execute(context_for(first))
    rerun = job_operator(kind, wait_for_completion=False, **changed)
    with pytest.raises(AirflowFailException, match=rf"different {field}.*start a new DAG run"):
        rerun.execute(context_for(rerun))
    assert len(fake.created) == 1


@pytest.mark.parametrize(
    ("recipe", "mode", "allowed"),
    [
        ("aws-user-personalization", "UPDATE", True),
        ("aws-user-personalization-v2", "UPDATE", False),
        ("aws-item-attribute-affinity", "UPDATE", False),
        ("aws-item-attribute-affinity", "FULL", True),
    ],
)
def test_solution_version_training_mode_is_checked_against_the_recipe_before_any_call(
    stubbed, recipe, mode, allowed
):
    """The Param ``training_mode`` is rendered at run time: a mode the recipe refuses fails here."""
    task = job_operator(
        "solution_version",
        wait_for_completion=False,
        training_mode=mode,
        recipe_arn=f"arn:aws:personalize:::recipe/{recipe}",
    )
    if allowed:
        stubbed.add_response(
            "list_solution_versions", {"solutionVersions": []}, {"solutionArn": SOLUTION_ARN}
        )
        stubbed.add_response(
            "create_solution_version",
            {"solutionVersionArn": JOB_ARN},
            {"name": expected_name(task), "solutionArn": SOLUTION_ARN, "trainingMode": mode},
        )
        assert task.execute(context_for(task))["solution_version_arn"] == JOB_ARN
    else:
        with pytest.raises(AirflowFailException, match=f"recipe {recipe}: it trains with FULL only"):
            task.execute(context_for(task))  # the Stubber has no response queued: no call was made
