"""Amazon Personalize's bulk-import checks, the way the service applies them: fail on the first violation.

The rules are not defined here: every limit, field list and value grammar comes from
:mod:`personalize_logic.facts.personalize_data_rules`, the project's one cited copy (the pre-import
validator :mod:`personalize_logic.interactions_validation` enforces the same module). What this
module adds is *how* the emulator checks: files are streamed with pyarrow's incremental CSV reader,
each record batch is checked column by column and written to parquet, and the first violated rule
ends the import job with a ``failureReason`` naming the file, row and column. Conformance with the
service is checked against AWS-documented samples (the Bingewatch files, the guide's examples) in
``tests/integration/personalize_emulator``.
"""

from __future__ import annotations

import codecs
import json
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from personalize_logic.facts import personalize_data_rules as rules
from personalize_logic.facts.personalize_data_rules import SchemaField

ID_COLUMN = {"ITEMS": "ITEM_ID", "USERS": "USER_ID"}  # the record id INCREMENTAL imports replace by
_ARROW_TYPES = {
    "string": pa.string(),
    "int": pa.int64(),
    "long": pa.int64(),
    "float": pa.float64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
}
_NULL = pa.scalar(None, pa.string())


class DataRuleError(ValueError):
    """An import violates a Personalize data rule; the message is the job's ``failureReason``."""


