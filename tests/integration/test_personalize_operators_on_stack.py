"""
The project's Personalize operators, sensors and triggers, unchanged, against the embedded stack.

Nothing is mocked: every call goes through ``aws_conn_id="aws_default"`` (set by the ``local_stack``
fixture) to moto's S3 and the project's Personalize emulator, with the boto3 waiters of
``plugins/waiters/personalize.json`` for synchronous waits and the aiobotocore client of
``AwsBaseWaiterTrigger`` for deferred ones. The only stand-in is the task instance in the Context
(no metadata database): a small object with the ids and an XCom sink.
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred
from airflow.sdk.module_loading import import_string
from airflow.triggers.base import TriggerEvent

from operators.personalize import (
    PersonalizeCreateBatchInferenceJobOperator,
    PersonalizeCreateDatasetGroupOperator,
    PersonalizeCreateDatasetImportJobOperator,
    PersonalizeCreateDatasetOperator,
    PersonalizeCreateFilterOperator,
    PersonalizeCreateSchemaOperator,
    PersonalizeCreateSolutionOperator,
    PersonalizeCreateSolutionVersionOperator,
)
from sensors.personalize import PersonalizeDatasetImportJobSensor
from triggers.personalize import (
    PersonalizeBatchInferenceJobCompleteTrigger,
    PersonalizeDatasetImportJobCompleteTrigger,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CONFIG = json.loads((REPO / "include" / "config" / "bingewatch.json").read_text())
INTERACTIONS_CSV = REPO / "include" / "data" / "bingewatch" / "interactions.csv"
ROLE_ARN = "arn:aws:iam::123456789012:role/PersonalizeRole"
RECIPE_ARN = "arn:aws:personalize:::recipe/aws-user-personalization"
FILTER_EXPRESSION = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("Watch")'
DAG_ID = "personalize_on_stack"
RUN_ID = "scheduled__2025-01-01T00:00:00+00:00"
#: The GetSolutionMetrics names Personalize documents for User-Personalization.
METRIC_NAMES = {
    "coverage",
    "mean_reciprocal_rank_at_25",
    "normalized_discounted_cumulative_gain_at_5",
    "normalized_discounted_cumulative_gain_at_10",
    "normalized_discounted_cumulative_gain_at_25",
    "precision_at_5",
    "precision_at_10",
    "precision_at_25",
}
#: Fast waits: the stack finishes a job after 0.5 s; waiter delays are whole seconds.
FAST: dict[str, Any] = {"waiter_delay": 1, "waiter_max_attempts": 60}
INTERMEDIATE = {"CREATE PENDING", "CREATE IN_PROGRESS", "PENDING", "IN PROGRESS"}


class FakeTaskInstance:
    """What the operators read from ``context["ti"]``: the ids, and ``xcom_push`` (recorded)."""

    def __init__(self, task_id: str, run_id: str = RUN_ID, dag_id: str = DAG_ID) -> None:
        self.dag_id = dag_id
        self.run_id = run_id
        self.task_id = task_id
        self.map_index = -1
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def make_context(task_id: str, run_id: str = RUN_ID) -> dict[str, Any]:
    ti = FakeTaskInstance(task_id, run_id)
    return {"ti": ti, "task_instance": ti, "run_id": run_id}


def interactions_schema() -> dict[str, Any]:
    return CONFIG["datasets"]["interactions"]["schema"]["serviceConfig"]["schema"]


def run_trigger(trigger: Any) -> list[TriggerEvent]:
    """Run a trigger the way the triggerer does: rebuild it from ``serialize()``, drain ``run()``."""
    classpath, kwargs = trigger.serialize()
    rebuilt = import_string(classpath)(**kwargs)

    async def drain() -> list[TriggerEvent]:
        return [event async for event in rebuilt.run()]

    return asyncio.run(asyncio.wait_for(drain(), timeout=60))


def defer(operator: Any, context: dict[str, Any]) -> TaskDeferred:
    """Call ``execute`` and return the deferral it raises."""
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    assert deferred.value.method_name == "execute_complete"
    return deferred.value


def list_all(client: Any, method: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator(method).paginate(**kwargs):
        items.extend(page[key])
    return items


def job_status(client: Any, kind: str, arn: str) -> dict[str, Any]:
    if kind == "import":
        return client.describe_dataset_import_job(datasetImportJobArn=arn)["datasetImportJob"]
    return client.describe_batch_inference_job(batchInferenceJobArn=arn)["batchInferenceJob"]


# ---------------------------------------------------------------------------------------- the chain


def run_chain(names: dict[str, str], bucket: str) -> dict[str, Any]:
    """Dataset group → schema → dataset → import → solution → version → batch inference → filter."""
    out: dict[str, Any] = {}
    out["dataset_group_arn"] = PersonalizeCreateDatasetGroupOperator(
        task_id="create_dataset_group",
        name=names["dataset_group"],
        domain=CONFIG["datasetGroup"]["serviceConfig"].get("domain"),
        **FAST,
    ).execute(make_context("create_dataset_group"))
    out["schema_arn"] = PersonalizeCreateSchemaOperator(
        task_id="create_schema",
        name=names["schema"],
        schema=interactions_schema(),
        domain=CONFIG["datasets"]["interactions"]["schema"]["serviceConfig"].get("domain"),
    ).execute(make_context("create_schema"))
    out["dataset_arn"] = PersonalizeCreateDatasetOperator(
        task_id="create_dataset",
        name=names["dataset"],
        dataset_group_arn=out["dataset_group_arn"],
        dataset_type="Interactions",
        schema_arn=out["schema_arn"],
        **FAST,
    ).execute(make_context("create_dataset"))
    out["import_job_arn"] = PersonalizeCreateDatasetImportJobOperator(
        task_id="import_interactions",
        dataset_arn=out["dataset_arn"],
        data_location=f"s3://{bucket}/interactions/",
        role_arn=ROLE_ARN,
        **FAST,
    ).execute(make_context("import_interactions"))
    out["solution_arn"] = PersonalizeCreateSolutionOperator(
        task_id="create_solution",
        name=names["solution"],
        dataset_group_arn=out["dataset_group_arn"],
        recipe_arn=RECIPE_ARN,
        **FAST,
    ).execute(make_context("create_solution"))
    out["solution_version"] = PersonalizeCreateSolutionVersionOperator(
        task_id="train", solution_arn=out["solution_arn"], **FAST
    ).execute(make_context("train"))
    batch_context = make_context("batch_recommendations")
    batch = PersonalizeCreateBatchInferenceJobOperator(
        task_id="batch_recommendations",
        solution_version_arn=out["solution_version"]["solution_version_arn"],
        job_input=f"s3://{bucket}/batch/in/users.json",
        job_output=f"s3://{bucket}/batch/out/",
        role_arn=ROLE_ARN,
        num_results=5,
        **FAST,
    )
    out["batch_job_arn"] = batch.execute(batch_context)
    out["batch_job_name"] = batch.resolve_job_name(batch_context)
    out["batch_xcom"] = dict(batch_context["ti"].xcom)
    out["filter_arn"] = PersonalizeCreateFilterOperator(
        task_id="create_filter",
        name=names["filter"],
        dataset_group_arn=out["dataset_group_arn"],
        filter_expression=FILTER_EXPRESSION,
        **FAST,
    ).execute(make_context("create_filter"))
    return out


def inventory(client: Any, s3: Any, result: dict[str, Any], bucket: str) -> dict[str, Any]:
    """Everything that exists on the server, to compare before and after a rerun."""
    solution_arn = result["solution_arn"]
    version_arn = result["solution_version"]["solution_version_arn"]
    return {
        "dataset_groups": sorted(
            g["datasetGroupArn"] for g in list_all(client, "list_dataset_groups", "datasetGroups")
        ),
        "schemas": sorted(s["schemaArn"] for s in list_all(client, "list_schemas", "schemas")),
        "datasets": sorted(
            d["datasetArn"]
            for d in list_all(
                client, "list_datasets", "datasets", datasetGroupArn=result["dataset_group_arn"]
            )
        ),
        "import_jobs": sorted(
            j["datasetImportJobArn"]
            for j in list_all(
                client, "list_dataset_import_jobs", "datasetImportJobs", datasetArn=result["dataset_arn"]
            )
        ),
        "solutions": sorted(
            s["solutionArn"]
            for s in list_all(
                client, "list_solutions", "solutions", datasetGroupArn=result["dataset_group_arn"]
            )
        ),
        "solution_versions": sorted(
            v["solutionVersionArn"]
            for v in list_all(client, "list_solution_versions", "solutionVersions", solutionArn=solution_arn)
        ),
        "batch_jobs": sorted(
            j["batchInferenceJobArn"]
            for j in list_all(
                client, "list_batch_inference_jobs", "batchInferenceJobs", solutionVersionArn=version_arn
            )
        ),
        "filters": sorted(
            f["filterArn"]
            for f in list_all(client, "list_filters", "Filters", datasetGroupArn=result["dataset_group_arn"])
        ),
        "batch_output": sorted(
            (o["Key"], o["ETag"], o["LastModified"])
            for o in s3.list_objects_v2(Bucket=bucket, Prefix="batch/out/").get("Contents", [])
        ),
    }


def sample_user_ids(count: int) -> list[str]:
    users: list[str] = []
    with INTERACTIONS_CSV.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["USER_ID"] not in users:
                users.append(row["USER_ID"])
            if len(users) == count:
                break
    return users


@pytest.fixture(scope="module")
def bucket(local_stack: Any) -> str:
    """A fresh bucket for the module's chain (``s3_bucket`` is per test; the chain is shared)."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3 = local_stack.client("s3")
    s3.create_bucket(Bucket=name)
    s3.upload_file(str(INTERACTIONS_CSV), name, "interactions/interactions.csv")
    body = "".join(json.dumps({"userId": user}) + "\n" for user in sample_user_ids(3))
    s3.put_object(Bucket=name, Key="batch/in/users.json", Body=body.encode())
    return name


