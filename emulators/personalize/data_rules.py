"""Amazon Personalize's bulk-import data rules, enforced like the service does (an independent oracle).

This module deliberately does NOT reuse the project's own pre-import validator: it re-implements the
documented rules so the two can check each other. Rules (reference §3.1-3.3):

* the file is UTF-8; the first row is the header; header names are the schema's field names
  (every non-nullable field present, no column the schema does not have, no duplicate);
* values match the field types (``string``, ``int``, ``long``, ``float``, ``double``, ``boolean``;
  a union with ``"null"`` allows an empty value);
* ``TIMESTAMP`` / ``CREATION_TIMESTAMP`` are Unix epoch **seconds** (a value that looks like
  milliseconds fails with a reason that says so);
* ``USER_ID`` / ``ITEM_ID`` are non-empty and at most 256 characters;
* categorical string values are at most 1000 characters (the whole cell);
* interactions: at least 1000 records per import job; if ``EVENT_TYPE`` exists every row has one;
  distinct event types + optional metadata columns ≤ 10; for FULL imports at least 25 users with ≥ 2
  interactions and at least 1% of the users with ≥ 2 interactions.

Files are streamed (pyarrow's incremental CSV reader) and written to parquet batch by batch.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

MIN_INTERACTIONS = 1000
MIN_USERS_WITH_TWO = 25
MIN_SHARE_USERS_WITH_TWO = 0.01
MAX_ID_LENGTH = 256
MAX_CATEGORICAL_LENGTH = 1000
MAX_EVENT_TYPES_PLUS_METADATA = 10
MAX_EPOCH_SECONDS = 10_000_000_000  # 2286-11-20; anything larger looks like milliseconds
ID_FIELDS = ("USER_ID", "ITEM_ID")
TIMESTAMP_FIELDS = ("TIMESTAMP", "CREATION_TIMESTAMP")
# interaction columns that are not "optional metadata" (developer guide, interactions dataset)
RESERVED_INTERACTION_FIELDS = {
    "USER_ID",
    "ITEM_ID",
    "TIMESTAMP",
    "EVENT_TYPE",
    "EVENT_VALUE",
    "IMPRESSION",
    "RECOMMENDATION_ID",
    "EVENT_ID",
}
REQUIRED_FIELDS = {
    "INTERACTIONS": ("USER_ID", "ITEM_ID", "TIMESTAMP"),
    "ITEMS": ("ITEM_ID",),
    "USERS": ("USER_ID",),
}
ID_COLUMN = {"ITEMS": "ITEM_ID", "USERS": "USER_ID"}
_AVRO_TYPES = {"string", "int", "long", "float", "double", "boolean"}
_ARROW_TYPES = {
    "string": pa.string(),
    "int": pa.int64(),
    "long": pa.int64(),
    "float": pa.float64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
}
_INT_RE = r"^[+-]?[0-9]+$"
_FLOAT_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"


class DataRuleError(ValueError):
    """An import violates a Personalize data rule; the message is the job's ``failureReason``."""


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # the non-null Avro type
    nullable: bool
    categorical: bool = False
    textual: bool = False

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.type]


def parse_schema(text: str) -> list[Field]:
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
    fields: list[Field] = []
    seen: set[str] = set()
    for raw in doc["fields"]:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or "type" not in raw:
            raise ValueError(f"Invalid schema field {raw!r}: every field needs a name and a type")
        name = raw["name"]
        if name.upper() in seen:
            raise ValueError(f"Duplicate schema field {name}")
        seen.add(name.upper())
        types = raw["type"] if isinstance(raw["type"], list) else [raw["type"]]
        non_null = [t for t in types if t != "null"]
        if len(non_null) != 1 or not isinstance(non_null[0], str) or non_null[0] not in _AVRO_TYPES:
            raise ValueError(f"Unsupported type {raw['type']!r} for schema field {name}")
        categorical = bool(raw.get("categorical"))
        if categorical and non_null[0] != "string":
            raise ValueError(f"Schema field {name}: only string fields can be categorical")
        fields.append(Field(name, non_null[0], "null" in types, categorical, bool(raw.get("textual"))))
    return fields


