"""CRUD, state machines, listing, pagination and errors of the Personalize emulator through boto3."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.personalize_emulator.conftest import (
    Emulator,
    Group,
    bw_schema,
    make_group,
    wait_status,
)

PENDING = {"CREATE PENDING", "CREATE IN_PROGRESS"}


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def test_dataset_group_state_machine(emulator: Emulator) -> None:
    client = emulator.client
    arn = client.create_dataset_group(name="sm-group", domain="VIDEO_ON_DEMAND")["datasetGroupArn"]
    assert arn == "arn:aws:personalize:us-east-1:123456789012:dataset-group/sm-group"
    first = client.describe_dataset_group(datasetGroupArn=arn)["datasetGroup"]
    assert first["status"] in PENDING
    assert first["domain"] == "VIDEO_ON_DEMAND"
    done = wait_status(lambda: client.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
    assert done["status"] == "ACTIVE"
    assert done["lastUpdatedDateTime"] >= done["creationDateTime"]
    elapsed = (done["lastUpdatedDateTime"] - done["creationDateTime"]).total_seconds()
    assert elapsed >= emulator.min_job_seconds - 0.01


def test_duplicate_names_and_not_found(emulator: Emulator) -> None:
    client = emulator.client
    client.create_dataset_group(name="dup-group")
    with pytest.raises(ClientError) as exc:
        client.create_dataset_group(name="dup-group")
    assert _code(exc) == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as exc:
        client.describe_dataset_group(
            datasetGroupArn="arn:aws:personalize:us-east-1:123456789012:dataset-group/nope"
        )
    assert _code(exc) == "ResourceNotFoundException"
    client.create_schema(name="dup-schema", schema=bw_schema("items"))
    with pytest.raises(ClientError) as exc:
        client.create_schema(name="dup-schema", schema=bw_schema("items"))
    assert _code(exc) == "ResourceAlreadyExistsException"


def test_request_validation_errors(emulator: Emulator) -> None:
    client = emulator.client
    with pytest.raises(ClientError) as exc:
        client.create_dataset_group(name="x" * 64)
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        client.create_dataset_group(name="bad name!")
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        client.create_dataset_group(name="ok", domain="GAMES")
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        client.create_schema(name="broken-schema", schema="{not json")
    assert _code(exc) == "InvalidInputException"


def test_schema_and_dataset(emulator: Emulator) -> None:
    client = emulator.client
    group = make_group(client, "ds-group", kinds=("interactions",))
    dataset = client.describe_dataset(datasetArn=group.datasets["interactions"])["dataset"]
    assert dataset["datasetArn"] == "arn:aws:personalize:us-east-1:123456789012:dataset/ds-group/INTERACTIONS"
    assert dataset["status"] == "ACTIVE"
    assert dataset["datasetType"] == "Interactions"
    schema = client.describe_schema(schemaArn=dataset["schemaArn"])["schema"]
    assert json.loads(schema["schema"])["name"] == "Interactions"
    # a second interactions dataset in the same group is refused
    with pytest.raises(ClientError) as exc:
        client.create_dataset(
            name="ds-group-other",
            schemaArn=dataset["schemaArn"],
            datasetGroupArn=group.arn,
            datasetType="Interactions",
        )
    assert _code(exc) == "ResourceAlreadyExistsException"
    # an items schema without ITEM_ID is refused for an items dataset
    bad = client.create_schema(
        name="no-item-id",
        schema=json.dumps(
            {"type": "record", "name": "Items", "fields": [{"name": "TITLE", "type": "string"}]}
        ),
    )["schemaArn"]
    with pytest.raises(ClientError) as exc:
        client.create_dataset(name="ds-items", schemaArn=bad, datasetGroupArn=group.arn, datasetType="Items")
    assert _code(exc) == "InvalidInputException"
    assert "ITEM_ID" in str(exc.value)
    listed = client.list_datasets(datasetGroupArn=group.arn)["datasets"]
    assert [d["datasetArn"] for d in listed] == [group.datasets["interactions"]]
    # the schema is in use; the group still has a dataset
    with pytest.raises(ClientError) as exc:
        client.delete_schema(schemaArn=dataset["schemaArn"])
    assert _code(exc) == "ResourceInUseException"
    with pytest.raises(ClientError) as exc:
        client.delete_dataset_group(datasetGroupArn=group.arn)
    assert _code(exc) == "ResourceInUseException"
    client.delete_dataset(datasetArn=group.datasets["interactions"])
    client.delete_schema(schemaArn=dataset["schemaArn"])
    client.delete_dataset_group(datasetGroupArn=group.arn)
    with pytest.raises(ClientError) as exc:
        client.describe_dataset_group(datasetGroupArn=group.arn)
    assert _code(exc) == "ResourceNotFoundException"


def test_list_pagination(emulator: Emulator) -> None:
    client = emulator.client
    names = {f"page-group-{i}" for i in range(5)}
    for name in names:
        client.create_dataset_group(name=name)
    first = client.list_dataset_groups(maxResults=2)
    assert len(first["datasetGroups"]) == 2
    assert first["nextToken"]
    seen = [g["name"] for g in first["datasetGroups"]]
    token = first["nextToken"]
    while token:
        page = client.list_dataset_groups(maxResults=2, nextToken=token)
        seen += [g["name"] for g in page["datasetGroups"]]
        token = page.get("nextToken")
    assert names <= set(seen)
    assert len(seen) == len(set(seen))
    paginated = [
        g["name"]
        for p in client.get_paginator("list_dataset_groups").paginate(PaginationConfig={"PageSize": 3})
        for g in p["datasetGroups"]
    ]
    assert sorted(paginated) == sorted(seen)
    with pytest.raises(ClientError) as exc:
        client.list_dataset_groups(nextToken="garbage")
    assert _code(exc) == "InvalidNextTokenException"


def test_recipes(emulator: Emulator) -> None:
    client = emulator.client
    recipes = {r["recipeArn"]: r for r in client.list_recipes()["recipes"]}
    for name in (
        "aws-user-personalization",
        "aws-user-personalization-v2",
        "aws-popularity-count",
        "aws-sims",
        "aws-similar-items",
        "aws-personalized-ranking",
        "aws-personalized-ranking-v2",
        "aws-item-affinity",
        "aws-item-attribute-affinity",
    ):
        assert f"arn:aws:personalize:::recipe/{name}" in recipes
    recipe = client.describe_recipe(recipeArn="arn:aws:personalize:::recipe/aws-item-affinity")["recipe"]
    assert recipe["recipeType"] == "USER_SEGMENTATION"
    # every built-in custom recipe of personalize_logic.facts.recipes is listed, Trending-Now included
    trending = client.describe_recipe(recipeArn="arn:aws:personalize:::recipe/aws-trending-now")["recipe"]
    assert trending["recipeType"] == "POPULAR_ITEMS"
    with pytest.raises(ClientError) as exc:
        client.describe_recipe(recipeArn="arn:aws:personalize:::recipe/aws-no-such-recipe")
    assert _code(exc) == "ResourceNotFoundException"


def test_solution_rejects_unsupported_recipe(emulator: Emulator, bingewatch: Group) -> None:
    with pytest.raises(ClientError) as exc:
        emulator.client.create_solution(
            name="bad-recipe",
            datasetGroupArn=bingewatch.arn,
            recipeArn="arn:aws:personalize:::recipe/aws-hrnn",
        )
    assert _code(exc) == "InvalidInputException"


def test_filters(emulator: Emulator, bingewatch: Group) -> None:
    client = emulator.client
    arn = client.create_filter(
        name="no-watched",
        datasetGroupArn=bingewatch.arn,
        filterExpression='EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("Watch")',
    )["filterArn"]
    assert client.describe_filter(filterArn=arn)["filter"]["status"] in PENDING
    done = wait_status(lambda: client.describe_filter(filterArn=arn), "filter")
    assert done["status"] == "ACTIVE"
    assert arn in [f["filterArn"] for f in client.list_filters(datasetGroupArn=bingewatch.arn)["Filters"]]
    with pytest.raises(ClientError) as exc:
        client.create_filter(
            name="broken", datasetGroupArn=bingewatch.arn, filterExpression="EXCLUDE nothing"
        )
    assert _code(exc) == "InvalidInputException"
    client.delete_filter(filterArn=arn)
    assert arn not in [f["filterArn"] for f in client.list_filters(datasetGroupArn=bingewatch.arn)["Filters"]]


def test_tags(emulator: Emulator) -> None:
    client = emulator.client
    arn = client.create_dataset_group(name="tagged", tags=[{"tagKey": "team", "tagValue": "ml"}])[
        "datasetGroupArn"
    ]
    client.tag_resource(resourceArn=arn, tags=[{"tagKey": "env", "tagValue": "dev"}])
    tags = {t["tagKey"]: t["tagValue"] for t in client.list_tags_for_resource(resourceArn=arn)["tags"]}
    assert tags == {"team": "ml", "env": "dev"}
    client.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == [{"tagKey": "env", "tagValue": "dev"}]


def test_solution_version_and_campaign(
    emulator: Emulator, bingewatch: Group, versions: dict[str, str]
) -> None:
    client = emulator.client
    version_arn = versions["aws-user-personalization"]
    version = client.describe_solution_version(solutionVersionArn=version_arn)["solutionVersion"]
    assert version["status"] == "ACTIVE"
    assert version["trainingMode"] == "FULL"
    solution_arn = version["solutionArn"]
    assert version_arn.startswith(solution_arn + "/")
    solution = client.describe_solution(solutionArn=solution_arn)["solution"]
    assert solution["latestSolutionVersion"]["solutionVersionArn"] == version_arn
    assert solution["latestSolutionVersion"]["status"] == "ACTIVE"
    assert [
        v["solutionVersionArn"]
        for v in client.list_solution_versions(solutionArn=solution_arn)["solutionVersions"]
    ] == [version_arn]
    assert solution_arn in [
        s["solutionArn"] for s in client.list_solutions(datasetGroupArn=bingewatch.arn)["solutions"]
    ]
    metrics = client.get_solution_metrics(solutionVersionArn=version_arn)["metrics"]
    for key in (
        "coverage",
        "mean_reciprocal_rank_at_25",
        "normalized_discounted_cumulative_gain_at_10",
        "precision_at_25",
    ):
        assert key in metrics
        assert 0.0 <= metrics[key] <= 1.0

    campaign_arn = client.create_campaign(
        name="bw-campaign", solutionVersionArn=version_arn, minProvisionedTPS=1
    )["campaignArn"]
    campaign = wait_status(lambda: client.describe_campaign(campaignArn=campaign_arn), "campaign")
    assert campaign["status"] == "ACTIVE"
    client.update_campaign(campaignArn=campaign_arn, minProvisionedTPS=2)
    pending = client.describe_campaign(campaignArn=campaign_arn)["campaign"]
    assert pending["latestCampaignUpdate"]["status"] in PENDING
    assert pending["status"] == "ACTIVE"

    def updated() -> dict[str, Any]:
        c = client.describe_campaign(campaignArn=campaign_arn)["campaign"]
        return {"campaign": {**c, "status": c["latestCampaignUpdate"]["status"]}}

    assert wait_status(updated, "campaign")["minProvisionedTPS"] == 2
    assert campaign_arn in [
        c["campaignArn"] for c in client.list_campaigns(solutionArn=solution_arn)["campaigns"]
    ]
    with pytest.raises(ClientError) as exc:
        client.delete_solution(solutionArn=solution_arn)
    assert _code(exc) == "ResourceInUseException"
    client.delete_campaign(campaignArn=campaign_arn)


def test_stop_solution_version(emulator: Emulator, bingewatch: Group) -> None:
    client = emulator.client
    emulator_solution = client.create_solution(
        name="to-stop",
        datasetGroupArn=bingewatch.arn,
        recipeArn="arn:aws:personalize:::recipe/aws-popularity-count",
        performAutoTraining=False,
    )["solutionArn"]
    wait_status(lambda: client.describe_solution(solutionArn=emulator_solution), "solution")
    arn = client.create_solution_version(solutionArn=emulator_solution)["solutionVersionArn"]
    client.stop_solution_version_creation(solutionVersionArn=arn)
    assert client.describe_solution_version(solutionVersionArn=arn)["solutionVersion"]["status"] in (
        "CREATE STOPPING",
        "CREATE STOPPED",
    )
    done = wait_status(lambda: client.describe_solution_version(solutionVersionArn=arn), "solutionVersion")
    assert done["status"] == "CREATE STOPPED"
    with pytest.raises(ClientError) as exc:
        client.stop_solution_version_creation(solutionVersionArn=arn)
    assert _code(exc) == "InvalidInputException"
    with pytest.raises(ClientError) as exc:
        client.get_solution_metrics(solutionVersionArn=arn)
    assert _code(exc) == "ResourceInUseException"


def test_segmentation_recipe_needs_items(emulator: Emulator, s3: Any) -> None:
    """Item-Attribute-Affinity needs an Items dataset; Item-Affinity does not ("Items and Users
    datasets are optional", item-affinity-recipe page). Both report hit and recall."""
    from tests.integration.personalize_emulator.conftest import BUCKET, import_data

    client = emulator.client
    group = make_group(client, "no-items", kinds=("interactions",))
    job = import_data(
        client, group.datasets["interactions"], f"s3://{BUCKET}/bingewatch/interactions.csv", "no-items-i"
    )
    assert job["status"] == "ACTIVE"
    outcome = {}
    for recipe in ("aws-item-attribute-affinity", "aws-item-affinity"):
        solution = client.create_solution(
            name=f"no-items-{recipe}",
            datasetGroupArn=group.arn,
            recipeArn=f"arn:aws:personalize:::recipe/{recipe}",
        )["solutionArn"]
        wait_status(lambda s=solution: client.describe_solution(solutionArn=s), "solution")
        arn = client.create_solution_version(solutionArn=solution)["solutionVersionArn"]
        outcome[recipe] = (
            arn,
            wait_status(
                lambda a=arn: client.describe_solution_version(solutionVersionArn=a), "solutionVersion"
            ),
        )
    failed = outcome["aws-item-attribute-affinity"][1]
    assert failed["status"] == "CREATE FAILED"
    assert "needs an Items dataset" in failed["failureReason"]
    arn, trained = outcome["aws-item-affinity"]
    assert trained["status"] == "ACTIVE"
    assert set(client.get_solution_metrics(solutionVersionArn=arn)["metrics"]) == {"hit", "recall"}