@pytest.fixture(scope="module")
def chain(local_stack: Any, bucket: str) -> dict[str, Any]:
    """The full chain run twice with the same run context; the results and server state after each."""
    suffix = uuid.uuid4().hex[:8]
    names = {
        "dataset_group": f"bingewatch-{suffix}",
        "schema": f"{CONFIG['datasets']['interactions']['schema']['serviceConfig']['name']}-{suffix}",
        "dataset": f"{CONFIG['datasets']['interactions']['dataset']['serviceConfig']['name']}-{suffix}",
        "solution": f"bw-user-personalization-{suffix}",
        "filter": f"bw-exclude-watched-{suffix}",
    }
    client, s3 = local_stack.client("personalize"), local_stack.client("s3")
    first = run_chain(names, bucket)
    after_first = inventory(client, s3, first, bucket)
    second = run_chain(names, bucket)
    return {
        "names": names,
        "first": first,
        "second": second,
        "after_first": after_first,
        "after_second": inventory(client, s3, second, bucket),
    }


def test_chain_creates_every_resource_active(local_stack: Any, chain: dict[str, Any]) -> None:
    client = local_stack.client("personalize")
    first = chain["first"]
    group = client.describe_dataset_group(datasetGroupArn=first["dataset_group_arn"])["datasetGroup"]
    assert (group["name"], group["status"]) == (chain["names"]["dataset_group"], "ACTIVE")
    schema = client.describe_schema(schemaArn=first["schema_arn"])["schema"]
    assert json.loads(schema["schema"]) == interactions_schema()
    dataset = client.describe_dataset(datasetArn=first["dataset_arn"])["dataset"]
    assert (dataset["status"], dataset["schemaArn"]) == ("ACTIVE", first["schema_arn"])
    assert dataset["datasetType"].upper() == "INTERACTIONS"
    job = client.describe_dataset_import_job(datasetImportJobArn=first["import_job_arn"])["datasetImportJob"]
    assert job["status"] == "ACTIVE"
    assert job["datasetArn"] == first["dataset_arn"]
    solution = client.describe_solution(solutionArn=first["solution_arn"])["solution"]
    assert (solution["status"], solution["recipeArn"]) == ("ACTIVE", RECIPE_ARN)
    assert solution["performAutoTraining"] is False
    filt = client.describe_filter(filterArn=first["filter_arn"])["filter"]
    assert (filt["status"], filt["filterExpression"]) == ("ACTIVE", FILTER_EXPRESSION)


