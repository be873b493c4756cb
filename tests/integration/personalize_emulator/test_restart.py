"""State survives an emulator restart, and unfinished jobs are resumed."""

from __future__ import annotations

import time
from typing import Any

from tests.integration.personalize_emulator.conftest import (
    BUCKET,
    Emulator,
    import_data,
    make_group,
    wait_status,
)


def test_restart_keeps_state_and_resumes_jobs(fresh_emulator: Emulator, s3: Any) -> None:
    emulator = fresh_emulator
    client = emulator.client
    group = make_group(client, "restart", kinds=("interactions",))
    assert (
        import_data(
            client,
            group.datasets["interactions"],
            f"s3://{BUCKET}/bingewatch/interactions.csv",
            "restart-full",
        )["status"]
        == "ACTIVE"
    )
    solution = client.create_solution(
        name="restart-sol",
        datasetGroupArn=group.arn,
        recipeArn="arn:aws:personalize:::recipe/aws-popularity-count",
        performAutoTraining=False,
    )["solutionArn"]
    wait_status(lambda: client.describe_solution(solutionArn=solution), "solution")

    # slow jobs: still unfinished when the emulator stops
    emulator.restart(min_job_seconds=30.0)
    client = emulator.client
    pending_group = client.create_dataset_group(name="restart-pending")["datasetGroupArn"]
    version = client.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    time.sleep(0.5)
    assert client.describe_solution_version(solutionVersionArn=version)["solutionVersion"]["status"] in (
        "CREATE PENDING",
        "CREATE IN_PROGRESS",
    )

    emulator.restart(min_job_seconds=0.2)
    client = emulator.client
    # everything created before is still there
    assert client.describe_dataset_group(datasetGroupArn=group.arn)["datasetGroup"]["status"] == "ACTIVE"
    assert [d["datasetArn"] for d in client.list_datasets(datasetGroupArn=group.arn)["datasets"]] == [
        group.datasets["interactions"]
    ]
    jobs = client.list_dataset_import_jobs(datasetArn=group.datasets["interactions"])["datasetImportJobs"]
    assert [j["jobName"] for j in jobs] == ["restart-full"]
    # ... and the unfinished jobs finish (their minimum time counts from creation with the new setting)
    assert (
        wait_status(lambda: client.describe_dataset_group(datasetGroupArn=pending_group), "datasetGroup")[
            "status"
        ]
        == "ACTIVE"
    )
    done = wait_status(
        lambda: client.describe_solution_version(solutionVersionArn=version), "solutionVersion"
    )
    assert done["status"] == "ACTIVE", done
    assert client.get_solution_metrics(solutionVersionArn=version)["metrics"]


def test_min_job_seconds_is_honoured(fresh_emulator: Emulator) -> None:
    emulator = fresh_emulator.restart(min_job_seconds=1.5)
    client = emulator.client
    start = time.time()
    arn = client.create_dataset_group(name="slow-group")["datasetGroupArn"]
    assert client.describe_dataset_group(datasetGroupArn=arn)["datasetGroup"]["status"] == "CREATE PENDING"
    seen = set()
    while True:
        status = client.describe_dataset_group(datasetGroupArn=arn)["datasetGroup"]["status"]
        seen.add(status)
        if status == "ACTIVE":
            break
        time.sleep(0.05)
    assert time.time() - start >= 1.4
    assert seen >= {"CREATE PENDING", "CREATE IN_PROGRESS", "ACTIVE"}


def test_job_in_progress_at_shutdown_finishes_after_restart(fresh_emulator: Emulator) -> None:
    client = fresh_emulator.client
    group = make_group(client, "restart-busy", kinds=("interactions",))
    location = f"s3://{BUCKET}/bingewatch/interactions.csv"
    assert (
        import_data(client, group.datasets["interactions"], location, "restart-busy-full")["status"]
        == "ACTIVE"
    )
    solution = client.create_solution(
        name="restart-busy-sol",
        datasetGroupArn=group.arn,
        recipeArn="arn:aws:personalize:::recipe/aws-user-personalization",
        performAutoTraining=False,
    )["solutionArn"]
    wait_status(lambda: client.describe_solution(solutionArn=solution), "solution")
    emulator = fresh_emulator.restart(min_job_seconds=2.0)
    client = emulator.client
    version = client.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    deadline = time.time() + 30
    while (
        client.describe_solution_version(solutionVersionArn=version)["solutionVersion"]["status"]
        != "CREATE IN_PROGRESS"
    ):
        assert time.time() < deadline
        time.sleep(0.02)
    emulator.restart(min_job_seconds=0.2)  # waits for the running job, which is then finished on start
    client = emulator.client
    done = wait_status(
        lambda: client.describe_solution_version(solutionVersionArn=version), "solutionVersion"
    )
    assert done["status"] == "ACTIVE", done
    solution_doc = client.describe_solution(solutionArn=solution)["solution"]
    assert solution_doc["latestSolutionVersion"]["status"] == "ACTIVE"
