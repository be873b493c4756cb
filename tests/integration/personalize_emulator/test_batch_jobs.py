"""Batch inference and batch segment jobs: exact output formats per recipe family, filters, errors."""

from __future__ import annotations

import csv
import itertools
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.personalize_emulator.conftest import (
    BINGEWATCH,
    BUCKET,
    ROLE,
    Emulator,
    Group,
    wait_status,
)

_counter = itertools.count()


def _items_by_genre() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    with (BINGEWATCH / "items.csv").open() as fh:
        for row in csv.DictReader(fh):
            for genre in row["GENRES"].split("|"):
                out.setdefault(genre, set()).add(row["ITEM_ID"])
    return out


def _watched() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    with (BINGEWATCH / "interactions.csv").open() as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["USER_ID"], set()).add(row["ITEM_ID"])
    return out


def run_batch(
    emulator: Emulator,
    s3: Any,
    version_arn: str,
    lines: list[Any],
    *,
    segment: bool = False,
    **kwargs: Any,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """Upload ``lines`` (objects or raw strings), run the job, return (job, parsed output lines, keys)."""
    n = next(_counter)
    key = f"batch-in/{n}/input.json"
    body = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())
    client = emulator.client
    request = {
        "jobName": f"batch-{n}",
        "solutionVersionArn": version_arn,
        "jobInput": {"s3DataSource": {"path": f"s3://{BUCKET}/{key}"}},
        "jobOutput": {"s3DataDestination": {"path": f"s3://{BUCKET}/batch-out/{n}/"}},
        "roleArn": ROLE,
        **kwargs,
    }
    if segment:
        arn = client.create_batch_segment_job(**request)["batchSegmentJobArn"]
        first = client.describe_batch_segment_job(batchSegmentJobArn=arn)["batchSegmentJob"]
        job = wait_status(
            lambda: client.describe_batch_segment_job(batchSegmentJobArn=arn), "batchSegmentJob"
        )
    else:
        arn = client.create_batch_inference_job(**request)["batchInferenceJobArn"]
        first = client.describe_batch_inference_job(batchInferenceJobArn=arn)["batchInferenceJob"]
        job = wait_status(
            lambda: client.describe_batch_inference_job(batchInferenceJobArn=arn), "batchInferenceJob"
        )
    assert first["status"] in ("PENDING", "IN PROGRESS")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"batch-out/{n}/").get("Contents", [])]
    out: list[dict[str, Any]] = []
    if f"batch-out/{n}/input.json.out" in keys:
        text = s3.get_object(Bucket=BUCKET, Key=f"batch-out/{n}/input.json.out")["Body"].read().decode()
        out = [json.loads(line) for line in text.splitlines()]
    return job, out, keys


def test_user_personalization_format(emulator: Emulator, s3: Any, versions: dict[str, str]) -> None:
    job, out, keys = run_batch(
        emulator, s3, versions["aws-user-personalization"], [{"userId": "1"}, {"userId": "2"}], numResults=10
    )
    assert job["status"] == "ACTIVE"
    assert job["numResults"] == 10
    assert sorted(k.rsplit("/", 1)[-1] for k in keys) == ["_CHECK", "input.json.out"]
    assert [line["input"] for line in out] == [{"userId": "1"}, {"userId": "2"}]
    for line in out:
        assert set(line) == {"input", "output", "error"}
        assert line["error"] is None
        assert set(line["output"]) == {"recommendedItems", "scores"}
        assert len(line["output"]["recommendedItems"]) == 10
        scores = line["output"]["scores"]
        assert scores == sorted(scores, reverse=True)
        assert all(round(s, 7) == s for s in scores)


def test_default_num_results_is_25(emulator: Emulator, s3: Any, versions: dict[str, str]) -> None:
    job, out, _ = run_batch(emulator, s3, versions["aws-user-personalization"], [{"userId": "5"}])
    assert job["numResults"] == 25
    assert len(out[0]["output"]["recommendedItems"]) == 25


def test_popularity_count_format(emulator: Emulator, s3: Any, versions: dict[str, str]) -> None:
    job, out, _ = run_batch(emulator, s3, versions["aws-popularity-count"], [{"userId": "3"}], numResults=5)
    assert job["status"] == "ACTIVE"
    assert set(out[0]["output"]) == {"recommendedItems"}
    assert len(out[0]["output"]["recommendedItems"]) == 5


def test_related_items_format(emulator: Emulator, s3: Any, versions: dict[str, str]) -> None:
    job, out, _ = run_batch(emulator, s3, versions["aws-sims"], [{"itemId": "11"}], numResults=5)
    assert job["status"] == "ACTIVE"
    assert out[0]["input"] == {"itemId": "11"}
    assert set(out[0]["output"]) == {"recommendedItems"}
    assert "11" not in out[0]["output"]["recommendedItems"]


