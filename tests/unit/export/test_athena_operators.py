"""The Athena engine's operators at the ``hook.conn`` boundary."""

from __future__ import annotations

import io
import types
from unittest import mock

import pytest
from airflow.providers.amazon.aws.hooks.athena import AthenaHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.triggers.athena import AthenaTrigger
from airflow.providers.common.compat.sdk import AirflowException, TaskDeferred

from operators.interactions_export import (
    AthenaQueryToPartitionOperator,
    PublishAthenaResultOperator,
    copy_with_header,
)

QID = "a1b2c3d4-0000-4000-8000-000000000001"
FOLDER = "p/interactions/dt=2024-01-05/run=scheduled__x.try{n}/"
HEADER = ["USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP", "EVENT_VALUE"]


def _ctx(try_number: int = 1) -> dict:
    ti = types.SimpleNamespace(try_number=try_number, xcom_push=lambda **_: None)
    return {"run_id": "scheduled__x", "ti": ti}


def _op(**kwargs) -> AthenaQueryToPartitionOperator:
    return AthenaQueryToPartitionOperator(task_id="export_interactions_query", query="SELECT 1", database="mp",
                                          bucket="bkt", prefix="p", partition_date="2024-01-05", **kwargs)  # fmt: skip


@mock.patch.object(AthenaHook, "conn")
def test_the_query_writes_its_result_into_the_attempts_run_folder_once(conn) -> None:
    conn.start_query_execution.return_value = {"QueryExecutionId": QID}
    conn.get_query_execution.return_value = {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}}
    info = _op(deferrable=False, sleep_time=0).execute(_ctx(try_number=2))
    sent = conn.start_query_execution.call_args.kwargs
    assert sent["ResultConfiguration"]["OutputLocation"] == f"s3://bkt/{FOLDER.format(n=2)}_athena/"
    assert sent["QueryExecutionContext"]["Database"] == "mp"
    token = sent["ClientRequestToken"]
    assert len(token) == 64
    assert info == {"query_execution_id": QID, "run_prefix": FOLDER.format(n=2), "run_key": "scheduled__x.try2",
                    "partition": "2024-01-05", "bucket": "bkt"}  # fmt: skip
    _op(deferrable=False, sleep_time=0).execute(_ctx(try_number=2))
    assert (
        conn.start_query_execution.call_args.kwargs["ClientRequestToken"] == token
    )  # same attempt, same token
    _op(deferrable=False, sleep_time=0).execute(_ctx(try_number=3))
    assert conn.start_query_execution.call_args.kwargs["ClientRequestToken"] != token


@mock.patch.object(AthenaHook, "conn")
def test_deferred_the_provider_trigger_waits_and_a_failure_fails_the_task(conn) -> None:
    conn.start_query_execution.return_value = {"QueryExecutionId": QID}
    with pytest.raises(TaskDeferred) as deferred:
        _op(deferrable=True).execute(_ctx())
    assert isinstance(deferred.value.trigger, AthenaTrigger)
    info = _op(deferrable=True).execute_complete(_ctx(), {"status": "success", "value": QID})
    assert info["run_key"] == "scheduled__x.try1"
    with pytest.raises(AirflowException, match="FAILED"):
        _op(deferrable=True).execute_complete(
            _ctx(), {"status": "failure", "message": "FAILED: HIVE_BAD_DATA"}
        )


def _s3(body: bytes) -> mock.MagicMock:
    conn = mock.MagicMock()
    conn.head_object.return_value = {"ContentLength": len(body)}
    conn.get_object.side_effect = lambda Bucket, Key, Range: {
        "Body": io.BytesIO(body[: int(Range.split("-")[1]) + 1])
    }
    conn.create_multipart_upload.return_value = {"UploadId": "u1"}
    conn.upload_part.return_value = {"ETag": "e1"}
    conn.upload_part_copy.side_effect = lambda **kw: {"CopyPartResult": {"ETag": f"e{kw['PartNumber']}"}}
    return conn


def test_a_large_result_is_copied_by_s3_with_only_its_head_read(monkeypatch) -> None:
    import operators.interactions_export as module

    monkeypatch.setattr(module, "HEAD_PART_BYTES", 64)
    monkeypatch.setattr(module, "COPY_PART_BYTES", 100)
    body = b'"USER_ID","ITEM_ID","EVENT_TYPE","TIMESTAMP","EVENT_VALUE"\n' + b'"1","a","b","2",""\n' * 20
    conn = _s3(body)
    size = copy_with_header(conn, ("src", "r.csv"), ("dst", "part.csv"), HEADER, "q")
    assert conn.get_object.call_args.kwargs["Range"] == "bytes=0-63"  # the head only
    head = conn.upload_part.call_args.kwargs["Body"]
    assert head == b"USER_ID,ITEM_ID,EVENT_TYPE,TIMESTAMP,EVENT_VALUE\n" + body[body.index(b"\n") + 1 : 64]
    ranges = [c.kwargs["CopySourceRange"] for c in conn.upload_part_copy.call_args_list]
    assert ranges[:3] == ["bytes=64-163", "bytes=164-263", "bytes=264-363"]
    assert ranges[-1].endswith(f"-{len(body) - 1}")
    parts = conn.complete_multipart_upload.call_args.kwargs["MultipartUpload"]["Parts"]
    assert [p["PartNumber"] for p in parts] == list(range(1, len(ranges) + 2))
    assert size == len(body) - 10  # the ten quotation marks of the header are gone


def test_a_failed_copy_aborts_its_multipart_upload(monkeypatch) -> None:
    import operators.interactions_export as module

    monkeypatch.setattr(module, "HEAD_PART_BYTES", 64)
    conn = _s3(b'"USER_ID","ITEM_ID","EVENT_TYPE","TIMESTAMP","EVENT_VALUE"\n' + b"x" * 200)
    conn.upload_part_copy.side_effect = RuntimeError("throttled")
    with pytest.raises(RuntimeError):
        copy_with_header(conn, ("src", "r.csv"), ("dst", "part.csv"), HEADER, "q")
    conn.abort_multipart_upload.assert_called_once_with(Bucket="dst", Key="part.csv", UploadId="u1")
    conn.complete_multipart_upload.assert_not_called()


@mock.patch.object(AthenaHook, "conn")
def test_publish_refuses_a_query_that_did_not_succeed(conn) -> None:
    conn.get_query_execution.return_value = {"QueryExecution": {"Status": {"State": "CANCELLED"}}}
    info = {"query_execution_id": QID, "run_prefix": FOLDER.format(n=1), "run_key": "scheduled__x.try1",
            "partition": "2024-01-05", "bucket": "bkt"}  # fmt: skip
    op = PublishAthenaResultOperator(task_id="export_interactions", bucket="bkt", prefix="p", query=info,
                                     expected_header=HEADER)  # fmt: skip
    with mock.patch.object(S3Hook, "load_bytes") as load, pytest.raises(AirflowException, match="CANCELLED"):
        op.execute(_ctx())
    load.assert_not_called()