def test_solution_version_returns_arn_and_documented_metrics(local_stack: Any, chain: dict[str, Any]) -> None:
    version = chain["first"]["solution_version"]
    assert set(version) == {"solution_version_arn", "metrics"}
    assert version["solution_version_arn"].startswith(chain["first"]["solution_arn"] + "/")
    described = local_stack.client("personalize").describe_solution_version(
        solutionVersionArn=version["solution_version_arn"]
    )["solutionVersion"]
    assert described["status"] == "ACTIVE"
    assert set(version["metrics"]) == METRIC_NAMES
    assert all(isinstance(value, float) and 0.0 <= value <= 1.0 for value in version["metrics"].values())
    assert version["metrics"]["coverage"] > 0


def test_batch_inference_writes_to_its_own_folder(
    local_stack: Any, chain: dict[str, Any], bucket: str
) -> None:
    first = chain["first"]
    job_name = first["batch_job_name"]
    job = local_stack.client("personalize").describe_batch_inference_job(
        batchInferenceJobArn=first["batch_job_arn"]
    )["batchInferenceJob"]
    assert job["status"] == "ACTIVE"
    assert job["jobName"] == job_name
    output_path = f"s3://{bucket}/batch/out/{job_name}/"
    assert job["jobOutput"]["s3DataDestination"]["path"] == output_path
    assert first["batch_xcom"]["job_name"] == job_name
    assert first["batch_xcom"]["output_path"] == output_path
    assert first["batch_xcom"]["personalize_batch_inference_job"]["arn"] == first["batch_job_arn"]

    s3 = local_stack.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="batch/out/")["Contents"]]
    assert f"batch/out/{job_name}/users.json.out" in keys
    assert all(key.startswith(f"batch/out/{job_name}/") for key in keys)
    body = s3.get_object(Bucket=bucket, Key=f"batch/out/{job_name}/users.json.out")["Body"].read().decode()
    lines = [json.loads(line) for line in body.splitlines() if line.strip()]
    assert [line["input"]["userId"] for line in lines] == sample_user_ids(3)
    for line in lines:
        assert line["error"] is None
        assert 0 < len(line["output"]["recommendedItems"]) <= 5


