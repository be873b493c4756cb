"""The UNLOAD and publish operators at the ``hook.conn`` boundary (provider behaviour: three wait modes)."""

from __future__ import annotations

import io
import json
import types
from unittest import mock

import pytest
from airflow.providers.amazon.aws.hooks.redshift_data import RedshiftDataHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.triggers.redshift_data import RedshiftDataTrigger
from airflow.providers.common.compat.sdk import AirflowException, TaskDeferred

from operators.interactions_export import (
    PublishUnloadedPartitionOperator,
    RedshiftUnloadToPartitionOperator,
    redshift_partition_export,
)

ROLE = "arn:aws:iam::123456789012:role/unload"
STATEMENT_ID = "d9b7e5c2-1a2b-4c3d-8e9f-0123456789ab"
FOLDER = "p/interactions/dt=2024-01-01/run=scheduled__x.try{n}/"
HEADER = ["USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP", "EVENT_VALUE"]


def _ctx(try_number: int = 1) -> dict:
    return {"run_id": "scheduled__x", "ti": types.SimpleNamespace(try_number=try_number, stats_tags={})}


def _op(**kwargs):
    return RedshiftUnloadToPartitionOperator(
        task_id="export_interactions_unload", bucket="bkt", prefix="p", select_query='SELECT 1 AS "USER_ID"',
        iam_role_arn=ROLE, partition_date="2024-01-01", database="dev", cluster_identifier="warehouse",
        poll_interval=1, **kwargs,
    )  # fmt: skip


def _described(try_number: int, status: str = "FINISHED") -> dict:
    target = f"s3://bkt/{FOLDER.format(n=try_number)}part-"
    return {"Id": STATEMENT_ID, "Status": status, "ResultRows": 7,
            "QueryString": f"UNLOAD ('SELECT 1') TO '{target}' IAM_ROLE '{ROLE}' FORMAT AS CSV"}  # fmt: skip


def test_the_constructor_only_assigns_and_the_query_is_a_sql_template() -> None:
    op = _op()
    assert op.sql == 'SELECT 1 AS "USER_ID"'
    assert {"sql", "bucket", "prefix", "partition_date", "iam_role_arn"} <= set(op.template_fields)
    assert ".sql" in op.template_ext


@mock.patch.object(RedshiftDataHook, "conn")
def test_without_deferral_it_runs_the_unload_waits_and_returns_where_it_wrote(conn) -> None:
    conn.execute_statement.return_value = {"Id": STATEMENT_ID}
    conn.describe_statement.return_value = _described(1)
    info = _op(deferrable=False).execute(_ctx())
    sent = conn.execute_statement.call_args.kwargs
    assert sent["Sql"].startswith(
        "UNLOAD ('SELECT 1 AS \"USER_ID\"')\nTO 's3://bkt/" + FOLDER.format(n=1) + "part-'"
    )
    assert f"IAM_ROLE '{ROLE}'" in sent["Sql"]
    assert "MANIFEST VERBOSE" in sent["Sql"]
    assert (sent["ClusterIdentifier"], sent["Database"]) == ("warehouse", "dev")
    assert info == {"run_prefix": FOLDER.format(n=1), "run_key": "scheduled__x.try1", "partition": "2024-01-01",
                    "bucket": "bkt", "statement_id": STATEMENT_ID}  # fmt: skip


@mock.patch.object(RedshiftDataHook, "conn")
def test_deferred_it_hands_the_statement_to_the_provider_trigger(conn) -> None:
    conn.execute_statement.return_value = {"Id": STATEMENT_ID}
    conn.describe_statement.return_value = _described(1, status="STARTED")
    with pytest.raises(TaskDeferred) as deferred:
        _op(deferrable=True).execute(_ctx())
    assert isinstance(deferred.value.trigger, RedshiftDataTrigger)
    assert deferred.value.trigger.statement_id == STATEMENT_ID
    assert deferred.value.method_name == "execute_complete"


@mock.patch.object(RedshiftDataHook, "conn")
def test_a_statement_reconnected_to_is_published_from_the_folder_it_names(conn) -> None:
    """On Airflow 3.3 a retry may reconnect to the statement of try 1: its folder, not try 2's, is published."""
    conn.describe_statement.return_value = _described(1)
    info = _op(deferrable=True).execute_complete(
        _ctx(try_number=2), {"status": "success", "statement_id": STATEMENT_ID}
    )
    assert info["run_key"] == "scheduled__x.try1"


@mock.patch.object(RedshiftDataHook, "conn")
def test_a_failed_statement_fails_the_task(conn) -> None:
    with pytest.raises(AirflowException, match="boom"):
        _op(deferrable=True).execute_complete(
            _ctx(), {"status": "error", "statement_id": STATEMENT_ID, "message": "boom"}
        )
    conn.describe_statement.return_value = {**_described(1), "QueryString": "SELECT 1"}
    with pytest.raises(AirflowException, match="cannot tell where it unloaded"):
        _op().execute_complete(_ctx(), {"status": "success", "statement_id": STATEMENT_ID})


def test_a_query_unload_cannot_quote_is_refused_before_anything_runs() -> None:
    op = _op(deferrable=False)
    op.sql = "SELECT 1; DROP TABLE x"
    with (
        mock.patch.object(RedshiftDataHook, "conn") as conn,
        pytest.raises(AirflowException, match="one SELECT"),
    ):
        op.execute(_ctx())
    conn.execute_statement.assert_not_called()