def test_personalized_ranking_format(emulator: Emulator, s3: Any, versions: dict[str, str]) -> None:
    item_list = ["27", "86", "10"]
    job, out, _ = run_batch(
        emulator, s3, versions["aws-personalized-ranking"], [{"userId": "8", "itemList": item_list}]
    )
    assert job["status"] == "ACTIVE"
    output = out[0]["output"]
    assert sorted(output["recommendedItems"]) == sorted(item_list)
    assert len(output["scores"]) == 3
    assert all(round(s, 5) == s for s in output["scores"])


def test_bad_lines_get_an_error_and_the_job_completes(
    emulator: Emulator, s3: Any, versions: dict[str, str]
) -> None:
    lines = [{"userId": "1"}, "{not json", {"itemId": "3"}, {"userId": "2"}]
    job, out, _ = run_batch(emulator, s3, versions["aws-user-personalization"], lines, numResults=3)
    assert job["status"] == "ACTIVE"
    assert len(out) == 4
    assert out[0]["error"] is None
    assert out[3]["error"] is None
    assert out[1]["input"] == "{not json"
    assert out[1]["output"] is None
    assert "JSON" in out[1]["error"]
    assert out[2]["input"] == {"itemId": "3"}
    assert out[2]["output"] is None
    assert "userId" in out[2]["error"]


def test_interaction_filter_excludes_watched(
    emulator: Emulator, s3: Any, bingewatch: Group, versions: dict[str, str]
) -> None:
    client = emulator.client
    filter_arn = client.create_filter(
        name="exclude-watched",
        datasetGroupArn=bingewatch.arn,
        filterExpression='EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("Watch")',
    )["filterArn"]
    wait_status(lambda: client.describe_filter(filterArn=filter_arn), "filter")
    watched = _watched()
    job, out, _ = run_batch(
        emulator,
        s3,
        versions["aws-user-personalization"],
        [{"userId": u} for u in ("1", "2", "3")],
        numResults=20,
        filterArn=filter_arn,
    )
    assert job["status"] == "ACTIVE"
    assert job["filterArn"] == filter_arn
    for line in out:
        assert not set(line["output"]["recommendedItems"]) & watched[line["input"]["userId"]]


def test_placeholder_filter_with_filter_values(
    emulator: Emulator, s3: Any, bingewatch: Group, versions: dict[str, str]
) -> None:
    client = emulator.client
    filter_arn = client.create_filter(
        name="genre-filter",
        datasetGroupArn=bingewatch.arn,
        filterExpression="INCLUDE ItemID WHERE Items.GENRES IN ($GENRES)",
    )["filterArn"]
    wait_status(lambda: client.describe_filter(filterArn=filter_arn), "filter")
    genres = _items_by_genre()
    job, out, _ = run_batch(
        emulator,
        s3,
        versions["aws-user-personalization"],
        [{"userId": "4", "filterValues": {"GENRES": '"Action"'}}],
        numResults=5,
        filterArn=filter_arn,
    )
    assert job["status"] == "ACTIVE"
    recommended = out[0]["output"]["recommendedItems"]
    assert recommended
    assert set(recommended) <= genres["Action"]


def test_item_attribute_affinity_segment(emulator: Emulator, s3: Any, versions: dict[str, str]) -> None:
    config = json.loads((BINGEWATCH / "job_config.json").read_text())
    job, out, _keys = run_batch(
        emulator, s3, versions["aws-item-attribute-affinity"], [config], segment=True, numResults=50
    )
    assert job["status"] == "ACTIVE", job
    assert len(out) == 1
    line = out[0]
    assert line["input"] == {"itemAttributes": 'ITEMS.genres = "Action"'}
    assert set(line["output"]) == {"usersList"}
    assert line["error"] is None
    users = line["output"]["usersList"]
    assert len(users) == 50
    assert len(set(users)) == 50


def test_item_affinity_segment(emulator: Emulator, s3: Any, versions: dict[str, str]) -> None:
    job, out, _ = run_batch(
        emulator,
        s3,
        versions["aws-item-affinity"],
        [{"itemId": "11"}, {"itemId": "14"}],
        segment=True,
        numResults=7,
    )
    assert job["status"] == "ACTIVE", job
    assert [line["input"] for line in out] == [{"itemId": "11"}, {"itemId": "14"}]
    assert all(len(line["output"]["usersList"]) == 7 for line in out)


def test_segment_bad_item_attributes_fails_job(emulator: Emulator, s3: Any, versions: dict[str, str]) -> None:
    job, _, _ = run_batch(
        emulator,
        s3,
        versions["aws-item-attribute-affinity"],
        [{"itemAttributes": "ITEMS.genres IN (oops"}],
        segment=True,
    )
    assert job["status"] == "CREATE FAILED"
    assert "itemAttributes" in job["failureReason"]