def normalize_dataset_type(dataset_type: str) -> str:
    return dataset_type.strip().upper()


def check_schema_for_dataset_type(fields: list[Field], dataset_type: str) -> None:
    """Raise ``ValueError`` when the schema lacks the fields the dataset type requires."""
    names = {f.name for f in fields}
    kind = normalize_dataset_type(dataset_type)
    for required in REQUIRED_FIELDS.get(kind, ()):
        if required not in names:
            raise ValueError(f"The schema of an {dataset_type} dataset must have a {required} field")
    by_name = {f.name: f for f in fields}
    for id_field in ID_FIELDS:
        if id_field in by_name and by_name[id_field].type != "string":
            raise ValueError(f"Schema field {id_field} must be of type string")
    if kind == "INTERACTIONS":
        if "EVENT_TYPE" in by_name and by_name["EVENT_TYPE"].categorical:
            raise ValueError("EVENT_TYPE cannot be categorical")
        metadata = [f for f in fields if f.name not in RESERVED_INTERACTION_FIELDS]
        if len(metadata) > 5:
            raise ValueError("An interactions schema can have at most 5 optional metadata fields")
    if kind == "USERS" and len(fields) - 1 > 25:
        raise ValueError("A users schema can have at most 25 metadata fields")
    if kind == "ITEMS" and len(fields) - 1 > 100:
        raise ValueError("An items schema can have at most 100 metadata fields")


def arrow_schema(fields: list[Field]) -> pa.Schema:
    return pa.schema([pa.field(f.name, f.arrow_type, nullable=True) for f in fields])


# --------------------------------------------------------------------------------------------------
# validation of one import
# --------------------------------------------------------------------------------------------------


def _check_utf8(path: Path, label: str) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
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
        try:
            header = next(csv.reader(fh))
        except StopIteration:
            raise DataRuleError(
                f"{label}: the file is empty; the first row must hold the column headers"
            ) from None
    return header


def _check_header(header: list[str], fields: list[Field], label: str) -> None:
    names = {f.name for f in fields}
    seen: set[str] = set()
    for column in header:
        if column in seen:
            raise DataRuleError(f"{label}: header: column {column} appears twice")
        seen.add(column)
        if column not in names:
            raise DataRuleError(
                f"{label}: header: column {column!r} is not a field of the dataset's schema "
                f"(schema fields: {', '.join(sorted(names))}); header names must match the schema"
            )
    for f in fields:
        if not f.nullable and f.name not in seen:
            raise DataRuleError(
                f"{label}: header: required column {f.name} (a non-nullable field of the schema) is missing"
            )


def _first(mask: pa.Array | pa.ChunkedArray) -> int | None:
    arr = mask.to_numpy(zero_copy_only=False) if hasattr(mask, "to_numpy") else np.asarray(mask)
    hits = np.flatnonzero(np.asarray(arr, dtype=bool))
    return int(hits[0]) if hits.size else None


