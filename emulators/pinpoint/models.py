"""The Pinpoint emulator's backend: apps, endpoints, segments and import/export jobs in SQLite, S3 access.

No HTTP and no botocore shapes here (that is :mod:`emulators.pinpoint.responses`): methods take plain
arguments, return the response structures' contents (``ApplicationResponse``, ``EndpointResponse``,
``SegmentResponse``, ``ImportJobResponse`` / ``ExportJobResponse`` bodies) and raise
:class:`~emulators.errors.ServiceError` with Pinpoint's error codes (the protocol layer takes each
code's HTTP status from the model). State lives in ``<state_dir>/pinpoint.sqlite3``, so a restart
loses nothing (jobs are timed from their stored creation time).

Jobs walk the full ``JobStatus`` path over ``min_job_seconds``: CREATED → PREPARING_FOR_INITIALIZATION
→ INITIALIZING → PROCESSING → PENDING_JOB → COMPLETING → COMPLETED, or … → FAILING → FAILED. The work
(reading / writing S3) happens when a job reaches PROCESSING, on the next request that looks at it.

Import rules (from the Pinpoint user guide, "Importing segments"):

* ``S3Url`` is a file or a folder prefix (subfolders included); in a folder only files of the
  requested ``Format`` are read (``.csv`` for CSV, ``.json`` / ``.jsonl`` / ``.ndjson`` for JSON).
  Files must be uncompressed UTF-8. One file = one piece; a malformed piece fails the job with
  "The data we received didn't match the format we expected" and no segment is defined.
* CSV header ``Id`` alone: existing endpoint ids (the AWS sample's layout); unknown ids are counted
  in ``TotalFailures``. Header ``User.UserId`` alone: every endpoint of those users. Any other
  header: endpoint definitions (``Id``, ``ChannelType``, ``Address``, ``User.UserId``,
  ``User.UserAttributes.<x>``, ``Attributes.<x>``, ``Metrics.<x>``, ``Demographic.<x>``,
  ``Location.<x>``, ``EffectiveDate``, ``EndpointStatus``, ``OptOut``); a new endpoint needs
  ``ChannelType`` and ``Address``. Definitions are registered (upserted).
* JSON: one endpoint object a line, same three cases.
* ``DefineSegment`` creates an ``IMPORT`` segment (``SegmentName``) whose ``ImportDefinition.Size``
  is the number of endpoints; its id is already in the ``CreateImportJob`` answer
  (``Definition.SegmentId``), as the AWS sample expects. ``SegmentId`` re-defines that segment.

Exports write the endpoints (all, or a segment's) as gzipped JSON lines, one ``EndpointResponse`` a
line, under ``<S3UrlPrefix>/<application-id>/<yyyy>/<mm>/<dd>/<hh>/<job-id>/part-<n>.gz``.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from emulators.errors import ServiceError

FORMAT_MISMATCH = (
    "Bad request: The data we received didn't match the format we expected for the createImportJob operation"
)
JOB_PATH = (
    "CREATED",
    "PREPARING_FOR_INITIALIZATION",
    "INITIALIZING",
    "PROCESSING",
    "PENDING_JOB",
    "COMPLETING",
    "COMPLETED",
)
PROCESSING_INDEX = JOB_PATH.index("PROCESSING")
MAX_BATCH_ITEMS = 100
EXPORT_ROWS_PER_FILE = 100_000
FORMAT_SUFFIXES = {"CSV": (".csv",), "JSON": (".json", ".jsonl", ".ndjson")}
_SCALAR_FIELDS = ("Id", "Address", "ChannelType", "EffectiveDate", "EndpointStatus", "OptOut", "RequestId")
_STRUCT_PREFIXES = ("Demographic.", "Location.")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS apps (id TEXT PRIMARY KEY, name TEXT, creation_date TEXT, tags TEXT);
CREATE TABLE IF NOT EXISTS endpoints (
    app_id TEXT, id TEXT, user_id TEXT, channel_type TEXT, data TEXT, PRIMARY KEY (app_id, id));
CREATE INDEX IF NOT EXISTS endpoints_user ON endpoints (app_id, user_id);
CREATE TABLE IF NOT EXISTS segments (
    app_id TEXT, id TEXT, name TEXT, creation_date TEXT, last_modified TEXT, version INTEGER,
    import_def TEXT, PRIMARY KEY (app_id, id));
CREATE TABLE IF NOT EXISTS segment_members (app_id TEXT, segment_id TEXT, endpoint_id TEXT);
CREATE INDEX IF NOT EXISTS segment_members_seg ON segment_members (app_id, segment_id);
CREATE TABLE IF NOT EXISTS jobs (
    app_id TEXT, id TEXT, type TEXT, definition TEXT, created_at REAL, creation_date TEXT,
    outcome TEXT, seq INTEGER, PRIMARY KEY (app_id, id));
"""


