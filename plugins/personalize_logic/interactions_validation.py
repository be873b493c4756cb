"""Stream-validate Personalize CSV files against an Avro schema before any import (pure).

Checks (facts from the Personalize developer guide, see docs/design.md references):

* header: first row, unquoted, names = schema field names (exact case); every non-nullable field
  present; no unknown or duplicate columns;
* every row has as many fields as the header and sits on one line (no CR/LF inside a field);
* types: ``string`` / ``long`` / ``int`` / ``float`` / ``double`` / ``boolean`` and ``["null", T]``
  unions (an empty cell is null, allowed only for nullable fields);
* ``USER_ID`` / ``ITEM_ID`` at most 256 characters; ``categorical`` string values at most 1000;
* ``TIMESTAMP`` / ``CREATION_TIMESTAMP`` epoch *seconds* (values ≥ 1e11 are named as milliseconds);
* interactions totals: ≥ 1000 rows, ≥ 25 users with ≥ 2 interactions, ≥ 1 % of users with ≥ 2,
  distinct EVENT_TYPE values + metadata columns ≤ 10.

Errors name the file, the line (1-based, header = line 1) and the field. Validation stops after
``max_errors`` errors (fail fast) but always reports what it found.

Memory: constant per row; the user counter keeps one dict entry per distinct USER_ID (about
100 bytes each, so ~1 GB for 10 million users) — documented limit; event types are a small set.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

MAX_ID_CHARS = 256
MAX_CATEGORICAL_CHARS = 1000
MIN_ROWS = 1000
MIN_USERS_2PLUS = 25
MIN_SHARE_USERS_2PLUS = 0.01
MAX_EVENT_TYPES_PLUS_METADATA = 10
MS_THRESHOLD = 10**11
ID_FIELDS = frozenset({"USER_ID", "ITEM_ID"})
TIMESTAMP_FIELDS = frozenset({"TIMESTAMP", "CREATION_TIMESTAMP"})
RESERVED_INTERACTIONS = frozenset(
    {
        "USER_ID",
        "ITEM_ID",
        "TIMESTAMP",
        "EVENT_TYPE",
        "EVENT_VALUE",
        "IMPRESSION",
        "RECOMMENDATION_ID",
        "EVENT_ATTRIBUTION_SOURCE",
    }
)
_TYPES = frozenset({"string", "long", "int", "float", "double", "boolean"})
INT_RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    nullable: bool
    categorical: bool = False


def parse_schema(schema: Mapping[str, Any] | str) -> list[FieldSpec]:
    """Fields of a Personalize Avro schema (dict, JSON text, or a wrapper with ``schema``)."""
    data: Any = json.loads(schema) if isinstance(schema, str) else schema
    if "fields" not in data and "schema" in data:
        data = data["schema"]
        if isinstance(data, str):
            data = json.loads(data)
    specs = []
    for f in data.get("fields", []):
        ftype = f["type"]
        nullable = False
        if isinstance(ftype, list):
            non_null = [t for t in ftype if t != "null"]
            nullable = len(non_null) != len(ftype)
            if len(non_null) != 1:
                raise ValueError(f"schema field {f['name']!r}: unsupported union {ftype!r}")
            ftype = non_null[0]
        if isinstance(ftype, dict):
            ftype = ftype.get("type")
        if ftype not in _TYPES:
            raise ValueError(f"schema field {f['name']!r}: unsupported type {ftype!r}")
        specs.append(FieldSpec(f["name"], ftype, nullable, bool(f.get("categorical", False))))
    if not specs:
        raise ValueError("schema has no fields")
    return specs


@dataclass
class ValidationIssue:
    file: str | None
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line) if p is not None) or "dataset"
        fld = f" [{self.field}]" if self.field else ""
        return f"{where}{fld}: {self.message}"


@dataclass
class ValidationReport:
    files: int = 0
    rows: int = 0
    users: int = 0
    users_with_2plus: int = 0
    items: int | None = None
    event_types: dict[str, int] = field(default_factory=dict)
    metadata_columns: list[str] = field(default_factory=list)
    min_timestamp: int | None = None
    max_timestamp: int | None = None
    errors: list[ValidationIssue] = field(default_factory=list)
    error_count: int = 0
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "files": self.files,
            "rows": self.rows,
            "users": self.users,
            "users_with_2plus": self.users_with_2plus,
            "event_types": dict(sorted(self.event_types.items())),
            "metadata_columns": self.metadata_columns,
            "min_timestamp": self.min_timestamp,
            "max_timestamp": self.max_timestamp,
            "error_count": self.error_count,
            "errors": [str(e) for e in self.errors[:20]],
            "stopped_early": self.truncated,
        }


class InteractionsValidationError(ValueError):
    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        shown = "\n".join(f"  {e}" for e in report.errors[:20])
        more = f"\n  ... and {report.error_count - 20} more" if report.error_count > 20 else ""
        super().__init__(f"{report.error_count} validation error(s):\n{shown}{more}")


class _Stop(Exception):
    pass


class CsvValidator:
    """Validate one or more CSV files of a dataset; call :meth:`finish` for the report.

    :param schema: Avro schema (dict / JSON text).
    :param dataset: ``interactions`` enables the interactions totals; other names only check rows.
    :param max_errors: stop after this many errors.
    :param min_rows: minimum rows (interactions: 1000).
    """

    def __init__(
        self,
        schema: Mapping[str, Any] | str,
        *,
        dataset: str = "interactions",
        max_errors: int = 50,
        min_rows: int | None = None,
        min_users_2plus: int = MIN_USERS_2PLUS,
    ) -> None:
        self.fields = parse_schema(schema)
        self.by_name = {f.name: f for f in self.fields}
        self.dataset = dataset
        self.max_errors = max_errors
        self.min_rows = min_rows if min_rows is not None else (MIN_ROWS if dataset == "interactions" else 1)
        self.min_users_2plus = min_users_2plus
        self.report = ValidationReport()
        self._users: dict[str, int] = {}
        self._metadata: set[str] = set()
        self._line = 0

    def _error(self, file: str | None, line: int | None, fld: str | None, message: str) -> None:
        self.report.error_count += 1
        if len(self.report.errors) < self.max_errors:
            self.report.errors.append(ValidationIssue(file, line, fld, message))
        if self.report.error_count >= self.max_errors:
            self.report.truncated = True
            raise _Stop

    def validate_text(self, name: str, text: IO[str]) -> None:
        """Validate one file given as a text stream (opened with ``newline=""``)."""
        try:
            self._validate(name, text)
        except _Stop:
            pass

    def validate_bytes_stream(self, name: str, raw: IO[bytes]) -> None:
        """Validate a binary stream (an S3 body): strict UTF-8, errors name the line."""
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")
        try:
            self._validate(name, text)
        except UnicodeDecodeError as exc:
            try:
                self._error(
                    name, self._line, None, f"not UTF-8 ({exc.reason} at byte {exc.start} of a block)"
                )
            except _Stop:
                pass
        except _Stop:
            pass
        finally:
            text.detach()

    def _validate(self, name: str, text: IO[str]) -> None:
        rep = self.report
        rep.files += 1
        self._line = 1
        first = text.readline()
        if not first:
            self._error(name, 1, None, "file is empty (expected a header row)")
            return
        if '"' in first or "'" in first:
            self._error(name, 1, None, "header must not be quoted")
        header = next(csv.reader([first]))
        seen: set[str] = set()
        for col in header:
            if col in seen:
                self._error(name, 1, col, "duplicate column")
            seen.add(col)
            if col not in self.by_name:
                self._error(name, 1, col, f"column not in schema (schema fields: {', '.join(self.by_name)})")
        for f in self.fields:
            if f.name not in seen and not f.nullable:
                self._error(name, 1, f.name, "required field missing from header")
        if self.dataset == "interactions":
            self._metadata.update(c for c in header if c not in RESERVED_INTERACTIONS and c in self.by_name)
        specs = [self.by_name.get(c) for c in header]
        width = len(header)
        idx_user = header.index("USER_ID") if "USER_ID" in header and self.dataset == "interactions" else -1
        idx_event = header.index("EVENT_TYPE") if "EVENT_TYPE" in header else -1
        users = self._users
        events = rep.event_types
        line_no = 1
        for row in csv.reader(text):
            line_no += 1
            self._line = line_no
            if len(row) != width:
                if not row:
                    self._error(name, line_no, None, "empty line")
                else:
                    self._error(name, line_no, None, f"{len(row)} fields, header has {width}")
                continue
            rep.rows += 1
            for value, spec, col in zip(row, specs, header, strict=True):
                if spec is None:
                    continue
                if "\n" in value or "\r" in value:
                    self._error(
                        name, line_no, col, "line break inside a field: Personalize needs one record per line"
                    )
                    line_no += value.count("\n")
                    continue
                if value == "":
                    if not spec.nullable:
                        self._error(name, line_no, col, "required field is empty")
                    continue
                problem = self._check_value(spec, value)
                if problem:
                    self._error(name, line_no, col, f"{problem}: {value[:80]!r}")
            if idx_user >= 0:
                uid = row[idx_user]
                users[uid] = users.get(uid, 0) + 1
            if idx_event >= 0:
                et = row[idx_event]
                events[et] = events.get(et, 0) + 1

    def _check_value(self, spec: FieldSpec, value: str) -> str | None:
        t = spec.type
        if t == "string":
            if spec.name in ID_FIELDS and len(value) > MAX_ID_CHARS:
                return f"longer than {MAX_ID_CHARS} characters ({len(value)})"
            if spec.categorical and len(value) > MAX_CATEGORICAL_CHARS:
                return f"categorical value longer than {MAX_CATEGORICAL_CHARS} characters"
            return None
        if t in ("long", "int"):
            try:
                number = int(value)
            except ValueError:
                return f"not an integer ({t})"
            lo, hi = INT_RANGES[t]
            if not lo <= number <= hi:
                return f"out of range for {t}"
            if spec.name in TIMESTAMP_FIELDS:
                if number >= MS_THRESHOLD:
                    return "looks like epoch milliseconds; Personalize needs epoch seconds"
                if number <= 0:
                    return "not a positive epoch time in seconds"
                rep = self.report
                if rep.min_timestamp is None or number < rep.min_timestamp:
                    rep.min_timestamp = number
                if rep.max_timestamp is None or number > rep.max_timestamp:
                    rep.max_timestamp = number
            return None
        if t in ("float", "double"):
            try:
                number_f = float(value)
            except ValueError:
                return f"not a number ({t})"
            if not math.isfinite(number_f):
                return "not a finite number"
            return None
        if t == "boolean" and value.lower() not in ("true", "false"):
            return "not a boolean (true/false)"
        return None

    def finish(self) -> ValidationReport:
        """Apply dataset-level rules and return the report."""
        rep = self.report
        rep.users = len(self._users)
        rep.users_with_2plus = sum(1 for c in self._users.values() if c >= 2)
        rep.metadata_columns = sorted(self._metadata)
        if rep.truncated:
            return rep
        try:
            if rep.rows < self.min_rows:
                self._error(None, None, None, f"{rep.rows} rows; at least {self.min_rows} are required")
            if self.dataset == "interactions":
                if rep.users_with_2plus < self.min_users_2plus:
                    self._error(
                        None, None, "USER_ID",
                        f"{rep.users_with_2plus} users with ≥ 2 interactions; at least {self.min_users_2plus} required",
                    )  # fmt: skip
                elif rep.users and rep.users_with_2plus / rep.users < MIN_SHARE_USERS_2PLUS:
                    self._error(None, None, "USER_ID", "fewer than 1% of users have ≥ 2 interactions")
                total = len(rep.event_types) + len(rep.metadata_columns)
                if total > MAX_EVENT_TYPES_PLUS_METADATA:
                    self._error(
                        None, None, "EVENT_TYPE",
                        f"{len(rep.event_types)} event types + {len(rep.metadata_columns)} metadata columns "
                        f"= {total} > {MAX_EVENT_TYPES_PLUS_METADATA}",
                    )  # fmt: skip
        except _Stop:
            pass
        return rep


def validate_files(
    paths: Iterable[str], schema: Mapping[str, Any] | str, *, dataset: str = "interactions", **kwargs: Any
) -> ValidationReport:
    """Validate local CSV files; returns the report (check ``report.ok``)."""
    validator = CsvValidator(schema, dataset=dataset, **kwargs)
    for path in paths:
        with open(path, "rb") as fh:
            validator.validate_bytes_stream(path, fh)
        if validator.report.truncated:
            break
    return validator.finish()
