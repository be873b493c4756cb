"""Dataset import jobs: one test per Personalize data rule (the job fails, the reason names the rule)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.personalize_emulator.conftest import BUCKET, Emulator, Group, import_data, make_group

_counter = itertools.count()

HEADER = "USER_ID,ITEM_ID,EVENT_VALUE,EVENT_TYPE,TIMESTAMP"


def interactions_rows(n: int = 1000, users: int = 30, event_types: int = 1) -> list[str]:
    return [f"u{i % users},i{i % 97},{i % 5 + 1},Watch{i % event_types},{1600000000 + i}" for i in range(n)]


def csv_text(rows: list[str], header: str = HEADER) -> str:
    return header + "\n" + "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def rules_group(emulator: Emulator) -> Group:
    return make_group(emulator.client, "rules")


def run_import(
    emulator: Emulator,
    s3: Any,
    dataset_arn: str,
    body: str | bytes,
    key: str | None = None,
    mode: str = "FULL",
) -> dict[str, Any]:
    n = next(_counter)
    key = key or f"rules/{n}.csv"
    s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)
    return import_data(emulator.client, dataset_arn, f"s3://{BUCKET}/{key}", f"rules-job-{n}", mode)


def failed(job: dict[str, Any], *needles: str) -> str:
    assert job["status"] == "CREATE FAILED", job
    reason = job["failureReason"]
    for needle in needles:
        assert needle in reason, reason
    return reason


def test_valid_file_imports(emulator: Emulator, s3: Any, rules_group: Group) -> None:
    job = run_import(emulator, s3, rules_group.datasets["interactions"], csv_text(interactions_rows()))
    assert job["status"] == "ACTIVE", job
    assert "failureReason" not in job


def test_unknown_column(emulator: Emulator, s3: Any, rules_group: Group) -> None:
    rows = [r + ",x" for r in interactions_rows()]
    job = run_import(emulator, s3, rules_group.datasets["interactions"], csv_text(rows, HEADER + ",COLOR"))
    failed(job, "COLOR", "not a field of the dataset's schema", ".csv")


def test_missing_required_column(emulator: Emulator, s3: Any, rules_group: Group) -> None:
    rows = [",".join(r.split(",")[:-1]) for r in interactions_rows()]
    job = run_import(
        emulator, s3, rules_group.datasets["interactions"], csv_text(rows, HEADER.rsplit(",", 1)[0])
    )
    failed(job, "required column TIMESTAMP")


def test_wrong_type(emulator: Emulator, s3: Any, rules_group: Group) -> None:
    rows = interactions_rows()
    rows[41] = "u1,i1,five,Watch,1600000000"
    reason = failed(
        run_import(emulator, s3, rules_group.datasets["interactions"], csv_text(rows)), "EVENT_VALUE"
    )
    assert "row 42" in reason
    assert "not a valid float" in reason


def test_timestamp_in_milliseconds(emulator: Emulator, s3: Any, rules_group: Group) -> None:
    rows = interactions_rows()
    rows[7] = "u1,i1,1,Watch,1600000000000"
    failed(
        run_import(emulator, s3, rules_group.datasets["interactions"], csv_text(rows)),
        "milliseconds",
        "row 8",
    )


def test_minimum_1000_interactions(emulator: Emulator, s3: Any, rules_group: Group) -> None:
    job = run_import(emulator, s3, rules_group.datasets["interactions"], csv_text(interactions_rows(999)))
    failed(job, "at least 1000", "found 999")


def test_minimum_25_users_with_two_interactions(emulator: Emulator, s3: Any, rules_group: Group) -> None:
    rows = interactions_rows(1000, users=20)
    failed(
        run_import(emulator, s3, rules_group.datasets["interactions"], csv_text(rows)),
        "25 unique users",
        "found 20",
    )


def test_id_longer_than_256(emulator: Emulator, s3: Any, rules_group: Group) -> None:
    rows = interactions_rows()
    rows[3] = f"{'u' * 257},i1,1,Watch,1600000000"
    failed(run_import(emulator, s3, rules_group.datasets["interactions"], csv_text(rows)), "USER_ID", "256")


def test_categorical_longer_than_1000(emulator: Emulator, s3: Any, rules_group: Group) -> None:
    body = "ITEM_ID,TITLE,RELEASE_YEAR,CREATION_TIMESTAMP,GENRES\n" + f"1,T,2000,1600000000,{'A' * 1001}\n"
    failed(run_import(emulator, s3, rules_group.datasets["items"], body), "GENRES", "categorical", "1000")


def test_event_types_plus_metadata_at_most_10(emulator: Emulator, s3: Any, rules_group: Group) -> None:
    rows = interactions_rows(1100, event_types=11)
    failed(
        run_import(emulator, s3, rules_group.datasets["interactions"], csv_text(rows)),
        "EVENT_TYPE",
        "exceeds 10",
    )


def test_every_row_has_event_type(emulator: Emulator, s3: Any, rules_group: Group) -> None:
    rows = interactions_rows()
    rows[10] = "u1,i1,1,,1600000000"
    failed(
        run_import(emulator, s3, rules_group.datasets["interactions"], csv_text(rows)),
        "EVENT_TYPE is empty",
        "row 11",
    )


def test_not_utf8(emulator: Emulator, s3: Any, rules_group: Group) -> None:
    body = csv_text(interactions_rows()).encode().replace(b"u3,", b"\xe9\xff3,", 1)
    failed(run_import(emulator, s3, rules_group.datasets["interactions"], body), "UTF-8", "line ")


def test_nullable_field_may_be_empty(emulator: Emulator, s3: Any, rules_group: Group) -> None:
    body = "USER_ID,GENDER,E_MAIL,AGE\n1,,a@b.c,\n2,Male,x@y.z,30\n"
    job = run_import(emulator, s3, rules_group.datasets["users"], body)
    assert job["status"] == "ACTIVE", job
    body = "USER_ID,GENDER,E_MAIL,AGE\n1,,a@b.c,old\n"
    failed(run_import(emulator, s3, rules_group.datasets["users"], body), "AGE", "not a valid int")


def test_folder_import_names_the_bad_file(emulator: Emulator, s3: Any, rules_group: Group) -> None:
    good = interactions_rows(600)
    bad = interactions_rows(600)
    bad[5] = "u1,i1,1,Watch,notanumber"
    s3.put_object(Bucket=BUCKET, Key="rules-folder/a.csv", Body=csv_text(good).encode())
    s3.put_object(Bucket=BUCKET, Key="rules-folder/b.csv", Body=csv_text(bad).encode())
    job = import_data(
        emulator.client, rules_group.datasets["interactions"], f"s3://{BUCKET}/rules-folder/", "rules-folder"
    )
    failed(job, "rules-folder/b.csv", "TIMESTAMP", "row 6")


def test_folder_import_counts_all_files(emulator: Emulator, s3: Any, rules_group: Group) -> None:
    for name in ("a.csv", "b.csv"):
        s3.put_object(
            Bucket=BUCKET, Key=f"rules-folder-ok/{name}", Body=csv_text(interactions_rows(600)).encode()
        )
    job = import_data(
        emulator.client,
        rules_group.datasets["interactions"],
        f"s3://{BUCKET}/rules-folder-ok/",
        "rules-folder-ok",
    )
    assert job["status"] == "ACTIVE", job


def test_incremental_requires_prior_full(emulator: Emulator, s3: Any) -> None:
    group = make_group(emulator.client, "incr", kinds=("interactions", "items"))
    s3.put_object(Bucket=BUCKET, Key="incr/i.csv", Body=csv_text(interactions_rows()).encode())
    with pytest.raises(ClientError) as exc:
        emulator.client.create_dataset_import_job(
            jobName="incr-first",
            datasetArn=group.datasets["interactions"],
            dataSource={"dataLocation": f"s3://{BUCKET}/incr/i.csv"},
            roleArn="arn:aws:iam::123456789012:role/R",
            importMode="INCREMENTAL",
        )
    assert exc.value.response["Error"]["Code"] == "InvalidInputException"
    assert "FULL" in str(exc.value)
    # FULL then INCREMENTAL: items with the same id are replaced, new ones appended
    header = "ITEM_ID,TITLE,RELEASE_YEAR,CREATION_TIMESTAMP,GENRES\n"
    s3.put_object(
        Bucket=BUCKET,
        Key="incr/items1.csv",
        Body=(header + "1,Old,2000,1600000000,Drama\n2,B,2001,1600000000,Action\n").encode(),
    )
    s3.put_object(
        Bucket=BUCKET,
        Key="incr/items2.csv",
        Body=(header + "1,New,2000,1600000000,Drama\n3,C,2002,1600000000,Comedy\n").encode(),
    )
    assert (
        import_data(
            emulator.client, group.datasets["items"], f"s3://{BUCKET}/incr/items1.csv", "incr-items-1"
        )["status"]
        == "ACTIVE"
    )
    assert (
        import_data(
            emulator.client,
            group.datasets["items"],
            f"s3://{BUCKET}/incr/items2.csv",
            "incr-items-2",
            "INCREMENTAL",
        )["status"]
        == "ACTIVE"
    )
    import pandas as pd

    state = emulator.server.app.backend  # type: ignore[union-attr]
    frame = pd.read_parquet(state.dataset_dir(group.datasets["items"]) / "data.parquet")
    assert sorted(frame["ITEM_ID"]) == ["1", "2", "3"]
    assert frame.set_index("ITEM_ID").loc["1", "TITLE"] == "New"
    jobs = emulator.client.list_dataset_import_jobs(datasetArn=group.datasets["items"])["datasetImportJobs"]
    assert {j["jobName"]: j["importMode"] for j in jobs} == {
        "incr-items-1": "FULL",
        "incr-items-2": "INCREMENTAL",
    }


def test_missing_object_fails(emulator: Emulator, rules_group: Group) -> None:
    job = import_data(
        emulator.client, rules_group.datasets["users"], f"s3://{BUCKET}/nothing/here.csv", "rules-missing"
    )
    failed(job, "nothing/here.csv")


def test_bingewatch_files_pass(bingewatch: Group, emulator: Emulator) -> None:
    jobs = emulator.client.list_dataset_import_jobs(datasetArn=bingewatch.datasets["interactions"])[
        "datasetImportJobs"
    ]
    assert [j["status"] for j in jobs] == ["ACTIVE"]
    assert json.dumps(jobs, default=str)