def parse_schema(text: str) -> list[SchemaField]:
    """Parse a Personalize Avro schema; raise ``ValueError`` with AWS-like wording when it is invalid."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"The schema is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("type") != "record" or not isinstance(doc.get("fields"), list):
        raise ValueError(
            'The schema must be an Avro record: {"type": "record", "name": ..., "fields": [...]}'
        )
    if not doc.get("name"):
        raise ValueError("The schema record needs a name")
    return rules.parse_fields(doc["fields"])


def check_schema_for_dataset_type(fields: list[SchemaField], dataset_type: str) -> None:
    """Raise ``ValueError`` when the schema cannot back a dataset of ``dataset_type``."""
    problem = rules.schema_problem(fields, dataset_type)
    if problem:
        raise ValueError(problem)


def arrow_schema(fields: list[SchemaField]) -> pa.Schema:
    return pa.schema([pa.field(f.name, _ARROW_TYPES[f.type], nullable=True) for f in fields])


# --------------------------------------------------------------------------------------------------
# validation of one import
# --------------------------------------------------------------------------------------------------


def _check_utf8(path: Path, label: str) -> None:
    decoder = codecs.getincrementaldecoder(rules.CSV_ENCODING)()
    line = 1
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line += chunk[: exc.start].count(b"\n")
                raise DataRuleError(
                    f"{label}: line {line}: the file is not valid UTF-8 (byte 0x{chunk[exc.start]:02x}); "
                    "Personalize requires UTF-8 encoded CSV data"
                ) from exc
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise DataRuleError(
                f"{label}: the file ends inside a multi-byte character; it is not valid UTF-8"
            ) from exc


def _read_header(path: Path, label: str) -> list[str]:
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        first = fh.readline()
    if not first:
        raise DataRuleError(f"{label}: the file is empty; the first row must hold the column headers")
    if rules.header_is_quoted(first):
        raise DataRuleError(f"{label}: header: column names must not be enclosed in quotation marks")
    return first.rstrip("\r\n").split(",")


_HEADER_REASONS = {
    "duplicate": "column {column} appears twice",
    "unknown": "column {column!r} is not a field of the dataset's schema (schema fields: {schema}); "
    "header names must match the schema",
    "missing": "required column {column} (a non-nullable field of the schema) is missing",
}


def _check_header(header: list[str], fields: list[SchemaField], label: str) -> None:
    problems = rules.header_problems(header, fields)
    if problems:
        kind, column = problems[0]
        schema = ", ".join(sorted(f.name for f in fields))
        raise DataRuleError(f"{label}: header: " + _HEADER_REASONS[kind].format(column=column, schema=schema))


def _first(mask: pa.Array | pa.ChunkedArray) -> int | None:
    arr = mask.to_numpy(zero_copy_only=False) if hasattr(mask, "to_numpy") else np.asarray(mask)
    hits = np.flatnonzero(np.asarray(arr, dtype=bool))
    return int(hits[0]) if hits.size else None


def _first_true(mask: pa.Array) -> int | None:
    """Index of the first true value of a boolean mask that may hold nulls (nulls are false)."""
    return _first(pc.fill_null(mask, False))


class _Import:
    """Validates and converts the files of one import job, writing typed rows to a parquet file."""

    def __init__(self, fields: list[SchemaField], dataset_type: str, out_path: Path) -> None:
        self.fields = fields
        self.by_name = {f.name: f for f in fields}
        self.dataset_type = dataset_type
        self.kind = rules.normalize_dataset_type(dataset_type)
        self.schema = arrow_schema(fields)
        self.out_path = out_path
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0
        self.user_counts: Counter[str] = Counter()
        self.event_types: set[str] = set()
        self.columns_seen: set[str] = set()

    def add_file(self, path: Path, label: str) -> None:
        _check_utf8(path, label)
        header = _read_header(path, label)
        _check_header(header, self.fields, label)
        self.columns_seen.update(header)
        read = pacsv.ReadOptions(block_size=1 << 20, encoding=rules.CSV_ENCODING)
        parse = pacsv.ParseOptions(newlines_in_values=True)  # read them, to reject them by name
        convert = pacsv.ConvertOptions(
            column_types={c: pa.string() for c in header},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        row_offset = 0
        try:
            reader = pacsv.open_csv(
                str(path), read_options=read, parse_options=parse, convert_options=convert
            )
            for batch in reader:
                self._add_batch(batch, _Where(label, row_offset))
                row_offset += batch.num_rows
        except pa.ArrowInvalid as exc:
            raise DataRuleError(
                f"{label}: after row {row_offset}: the file is not valid CSV ({exc}); "
                "each record must be on one line with as many values as the header has columns"
            ) from exc

    def _add_batch(self, batch: pa.RecordBatch, where: _Where) -> None:
        columns = {name: self._column(name, batch.column(name), where) for name in batch.schema.names}
        if self.kind == "INTERACTIONS":
            self._count_interactions(batch, where.label)
        self._write(columns, batch.num_rows)

    def _column(self, name: str, col: pa.Array, where: _Where) -> pa.Array:
        """Check one column of a batch against its field's rules; return it converted to its type."""
        field = self.by_name[name]
        line_break = pc.match_substring_regex(col, r"[\r\n]")
        where.fail_at(
            _first(line_break), name, "line break inside a value: each record must be on a single line"
        )
        empty = pc.equal(pc.utf8_length(col), 0)
        if not rules.may_be_empty(field, self.dataset_type):
            where.fail_at(_first(empty), name, _empty_reason(field))
        limit = rules.max_chars(field)
        if limit is not None:
            reason = f"{'categorical value' if field.categorical else name} is longer than {limit} characters"
            where.fail_at(_first(pc.greater(pc.utf8_length(col), limit)), name, reason)
        nulled = pc.if_else(empty, _NULL, col)
        return _CONVERTERS[field.type](field, col, nulled, where)

    def _count_interactions(self, batch: pa.RecordBatch, label: str) -> None:
        if not batch.num_rows:
            return
        counts = pc.value_counts(batch.column("USER_ID"))
        for value, count in zip(
            counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
        ):
            self.user_counts[value] += count
        if "EVENT_TYPE" in batch.schema.names:
            self.event_types.update(pc.unique(batch.column("EVENT_TYPE")).to_pylist())
            problem = rules.event_budget_problem(len(self.event_types), self.columns_seen)
            if problem:
                raise DataRuleError(f"{label}: distinct EVENT_TYPE values and metadata columns: {problem}")

    def _write(self, columns: dict[str, pa.Array], n: int) -> None:
        arrays = [columns.get(f.name, pa.nulls(n, _ARROW_TYPES[f.type])) for f in self.fields]
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        if self.writer is None:
            self.writer = pq.ParquetWriter(str(self.out_path), self.schema)
        self.writer.write_table(table)
        self.rows += n

    def finish(self, import_mode: str, location: str) -> int:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        else:
            pq.write_table(self.schema.empty_table(), str(self.out_path))
        minimum = rules.min_records(self.kind)
        if self.rows < minimum:
            raise DataRuleError(
                f"{location}: an {self.kind.lower()} import needs at least {minimum} records; found {self.rows}"
            )
        if self.kind == "INTERACTIONS" and import_mode in rules.USER_MINIMUMS_IMPORT_MODES:
            check_min_users(self.user_counts, location)
        return self.rows


class _Where:
    """A file label and the row offset of the batch being checked (rows count from 1 after the header)."""

    def __init__(self, label: str, offset: int) -> None:
        self.label = label
        self.offset = offset

    def fail_at(self, index: int | None, column: str, reason: str) -> None:
        """Raise the job's failure for the batch row ``index`` (no-op when ``index`` is None)."""
        if index is not None:
            row = self.offset + index + 1
            raise DataRuleError(f"{self.label}: row {row} (line {row + 1}), column {column}: {reason}")


def _empty_reason(field: SchemaField) -> str:
    if field.name in rules.ID_FIELDS:
        return f"{field.name} is empty; every record needs a {field.name}"
    if field.name == "EVENT_TYPE":
        return "EVENT_TYPE is empty; when the EVENT_TYPE column exists every record must have a value"
    return f"missing value for the non-nullable {field.type} field {field.name}"


def _string_values(field: SchemaField, col: pa.Array, nulled: pa.Array, where: _Where) -> pa.Array:
    return nulled if field.nullable else col