class ImportFormatError(Exception):
    """A piece (file) of an import job does not match the expected format."""


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _new_id() -> str:
    return uuid.uuid4().hex


def _not_found() -> ServiceError:
    return ServiceError("NotFoundException", "Resource not found")


def _split_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise ServiceError("BadRequestException", f"S3 URL must start with s3://, got {url!r}")
    bucket, _, key = url[5:].partition("/")
    if not bucket:
        raise ServiceError("BadRequestException", f"S3 URL {url!r} has no bucket")
    return bucket, key


class PinpointBackend:
    """All Pinpoint state of one emulator, persisted under ``state_dir``.

    :param channel_types: the ``ChannelType`` values an imported endpoint may have (the model's enum).
    :param min_job_seconds: the time a job takes to walk from CREATED to COMPLETED.
    """

    def __init__(
        self,
        *,
        state_dir: Path,
        s3_endpoint_url: str,
        channel_types: frozenset[str],
        min_job_seconds: float = 1.0,
        region: str = "us-east-1",
        account_id: str = "123456789012",
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.channel_types = channel_types
        self.min_job_seconds = float(min_job_seconds)
        state_dir = Path(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            state_dir / "pinpoint.sqlite3", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._s3 = boto3.client(
            "s3",
            endpoint_url=s3_endpoint_url,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 3, "mode": "standard"}),
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ helpers

    def _q(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, tuple(params)).fetchall()

    def _app_arn(self, app_id: str) -> str:
        return f"arn:aws:mobiletargeting:{self.region}:{self.account_id}:apps/{app_id}"

    def _require_app(self, app_id: str) -> tuple[Any, ...]:
        rows = self._q("SELECT id, name, creation_date, tags FROM apps WHERE id = ?", [app_id])
        if not rows:
            raise _not_found()
        return rows[0]

    def _app_response(self, row: tuple[Any, ...]) -> dict[str, Any]:
        app_id, name, created, tags = row
        return {
            "Id": app_id,
            "Arn": self._app_arn(app_id),
            "Name": name,
            "CreationDate": created,
            "tags": json.loads(tags or "{}"),
        }

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One SQLite transaction (the caller holds ``self._lock``)."""
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ------------------------------------------------------------------ apps

    def create_app(self, name: str, tags: dict[str, str]) -> dict[str, Any]:
        app_id = _new_id()
        with self._lock:
            self._q("INSERT INTO apps VALUES (?, ?, ?, ?)", [app_id, name, _now_iso(), json.dumps(tags)])
            return self._app_response(self._require_app(app_id))

    def get_app(self, app_id: str) -> dict[str, Any]:
        with self._lock:
            return self._app_response(self._require_app(app_id))

    def apps(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._q("SELECT id, name, creation_date, tags FROM apps ORDER BY creation_date, id")
        return [self._app_response(row) for row in rows]

    def delete_app(self, app_id: str) -> dict[str, Any]:
        with self._lock:
            response = self._app_response(self._require_app(app_id))
            for table in ("endpoints", "segments", "segment_members", "jobs"):
                self._q(f"DELETE FROM {table} WHERE app_id = ?", [app_id])
            self._q("DELETE FROM apps WHERE id = ?", [app_id])
        return response

    # ------------------------------------------------------------------ endpoints

    def _endpoint_response(self, app_id: str, data: dict[str, Any]) -> dict[str, Any]:
        out = dict(data)
        out["ApplicationId"] = app_id
        out["CohortId"] = str(int(hashlib.sha256(data["Id"].encode()).hexdigest(), 16) % 100)
        return out

    def _get_endpoint(self, app_id: str, endpoint_id: str) -> dict[str, Any] | None:
        rows = self._q("SELECT data FROM endpoints WHERE app_id = ? AND id = ?", [app_id, endpoint_id])
        return json.loads(rows[0][0]) if rows else None

    def _upsert_endpoint(self, app_id: str, endpoint_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """Create or merge an endpoint (maps and the User structure merge key by key, as AWS does)."""
        existing = self._get_endpoint(app_id, endpoint_id)
        now = _now_iso()
        data: dict[str, Any] = existing or {
            "Id": endpoint_id,
            "CreationDate": now,
            "EndpointStatus": "ACTIVE",
        }
        for key, value in request.items():
            if key in ("Id", "RequestId") or value is None:
                continue
            if key in ("Attributes", "Metrics") and isinstance(value, dict):
                merged = dict(data.get(key) or {})
                merged.update(value)
                data[key] = merged
            elif key == "User" and isinstance(value, dict):
                user = dict(data.get("User") or {})
                if "UserId" in value:
                    user["UserId"] = value["UserId"]
                if "UserAttributes" in value:
                    attrs = dict(user.get("UserAttributes") or {})
                    attrs.update(value["UserAttributes"])
                    user["UserAttributes"] = attrs
                data["User"] = user
            elif key in ("Demographic", "Location") and isinstance(value, dict):
                merged = dict(data.get(key) or {})
                merged.update(value)
                data[key] = merged
            else:
                data[key] = value
        data.setdefault("EffectiveDate", now)
        if "EffectiveDate" not in request:
            data["EffectiveDate"] = now
        data.setdefault("OptOut", "NONE")
        user_id = (data.get("User") or {}).get("UserId")
        self._q(
            "INSERT OR REPLACE INTO endpoints VALUES (?, ?, ?, ?, ?)",
            [app_id, endpoint_id, user_id, data.get("ChannelType"), json.dumps(data)],
        )
        return data

    def update_endpoint(self, app_id: str, endpoint_id: str, request: dict[str, Any]) -> None:
        with self._lock:
            self._require_app(app_id)
            self._upsert_endpoint(app_id, endpoint_id, request)

    def update_endpoints_batch(self, app_id: str, items: list[dict[str, Any]]) -> None:
        if len(items) > MAX_BATCH_ITEMS:
            raise ServiceError(
                "BadRequestException", f"An endpoint batch can hold at most {MAX_BATCH_ITEMS} endpoints"
            )
        missing = [i for i, item in enumerate(items) if not item.get("Id")]
        if missing:
            raise ServiceError("BadRequestException", f"Endpoint Id is required (items {missing})")
        with self._lock:
            self._require_app(app_id)
            with self._transaction():
                for item in items:
                    self._upsert_endpoint(app_id, item["Id"], item)

    def get_endpoint(self, app_id: str, endpoint_id: str) -> dict[str, Any]:
        with self._lock:
            self._require_app(app_id)
            data = self._get_endpoint(app_id, endpoint_id)
        if data is None:
            raise _not_found()
        return self._endpoint_response(app_id, data)

    def delete_endpoint(self, app_id: str, endpoint_id: str) -> dict[str, Any]:
        with self._lock:
            self._require_app(app_id)
            data = self._get_endpoint(app_id, endpoint_id)
            if data is None:
                raise _not_found()
            self._q("DELETE FROM endpoints WHERE app_id = ? AND id = ?", [app_id, endpoint_id])
        return self._endpoint_response(app_id, data)

    def user_endpoints(self, app_id: str, user_id: str) -> list[dict[str, Any]]:
        """Every endpoint of ``user_id`` (``NotFoundException`` for a user without endpoints)."""
        with self._lock:
            self._require_app(app_id)
            rows = self._q(
                "SELECT data FROM endpoints WHERE app_id = ? AND user_id = ? ORDER BY id", [app_id, user_id]
            )
        if not rows:
            raise _not_found()
        return [self._endpoint_response(app_id, json.loads(r[0])) for r in rows]

    # ------------------------------------------------------------------ segments

    def _segment_response(self, app_id: str, row: tuple[Any, ...]) -> dict[str, Any]:
        seg_id, name, created, modified, version, import_def = row
        out: dict[str, Any] = {
            "ApplicationId": app_id,
            "Arn": f"{self._app_arn(app_id)}/segments/{seg_id}",
            "CreationDate": created,
            "LastModifiedDate": modified,
            "Id": seg_id,
            "Name": name,
            "SegmentType": "IMPORT",
            "Version": version,
            "tags": {},
        }
        if import_def:
            out["ImportDefinition"] = json.loads(import_def)
        return out

    def _segment_row(self, app_id: str, segment_id: str) -> tuple[Any, ...]:
        rows = self._q(
            "SELECT id, name, creation_date, last_modified, version, import_def FROM segments "
            "WHERE app_id = ? AND id = ?",
            [app_id, segment_id],
        )
        if not rows:
            raise _not_found()
        return rows[0]

    def get_segment(self, app_id: str, segment_id: str) -> dict[str, Any]:
        with self._lock:
            self._require_app(app_id)
            self._advance_jobs(app_id)
            return self._segment_response(app_id, self._segment_row(app_id, segment_id))

    def segments(self, app_id: str) -> list[dict[str, Any]]:
        with self._lock:
            self._require_app(app_id)
            self._advance_jobs(app_id)
            rows = self._q(
                "SELECT id, name, creation_date, last_modified, version, import_def FROM segments "
                "WHERE app_id = ? ORDER BY creation_date, id",
                [app_id],
            )
        return [self._segment_response(app_id, row) for row in rows]

    def delete_segment(self, app_id: str, segment_id: str) -> dict[str, Any]:
        with self._lock:
            self._require_app(app_id)
            row = self._segment_row(app_id, segment_id)
            self._q("DELETE FROM segments WHERE app_id = ? AND id = ?", [app_id, segment_id])
            self._q("DELETE FROM segment_members WHERE app_id = ? AND segment_id = ?", [app_id, segment_id])
        return self._segment_response(app_id, row)

    # ------------------------------------------------------------------ jobs (common)

    def _create_job(self, app_id: str, job_type: str, definition: dict[str, Any]) -> str:
        job_id = _new_id()
        seq = self._q("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs")[0][0]
        self._q(
            "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
            [app_id, job_id, job_type, json.dumps(definition), time.time(), _now_iso(), seq],
        )
        return job_id

    def _phase(self, created_at: float) -> int:
        step = self.min_job_seconds / (len(JOB_PATH) - 1) if self.min_job_seconds > 0 else 0
        if step == 0:
            return len(JOB_PATH) - 1
        return min(int((time.time() - created_at) / step), len(JOB_PATH) - 1)

    def _advance_jobs(self, app_id: str, job_id: str | None = None) -> None:
        """Run the work of every job of the app that reached PROCESSING and has not run yet."""
        sql = "SELECT id, type, definition, created_at FROM jobs WHERE app_id = ? AND outcome IS NULL"
        args: list[Any] = [app_id]
        if job_id is not None:
            sql += " AND id = ?"
            args.append(job_id)
        for jid, job_type, definition, created_at in self._q(sql + " ORDER BY seq", args):
            if self._phase(created_at) < PROCESSING_INDEX:
                continue
            runner = self._run_import if job_type == "IMPORT" else self._run_export
            try:
                outcome = runner(app_id, jid, json.loads(definition))
            except ServiceError as exc:
                outcome = {"failures": [exc.message], "total_pieces": 1, "failed_pieces": 1}
            outcome["finished_at"] = time.time()
            self._q(
                "UPDATE jobs SET outcome = ? WHERE app_id = ? AND id = ?", [json.dumps(outcome), app_id, jid]
            )

    def _job_response(self, app_id: str, job_id: str, job_type: str) -> dict[str, Any]:
        self._advance_jobs(app_id, job_id)
        rows = self._q(
            "SELECT definition, created_at, creation_date, outcome FROM jobs WHERE app_id = ? AND id = ? AND type = ?",
            [app_id, job_id, job_type],
        )
        if not rows:
            raise _not_found()
        return self._render_job(app_id, job_id, job_type, *rows[0])

    def _render_job(
        self,
        app_id: str,
        job_id: str,
        job_type: str,
        definition: str,
        created_at: float,
        created: str,
        outcome: Any,
    ) -> dict[str, Any]:
        phase = self._phase(created_at)
        result = json.loads(outcome) if outcome else None
        status = JOB_PATH[phase]
        body: dict[str, Any] = {
            "ApplicationId": app_id,
            "CreationDate": created,
            "Definition": json.loads(definition),
            "Id": job_id,
            "JobStatus": status,
            "Type": job_type,
        }
        if result is None:
            return body
        failed = result.get("failed_pieces", 0) > 0
        if failed and phase >= JOB_PATH.index("COMPLETING"):
            status = "FAILED" if phase == len(JOB_PATH) - 1 else "FAILING"
        body["JobStatus"] = status
        if status in ("COMPLETED", "FAILED"):
            body["CompletionDate"] = (
                dt.datetime.fromtimestamp(
                    max(result["finished_at"], created_at + self.min_job_seconds), dt.UTC
                ).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
                + "Z"
            )
        if phase > PROCESSING_INDEX:
            body.update(
                TotalPieces=result.get("total_pieces", 0),
                CompletedPieces=result.get("total_pieces", 0) - result.get("failed_pieces", 0),
                FailedPieces=result.get("failed_pieces", 0),
                TotalProcessed=result.get("total_processed", 0),
                TotalFailures=result.get("total_failures", 0),
            )
            if result.get("failures"):
                body["Failures"] = result["failures"][:100]
        return body

    def job(self, app_id: str, job_id: str, job_type: str) -> dict[str, Any]:
        """The ``IMPORT`` / ``EXPORT`` job's response body, its status derived from its age."""
        with self._lock:
            self._require_app(app_id)
            return self._job_response(app_id, job_id, job_type)

    def jobs(self, app_id: str, job_type: str) -> list[dict[str, Any]]:
        """The app's jobs of ``job_type``, newest first."""
        with self._lock:
            self._require_app(app_id)
            self._advance_jobs(app_id)
            rows = self._q(
                "SELECT id, definition, created_at, creation_date, outcome FROM jobs "
                "WHERE app_id = ? AND type = ? ORDER BY seq DESC",
                [app_id, job_type],
            )
        return [self._render_job(app_id, r[0], job_type, *r[1:]) for r in rows]

    # ------------------------------------------------------------------ import

    def create_import_job(self, app_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """Queue an import; ``DefineSegment`` gets its segment id now, as the AWS sample expects."""
        request = dict(request)
        _split_s3_url(request["S3Url"])
        with self._lock:
            self._require_app(app_id)
            if request.get("SegmentId"):
                self._segment_row(app_id, request["SegmentId"])
            elif request.get("DefineSegment"):
                request["SegmentId"] = _new_id()
            request.setdefault("ExternalId", "")
            if request.get("DefineSegment") and not request.get("SegmentName"):
                request["SegmentName"] = request["S3Url"].rstrip("/").rsplit("/", 1)[-1]
            job_id = self._create_job(app_id, "IMPORT", request)
            return self._job_response(app_id, job_id, "IMPORT")

    def _list_import_files(self, s3_url: str, file_format: str) -> list[tuple[str, str]]:
        bucket, key = _split_s3_url(s3_url)
        try:
            self._s3.head_object(Bucket=bucket, Key=key)
            if key and not key.endswith("/"):
                return [(bucket, key)]
        except self._s3.exceptions.ClientError:
            pass
        found: list[tuple[str, str]] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=bucket, Prefix=key):
                for obj in page.get("Contents", []):
                    name = obj["Key"]
                    if name.endswith("/") or not name.lower().endswith(FORMAT_SUFFIXES[file_format]):
                        continue
                    found.append((bucket, name))
        except self._s3.exceptions.NoSuchBucket as exc:
            raise ServiceError("BadRequestException", f"Bucket {bucket} does not exist") from exc
        return sorted(found)

    def _run_import(self, app_id: str, job_id: str, definition: dict[str, Any]) -> dict[str, Any]:
        file_format = definition["Format"]
        files = self._list_import_files(definition["S3Url"], file_format)
        if not files:
            return {
                "failures": [f"No {file_format} files found at {definition['S3Url']}"],
                "total_pieces": 1,
                "failed_pieces": 1,
            }
        failures: list[str] = []
        failed_pieces = 0
        members: list[str] = []
        total_processed = 0
        total_failures = 0
        with self._transaction():
            for bucket, key in files:
                body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                try:
                    records = list(self._parse_piece(body, file_format))
                    ids, bad = self._apply_records(app_id, records)
                except ImportFormatError as exc:
                    failed_pieces += 1
                    failures.append(f"{FORMAT_MISMATCH} (s3://{bucket}/{key}: {exc})")
                    continue
                members.extend(ids)
                total_processed += len(records)
                total_failures += len(bad)
                failures.extend(f"s3://{bucket}/{key}: {message}" for message in bad[:20])
            if failed_pieces == 0 and definition.get("SegmentId"):
                self._define_segment(app_id, definition, members)
        return {
            "failures": failures,
            "total_pieces": len(files),
            "failed_pieces": failed_pieces,
            "total_processed": total_processed,
            "total_failures": total_failures,
        }

    @staticmethod
    def _parse_piece(body: bytes, file_format: str) -> Iterator[dict[str, Any]]:
        if body[:2] == b"\x1f\x8b":
            raise ImportFormatError("file is compressed; Pinpoint imports uncompressed files only")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImportFormatError(f"file is not UTF-8: {exc}") from exc
        if file_format == "JSON":
            for number, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise ImportFormatError(f"line {number}: invalid JSON: {exc}") from exc
                if not isinstance(record, dict):
                    raise ImportFormatError(f"line {number}: not a JSON object")
                yield record
            return
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise ImportFormatError("missing CSV header")
        header = [h.strip() for h in header]
        for column in header:
            if not _valid_attribute(column):
                raise ImportFormatError(f"unknown attribute {column!r} in the CSV header")
        only = header if len(header) == 1 else None
        for number, row in enumerate(reader, start=2):
            if not row or all(not cell for cell in row):
                continue
            if len(row) != len(header):
                raise ImportFormatError(f"line {number}: {len(row)} fields, the header has {len(header)}")
            if only == ["Id"]:
                yield {"Id": row[0], "__only__": "Id"}
            elif only == ["User.UserId"]:
                yield {"User": {"UserId": row[0]}, "__only__": "User.UserId"}
            else:
                yield _record_from_columns(header, row)

    def _apply_records(self, app_id: str, records: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
        """Register / look up the endpoints of one piece; return (segment member ids, row failures)."""
        ids: list[str] = []
        bad: list[str] = []
        for number, record in enumerate(records, start=1):
            only = record.pop("__only__", None)
            keys = set(record) - {"RequestId"}
            if only == "Id" or keys == {"Id"}:
                if self._get_endpoint(app_id, record["Id"]) is None:
                    bad.append(f"record {number}: endpoint {record['Id']!r} does not exist")
                else:
                    ids.append(record["Id"])
            elif only == "User.UserId" or (keys == {"User"} and set(record["User"]) == {"UserId"}):
                rows = self._q(
                    "SELECT id FROM endpoints WHERE app_id = ? AND user_id = ? ORDER BY id",
                    [app_id, record["User"]["UserId"]],
                )
                if not rows:
                    bad.append(f"record {number}: no endpoint for user {record['User']['UserId']!r}")
                ids.extend(r[0] for r in rows)
            else:
                endpoint_id = record.get("Id")
                exists = bool(endpoint_id) and self._get_endpoint(app_id, endpoint_id) is not None
                if not exists and not (record.get("ChannelType") and record.get("Address")):
                    bad.append(f"record {number}: a new endpoint needs ChannelType and Address")
                    continue
                if record.get("ChannelType") and record["ChannelType"] not in self.channel_types:
                    bad.append(f"record {number}: invalid ChannelType {record['ChannelType']!r}")
                    continue
                endpoint_id = endpoint_id or _new_id()
                self._upsert_endpoint(app_id, endpoint_id, record)
                ids.append(endpoint_id)
        return list(dict.fromkeys(ids)), bad

    def _define_segment(self, app_id: str, definition: dict[str, Any], members: list[str]) -> None:
        segment_id = definition["SegmentId"]
        members = list(dict.fromkeys(members))
        counts: dict[str, int] = {}
        for chunk_start in range(0, len(members), 500):
            chunk = members[chunk_start : chunk_start + 500]
            marks = ",".join("?" * len(chunk))
            for (channel,) in self._q(
                f"SELECT channel_type FROM endpoints WHERE app_id = ? AND id IN ({marks})", [app_id, *chunk]
            ):
                if channel:
                    counts[channel] = counts.get(channel, 0) + 1
        import_def = {
            "ChannelCounts": counts,
            "ExternalId": definition.get("ExternalId") or "",
            "Format": definition["Format"],
            "RoleArn": definition["RoleArn"],
            "S3Url": definition["S3Url"],
            "Size": len(members),
        }
        now = _now_iso()
        existing = self._q("SELECT version FROM segments WHERE app_id = ? AND id = ?", [app_id, segment_id])
        if existing:
            self._q(
                "UPDATE segments SET last_modified = ?, version = ?, import_def = ? WHERE app_id = ? AND id = ?",
                [now, existing[0][0] + 1, json.dumps(import_def), app_id, segment_id],
            )
            self._q("DELETE FROM segment_members WHERE app_id = ? AND segment_id = ?", [app_id, segment_id])
        else:
            name = definition.get("SegmentName") or segment_id
            self._q(
                "INSERT INTO segments VALUES (?, ?, ?, ?, ?, ?, ?)",
                [app_id, segment_id, name, now, now, 1, json.dumps(import_def)],
            )
        self._db.executemany(
            "INSERT INTO segment_members VALUES (?, ?, ?)", [(app_id, segment_id, m) for m in members]
        )

    # ------------------------------------------------------------------ export

    def create_export_job(self, app_id: str, request: dict[str, Any]) -> dict[str, Any]:
        request = dict(request)
        _split_s3_url(request["S3UrlPrefix"])
        with self._lock:
            self._require_app(app_id)
            if request.get("SegmentId"):
                self._segment_row(app_id, request["SegmentId"])
            job_id = self._create_job(app_id, "EXPORT", request)
            return self._job_response(app_id, job_id, "EXPORT")

    def _run_export(self, app_id: str, job_id: str, definition: dict[str, Any]) -> dict[str, Any]:
        bucket, prefix = _split_s3_url(definition["S3UrlPrefix"])
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        stamp = dt.datetime.now(dt.UTC).strftime("%Y/%m/%d/%H")
        base = f"{prefix}{app_id}/{stamp}/{job_id}/"
        if definition.get("SegmentId"):
            cursor = self._db.execute(
                "SELECT e.data FROM endpoints e JOIN segment_members m "
                "ON m.app_id = e.app_id AND m.endpoint_id = e.id "
                "WHERE e.app_id = ? AND m.segment_id = ? ORDER BY e.id",
                [app_id, definition["SegmentId"]],
            )
        else:
            cursor = self._db.execute("SELECT data FROM endpoints WHERE app_id = ? ORDER BY id", [app_id])
        part = 0
        total = 0
        while True:
            rows = cursor.fetchmany(EXPORT_ROWS_PER_FILE)
            if not rows and part > 0:
                break
            buffer = io.BytesIO()
            with gzip.GzipFile(fileobj=buffer, mode="wb") as gz:
                for (data,) in rows:
                    gz.write(json.dumps(self._endpoint_response(app_id, json.loads(data))).encode() + b"\n")
            try:
                self._s3.put_object(Bucket=bucket, Key=f"{base}part-{part:05d}.gz", Body=buffer.getvalue())
            except self._s3.exceptions.ClientError as exc:
                return {
                    "failures": [f"Cannot write to s3://{bucket}/{base}: {exc}"],
                    "total_pieces": 1,
                    "failed_pieces": 1,
                }
            part += 1
            total += len(rows)
            if not rows:
                break
        return {"failures": [], "total_pieces": part, "failed_pieces": 0, "total_processed": total}


def _valid_attribute(column: str) -> bool:
    if column in (*_SCALAR_FIELDS, "User.UserId"):
        return True
    for prefix in ("User.UserAttributes.", "Attributes.", "Metrics.", *_STRUCT_PREFIXES):
        if column.startswith(prefix) and len(column) > len(prefix) and len(column) <= 50 + len(prefix):
            return True
    return False


def _record_from_columns(header: list[str], row: list[str]) -> dict[str, Any]:
    """One CSV row of endpoint definitions → an EndpointBatchItem-shaped dict (empty cells skipped)."""
    record: dict[str, Any] = {}
    for column, value in zip(header, row, strict=True):
        if value == "":
            continue
        if column in _SCALAR_FIELDS:
            record[column] = value
        elif column == "User.UserId":
            record.setdefault("User", {})["UserId"] = value
        elif column.startswith("User.UserAttributes."):
            attrs = record.setdefault("User", {}).setdefault("UserAttributes", {})
            attrs.setdefault(column[len("User.UserAttributes.") :], []).append(value)
        elif column.startswith("Attributes."):
            record.setdefault("Attributes", {}).setdefault(column[len("Attributes.") :], []).append(value)
        elif column.startswith("Metrics."):
            try:
                record.setdefault("Metrics", {})[column[len("Metrics.") :]] = float(value)
            except ValueError as exc:
                raise ImportFormatError(f"metric {column} is not a number: {value!r}") from exc
        else:
            struct, _, field = column.partition(".")
            if struct == "Location" and field in ("Latitude", "Longitude"):
                try:
                    record.setdefault(struct, {})[field] = float(value)
                except ValueError as exc:
                    raise ImportFormatError(f"{column} is not a number: {value!r}") from exc
            else:
                record.setdefault(struct, {})[field] = value
    return record
