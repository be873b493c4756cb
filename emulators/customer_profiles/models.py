"""The Customer Profiles emulator's backend: domains, profiles, upload jobs, segment definitions,
estimates and snapshots in SQLite; uploaded files on disk; snapshots written to S3.

No HTTP and no botocore shapes (that is :mod:`emulators.customer_profiles.responses`): methods take
plain arguments, return the response members and raise :class:`~emulators.errors.ServiceError` with
Customer Profiles' error codes. State lives in ``<state_dir>/customer_profiles.sqlite3`` and
``<state_dir>/uploads/``, so a restart loses nothing (jobs are timed from their stored times).

What it does, and the assumptions where AWS documents nothing (``docs/emulators.md`` lists them):

* **Upload jobs**: ``CREATED`` until ``StartUploadJob`` (which needs the file PUT first, else
  ``BadRequestException``), ``IN_PROGRESS`` for ``min_job_seconds``, then the file is processed on
  the next request that looks at the job: ``SUCCEEDED``, ``PARTIALLY_SUCCEEDED`` (some rows failed)
  or ``FAILED`` (``VALIDATION_FAILURE``: not UTF-8, no header, a header with a dot, a field whose
  ``_source.<column>`` is not a column, an unsupported target, every row failed). ``StopUploadJob``
  stops a job that is not finished (``STOPPED``).
* **Fields**: each key is a CSV column; ``Source`` is ``_source.<column>``; ``Target`` is
  ``_profile.<string attribute>`` or ``_profile.Attributes.<name>``. ``UniqueKey`` names the field
  whose target identifies the profile: a row updates the profile whose target attribute equals the
  row's value (``UpdatedRecords``), else creates one (``CreatedRecords``); a row without a value
  for it, or with the wrong number of cells, is a ``FailedRecords``.
* **Expiry**: a profile written by an upload expires ``DataExpiry`` days (default 14) after the
  upload unless it already lived longer ("the longest expiry time" wins); expired profiles are
  dropped when the domain is next read.
* **Segment definitions** are unique by name (a second create is ``BadRequestException``) and are
  evaluated on the stored profiles when an estimate or a snapshot asks. Supported: ``Include`` and
  group ``Type`` ALL / ANY / NONE; ``ProfileAttributes`` with the string attributes, ``Attributes``
  (INCLUSIVE, EXCLUSIVE, CONTAINS, BEGINS_WITH, ENDS_WITH, EQUAL) and ``ProfileType``; several
  attributes in one dimension must all hold; a profile without the attribute fails INCLUSIVE and
  the text tests and passes EXCLUSIVE; comparisons are exact (case-sensitive). Anything else
  (``SourceSegments``, ``CalculatedAttributes``, addresses, dates, numeric or list tests,
  ``SegmentSqlQuery``, ``SegmentSort``) is rejected with ``BadRequestException`` naming it.
* **Snapshots** (``DataFormat`` JSONL only) write the segment's profiles, one ``Profile`` object a
  line, to ``<DestinationUri>/<SnapshotId>/part-00000.jsonl``; ``IN_PROGRESS`` until done.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from emulators.errors import ServiceError
from personalize_logic.facts import customer_profiles as facts

DEFAULT_DATA_EXPIRY_DAYS = facts.DEFAULT_DATA_EXPIRY_DAYS
URL_VALID_SECONDS = 3600
_STRING_DIMENSION_TYPES = {"INCLUSIVE", "EXCLUSIVE", "CONTAINS", "BEGINS_WITH", "ENDS_WITH", "EQUAL"}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS domains (name TEXT PRIMARY KEY, data TEXT);
CREATE TABLE IF NOT EXISTS profiles (domain TEXT, id TEXT, data TEXT, expires_at REAL, PRIMARY KEY (domain, id));
CREATE TABLE IF NOT EXISTS upload_jobs (domain TEXT, id TEXT, data TEXT, token TEXT, created_at REAL,
    started_at REAL, uploaded INTEGER, PRIMARY KEY (domain, id));
CREATE TABLE IF NOT EXISTS segment_definitions (domain TEXT, name TEXT, data TEXT, PRIMARY KEY (domain, name));
CREATE TABLE IF NOT EXISTS estimates (domain TEXT, id TEXT, created_at REAL, estimate INTEGER, PRIMARY KEY (domain, id));
CREATE TABLE IF NOT EXISTS snapshots (domain TEXT, definition TEXT, id TEXT, data TEXT, created_at REAL,
    PRIMARY KEY (domain, id));
"""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _id() -> str:
    return uuid.uuid4().hex