def test_second_run_of_the_chain_creates_nothing(chain: dict[str, Any]) -> None:
    assert chain["second"] == chain["first"]
    before, after = chain["after_first"], chain["after_second"]
    assert after == before
    # One of each child under this run's parents (the dataset group and schema lists are global).
    for key in ("datasets", "import_jobs", "solutions", "solution_versions", "batch_jobs", "filters"):
        assert len(after[key]) == 1, (key, after[key])
    assert chain["first"]["dataset_group_arn"] in after["dataset_groups"]
    assert chain["first"]["schema_arn"] in after["schemas"]


# ----------------------------------------------------------------------------------- deferrable waits


def test_dataset_import_job_defers_and_completes_through_the_trigger(
    local_stack: Any, chain: dict[str, Any], bucket: str
) -> None:
    client = local_stack.client("personalize")
    context = make_context("import_interactions", run_id="deferred__import")
    operator = PersonalizeCreateDatasetImportJobOperator(
        task_id="import_interactions",
        dataset_arn=chain["first"]["dataset_arn"],
        data_location=f"s3://{bucket}/interactions/interactions.csv",
        role_arn=ROLE_ARN,
        import_mode="INCREMENTAL",
        deferrable=True,
        **FAST,
    )
    deferred = defer(operator, context)
    trigger = deferred.trigger
    assert isinstance(trigger, PersonalizeDatasetImportJobCompleteTrigger)
    arn = trigger.serialize()[1]["arn"]
    assert job_status(client, "import", arn)["status"] in INTERMEDIATE  # deferred while still running
    assert job_status(client, "import", arn)["jobName"] == operator.resolve_job_name(context)

    events = run_trigger(trigger)
    assert [event.payload for event in events] == [{"status": "success", "arn": arn}]
    assert job_status(client, "import", arn)["status"] == "ACTIVE"
    assert operator.execute_complete(context, events[0].payload) == arn

    # A retry of the same task finds the finished job and returns without deferring again.
    assert operator.execute(make_context("import_interactions", run_id="deferred__import")) == arn