def _int_values(field: SchemaField, col: pa.Array, nulled: pa.Array, where: _Where) -> pa.Array:
    grammar = pc.match_substring_regex(col, f"^{rules.INT_PATTERN.pattern}$")
    bad = _first(pc.invert(pc.or_(pc.is_null(nulled), grammar)))
    if bad is not None:
        where.fail_at(bad, field.name, f"value {col[bad].as_py()!r} is not a valid {field.type}")
    try:
        values = pc.cast(nulled, pa.int64())
    except pa.ArrowInvalid as exc:
        raise DataRuleError(
            f"{where.label}: column {field.name}: a value is out of range for {field.type}: {exc}"
        ) from exc
    low, high = rules.INT_RANGES[field.type]
    out_of_range = pc.or_(pc.less(values, low), pc.greater(values, high))
    if field.name in rules.TIMESTAMP_FIELDS:
        out_of_range = pc.or_(
            out_of_range,
            pc.or_(
                pc.greater_equal(values, rules.MAX_EPOCH_SECONDS), pc.less(values, rules.MIN_EPOCH_SECONDS)
            ),
        )
    bad = _first_true(out_of_range)
    if bad is not None:
        value = values[bad].as_py()
        where.fail_at(bad, field.name, f"{field.name} value {value}: {rules.int_value_problem(field, value)}")
    return values


def _float_values(field: SchemaField, col: pa.Array, nulled: pa.Array, where: _Where) -> pa.Array:
    grammar = pc.match_substring_regex(col, f"^{rules.FLOAT_PATTERN.pattern}$")
    bad = _first(pc.invert(pc.or_(pc.is_null(nulled), grammar)))
    if bad is not None:
        where.fail_at(bad, field.name, f"value {col[bad].as_py()!r} is not a valid {field.type}")
    values = pc.cast(nulled, pa.float64())
    bad = _first_true(pc.is_inf(values))
    if bad is not None:
        where.fail_at(bad, field.name, f"value {col[bad].as_py()!r} is not a finite number")
    return values


def _bool_values(field: SchemaField, col: pa.Array, nulled: pa.Array, where: _Where) -> pa.Array:
    lowered = pc.utf8_lower(nulled)
    ok = pc.or_(pc.is_null(lowered), pc.is_in(lowered, value_set=pa.array(list(rules.BOOLEAN_VALUES))))
    bad = _first(pc.invert(ok))
    if bad is not None:
        where.fail_at(bad, field.name, f"value {col[bad].as_py()!r} is not a valid boolean")
    return pc.equal(lowered, rules.BOOLEAN_VALUES[0])


_CONVERTERS: dict[str, Callable[[SchemaField, pa.Array, pa.Array, _Where], pa.Array]] = {
    "string": _string_values,
    "int": _int_values,
    "long": _int_values,
    "float": _float_values,
    "double": _float_values,
    "boolean": _bool_values,
}


def check_min_users(user_counts: Counter[str] | dict[str, int], label: str) -> None:
    """Raise :class:`DataRuleError` when the users miss the documented training minimums."""
    problem = rules.user_minimums_problem(user_counts)
    if problem:
        raise DataRuleError(f"{label}: {problem}")


def import_files(
    files: Iterable[tuple[Path, str]],
    fields: list[SchemaField],
    dataset_type: str,
    out_path: Path,
    *,
    import_mode: str,
    location: str,
) -> int:
    """Validate every ``(local path, label)`` file and write the typed rows to ``out_path`` (parquet).

    :return: the number of records imported.
    :raises DataRuleError: on the first violated rule; ``out_path`` is then incomplete.
    """
    job = _Import(fields, dataset_type, out_path)
    try:
        for path, label in files:
            job.add_file(path, label)
        return job.finish(import_mode, location)
    finally:
        if job.writer is not None:
            job.writer.close()
            job.writer = None


def merge_into(
    existing: Path, staged: Path, dataset_type: str, import_mode: str, fields: list[SchemaField]
) -> int:
    """Publish ``staged`` as the dataset's bulk data: FULL replaces, INCREMENTAL appends (users/items:
    a record with the same id replaces the old one). Returns the dataset's record count."""
    kind = rules.normalize_dataset_type(dataset_type)
    new = pq.read_table(str(staged))
    if import_mode == "INCREMENTAL" and existing.exists():
        old = pq.read_table(str(existing)).cast(arrow_schema(fields))
        combined = pa.concat_tables([old, new.cast(arrow_schema(fields))])
        id_column = ID_COLUMN.get(kind)
        if id_column:
            frame = combined.to_pandas()
            frame = frame.drop_duplicates(subset=[id_column], keep="last")
            combined = pa.Table.from_pandas(frame, schema=arrow_schema(fields), preserve_index=False)
        new = combined
    tmp = existing.with_suffix(".tmp")
    pq.write_table(new, str(tmp))
    tmp.replace(existing)
    return int(new.num_rows)
