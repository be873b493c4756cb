"""The Redshift Data API emulator's backend: statements run on the machine's PostgreSQL, UNLOAD into S3.

No HTTP and no botocore shapes here (that is :mod:`emulators.redshift_data.responses`). Sources:

* Data API (https://docs.aws.amazon.com/redshift-data/latest/APIReference/): ``ExecuteStatement``
  answers an ``Id`` at once and runs the statement asynchronously; ``DescribeStatement.Status`` walks
  ``SUBMITTED`` → ``PICKED`` → ``STARTED`` → ``FINISHED`` | ``FAILED`` | ``ABORTED`` (the
  ``StatusString`` enum of the botocore model), with ``Error`` on failure, ``QueryString``,
  ``ResultRows`` and ``HasResultSet``; ``GetStatementResult`` pages ``Records`` of ``Field`` unions;
  ``CancelStatement`` answers ``{"Status": true}`` and the statement ends ``ABORTED``.
* UNLOAD (https://docs.aws.amazon.com/redshift/latest/dg/r_UNLOAD.html, examples on
  r_UNLOAD_command_examples.html): files ``<name-prefix><slice>_part_<part>`` with ``PARALLEL ON``
  (four digits, two digits), ``<name-prefix><part>`` (three digits) with ``PARALLEL OFF``; a new part
  when ``MAXFILESIZE`` is reached; ``EXTENSION`` appended; ``HEADER`` at the top of *each* file;
  CSV quoting of a field holding the delimiter, a quotation mark, LF or CR, quotation marks doubled;
  ``MANIFEST [VERBOSE]`` as ``<name-prefix>manifest`` (``entries`` with ``url`` and, verbose,
  ``meta.content_length`` / ``meta.record_count`` counting the header line, ``schema``, ``meta``,
  ``author``); without ``ALLOWOVERWRITE`` / ``CLEANPATH`` UNLOAD fails when files exist under the prefix.

Assumptions (the references are silent; ``docs/emulators.md`` lists them):

* Any ``ClusterIdentifier`` / ``WorkgroupName`` is accepted and runs on the one PostgreSQL server;
  ``Database`` is the PostgreSQL database of that name. ``DbUser`` / ``SecretArn`` and the UNLOAD
  ``IAM_ROLE`` are recorded, not checked; files are written with the stack's credentials.
* The cluster has ``slices`` slices (default 2); rows are dealt round-robin in query order, and every
  slice writes at least one file, header-only when it got no row.
* Values are written as PostgreSQL returns them: NULL as ``NULL AS`` (default empty), booleans
  ``t`` / ``f``, floats in their shortest round-trip form.
* ``ResultRows`` of an UNLOAD is the number of rows unloaded; a statement running when the emulator
  stops is ``FAILED`` when it starts again.
* A statement stays ``STARTED`` for at least ``min_statement_seconds`` so a poller sees it run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from emulators.errors import ServiceError
from emulators.redshift_data.sql import RedshiftSqlError, Unload, is_unload, parse_unload, to_postgres
from emulators.statements import (
    Cancelled,
    CancelToken,
    Lifecycle,
    StatementRunner,
    StatementStore,
    run_statement,
)

log = logging.getLogger(__name__)

RUNNING = ("SUBMITTED", "PICKED", "STARTED")
FETCH_ROWS = 10_000
MAX_RESULT_ROWS = 100_000
PAGE_ROWS = 1000


class RedshiftDataBackend:
    """
    All statements of one emulator, persisted in ``<state_dir>/redshift-data.sqlite3``.

    :param postgres_dsn: libpq connection string of the server (without ``dbname``; the statement's
        ``Database`` is added).
    :param s3_endpoint_url: the stack's S3, where UNLOAD writes.
    """

    def __init__(
        self,
        *,
        state_dir: Path,
        postgres_dsn: str,
        s3_endpoint_url: str,
        slices: int = 2,
        min_statement_seconds: float = 0.5,
        region: str = "us-east-1",
    ) -> None:
        self.postgres_dsn = postgres_dsn
        self.s3_endpoint_url = s3_endpoint_url
        self.slices = max(1, slices)
        self.min_statement_seconds = min_statement_seconds
        self.region = region
        self.store = StatementStore(Path(state_dir) / "redshift-data.sqlite3")
        self.store.fail_unfinished(
            RUNNING, status="FAILED", error="the emulator stopped while the statement ran"
        )
        self.runner = StatementRunner(self._run, workers=2, name="redshift-data")

    def close(self) -> None:
        self.runner.stop()
        self.store.close()

    # -- API ---------------------------------------------------------------------------------------
    def execute_statement(self, params: dict[str, Any]) -> dict[str, Any]:
        if sum(params.get(k) is not None for k in ("ClusterIdentifier", "WorkgroupName", "SessionId")) != 1:
            raise ServiceError(
                "ValidationException",
                "Exactly one of ClusterIdentifier, WorkgroupName or SessionId is required",
            )
        if params.get("SessionId") is not None:
            raise ServiceError("ValidationException", "sessions are not supported by the emulator")
        if not params.get("Database"):
            raise ServiceError("ValidationException", "Database is required")
        if params.get("Parameters"):
            raise ServiceError("ValidationException", "query parameters are not supported by the emulator")
        now = time.time()
        doc = {
            "id": str(uuid.uuid4()),
            "status": "SUBMITTED",
            "sql": params["Sql"],
            "database": params["Database"],
            "cluster": params.get("ClusterIdentifier"),
            "workgroup": params.get("WorkgroupName"),
            "db_user": params.get("DbUser"),
            "secret_arn": params.get("SecretArn"),
            "created": now,
            "updated": now,
            "result_rows": -1,
            "result_size": 0,
            "has_result_set": False,
            "error": None,
            "columns": [],
            "records": [],
        }
        self.store.put(doc["id"], doc)
        self.runner.submit(doc["id"])
        return self._identity(doc)

    def describe_statement(self, statement_id: str) -> dict[str, Any]:
        doc = self._get(statement_id)
        out = {
            **self._identity(doc),
            "Status": doc["status"],
            "QueryString": doc["sql"],
            "UpdatedAt": _ts(doc["updated"]),
            "Duration": int((doc["updated"] - doc["created"]) * 1e9) if doc["status"] not in RUNNING else -1,
            "HasResultSet": doc["has_result_set"],
            "ResultRows": doc["result_rows"],
            "ResultSize": doc["result_size"],
            "RedshiftPid": doc.get("pid") or 0,
        }
        if doc["error"]:
            out["Error"] = doc["error"]
        return out

    def get_statement_result(self, statement_id: str, next_token: str | None) -> dict[str, Any]:
        doc = self._get(statement_id)
        if doc["status"] != "FINISHED":
            raise ServiceError(
                "ValidationException", f"Query {statement_id} is not finished: {doc['status']}"
            )
        if not doc["has_result_set"]:
            raise ServiceError("ResourceNotFoundException", f"Query {statement_id} does not have result")
        start = int(next_token or 0)
        records = doc["records"][start : start + PAGE_ROWS]
        out: dict[str, Any] = {
            "Records": [[_field(v) for v in row] for row in records],
            "ColumnMetadata": doc["columns"],
            "TotalNumRows": len(doc["records"]),
        }
        if start + PAGE_ROWS < len(doc["records"]):
            out["NextToken"] = str(start + PAGE_ROWS)
        return out

    def cancel_statement(self, statement_id: str) -> dict[str, Any]:
        doc = self._get(statement_id)
        if doc["status"] not in RUNNING:
            raise ServiceError(
                "ValidationException", f"Could not cancel a query that is already in {doc['status']} state"
            )
        self.store.transition(statement_id, RUNNING, status="ABORTED", updated=time.time(), error="cancelled")
        self.runner.cancel(statement_id)
        return {"Status": True}

    # -- helpers -----------------------------------------------------------------------------------
    def _get(self, statement_id: str) -> dict[str, Any]:
        doc = self.store.get(statement_id)
        if doc is None:
            raise ServiceError("ResourceNotFoundException", f"Query does not exist: {statement_id}")
        return doc

    @staticmethod
    def _identity(doc: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"Id": doc["id"], "CreatedAt": _ts(doc["created"]), "Database": doc["database"]}
        for key, name in (("cluster", "ClusterIdentifier"), ("workgroup", "WorkgroupName"),
                          ("db_user", "DbUser"), ("secret_arn", "SecretArn")):  # fmt: skip
            if doc.get(key):
                out[name] = doc[key]
        return out

    # -- the work ----------------------------------------------------------------------------------
    def _run(self, statement_id: str, token: CancelToken) -> None:
        run_statement(self.store, statement_id, token, self._execute, self._lifecycle)

    @property
    def _lifecycle(self) -> Lifecycle:
        def failure(exc: BaseException) -> dict[str, Any]:
            message = exc.message if isinstance(exc, ServiceError) else str(exc).strip() or type(exc).__name__
            return {"status": "FAILED", "updated": time.time(), "error": message}

        return Lifecycle(
            steps=("PICKED", "STARTED"),
            running=RUNNING,
            succeeded=lambda: {"status": "FINISHED", "updated": time.time()},
            cancelled=lambda: {"status": "ABORTED", "updated": time.time(), "error": "cancelled"},
            failure=failure,
            min_seconds=self.min_statement_seconds,
        )

    def _connect(self, database: str) -> Any:
        import psycopg2

        try:
            return psycopg2.connect(self.postgres_dsn, dbname=database, connect_timeout=5)
        except psycopg2.OperationalError as exc:
            raise RedshiftSqlError(f"database {database!r}: {str(exc).strip()}") from None

    def _execute(self, doc: dict[str, Any], token: CancelToken) -> dict[str, Any]:
        sql = doc["sql"]
        unload = parse_unload(sql) if is_unload(sql) else None
        query = to_postgres(unload.query if unload else sql)
        conn = self._connect(doc["database"])
        token.on_cancel(conn.cancel)
        try:
            self.store.update(doc["id"], pid=conn.get_backend_pid())
            if unload is not None:
                return self._unload(conn, query, unload, token)
            with conn.cursor() as cursor:
                cursor.execute(query)
                if cursor.description is None:
                    conn.commit()
                    return {"result_rows": max(cursor.rowcount, 0), "has_result_set": False}
                rows = cursor.fetchmany(MAX_RESULT_ROWS)
                columns = [{"name": d.name, "label": d.name, "typeName": _type_name(d.type_code)}
                           for d in cursor.description]  # fmt: skip
                records = [[_plain(v) for v in row] for row in rows]
            conn.commit()
            return {"result_rows": len(records), "has_result_set": True, "columns": columns, "records": records,
                    "result_size": len(json.dumps(records))}  # fmt: skip
        finally:
            conn.close()

    # -- UNLOAD ------------------------------------------------------------------------------------
    def _s3(self) -> Any:
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.s3_endpoint_url, region_name=self.region,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip

    def _unload(self, conn: Any, query: str, unload: Unload, token: CancelToken) -> dict[str, Any]:
        s3 = self._s3()
        bucket, _, name_prefix = unload.target[len("s3://") :].partition("/")
        existing = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=name_prefix)
                    for o in page.get("Contents", [])]  # fmt: skip
        if existing and unload.clean_path:
            for start in range(0, len(existing), 1000):
                s3.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": k} for k in existing[start : start + 1000]]}
                )
        elif existing and not unload.allow_overwrite:
            raise RedshiftSqlError(
                "Specified unload destination on S3 is not empty. Consider using a different bucket / prefix, "
                "manually removing the target files in S3, or using the ALLOWOVERWRITE option."
            )
        with tempfile.TemporaryDirectory(prefix="redshift-unload-") as tmp:
            writers: list[_PartWriter] = []
            with conn.cursor(name=f"unload_{os.getpid()}_{uuid.uuid4().hex[:8]}") as cursor:
                cursor.itersize = FETCH_ROWS
                cursor.execute(query)
                rows = 0
                for index, row in enumerate(cursor):
                    if index == 0:
                        header = [d.name for d in cursor.description]
                        types = [_type_name(d.type_code) for d in cursor.description]
                        writers = [
                            _PartWriter(tmp, s, unload, header)
                            for s in range(self.slices if unload.parallel else 1)
                        ]
                    writers[index % len(writers)].write(row)
                    rows += 1
                    if rows % FETCH_ROWS == 0 and token.cancelled:
                        raise Cancelled()
                if not writers:  # no row: every slice still writes its (header-only) file
                    header = [d.name for d in cursor.description] if cursor.description else []
                    types = (
                        [_type_name(d.type_code) for d in cursor.description] if cursor.description else []
                    )
                    writers = [
                        _PartWriter(tmp, s, unload, header)
                        for s in range(self.slices if unload.parallel else 1)
                    ]
            conn.commit()
            if token.cancelled:
                raise Cancelled()
            entries = []
            for writer in writers:
                for part in writer.close():
                    key = name_prefix + part.name
                    s3.upload_file(part.path, bucket, key)
                    entries.append((f"s3://{bucket}/{key}", part))
            if unload.manifest:
                s3.put_object(Bucket=bucket, Key=name_prefix + "manifest",
                              Body=_manifest(entries, header, types, unload.verbose))  # fmt: skip
        return {"result_rows": rows, "has_result_set": False}


class _Part:
    def __init__(self, path: str, name: str) -> None:
        self.path, self.name = path, name
        self.records = 0
        self.bytes = 0


class _PartWriter:
    """One slice's files: rolls over at MAXFILESIZE, the header on top of each file."""

    def __init__(self, folder: str, slice_no: int, unload: Unload, header: list[str]) -> None:
        self.folder, self.slice_no, self.unload, self.header = folder, slice_no, unload, header
        self.parts: list[_Part] = []
        self._fh: Any = None
        self._open()

    def _name(self) -> str:
        n = len(self.parts)
        base = f"{self.slice_no:04d}_part_{n:02d}" if self.unload.parallel else f"{n:03d}"
        return base + (f".{self.unload.extension}" if self.unload.extension else "")

    def _open(self) -> None:
        name = self._name()
        part = _Part(os.path.join(self.folder, f"{self.slice_no}-{len(self.parts)}"), name)
        self.parts.append(part)
        self._fh = open(part.path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in _close
        if self.unload.header:
            self._line(self.header)
            part.records += 1

    def _line(self, values: list[str]) -> None:
        """One record: CSV quotes a field holding the delimiter, ``"``, LF or CR (r_UNLOAD, CSV);
        text format writes values as they are (no ESCAPE / ADDQUOTES)."""
        delimiter = self.unload.delimiter
        if self.unload.csv:
            special = (delimiter, '"', "\n", "\r")
            values = ['"' + v.replace('"', '""') + '"' if any(c in v for c in special) else v for v in values]
        self._fh.write(delimiter.join(values) + "\n")

    def write(self, row: tuple[Any, ...]) -> None:
        self._line([self.unload.null_as if v is None else _text(v) for v in row])
        self.parts[-1].records += 1
        if self._fh.tell() >= self.unload.max_file_bytes:
            self._close()
            self._open()

    def _close(self) -> None:
        self._fh.flush()
        self.parts[-1].bytes = self._fh.tell()
        self._fh.close()

    def close(self) -> list[_Part]:
        self._close()
        return self.parts


def _text(value: Any) -> str:
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return str(value)


def _manifest(entries: list[tuple[str, _Part]], header: list[str], types: list[str], verbose: bool) -> bytes:
    if not verbose:
        return json.dumps({"entries": [{"url": url} for url, _ in entries]}, indent=2).encode()
    doc = {
        "entries": [
            {"url": url, "meta": {"content_length": p.bytes, "record_count": p.records}} for url, p in entries
        ],
        "schema": {
            "elements": [{"name": n, "type": {"base": t}} for n, t in zip(header, types, strict=True)]
        },
        "meta": {
            "content_length": sum(p.bytes for _, p in entries),
            "record_count": sum(p.records for _, p in entries),
        },
        "author": {"name": "Amazon Redshift", "version": "1.0.0"},
    }
    return json.dumps(doc, indent=2).encode()


_PG_TYPES = {16: "boolean", 20: "bigint", 21: "smallint", 23: "integer", 25: "text", 700: "real",
             701: "double precision", 1043: "character varying", 1042: "character", 1700: "numeric",
             1082: "date", 1114: "timestamp without time zone", 1184: "timestamp with time zone"}  # fmt: skip


def _type_name(oid: int) -> str:
    return _PG_TYPES.get(oid, "character varying")


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return _text(value)


def _field(value: Any) -> dict[str, Any]:
    """A value as the Data API's ``Field`` union."""
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"longValue": value}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _ts(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