def test_batch_inference_job_defers_and_completes_through_the_trigger(
    local_stack: Any, chain: dict[str, Any], bucket: str
) -> None:
    context = make_context("batch_recommendations", run_id="deferred__batch")
    operator = PersonalizeCreateBatchInferenceJobOperator(
        task_id="batch_recommendations",
        solution_version_arn=chain["first"]["solution_version"]["solution_version_arn"],
        job_input=f"s3://{bucket}/batch/in/users.json",
        job_output=f"s3://{bucket}/batch/out/",
        role_arn=ROLE_ARN,
        num_results=3,
        filter_arn=chain["first"]["filter_arn"],
        deferrable=True,
        **FAST,
    )
    trigger = defer(operator, context).trigger
    assert isinstance(trigger, PersonalizeBatchInferenceJobCompleteTrigger)
    arn = trigger.serialize()[1]["arn"]
    client = local_stack.client("personalize")
    assert job_status(client, "batch", arn)["status"] in INTERMEDIATE

    events = run_trigger(trigger)
    assert [event.payload for event in events] == [{"status": "success", "arn": arn}]
    assert operator.execute_complete(context, events[0].payload) == arn

    job_name = operator.resolve_job_name(context)
    assert job_name != chain["first"]["batch_job_name"]
    assert context["ti"].xcom["output_path"] == f"s3://{bucket}/batch/out/{job_name}/"
    s3 = local_stack.client("s3")
    body = s3.get_object(Bucket=bucket, Key=f"batch/out/{job_name}/users.json.out")["Body"].read().decode()
    lines = [json.loads(line) for line in body.splitlines() if line.strip()]
    assert len(lines) == 3
    for line in lines:
        assert line["error"] is None
        assert 0 < len(line["output"]["recommendedItems"]) <= 3


# ------------------------------------------------------------------------------------ failure path


@pytest.fixture
def tiny_import(local_stack: Any, chain: dict[str, Any], s3_bucket: str) -> dict[str, Any]:
    """An interactions CSV with 20 rows (Personalize needs at least 1000) in a fresh bucket."""
    with INTERACTIONS_CSV.open() as fh:
        text = "".join(line for _, line in zip(range(21), fh, strict=False))
    local_stack.client("s3").put_object(Bucket=s3_bucket, Key="tiny/interactions.csv", Body=text.encode())
    return {"dataset_arn": chain["first"]["dataset_arn"], "location": f"s3://{s3_bucket}/tiny/"}


def _failed_import_operator(
    tiny_import: dict[str, Any], **kwargs: Any
) -> PersonalizeCreateDatasetImportJobOperator:
    return PersonalizeCreateDatasetImportJobOperator(
        task_id="import_interactions",
        dataset_arn=tiny_import["dataset_arn"],
        data_location=tiny_import["location"],
        role_arn=ROLE_ARN,
        import_mode="INCREMENTAL",
        **FAST,
        **kwargs,
    )


def _import_job_by_name(client: Any, dataset_arn: str, name: str) -> list[dict[str, Any]]:
    jobs = list_all(client, "list_dataset_import_jobs", "datasetImportJobs", datasetArn=dataset_arn)
    return [job for job in jobs if job["jobName"] == name]


def test_failed_import_raises_with_failure_reason_sync(local_stack: Any, tiny_import: dict[str, Any]) -> None:
    client = local_stack.client("personalize")
    context = make_context("import_interactions", run_id="failed__sync")
    operator = _failed_import_operator(tiny_import)
    with pytest.raises(AirflowFailException) as raised:
        operator.execute(context)

    [summary] = _import_job_by_name(client, tiny_import["dataset_arn"], operator.resolve_job_name(context))
    job = job_status(client, "import", summary["datasetImportJobArn"])
    assert job["status"] == "CREATE FAILED"
    assert "at least 1000" in job["failureReason"]
    assert job["failureReason"] in str(raised.value)

    # A retry of the task finds its failed job: it raises the same reason and starts no second job.
    with pytest.raises(AirflowFailException, match="at least 1000"):
        operator.execute(make_context("import_interactions", run_id="failed__sync"))
    assert len(_import_job_by_name(client, tiny_import["dataset_arn"], job["jobName"])) == 1

    # The sensor on the failed job fails too, with the same reason.
    sensor = PersonalizeDatasetImportJobSensor(
        task_id="wait", arn=job["datasetImportJobArn"], poke_interval=1
    )
    with pytest.raises(AirflowFailException) as poked:
        sensor.poke(make_context("wait"))
    assert job["failureReason"] in str(poked.value)


