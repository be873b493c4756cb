"""Stream-validate Personalize CSV files against an Avro schema before any import (pure).

The rules themselves (limits, reserved and required fields, value grammar, epoch seconds) live in
:mod:`personalize_logic.facts.personalize_data_rules`, each with its AWS source; the Personalize
emulator enforces the same module. This module only decides *how* to check: it streams rows with
the ``csv`` module and reports every problem instead of stopping at the first:

* header: first row, not quoted, names = schema field names (exact case); every non-nullable field
  present; no unknown or duplicate columns;
* every row has as many fields as the header and sits on one line (no CR/LF inside a field);
* values match the field types; an empty cell is null, allowed where the rules allow it;
* value lengths (ids, categorical and impression values), epoch seconds for timestamps;
* dataset totals: minimum records per import; for interactions the user minimums and distinct
  EVENT_TYPE values + counted metadata columns.

Errors name the file, the line (1-based, header = line 1) and the field. Validation stops after
``max_errors`` errors (fail fast) but always reports what it found. Hostile files are errors, never
a crash: bytes that are not UTF-8 are reported on the line that holds them (the line is checked
with the bad bytes replaced, and validation goes on), a field the ``csv`` module refuses (longer
than its 131072-character limit) is an error of its line. Lines are split by
:class:`personalize_logic.line_blocks.LineBlocks`, in time linear in their length.

Memory: constant per row; the user counter keeps one dict entry per distinct USER_ID (about
100 bytes each, so ~1 GB for 10 million users) — documented limit; event types are a small set.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Any

from personalize_logic.facts import personalize_data_rules as rules
from personalize_logic.facts.personalize_data_rules import SchemaField
from personalize_logic.line_blocks import LineBlocks, LongLine

READ_BYTES = 1 << 20
# A line longer than this is an error of its own and is not read into memory. Far above any valid
# row: the csv module refuses fields over 131072 characters, and the longest Personalize value (an
# Items textual field) is 20,000 characters.
MAX_LINE_BYTES = 16 * 1024 * 1024


def parse_schema(schema: Mapping[str, Any] | str) -> list[SchemaField]:
    """Fields of a Personalize Avro schema (dict, JSON text, or a wrapper with ``schema``)."""
    data: Any = json.loads(schema) if isinstance(schema, str) else schema
    if "fields" not in data and "schema" in data:
        data = data["schema"]
        if isinstance(data, str):
            data = json.loads(data)
    specs = rules.parse_fields(data.get("fields", []))
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
    :param dataset: the dataset type (``interactions``, ``items``, ``users``, any case);
        ``interactions`` enables the interactions totals.
    :param max_errors: stop after this many errors.
    :param min_rows: minimum rows (default: the documented minimum per import job).
    :param min_users_2plus: minimum users with ≥ 2 interactions (default: the documented one).
    """

    def __init__(
        self,
        schema: Mapping[str, Any] | str,
        *,
        dataset: str = "interactions",
        max_errors: int = 50,
        min_rows: int | None = None,
        min_users_2plus: int | None = None,
    ) -> None:
        self.fields = parse_schema(schema)
        self.by_name = {f.name: f for f in self.fields}
        self.dataset = dataset
        self.interactions = rules.normalize_dataset_type(dataset) == "INTERACTIONS"
        self.max_errors = max_errors
        self.min_rows = min_rows
        self.min_users_2plus = min_users_2plus
        self.report = ValidationReport()
        self._users: dict[str, int] = {}
        self._columns: set[str] = set()
        self._line = 0
        self._skip: set[int] = set()  # lines already reported as unreadable

    def _error(self, file: str | None, line: int | None, fld: str | None, message: str) -> None:
        self.report.error_count += 1
        if len(self.report.errors) < self.max_errors:
            self.report.errors.append(ValidationIssue(file, line, fld, message))
        if self.report.error_count >= self.max_errors:
            self.report.truncated = True
            raise _Stop

    def validate_text(self, name: str, text: Iterable[str]) -> None:
        """Validate one file given as text lines (a text stream opened with ``newline=""``)."""
        try:
            self._validate(name, iter(text))
        except _Stop:
            pass

    def validate_bytes_stream(self, name: str, raw: IO[bytes]) -> None:
        """Validate a binary stream (an S3 body): strict UTF-8, errors name the line."""
        try:
            self._validate(name, self._decoded_lines(name, raw))
        except _Stop:
            pass

    def _decoded_lines(self, name: str, raw: IO[bytes]) -> Iterator[str]:
        """
        The stream's physical lines as text, with their line ends (``\\n``, ``\\r\\n`` or ``\\r``, as
        ``newline=""`` splits them). A line that is not UTF-8 is reported on its own number and
        yielded with the bad bytes replaced, so the following lines keep their numbers.
        """
        yielded = 0
        blocks = LineBlocks(iter(partial(raw.read, READ_BYTES), b""), MAX_LINE_BYTES)
        for lines in blocks:
            if isinstance(lines, LongLine):
                yielded += 1
                self._long_line(name, yielded, lines)
                yield "\n"  # keeps the numbering; the row it makes is not reported again
                continue
            block = b"\n".join(lines) + b"\n"
            try:
                text = block.decode(rules.CSV_ENCODING)
            except UnicodeDecodeError:
                text = self._decode_by_line(name, lines, yielded)
            for line in io.StringIO(text, newline=""):
                yielded += 1
                yield line
        if blocks.tail_long is not None:
            self._long_line(name, yielded + 1, blocks.tail_long)
        elif blocks.tail:
            try:
                text = blocks.tail.decode(rules.CSV_ENCODING)
            except UnicodeDecodeError:
                text = self._decode_by_line(name, [blocks.tail], yielded)[:-1]
            yield from io.StringIO(text, newline="")

    def _long_line(self, name: str, line_no: int, line: LongLine) -> None:
        self._skip.add(line_no)
        self._error(name, line_no, None, f"line of {line.size} bytes (more than {MAX_LINE_BYTES}): not read")

    def _decode_by_line(self, name: str, lines: list[bytes], before: int) -> str:
        """``lines`` decoded one by one; each that is not UTF-8 is an error naming its line."""
        out = []
        number = before
        for line in lines:
            try:
                text = line.decode(rules.CSV_ENCODING)
            except UnicodeDecodeError as exc:
                self._error(
                    name, number + 1, None, f"not UTF-8 ({exc.reason} at byte {exc.start} of the line)"
                )
                text = line.decode(rules.CSV_ENCODING, "replace")
                self._skip.add(number + 1)  # the bad bytes are reported; the row is not checked again
            out.append(text + "\n")
            number += text.count("\r") - text.endswith("\r") + 1  # a bare CR ends a line too
        return "".join(out)

    _HEADER_MESSAGES = {
        "duplicate": "duplicate column",
        "unknown": "column not in schema (schema fields: {schema})",
        "missing": "required field missing from header",
    }

    def _check_header(self, name: str, first: str) -> list[str]:
        if rules.header_is_quoted(first):
            self._error(name, 1, None, "header must not be quoted")
        try:
            header = next(csv.reader([first]))
        except csv.Error as exc:
            self._error(name, 1, None, f"header is not a CSV row: {exc}")
            return []
        for kind, column in rules.header_problems(header, self.fields):
            message = self._HEADER_MESSAGES[kind].format(schema=", ".join(self.by_name))
            self._error(name, 1, column, message)
        self._columns.update(c for c in header if c in self.by_name)
        return header

    def _validate(self, name: str, lines: Iterator[str]) -> None:
        rep = self.report
        rep.files += 1
        self._line = 1
        self._skip = set()  # per file (the generator of ``lines`` fills it as it reads)
        first = next(lines, "")
        if not first:
            self._error(name, 1, None, "file is empty (expected a header row)")
            return
        header = self._check_header(name, first)
        if not header:
            return
        specs = [self.by_name.get(c) for c in header]
        width = len(header)
        idx_user = header.index("USER_ID") if "USER_ID" in header and self.interactions else -1
        idx_event = header.index("EVENT_TYPE") if "EVENT_TYPE" in header else -1
        users = self._users
        events = rep.event_types
        reader = csv.reader(lines)
        while True:
            line_no = reader.line_num + 2  # the row's first line (the header is line 1)
            self._line = line_no
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                self._error(name, line_no, None, f"not a CSV row: {exc}")
                continue
            if line_no in self._skip:
                continue
            if len(row) != width:
                if not row:
                    self._error(name, line_no, None, "empty line")
                else:
                    self._error(name, line_no, None, f"{len(row)} fields, header has {width}")
                continue
            rep.rows += 1
            self._check_row(name, line_no, row, specs, header)
            if idx_user >= 0:
                uid = row[idx_user]
                users[uid] = users.get(uid, 0) + 1
            if idx_event >= 0:
                et = row[idx_event]
                events[et] = events.get(et, 0) + 1

    def _check_row(
        self, name: str, line_no: int, row: list[str], specs: list[SchemaField | None], header: list[str]
    ) -> int:
        """Check every value of one row; returns the line number of the row's last physical line."""
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
                if not rules.may_be_empty(spec, self.dataset):
                    self._error(name, line_no, col, "required field is empty")
                continue
            problem = self._check_value(spec, value)
            if problem:
                self._error(name, line_no, col, f"{problem}: {value[:80]!r}")
        return line_no

    def _check_value(self, spec: SchemaField, value: str) -> str | None:
        t = spec.type
        if t == "string":
            limit = rules.max_chars(spec)
            if limit is not None and len(value) > limit:
                what = "categorical value longer" if spec.categorical else "longer"
                return f"{what} than {limit} characters ({len(value)})"
            return None
        if t in ("long", "int"):
            if not rules.is_int_text(value):
                return f"not an integer ({t})"
            number = int(value)
            problem = rules.int_value_problem(spec, number)
            if problem is None and spec.name in rules.TIMESTAMP_FIELDS:
                self._track_timestamp(number)
            return problem
        if t in ("float", "double"):
            if not rules.is_float_text(value):
                return f"not a number ({t})"
            if not math.isfinite(float(value)):
                return "not a finite number"
            return None
        if t == "boolean" and not rules.is_boolean_text(value):
            return "not a boolean (true/false)"
        return None

    def _track_timestamp(self, number: int) -> None:
        rep = self.report
        if rep.min_timestamp is None or number < rep.min_timestamp:
            rep.min_timestamp = number
        if rep.max_timestamp is None or number > rep.max_timestamp:
            rep.max_timestamp = number

    def finish(self) -> ValidationReport:
        """Apply dataset-level rules and return the report."""
        rep = self.report
        rep.users = len(self._users)
        rep.users_with_2plus = sum(1 for c in self._users.values() if c >= 2)
        rep.metadata_columns = rules.metadata_fields(self._columns, self.dataset) if self.interactions else []
        if rep.truncated:
            return rep
        try:
            self._check_totals()
        except _Stop:
            pass
        return rep

    def _check_totals(self) -> None:
        rep = self.report
        min_rows = self.min_rows if self.min_rows is not None else rules.min_records(self.dataset)
        if rep.rows < min_rows:
            self._error(None, None, None, f"{rep.rows} rows; at least {min_rows} are required")
        if not self.interactions:
            return
        problem = rules.user_minimums_problem(self._users, self.min_users_2plus)
        if problem:
            self._error(None, None, "USER_ID", problem)
        problem = rules.event_budget_problem(len(rep.event_types), self._columns)
        if problem:
            self._error(None, None, "EVENT_TYPE", problem)


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