def _not_found(what: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"{what} not found")


def _bad(message: str) -> ServiceError:
    return ServiceError("BadRequestException", message)


def _profile_value(profile: dict[str, Any], attribute: str) -> str | None:
    if attribute.startswith(facts.CUSTOM_ATTRIBUTES_PREFIX):
        return (profile.get("Attributes") or {}).get(attribute.removeprefix(facts.CUSTOM_ATTRIBUTES_PREFIX))
    value = profile.get(attribute)
    return None if value is None else str(value)


def _set_profile_value(profile: dict[str, Any], attribute: str, value: str) -> None:
    if attribute.startswith(facts.CUSTOM_ATTRIBUTES_PREFIX):
        profile.setdefault("Attributes", {})[attribute.removeprefix(facts.CUSTOM_ATTRIBUTES_PREFIX)] = value
    else:
        profile[attribute] = value


def _text_test(kind: str, values: list[str], value: str | None, where: str) -> bool:
    if kind not in _STRING_DIMENSION_TYPES:
        raise _bad(f"{where}: DimensionType {kind} is not supported by the emulator")
    if kind == "EXCLUSIVE":
        return value is None or value not in values
    if value is None:
        return False
    if kind in ("INCLUSIVE", "EQUAL"):
        return value in values
    if kind == "CONTAINS":
        return any(v in value for v in values)
    if kind == "BEGINS_WITH":
        return any(value.startswith(v) for v in values)
    return any(value.endswith(v) for v in values)


def check_segment_groups(groups: dict[str, Any]) -> None:
    """Reject (``BadRequestException``, naming the member) what :func:`matches` cannot evaluate."""
    for g_index, group in enumerate(groups.get("Groups") or []):
        where = f"SegmentGroups.Groups[{g_index}]"
        if group.get("SourceSegments"):
            raise _bad(f"{where}.SourceSegments is not supported by the emulator")
        for d_index, dimension in enumerate(group.get("Dimensions") or []):
            here = f"{where}.Dimensions[{d_index}]"
            if dimension.get("CalculatedAttributes"):
                raise _bad(f"{here}.CalculatedAttributes is not supported by the emulator")
            for name, test in (dimension.get("ProfileAttributes") or {}).items():
                if name == "Attributes":
                    for attribute, custom in test.items():
                        if custom.get("DimensionType") not in _STRING_DIMENSION_TYPES:
                            raise _bad(
                                f"{here}.ProfileAttributes.Attributes.{attribute}: DimensionType "
                                f"{custom.get('DimensionType')} is not supported by the emulator"
                            )
                elif name not in (*facts.STRING_PROFILE_ATTRIBUTES, "AdditionalInformation", "ProfileType"):
                    raise _bad(f"{here}.ProfileAttributes.{name} is not supported by the emulator")


def _dimension_holds(profile: dict[str, Any], dimension: dict[str, Any], where: str) -> bool:
    for name, test in (dimension.get("ProfileAttributes") or {}).items():
        if name == "Attributes":
            for attribute, custom in test.items():
                value = (profile.get("Attributes") or {}).get(attribute)
                if not _text_test(custom["DimensionType"], custom["Values"], value, where):
                    return False
        elif name == "ProfileType":
            kind = profile.get("ProfileType") or "PROFILE"
            inside = kind in test["Values"]
            if inside != (test["DimensionType"] == "INCLUSIVE"):
                return False
        elif not _text_test(test["DimensionType"], test["Values"], _profile_value(profile, name), where):
            return False
    return True