def test_segment_query_limit(emulator: Emulator, s3: Any, versions: dict[str, str]) -> None:
    lines = [{"itemAttributes": f'ITEMS.genres = "G{i}"'} for i in range(11)]
    job, _, _ = run_batch(emulator, s3, versions["aws-item-attribute-affinity"], lines, segment=True)
    assert job["status"] == "CREATE FAILED"
    assert "at most 10" in job["failureReason"]


def test_job_kind_must_match_recipe(emulator: Emulator, versions: dict[str, str]) -> None:
    client = emulator.client
    common = {
        "jobInput": {"s3DataSource": {"path": f"s3://{BUCKET}/x.json"}},
        "jobOutput": {"s3DataDestination": {"path": f"s3://{BUCKET}/y/"}},
        "roleArn": ROLE,
    }
    with pytest.raises(ClientError) as exc:
        client.create_batch_segment_job(
            jobName="wrong-kind-1", solutionVersionArn=versions["aws-user-personalization"], **common
        )
    assert exc.value.response["Error"]["Code"] == "InvalidInputException"
    with pytest.raises(ClientError) as exc:
        client.create_batch_inference_job(
            jobName="wrong-kind-2", solutionVersionArn=versions["aws-item-affinity"], **common
        )
    assert exc.value.response["Error"]["Code"] == "InvalidInputException"


def test_missing_input_fails_and_listing(emulator: Emulator, versions: dict[str, str]) -> None:
    client = emulator.client
    version = versions["aws-user-personalization"]
    arn = client.create_batch_inference_job(
        jobName="no-input",
        solutionVersionArn=version,
        jobInput={"s3DataSource": {"path": f"s3://{BUCKET}/does-not-exist/"}},
        jobOutput={"s3DataDestination": {"path": f"s3://{BUCKET}/no-input-out/"}},
        roleArn=ROLE,
    )["batchInferenceJobArn"]
    job = wait_status(
        lambda: client.describe_batch_inference_job(batchInferenceJobArn=arn), "batchInferenceJob"
    )
    assert job["status"] == "CREATE FAILED"
    assert "no input file" in job["failureReason"]
    listed = client.list_batch_inference_jobs(solutionVersionArn=version)["batchInferenceJobs"]
    assert arn in [j["batchInferenceJobArn"] for j in listed]
    with pytest.raises(ClientError) as exc:
        client.create_batch_inference_job(
            jobName="no-input",
            solutionVersionArn=version,
            jobInput={"s3DataSource": {"path": f"s3://{BUCKET}/x"}},
            jobOutput={"s3DataDestination": {"path": f"s3://{BUCKET}/y/"}},
            roleArn=ROLE,
        )
    assert exc.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"


def _users_by_gender() -> dict[str, str]:
    with (BINGEWATCH / "users.csv").open() as fh:
        return {row["USER_ID"]: row["GENDER"] for row in csv.DictReader(fh)}


def test_segment_user_filter(
    emulator: Emulator, s3: Any, bingewatch: Group, versions: dict[str, str]
) -> None:
    client = emulator.client
    filter_arn = client.create_filter(
        name="only-male-users",
        datasetGroupArn=bingewatch.arn,
        filterExpression='INCLUDE UserID WHERE Users.GENDER IN ("Male")',
    )["filterArn"]
    wait_status(lambda: client.describe_filter(filterArn=filter_arn), "filter")
    job, out, _ = run_batch(
        emulator,
        s3,
        versions["aws-item-attribute-affinity"],
        [{"itemAttributes": 'ITEMS.genres = "Action"'}],
        segment=True,
        numResults=100,
        filterArn=filter_arn,
    )
    assert job["status"] == "ACTIVE", job
    genders = _users_by_gender()
    users = out[0]["output"]["usersList"]
    assert users
    assert {genders[u] for u in users} == {"Male"}


def test_num_results_limits(emulator: Emulator, versions: dict[str, str]) -> None:
    common = {
        "jobInput": {"s3DataSource": {"path": f"s3://{BUCKET}/x.json"}},
        "jobOutput": {"s3DataDestination": {"path": f"s3://{BUCKET}/y/"}},
        "roleArn": ROLE,
    }
    with pytest.raises(ClientError) as exc:
        emulator.client.create_batch_inference_job(
            jobName="too-many",
            solutionVersionArn=versions["aws-user-personalization"],
            numResults=501,
            **common,
        )
    assert exc.value.response["Error"]["Code"] == "InvalidInputException"
    with pytest.raises(ClientError) as exc:
        emulator.client.create_batch_segment_job(
            jobName="too-many-users",
            solutionVersionArn=versions["aws-item-affinity"],
            numResults=5_000_001,
            **common,
        )
    assert exc.value.response["Error"]["Code"] == "InvalidInputException"