class _Import:
    """Validates and converts the files of one import job, writing typed rows to a parquet file."""

    def __init__(self, fields: list[Field], dataset_type: str, out_path: Path) -> None:
        self.fields = fields
        self.by_name = {f.name: f for f in fields}
        self.kind = normalize_dataset_type(dataset_type)
        self.schema = arrow_schema(fields)
        self.out_path = out_path
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0
        self.user_counts: Counter[str] = Counter()
        self.event_types: set[str] = set()
        self.columns_seen: set[str] = set()

    def fail(self, label: str, row: int, column: str, reason: str) -> DataRuleError:
        return DataRuleError(f"{label}: row {row} (line {row + 1}), column {column}: {reason}")

    def add_file(self, path: Path, label: str) -> None:
        _check_utf8(path, label)
        header = _read_header(path, label)
        _check_header(header, self.fields, label)
        self.columns_seen.update(header)
        read = pacsv.ReadOptions(block_size=1 << 20, encoding="utf-8")
        parse = pacsv.ParseOptions(newlines_in_values=True)
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
                self._check_batch(batch, label, row_offset)
                row_offset += batch.num_rows
        except pa.ArrowInvalid as exc:
            raise DataRuleError(
                f"{label}: after row {row_offset}: the file is not valid CSV ({exc}); "
                "each record must be on one line with as many values as the header has columns"
            ) from exc

    def _check_batch(self, batch: pa.RecordBatch, label: str, offset: int) -> None:
        columns: dict[str, pa.Array] = {}
        n = batch.num_rows
        for name in batch.schema.names:
            f = self.by_name[name]
            col = batch.column(name)
            empty = pc.equal(pc.utf8_length(col), 0)
            if name in ID_FIELDS:
                bad = _first(empty)
                if bad is not None:
                    raise self.fail(
                        label, offset + bad + 1, name, f"{name} is empty; every record needs a {name}"
                    )
                bad = _first(pc.greater(pc.utf8_length(col), MAX_ID_LENGTH))
                if bad is not None:
                    raise self.fail(
                        label, offset + bad + 1, name, f"{name} is longer than {MAX_ID_LENGTH} characters"
                    )
            if name == "EVENT_TYPE" and self.kind == "INTERACTIONS":
                bad = _first(empty)
                if bad is not None:
                    raise self.fail(
                        label,
                        offset + bad + 1,
                        name,
                        "EVENT_TYPE is empty; when the EVENT_TYPE column exists every record must have a value",
                    )
            if f.type != "string" and not f.nullable:
                bad = _first(empty)
                if bad is not None:
                    raise self.fail(
                        label,
                        offset + bad + 1,
                        name,
                        f"missing value for the non-nullable {f.type} field {name}",
                    )
            if f.type == "string":
                if f.categorical:
                    bad = _first(pc.greater(pc.utf8_length(col), MAX_CATEGORICAL_LENGTH))
                    if bad is not None:
                        raise self.fail(
                            label,
                            offset + bad + 1,
                            name,
                            f"categorical value is longer than {MAX_CATEGORICAL_LENGTH} characters",
                        )
                values: pa.Array = pc.if_else(empty, pa.scalar(None, pa.string()), col) if f.nullable else col
            elif f.type in ("int", "long"):
                ok = pc.or_(empty, pc.match_substring_regex(col, _INT_RE))
                bad = _first(pc.invert(ok))
                if bad is not None:
                    raise self.fail(
                        label, offset + bad + 1, name, f"value {col[bad].as_py()!r} is not a valid {f.type}"
                    )
                nulled = pc.if_else(empty, pa.scalar(None, pa.string()), col)
                try:
                    values = pc.cast(nulled, pa.int64())
                except pa.ArrowInvalid as exc:
                    raise DataRuleError(
                        f"{label}: column {name}: a value is out of range for {f.type}: {exc}"
                    ) from exc
                if f.type == "int":
                    bad = _first(pc.fill_null(pc.greater(pc.abs(values), 2**31 - 1), False))
                    if bad is not None:
                        raise self.fail(
                            label, offset + bad + 1, name, f"value {values[bad].as_py()} is out of int range"
                        )
                if name in TIMESTAMP_FIELDS:
                    bad = _first(pc.fill_null(pc.greater_equal(values, MAX_EPOCH_SECONDS), False))
                    if bad is not None:
                        raise self.fail(
                            label,
                            offset + bad + 1,
                            name,
                            f"{name} value {values[bad].as_py()} looks like milliseconds; Personalize needs Unix "
                            "epoch time in seconds (e.g. 1596238243)",
                        )
                    bad = _first(pc.fill_null(pc.less(values, 0), False))
                    if bad is not None:
                        raise self.fail(label, offset + bad + 1, name, f"{name} must not be negative")
            elif f.type in ("float", "double"):
                ok = pc.or_(empty, pc.match_substring_regex(col, _FLOAT_RE))
                bad = _first(pc.invert(ok))
                if bad is not None:
                    raise self.fail(
                        label, offset + bad + 1, name, f"value {col[bad].as_py()!r} is not a valid {f.type}"
                    )
                values = pc.cast(pc.if_else(empty, pa.scalar(None, pa.string()), col), pa.float64())
            else:  # boolean
                lowered = pc.utf8_lower(col)
                ok = pc.or_(empty, pc.is_in(lowered, value_set=pa.array(["true", "false"])))
                bad = _first(pc.invert(ok))
                if bad is not None:
                    raise self.fail(
                        label, offset + bad + 1, name, f"value {col[bad].as_py()!r} is not a valid boolean"
                    )
                values = pc.equal(pc.if_else(empty, pa.scalar(None, pa.string()), lowered), "true")
            columns[name] = values
        if self.kind == "INTERACTIONS" and n:
            counts = pc.value_counts(batch.column("USER_ID"))
            for value, count in zip(
                counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
            ):
                self.user_counts[value] += count
            if "EVENT_TYPE" in batch.schema.names:
                self.event_types.update(pc.unique(batch.column("EVENT_TYPE")).to_pylist())
                if self._event_budget() > MAX_EVENT_TYPES_PLUS_METADATA:
                    raise DataRuleError(self._event_budget_reason(label))
        arrays = [columns.get(f.name, pa.nulls(n, f.arrow_type)) for f in self.fields]
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        if self.writer is None:
            self.writer = pq.ParquetWriter(str(self.out_path), self.schema)
        self.writer.write_table(table)
        self.rows += n

    def _metadata_columns(self) -> list[str]:
        return sorted(c for c in self.columns_seen if c not in RESERVED_INTERACTION_FIELDS)

    def _event_budget(self) -> int:
        return len(self.event_types) + len(self._metadata_columns())

    def _event_budget_reason(self, label: str) -> str:
        return (
            f"{label}: the number of distinct EVENT_TYPE values ({len(self.event_types)}) plus optional "
            f"metadata columns ({len(self._metadata_columns())}) exceeds {MAX_EVENT_TYPES_PLUS_METADATA}"
        )

    def finish(self, import_mode: str, location: str) -> int:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        else:
            pq.write_table(self.schema.empty_table(), str(self.out_path))
        if self.kind == "INTERACTIONS":
            if self.rows < MIN_INTERACTIONS:
                raise DataRuleError(
                    f"{location}: an interactions import needs at least {MIN_INTERACTIONS} interaction records; "
                    f"found {self.rows}"
                )
            if import_mode == "FULL":
                check_min_users(self.user_counts, location)
        return self.rows


def check_min_users(user_counts: Counter[str] | dict[str, int], label: str) -> None:
    """At least 25 users with ≥ 2 interactions, and at least 1% of users with ≥ 2 interactions."""
    with_two = sum(1 for c in user_counts.values() if c >= 2)
    if with_two < MIN_USERS_WITH_TWO:
        raise DataRuleError(
            f"{label}: at least {MIN_USERS_WITH_TWO} unique users with at least 2 interactions each are "
            f"required; found {with_two}"
        )
    if user_counts and with_two / len(user_counts) < MIN_SHARE_USERS_WITH_TWO:
        raise DataRuleError(
            f"{label}: at least 1% of the users must have 2 or more interactions; "
            f"found {with_two} of {len(user_counts)}"
        )


def import_files(
    files: Iterable[tuple[Path, str]],
    fields: list[Field],
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
    existing: Path, staged: Path, dataset_type: str, import_mode: str, fields: list[Field]
) -> tuple[int, Any]:
    """Publish ``staged`` as the dataset's bulk data: FULL replaces, INCREMENTAL appends (users/items:
    a record with the same id replaces the old one). Returns ``(rows, table)``."""
    kind = normalize_dataset_type(dataset_type)
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
    return new.num_rows, new