def _combine(kind: str | None, results: Iterable[bool]) -> bool:
    found = list(results)
    if kind == "ANY":
        return any(found)
    if kind == "NONE":
        return not any(found)
    return all(found)


def matches(profile: dict[str, Any], groups: dict[str, Any]) -> bool:
    """Whether ``profile`` belongs to the segment ``groups`` (a ``SegmentGroups`` structure)."""
    return _combine(
        groups.get("Include"),
        (
            _combine(
                group.get("Type"),
                (_dimension_holds(profile, d, "SegmentGroups") for d in group.get("Dimensions") or []),
            )
            for group in groups.get("Groups") or []
        ),
    )


class CustomerProfilesBackend:
    """All Customer Profiles state of one emulator, persisted under ``state_dir``."""

    def __init__(
        self,
        *,
        state_dir: Path,
        s3_endpoint_url: str,
        min_job_seconds: float = 1.0,
        region: str = "us-east-1",
        account_id: str = "123456789012",
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.min_job_seconds = float(min_job_seconds)
        self.state_dir = Path(state_dir)
        self.uploads = self.state_dir / "uploads"
        self.uploads.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.state_dir / "customer_profiles.sqlite3", check_same_thread=False, isolation_level=None
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

    def _q(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, tuple(params)).fetchall()

    # ------------------------------------------------------------------ domains and profiles

    def create_domain(
        self, name: str, expiration_days: int, tags: dict[str, str] | None = None
    ) -> dict[str, Any]:
        with self._lock:
            if self._q("SELECT 1 FROM domains WHERE name = ?", [name]):
                raise _bad(f"Domain {name} already exists")
            now = _now()
            data = {"DomainName": name, "DefaultExpirationDays": expiration_days, "CreatedAt": now.timestamp(),
                    "LastUpdatedAt": now.timestamp(), "Tags": tags or {}}  # fmt: skip
            self._q("INSERT INTO domains VALUES (?, ?)", [name, json.dumps(data)])
            return data

    def get_domain(self, name: str) -> dict[str, Any]:
        rows = self._q("SELECT data FROM domains WHERE name = ?", [name])
        if not rows:
            raise _not_found(f"Domain {name}")
        return json.loads(rows[0][0])

    def domains(self) -> list[dict[str, Any]]:
        return [json.loads(row[0]) for row in self._q("SELECT data FROM domains ORDER BY name")]

    def create_profile(self, domain: str, fields: dict[str, Any]) -> str:
        with self._lock:
            days = int(self.get_domain(domain).get("DefaultExpirationDays") or 365)
            profile_id = _id()
            profile = {"ProfileId": profile_id, **fields}
            self._q(
                "INSERT INTO profiles VALUES (?, ?, ?, ?)",
                [domain, profile_id, json.dumps(profile), time.time() + days * 86400],
            )
            return profile_id

    def profiles(self, domain: str) -> Iterator[dict[str, Any]]:
        """The domain's live profiles (expired ones are dropped first)."""
        self.get_domain(domain)
        with self._lock:
            self._q("DELETE FROM profiles WHERE domain = ? AND expires_at < ?", [domain, time.time()])
            rows = self._q("SELECT data FROM profiles WHERE domain = ? ORDER BY id", [domain])
        for (data,) in rows:
            yield json.loads(data)

    def search_profiles(self, domain: str, key_name: str, values: list[str]) -> list[dict[str, Any]]:
        attribute = {"_account": "AccountNumber", "_profileId": "ProfileId", "_email": "EmailAddress"}.get(
            key_name
        )
        if attribute is None:
            raise _bad(f"KeyName {key_name} is not supported by the emulator (_account, _profileId, _email)")
        return [p for p in self.profiles(domain) if str(p.get(attribute)) in values]

    # ------------------------------------------------------------------ upload jobs

    def _job_row(self, domain: str, job_id: str) -> tuple[Any, ...]:
        self.get_domain(domain)
        rows = self._q(
            "SELECT data, token, created_at, started_at, uploaded FROM upload_jobs WHERE domain = ? AND id = ?",
            [domain, job_id],
        )
        if not rows:
            raise _not_found(f"Upload job {job_id}")
        return rows[0]

    def create_upload_job(
        self, domain: str, display_name: str, fields: dict[str, Any], unique_key: str, data_expiry: int | None
    ) -> str:
        self.get_domain(domain)
        if unique_key not in fields:
            raise _bad(f"UniqueKey {unique_key} is not one of the Fields")
        job_id = _id()
        now = _now()
        data = {
            "JobId": job_id,
            "DisplayName": display_name,
            "Status": "CREATED",
            "CreatedAt": now.timestamp(),
            "Fields": fields,
            "UniqueKey": unique_key,
            "DataExpiry": data_expiry or DEFAULT_DATA_EXPIRY_DAYS,
        }
        token = base64.b64encode(os.urandom(32)).decode("ascii")
        with self._lock:
            self._q(
                "INSERT INTO upload_jobs VALUES (?, ?, ?, ?, ?, NULL, 0)",
                [domain, job_id, json.dumps(data), token, now.timestamp()],
            )
        return job_id

    def upload_job_path(self, domain: str, job_id: str, base_url: str) -> dict[str, Any]:
        data, token, *_ = self._job_row(domain, job_id)
        if json.loads(data)["Status"] != "CREATED":
            raise _bad(f"Upload job {job_id} was started already")
        signature = hashlib.sha256(f"{domain}/{job_id}/{token}".encode()).hexdigest()
        expires = int(time.time()) + URL_VALID_SECONDS
        return {
            "Url": f"{base_url}/_upload/{domain}/{job_id}?X-Amz-Expires={URL_VALID_SECONDS}"
            f"&X-Amz-Date={expires}&X-Amz-Signature={signature}",
            "ClientToken": token,
            "ValidUntil": dt.datetime.fromtimestamp(expires, dt.UTC),
        }

    def receive_upload(
        self, domain: str, job_id: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> None:
        """
        The pre-signed PUT. Enforces the URL (signature, expiry) and the SSE-C headers the way S3 does
        for a customer-provided key: algorithm ``AES256``, the key = the job's client token, the key
        MD5 = base64(md5(key bytes)). Raises ``ServiceError`` with S3's error codes.
        """
        try:
            _, token, _, _, _ = self._job_row(domain, job_id)
        except ServiceError as exc:
            raise ServiceError("NoSuchKey", "The upload URL names no upload job", 404) from exc
        signature = hashlib.sha256(f"{domain}/{job_id}/{token}".encode()).hexdigest()
        if query.get("X-Amz-Signature") != signature:
            raise ServiceError("SignatureDoesNotMatch", "The request signature does not match", 403)
        if int(query.get("X-Amz-Date") or 0) < time.time():
            raise ServiceError("AccessDenied", "Request has expired", 403)
        algorithm = headers.get(facts.SSE_C_ALGORITHM_HEADER.lower())
        key = headers.get(facts.SSE_C_KEY_HEADER.lower())
        key_md5 = headers.get(facts.SSE_C_KEY_MD5_HEADER.lower())
        if not (algorithm and key and key_md5):
            raise ServiceError(
                "InvalidRequest",
                "The object was stored using a form of Server Side Encryption: the SSE-C headers "
                f"{facts.SSE_C_ALGORITHM_HEADER}, {facts.SSE_C_KEY_HEADER} and {facts.SSE_C_KEY_MD5_HEADER} are required",
                400,
            )
        if algorithm != facts.SSE_C_ALGORITHM:
            raise ServiceError(
                "InvalidEncryptionAlgorithmError", "The encryption algorithm must be AES256", 400
            )
        try:
            raw = base64.b64decode(key, validate=True)
        except ValueError as exc:
            raise ServiceError("InvalidArgument", "The secret key is not base64", 400) from exc
        if base64.b64encode(hashlib.md5(raw).digest()).decode("ascii") != key_md5:
            raise ServiceError(
                "InvalidArgument",
                "The calculated MD5 hash of the key did not match the hash that was provided.",
                400,
            )
        if key != token:
            raise ServiceError("AccessDenied", "The SSE-C key is not the upload job's client token", 403)
        if len(body) >= facts.MAX_UPLOAD_BYTES:
            raise ServiceError("EntityTooLarge", "The upload file must be under 1 GB", 400)
        (self.uploads / f"{job_id}.csv").write_bytes(body)
        with self._lock:
            self._q("UPDATE upload_jobs SET uploaded = 1 WHERE domain = ? AND id = ?", [domain, job_id])

    def start_upload_job(self, domain: str, job_id: str) -> None:
        with self._lock:
            data, _, _, started, uploaded = self._job_row(domain, job_id)
            if started is not None:
                raise _bad(f"Upload job {job_id} was started already")
            if not uploaded:
                raise _bad(f"Upload job {job_id} has no file: PUT it to the GetUploadJobPath URL first")
            job = {**json.loads(data), "Status": "IN_PROGRESS"}
            self._q(
                "UPDATE upload_jobs SET data = ?, started_at = ? WHERE domain = ? AND id = ?",
                [json.dumps(job), time.time(), domain, job_id],
            )

    def stop_upload_job(self, domain: str, job_id: str) -> None:
        with self._lock:
            job = self.upload_job(domain, job_id)
            if job["Status"] in ("CREATED", "IN_PROGRESS"):
                job.update(Status="STOPPED", CompletedAt=time.time())
                self._q(
                    "UPDATE upload_jobs SET data = ? WHERE domain = ? AND id = ?",
                    [json.dumps(job), domain, job_id],
                )

    def upload_job(self, domain: str, job_id: str) -> dict[str, Any]:
        with self._lock:
            data, _, _, started, _ = self._job_row(domain, job_id)
            job = json.loads(data)
            if (
                job["Status"] == "IN_PROGRESS"
                and started is not None
                and time.time() - started >= self.min_job_seconds
            ):
                job = self._process(domain, job)
                self._q(
                    "UPDATE upload_jobs SET data = ? WHERE domain = ? AND id = ?",
                    [json.dumps(job), domain, job_id],
                )
            return job

    def upload_jobs(self, domain: str) -> list[dict[str, Any]]:
        self.get_domain(domain)
        ids = [
            row[0]
            for row in self._q(
                "SELECT id FROM upload_jobs WHERE domain = ? ORDER BY created_at DESC", [domain]
            )
        ]
        return [self.upload_job(domain, job_id) for job_id in ids]

    def _process(self, domain: str, job: dict[str, Any]) -> dict[str, Any]:
        """Read the uploaded file and write the profiles (the job's work)."""
        done = {"CompletedAt": time.time()}
        try:
            counts = self._ingest(domain, job, (self.uploads / f"{job['JobId']}.csv").read_bytes())
        except ValueError:
            return {**job, **done, "Status": "FAILED", "StatusReason": "VALIDATION_FAILURE",
                    "ResultsSummary": {"CreatedRecords": 0, "UpdatedRecords": 0, "FailedRecords": 0}}  # fmt: skip
        written = counts["CreatedRecords"] + counts["UpdatedRecords"]
        status = (
            "SUCCEEDED" if not counts["FailedRecords"] else ("PARTIALLY_SUCCEEDED" if written else "FAILED")
        )
        result = {**job, **done, "Status": status, "ResultsSummary": counts}
        if status == "FAILED":
            result["StatusReason"] = "VALIDATION_FAILURE"
        return result

    def _ingest(self, domain: str, job: dict[str, Any], body: bytes) -> dict[str, int]:
        """Raises ``ValueError`` for a file or mapping the job cannot use at all."""
        text = body.decode("utf-8")  # UnicodeDecodeError is a ValueError
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if not header or any("." in column or not column for column in header):
            raise ValueError("no header, or a header with a dot")
        targets: dict[int, str] = {}
        key_index = None
        for name, field in job["Fields"].items():
            source, target = field.get("Source", ""), field.get("Target", "")
            column = source.removeprefix(facts.SOURCE_PREFIX)
            attribute = target.removeprefix(facts.PROFILE_TARGET_PREFIX)
            if not source.startswith(facts.SOURCE_PREFIX) or column not in header:
                raise ValueError(f"field {name}: {source} is not a column")
            if not target.startswith(facts.PROFILE_TARGET_PREFIX) or not facts.is_profile_key(attribute):
                raise ValueError(f"field {name}: unsupported target {target}")
            targets[header.index(column)] = attribute
            if name == job["UniqueKey"]:
                key_index = header.index(column)
        assert key_index is not None  # checked when the job was created
        key_attribute = targets[key_index]
        expires = time.time() + int(job["DataExpiry"]) * 86400
        existing = {_profile_value(p, key_attribute): p for p in self.profiles(domain)}
        counts = {"CreatedRecords": 0, "UpdatedRecords": 0, "FailedRecords": 0}
        for row in reader:
            if not row:
                continue
            if len(row) != len(header) or not row[key_index]:
                counts["FailedRecords"] += 1
                continue
            profile = existing.get(row[key_index])
            created = profile is None
            profile = profile or {"ProfileId": _id()}
            for index, attribute in targets.items():
                if row[index]:
                    _set_profile_value(profile, attribute, row[index])
            existing[row[key_index]] = profile
            self._q(
                "INSERT INTO profiles VALUES (?, ?, ?, ?) ON CONFLICT (domain, id) DO UPDATE SET data = excluded.data, "
                "expires_at = max(profiles.expires_at, excluded.expires_at)",
                [domain, profile["ProfileId"], json.dumps(profile), expires],
            )
            counts["CreatedRecords" if created else "UpdatedRecords"] += 1
        return counts

    # ------------------------------------------------------------------ segments

    def create_segment_definition(self, domain: str, name: str, request: dict[str, Any]) -> dict[str, Any]:
        self.get_domain(domain)
        if request.get("SegmentSqlQuery"):
            raise _bad("SegmentSqlQuery is not supported by the emulator")
        if request.get("SegmentSort"):
            raise _bad("SegmentSort is not supported by the emulator")
        groups = request.get("SegmentGroups")
        if not groups:
            raise _bad("SegmentGroups is required")
        check_segment_groups(groups)
        now = time.time()
        data = {
            "SegmentDefinitionName": name,
            "DisplayName": request["DisplayName"],
            "Description": request.get("Description"),
            "SegmentGroups": groups,
            "SegmentDefinitionArn": f"arn:aws:profile:{self.region}:{self.account_id}:domains/{domain}/segment-definitions/{name}",
            "CreatedAt": now,
            "Tags": request.get("Tags"),
            "SegmentType": "CLASSIC",
        }
        data = {k: v for k, v in data.items() if v is not None}
        with self._lock:
            if self._q("SELECT 1 FROM segment_definitions WHERE domain = ? AND name = ?", [domain, name]):
                raise _bad(f"Segment definition {name} already exists")
            self._q("INSERT INTO segment_definitions VALUES (?, ?, ?)", [domain, name, json.dumps(data)])
        return data

    def segment_definition(self, domain: str, name: str) -> dict[str, Any]:
        self.get_domain(domain)
        rows = self._q("SELECT data FROM segment_definitions WHERE domain = ? AND name = ?", [domain, name])
        if not rows:
            raise _not_found(f"Segment definition {name}")
        return json.loads(rows[0][0])

    def segment_definitions(self, domain: str) -> list[dict[str, Any]]:
        self.get_domain(domain)
        return [
            json.loads(r[0])
            for r in self._q("SELECT data FROM segment_definitions WHERE domain = ? ORDER BY name", [domain])
        ]

    def delete_segment_definition(self, domain: str, name: str) -> None:
        self.segment_definition(domain, name)
        with self._lock:
            self._q("DELETE FROM segment_definitions WHERE domain = ? AND name = ?", [domain, name])

    def members(self, domain: str, groups: dict[str, Any]) -> list[dict[str, Any]]:
        check_segment_groups(groups)
        return [p for p in self.profiles(domain) if matches(p, groups)]

    def create_estimate(self, domain: str, groups: dict[str, Any] | None, sql: str | None) -> str:
        if sql or not groups:
            raise _bad("the emulator estimates SegmentQuery only (SegmentSqlQuery is not supported)")
        estimate = len(self.members(domain, groups))
        estimate_id = _id()
        with self._lock:
            self._q("INSERT INTO estimates VALUES (?, ?, ?, ?)", [domain, estimate_id, time.time(), estimate])
        return estimate_id

    def estimate(self, domain: str, estimate_id: str) -> dict[str, Any]:
        self.get_domain(domain)
        rows = self._q(
            "SELECT created_at, estimate FROM estimates WHERE domain = ? AND id = ?", [domain, estimate_id]
        )
        if not rows:
            raise _not_found(f"Segment estimate {estimate_id}")
        created, count = rows[0]
        answer: dict[str, Any] = {"DomainName": domain, "EstimateId": estimate_id}
        if time.time() - created < min(self.min_job_seconds, 1.0):
            return {**answer, "Status": "RUNNING"}
        return {**answer, "Status": "SUCCEEDED", "Estimate": str(count)}

    def create_snapshot(self, domain: str, definition: str, request: dict[str, Any]) -> str:
        self.segment_definition(domain, definition)
        if request["DataFormat"] != "JSONL":
            raise _bad(f"DataFormat {request['DataFormat']} is not supported by the emulator (JSONL)")
        destination = request.get("DestinationUri") or ""
        if not destination.startswith("s3://"):
            raise _bad("DestinationUri must be an s3:// URI")
        snapshot_id = _id()
        data = {"SnapshotId": snapshot_id, "Status": "IN_PROGRESS", "DataFormat": "JSONL",
                "DestinationUri": destination, **({"RoleArn": request["RoleArn"]} if request.get("RoleArn") else {})}  # fmt: skip
        with self._lock:
            self._q(
                "INSERT INTO snapshots VALUES (?, ?, ?, ?, ?)",
                [domain, definition, snapshot_id, json.dumps(data), time.time()],
            )
        return snapshot_id

    def snapshot(self, domain: str, definition: str, snapshot_id: str) -> dict[str, Any]:
        with self._lock:
            rows = self._q(
                "SELECT data, created_at FROM snapshots WHERE domain = ? AND definition = ? AND id = ?",
                [domain, definition, snapshot_id],
            )
            if not rows:
                raise _not_found(f"Segment snapshot {snapshot_id}")
            data, created = json.loads(rows[0][0]), rows[0][1]
            if data["Status"] == "IN_PROGRESS" and time.time() - created >= self.min_job_seconds:
                data = self._write_snapshot(domain, definition, data)
                self._q(
                    "UPDATE snapshots SET data = ? WHERE domain = ? AND id = ?",
                    [json.dumps(data), domain, snapshot_id],
                )
            return data

    def _write_snapshot(self, domain: str, definition: str, data: dict[str, Any]) -> dict[str, Any]:
        groups = self.segment_definition(domain, definition)["SegmentGroups"]
        body = "".join(json.dumps(p, sort_keys=True) + "\n" for p in self.members(domain, groups))
        bucket, _, prefix = data["DestinationUri"][5:].partition("/")
        key = "/".join(part for part in (prefix.rstrip("/"), data["SnapshotId"], "part-00000.jsonl") if part)
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"))
        except Exception as exc:  # the destination is not writable: the snapshot fails, like on AWS
            return {
                **data,
                "Status": "FAILED",
                "StatusMessage": f"cannot write {data['DestinationUri']}: {exc}"[:1000],
            }
        return {**data, "Status": "COMPLETED"}
