"""
The emulator answers as AWS documents, recipe by recipe (issue 12): the metrics each recipe type
reports, the parameters AWS requires, training modes and incremental updates only where allowed,
filter kinds per job. ``docs/emulators.md`` ("Behaviour and sources") maps each to its source.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from personalize_logic.facts import recipes
from tests.integration.personalize_emulator.conftest import BUCKET, ROLE, Emulator, Group, wait_status
from tests.integration.personalize_emulator.test_batch_jobs import _watched, run_batch


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


@pytest.mark.parametrize(
    "recipe", ["aws-user-personalization", "aws-popularity-count", "aws-item-attribute-affinity"]
)
def test_get_solution_metrics_answers_the_recipes_documented_keys(
    emulator: Emulator, versions: dict[str, str], recipe: str
) -> None:
    metrics = emulator.client.get_solution_metrics(solutionVersionArn=versions[recipe])["metrics"]
    assert set(metrics) == set(recipes.RECIPES[recipe].metrics)


def test_an_import_job_without_role_arn_is_refused(emulator: Emulator, bingewatch: Group) -> None:
    with pytest.raises(ClientError) as exc:
        emulator.client.create_dataset_import_job(
            jobName="no-role",
            datasetArn=bingewatch.datasets["interactions"],
            dataSource={"dataLocation": f"s3://{BUCKET}/bingewatch/interactions.csv"},
        )
    assert _code(exc) == "InvalidInputException"
    assert "roleArn is required" in str(exc.value)


def test_incremental_update_only_for_semantic_similarity(emulator: Emulator, bingewatch: Group) -> None:
    with pytest.raises(ClientError) as exc:
        emulator.client.create_solution(
            name="incremental-up",
            datasetGroupArn=bingewatch.arn,
            recipeArn="arn:aws:personalize:::recipe/aws-user-personalization",
            performIncrementalUpdate=True,
        )
    assert _code(exc) == "InvalidInputException"
    assert "semantic-similarity" in str(exc.value)


def test_update_training_only_for_user_personalization(emulator: Emulator, bingewatch: Group) -> None:
    client = emulator.client
    solution = client.create_solution(
        name="v2-update",
        datasetGroupArn=bingewatch.arn,
        recipeArn="arn:aws:personalize:::recipe/aws-user-personalization-v2",
        performAutoTraining=False,
    )["solutionArn"]
    wait_status(lambda: client.describe_solution(solutionArn=solution), "solution")
    with pytest.raises(ClientError) as exc:
        client.create_solution_version(solutionArn=solution, trainingMode="UPDATE")
    assert _code(exc) == "InvalidInputException"
    assert "aws-user-personalization-v2" in str(exc.value)


def test_recipes_without_batch_jobs_are_listed_but_not_emulated(
    emulator: Emulator, bingewatch: Group
) -> None:
    with pytest.raises(ClientError) as exc:
        emulator.client.create_solution(
            name="trending",
            datasetGroupArn=bingewatch.arn,
            recipeArn="arn:aws:personalize:::recipe/aws-trending-now",
        )
    assert _code(exc) == "InvalidInputException"
    assert "not emulated" in str(exc.value)


def _filter(emulator: Emulator, group: Group, name: str, expression: str) -> str:
    client = emulator.client
    arn = client.create_filter(name=name, datasetGroupArn=group.arn, filterExpression=expression)["filterArn"]
    wait_status(lambda: client.describe_filter(filterArn=arn), "filter")
    return arn


def _segment_job(emulator: Emulator, version: str, filter_arn: str, name: str) -> None:
    emulator.client.create_batch_segment_job(
        jobName=name,
        solutionVersionArn=version,
        jobInput={"s3DataSource": {"path": f"s3://{BUCKET}/x.json"}},
        jobOutput={"s3DataDestination": {"path": f"s3://{BUCKET}/y/"}},
        roleArn=ROLE,
        filterArn=filter_arn,
    )


def test_item_attribute_affinity_takes_no_interactions_filter(
    emulator: Emulator, bingewatch: Group, versions: dict[str, str]
) -> None:
    arn = _filter(
        emulator, bingewatch, "users-who-watched", 'EXCLUDE UserID WHERE Interactions.EVENT_TYPE IN ("Watch")'
    )
    with pytest.raises(ClientError) as exc:
        _segment_job(emulator, versions["aws-item-attribute-affinity"], arn, "attr-interactions-filter")
    assert _code(exc) == "InvalidInputException"
    assert "Interactions filters can't be used with the aws-item-attribute-affinity recipe" in str(exc.value)


def test_a_segment_job_takes_user_filters_only(
    emulator: Emulator, bingewatch: Group, versions: dict[str, str]
) -> None:
    arn = _filter(emulator, bingewatch, "action-items", 'INCLUDE ItemID WHERE Items.GENRES IN ("Action")')
    with pytest.raises(ClientError) as exc:
        _segment_job(emulator, versions["aws-item-attribute-affinity"], arn, "segment-item-filter")
    assert _code(exc) == "InvalidInputException"
    assert "UserID filters" in str(exc.value)


def test_the_exclusion_filter_keeps_interacted_items_out(
    emulator: Emulator, s3: Any, bingewatch: Group, versions: dict[str, str]
) -> None:
    """What the shipped config's excludeInteracted asks for, through the emulator."""
    arn = _filter(
        emulator, bingewatch, "exclude-any", 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")'
    )
    users = [{"userId": u} for u in ("1", "2", "3")]
    job, out, _ = run_batch(
        emulator, s3, versions["aws-user-personalization"], users, numResults=10, filterArn=arn
    )
    assert job["status"] == "ACTIVE"
    _, plain, _ = run_batch(emulator, s3, versions["aws-user-personalization"], users, numResults=10)
    watched = _watched()
    # without the filter Personalize repeats history; with it, nothing the user interacted with
    assert any(set(line["output"]["recommendedItems"]) & watched[line["input"]["userId"]] for line in plain)
    for line in out:
        assert len(line["output"]["recommendedItems"]) == 10
        assert not set(line["output"]["recommendedItems"]) & watched[line["input"]["userId"]]