# ----------------------------------------------------------------------------------------- publish
def _manifest(folder: str, counts: list[int]) -> bytes:
    entries = [{"url": f"s3://bkt/{folder}part-{i:04d}_part_00.csv", "meta": {"content_length": 10 * c, "record_count": c}}
               for i, c in enumerate(counts)]  # fmt: skip
    return json.dumps({"entries": entries}).encode()


def _s3(objects: dict[str, bytes]) -> mock.MagicMock:
    conn = mock.MagicMock()
    conn.exceptions.NoSuchKey = type("NoSuchKey", (Exception,), {})

    def get_object(Bucket, Key, Range=None):
        if Key not in objects:
            raise conn.exceptions.NoSuchKey(Key)
        body = objects[Key]
        if Range:
            assert Range == "bytes=0-65535"  # a ranged GET: the header only, never the whole file
            body = body[:65536]
        return {"Body": io.BytesIO(body)}

    conn.get_object.side_effect = get_object
    return conn


def _publish(info: dict, **kwargs) -> PublishUnloadedPartitionOperator:
    return PublishUnloadedPartitionOperator(task_id="export_interactions", bucket="bkt", prefix="p", unload=info,
                                            **kwargs)  # fmt: skip


def _info(n: int = 1) -> dict:
    return {"run_prefix": FOLDER.format(n=n), "run_key": f"scheduled__x.try{n}", "partition": "2024-01-01",
            "bucket": "bkt", "statement_id": STATEMENT_ID}  # fmt: skip


def test_publish_takes_files_and_rows_from_the_unload_manifest() -> None:
    folder = FOLDER.format(n=1)
    head = (",".join(HEADER) + "\n").encode()
    objects = {folder + "part-manifest": _manifest(folder, [4, 1]),
               folder + "part-0000_part_00.csv": head + b"a,b,c,1,\n" * 3 + b"x" * 100_000,
               folder + "part-0001_part_00.csv": head}  # fmt: skip
    written: dict[str, bytes] = {}
    with (
        mock.patch.object(S3Hook, "conn", _s3(objects)),
        mock.patch.object(
            S3Hook, "load_bytes", side_effect=lambda body, key, **_: written.__setitem__(key, body)
        ),
    ):
        out = _publish(_info(), expected_header=HEADER).execute(_ctx())
    assert (out["rows"], out["files"], out["empty"]) == (3, 2, False)
    assert list(written) == [
        folder + "_manifest.json",
        "p/interactions/dt=2024-01-01/_manifest.json",
    ]  # pointer last
    manifest = json.loads(written["p/interactions/dt=2024-01-01/_manifest.json"])
    assert [(f["key"].rsplit("/", 1)[1], f["rows"]) for f in manifest["files"]] == [
        ("part-0000_part_00.csv", 3), ("part-0001_part_00.csv", 0),
    ]  # fmt: skip
    assert manifest["header"] == HEADER
    assert manifest["source"] == {"unload": True, "statement_id": STATEMENT_ID}


@pytest.mark.parametrize(
    ("objects", "message"),
    [
        pytest.param({}, "does not exist: did the UNLOAD run with MANIFEST VERBOSE", id="no-manifest"),
        pytest.param({"part-manifest": b"{}"}, "no 'entries' list", id="not-a-manifest"),
        pytest.param({"part-manifest": _manifest("elsewhere/", [1])}, "outside the run folder", id="outside"),
        pytest.param(
            {
                "part-manifest": _manifest(FOLDER.format(n=1), [2]),
                "part-0000_part_00.csv": b"user_id,item_id,event_type,timestamp,event_value\n1,a,b,1,\n",
            },
            "enable_case_sensitive_identifier",
            id="lower-case-header",
        ),
    ],
)
def test_publish_refuses_what_it_cannot_vouch_for(objects: dict[str, bytes], message: str) -> None:
    folder = FOLDER.format(n=1)
    with (
        mock.patch.object(S3Hook, "conn", _s3({folder + k: v for k, v in objects.items()})),
        mock.patch.object(S3Hook, "load_bytes") as load,
        pytest.raises(AirflowException, match=message),
    ):
        _publish(_info(), expected_header=HEADER).execute(_ctx())
    load.assert_not_called()  # nothing is published


def test_an_unload_without_files_publishes_one_header_only_part() -> None:
    folder = FOLDER.format(n=1)
    written: dict[str, bytes] = {}
    with (
        mock.patch.object(S3Hook, "conn", _s3({folder + "part-manifest": b'{"entries": []}'})),
        mock.patch.object(
            S3Hook, "load_bytes", side_effect=lambda body, key, **_: written.__setitem__(key, body)
        ),
    ):
        out = _publish(_info(), expected_header=HEADER).execute(_ctx())
    assert out["rows"] == 0
    assert written[folder + "part-00000.csv"] == (",".join(HEADER) + "\n").encode()


def test_the_pair_is_unload_then_publish_and_the_asset_is_on_the_publish() -> None:
    from airflow.sdk import DAG, Asset

    asset = Asset("x-personalize://p/interactions")
    with DAG("d", schedule=None):
        unload, publish = redshift_partition_export(task_id="export_interactions", bucket="bkt", prefix="p",
                                                    iam_role_arn=ROLE, database="dev", cluster_identifier="c",
                                                    outlets=[asset])  # fmt: skip
    assert (unload.task_id, publish.task_id) == ("export_interactions_unload", "export_interactions")
    assert unload.downstream_task_ids == {"export_interactions"}
    assert publish.outlets == [asset]
    assert not unload.outlets
    assert unload.sql == "sql/unload_interactions.sql"