def test_failed_import_trigger_yields_error_event(local_stack: Any, tiny_import: dict[str, Any]) -> None:
    client = local_stack.client("personalize")
    context = make_context("import_interactions", run_id="failed__deferred")
    operator = _failed_import_operator(tiny_import, deferrable=True)
    trigger = defer(operator, context).trigger
    arn = trigger.serialize()[1]["arn"]

    events = run_trigger(trigger)
    assert len(events) == 1
    event = events[0].payload
    job = job_status(client, "import", arn)
    assert job["status"] == "CREATE FAILED"
    assert event["status"] == "error"
    assert event["arn"] == arn
    assert job["failureReason"] in event["message"]

    with pytest.raises(AirflowFailException) as raised:
        operator.execute_complete(context, event)
    assert job["failureReason"] in str(raised.value)


# ------------------------------------------------------------------------------------------ sensors


def _start_import(chain: dict[str, Any], bucket: str, run_id: str) -> str:
    """Start an import job without waiting (``wait_for_completion=False``); return its ARN."""
    return PersonalizeCreateDatasetImportJobOperator(
        task_id="import_interactions",
        dataset_arn=chain["first"]["dataset_arn"],
        data_location=f"s3://{bucket}/interactions/",
        role_arn=ROLE_ARN,
        import_mode="INCREMENTAL",
        wait_for_completion=False,
        **FAST,
    ).execute(make_context("import_interactions", run_id=run_id))


def test_sensor_pokes_a_running_job_until_active(
    local_stack: Any, chain: dict[str, Any], bucket: str
) -> None:
    sensor = PersonalizeDatasetImportJobSensor(task_id="wait_for_import", arn="", poke_interval=1)
    sensor.hook.conn  # noqa: B018 - build the client first so the first poke comes right after the create
    sensor.arn = _start_import(chain, bucket, run_id="sensor__poke")
    context = make_context("wait_for_import")
    pokes = [sensor.poke(context)]
    deadline = time.monotonic() + 30
    while not pokes[-1] and time.monotonic() < deadline:
        time.sleep(0.1)
        pokes.append(sensor.poke(context))
    assert pokes[0] is False
    assert pokes[-1] is True
    assert set(pokes[:-1]) == {False}
    assert job_status(local_stack.client("personalize"), "import", sensor.arn)["status"] == "ACTIVE"


def test_deferrable_sensor_defers_to_the_operators_trigger(
    local_stack: Any, chain: dict[str, Any], bucket: str
) -> None:
    arn = _start_import(chain, bucket, run_id="sensor__deferred")
    context = make_context("wait_for_import")
    sensor = PersonalizeDatasetImportJobSensor(
        task_id="wait_for_import", arn=arn, poke_interval=1, max_retries=30, deferrable=True
    )
    trigger = defer(sensor, context).trigger
    assert type(trigger) is PersonalizeDatasetImportJobCompleteTrigger
    classpath, kwargs = trigger.serialize()
    assert classpath == "triggers.personalize.PersonalizeDatasetImportJobCompleteTrigger"
    assert (kwargs["arn"], kwargs["waiter_delay"], kwargs["waiter_max_attempts"]) == (arn, 1, 30)
    assert kwargs["aws_conn_id"] == "aws_default"
    assert job_status(local_stack.client("personalize"), "import", arn)["status"] in INTERMEDIATE

    events = run_trigger(trigger)
    assert [event.payload for event in events] == [{"status": "success", "arn": arn}]
    assert sensor.execute_complete(context, events[0].payload) == arn
