"""Amazon Personalize's bulk-import data rules: the one copy, each rule citing where it comes from.

Two consumers check bulk CSV data against these rules, each in its own way:

* the pre-import validator :mod:`personalize_logic.interactions_validation` (streams CSV rows with
  the ``csv`` module, reports every problem with file, line and field);
* the Personalize emulator :mod:`emulators.personalize.data_rules` (reads whole record batches with
  pyarrow and fails the import job on the first violation, like the service).

Neither keeps its own copy of a limit, a field list or a value grammar: they import them from here
and look them up when they check (so changing a rule here changes both verdicts). The emulator's
conformance is checked against AWS-documented samples (the Bingewatch files under
``include/data/bingewatch``, the developer guide's CSV examples) in its integration tests.

Every rule constant is listed in :data:`RULE_SOURCES` with the page it comes from; a rule the sources
are silent on is marked there as an assumption, with the reason for the value chosen.

Pure module: no Airflow import, no third-party import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------------------------------
# sources (Amazon Personalize developer guide pages, the botocore model, the Avro specification)
# --------------------------------------------------------------------------------------------------
_DG = "https://docs.aws.amazon.com/personalize/latest/dg/"
#: "Data format guidelines": CSV only, header row first and not quoted, header names map to the
#: schema, each record on a single line, TIMESTAMP/CREATION_TIMESTAMP in Unix epoch time, UTF-8.
FORMAT_URL = _DG + "data-prep-formatting.html"
#: "Preparing item interaction data for training": minimum training data, USER_ID/ITEM_ID strings of
#: at most 256 characters, TIMESTAMP in epoch seconds, EVENT_TYPE on every row when the column exists.
INTERACTIONS_URL = _DG + "interactions-datasets.html"
#: "Item interactions dataset schema requirements (custom)": event types + metadata fields ≤ 10
#: (EVENT_TYPE, EVENT_VALUE and custom metadata fields count), categorical values ≤ 1000 characters,
#: EVENT_TYPE is a string and cannot be categorical.
INTERACTIONS_SCHEMA_URL = _DG + "interactions-dataset-requirements.html"
#: "Custom datasets and schemas": required fields and reserved keywords per dataset type, metadata
#: field counts for Users (25) and Items (100) schemas.
CUSTOM_SCHEMAS_URL = _DG + "custom-datasets-and-schemas.html"
#: "Creating schema JSON files": Avro record, flat, supported data types, unique field names.
SCHEMAS_URL = _DG + "how-it-works-dataset-schema.html"
#: "Amazon Personalize endpoints and quotas" (Service quotas table).
QUOTAS_URL = _DG + "limits.html"
#: botocore's model of the service (``CreateDataset.datasetType``, ``CreateDatasetImportJob.importMode``).
BOTOCORE_MODEL = "botocore/data/personalize/2018-05-22/service-2.json (botocore model)"
#: Avro 1.11 specification, primitive types (int = 32-bit signed, long = 64-bit signed).
AVRO_URL = "https://avro.apache.org/docs/1.11.1/specification/#primitive-types"


@dataclass(frozen=True)
class Source:
    """Where a rule comes from: ``url`` of the page, and ``assumption`` when the sources are silent."""

    url: str
    assumption: str | None = None


# --------------------------------------------------------------------------------------------------
# the rules
# --------------------------------------------------------------------------------------------------
DATASET_TYPES = ("INTERACTIONS", "ITEMS", "USERS", "ACTIONS", "ACTION_INTERACTIONS")
AVRO_TYPES = frozenset({"string", "int", "long", "float", "double", "boolean"})
INT_RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
REQUIRED_FIELDS: Mapping[str, tuple[str, ...]] = {
    "INTERACTIONS": ("USER_ID", "ITEM_ID", "TIMESTAMP"),
    "ITEMS": ("ITEM_ID",),
    "USERS": ("USER_ID",),
    "ACTIONS": ("ACTION_ID",),
    "ACTION_INTERACTIONS": ("USER_ID", "ACTION_ID", "TIMESTAMP", "EVENT_TYPE"),
}
#: The item interactions dataset's reserved keywords (optional columns Personalize recognises).
#: ``EVENT_ID`` is not one: it is a field of the PutEvents ``Event`` object, not a dataset column.
RESERVED_INTERACTION_FIELDS = frozenset(
    {"EVENT_TYPE", "EVENT_VALUE", "IMPRESSION", "RECOMMENDATION_ID", "EVENT_ATTRIBUTION_SOURCE"}
)
#: Reserved interaction fields that do not count against MAX_EVENT_TYPES_PLUS_METADATA.
EVENT_BUDGET_EXEMPT_FIELDS = frozenset({"IMPRESSION", "RECOMMENDATION_ID", "EVENT_ATTRIBUTION_SOURCE"})
NON_CATEGORICAL_FIELDS = frozenset({"EVENT_TYPE"})
ID_FIELDS = ("USER_ID", "ITEM_ID")
MAX_ID_CHARS = 256
MAX_CATEGORICAL_CHARS = 1000
IMPRESSION_FIELD = "IMPRESSION"
TIMESTAMP_FIELDS = ("TIMESTAMP", "CREATION_TIMESTAMP")
MIN_EPOCH_SECONDS = 1
MAX_EPOCH_SECONDS = 10_000_000_000  # 2286-11-20: a larger value looks like milliseconds
MIN_INTERACTIONS_PER_IMPORT = 1000
# "Maximum amount of bulk ... data per dataset import job with INCREMENTAL import mode: 1 GB" (the same
# for interactions, users and items; FULL: 100 GB). Counted as 10^9 bytes, the smaller reading.
MAX_INCREMENTAL_IMPORT_BYTES = 1_000_000_000
MIN_RECORDS_PER_IMPORT = 1
MIN_INTERACTIONS_FOR_TRAINING = 1000
MIN_USERS_WITH_TWO_INTERACTIONS = 25
MIN_SHARE_USERS_WITH_TWO_INTERACTIONS = 0.01
USER_MINIMUMS_IMPORT_MODES = frozenset({"FULL"})
MAX_EVENT_TYPES_PLUS_METADATA = 10
MAX_INTERACTIONS_METADATA_FIELDS = 5
MAX_METADATA_FIELDS = {"USERS": 25, "ITEMS": 100}
CSV_ENCODING = "utf-8"
HEADER_QUOTE = '"'
INT_PATTERN = re.compile(r"[+-]?[0-9]+")
FLOAT_PATTERN = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
BOOLEAN_VALUES = ("true", "false")

RULE_SOURCES: Mapping[str, Source] = {
    "DATASET_TYPES": Source(BOTOCORE_MODEL),
    "AVRO_TYPES": Source(SCHEMAS_URL),
    "INT_RANGES": Source(AVRO_URL),
    "REQUIRED_FIELDS": Source(CUSTOM_SCHEMAS_URL),
    "RESERVED_INTERACTION_FIELDS": Source(CUSTOM_SCHEMAS_URL),
    "EVENT_BUDGET_EXEMPT_FIELDS": Source(
        INTERACTIONS_SCHEMA_URL,
        "the page names EVENT_TYPE, EVENT_VALUE and custom metadata fields as the ones that count; "
        "the other reserved keywords are taken not to count",
    ),
    "NON_CATEGORICAL_FIELDS": Source(INTERACTIONS_SCHEMA_URL),
    "ID_FIELDS": Source(INTERACTIONS_URL),
    "MAX_ID_CHARS": Source(INTERACTIONS_URL),
    "MAX_CATEGORICAL_CHARS": Source(QUOTAS_URL),
    "IMPRESSION_FIELD": Source(QUOTAS_URL),
    "TIMESTAMP_FIELDS": Source(FORMAT_URL),
    "MIN_EPOCH_SECONDS": Source(
        INTERACTIONS_URL, "the guide only says Unix epoch seconds; 0 and negative values are rejected"
    ),
    "MAX_EPOCH_SECONDS": Source(
        INTERACTIONS_URL,
        "no documented upper bound; values from 1e10 (year 2286) on are reported as milliseconds",
    ),
    "MIN_INTERACTIONS_PER_IMPORT": Source(QUOTAS_URL),
    "MAX_INCREMENTAL_IMPORT_BYTES": Source(
        QUOTAS_URL, "'1 GB' is not defined further; 10^9 bytes (the smaller reading) is used"
    ),
    "MIN_RECORDS_PER_IMPORT": Source(
        QUOTAS_URL, "the quotas name no minimum for Users/Items imports; an import with no record fails"
    ),
    "MIN_INTERACTIONS_FOR_TRAINING": Source(QUOTAS_URL),
    "MIN_USERS_WITH_TWO_INTERACTIONS": Source(INTERACTIONS_URL),
    "MIN_SHARE_USERS_WITH_TWO_INTERACTIONS": Source(QUOTAS_URL),
    "USER_MINIMUMS_IMPORT_MODES": Source(
        INTERACTIONS_URL,
        "AWS documents the user minimums as training requirements; the emulator also checks them "
        "when a FULL import completes (the data then is the whole training set)",
    ),
    "MAX_EVENT_TYPES_PLUS_METADATA": Source(INTERACTIONS_SCHEMA_URL),
    "MAX_INTERACTIONS_METADATA_FIELDS": Source(QUOTAS_URL),
    "MAX_METADATA_FIELDS": Source(CUSTOM_SCHEMAS_URL),
    "CSV_ENCODING": Source(FORMAT_URL),
    "HEADER_QUOTE": Source(FORMAT_URL),
    "INT_PATTERN": Source(SCHEMAS_URL, "the value grammar is not documented: plain decimal digits"),
    "FLOAT_PATTERN": Source(
        SCHEMAS_URL, "the value grammar is not documented: decimal or exponent notation, no inf/nan"
    ),
    "BOOLEAN_VALUES": Source(SCHEMAS_URL, "not documented: true/false in any letter case"),
}


# --------------------------------------------------------------------------------------------------
# rules as plain functions (every consumer calls these instead of re-deriving them)
# --------------------------------------------------------------------------------------------------
def normalize_dataset_type(dataset_type: str) -> str:
    """``"Interactions"`` / ``"interactions"`` → ``"INTERACTIONS"`` (the API accepts any case)."""
    return dataset_type.strip().upper()


@dataclass(frozen=True)
class SchemaField:
    """One field of a Personalize Avro schema: ``type`` is the non-null Avro type."""

    name: str
    type: str
    nullable: bool
    categorical: bool = False
    textual: bool = False


def parse_fields(raw_fields: Iterable[Any]) -> list[SchemaField]:
    """The fields of an Avro schema's ``fields`` list; ``ValueError`` naming the field when one is invalid.

    Rules (:data:`SCHEMAS_URL`): flat fields of the supported primitive types, optionally a union
    with ``"null"``; unique names; only string fields can be categorical (assumption: the guide
    describes the attribute for string fields only).
    """
    fields: list[SchemaField] = []
    seen: set[str] = set()
    for raw in raw_fields:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or "type" not in raw:
            raise ValueError(f"schema field {raw!r}: every field needs a name and a type")
        name = raw["name"]
        if name.upper() in seen:
            raise ValueError(f"schema field {name!r}: duplicate field name")
        seen.add(name.upper())
        types = raw["type"] if isinstance(raw["type"], list) else [raw["type"]]
        non_null = [t.get("type") if isinstance(t, Mapping) else t for t in types if t != "null"]
        if len(non_null) != 1 or non_null[0] not in AVRO_TYPES:
            raise ValueError(f"schema field {name!r}: unsupported type {raw['type']!r}")
        categorical = bool(raw.get("categorical"))
        if categorical and non_null[0] != "string":
            raise ValueError(f"schema field {name!r}: only string fields can be categorical")
        fields.append(SchemaField(name, non_null[0], "null" in types, categorical, bool(raw.get("textual"))))
    return fields


def schema_problem(fields: list[SchemaField], dataset_type: str) -> str | None:
    """Why a schema cannot back a dataset of ``dataset_type`` (``None`` when it can)."""
    kind = normalize_dataset_type(dataset_type)
    by_name = {f.name: f for f in fields}
    for required in REQUIRED_FIELDS.get(kind, ()):
        if required not in by_name:
            return f"The schema of an {dataset_type} dataset must have a {required} field"
    for id_field in ID_FIELDS:
        if id_field in by_name and by_name[id_field].type != "string":
            return f"Schema field {id_field} must be of type string"
    for name in NON_CATEGORICAL_FIELDS:
        if kind == "INTERACTIONS" and name in by_name and by_name[name].categorical:
            return f"{name} cannot be categorical"
    metadata = metadata_fields([f.name for f in fields], kind)
    if kind == "INTERACTIONS" and len(metadata) > MAX_INTERACTIONS_METADATA_FIELDS:
        return (
            f"An interactions schema can have at most {MAX_INTERACTIONS_METADATA_FIELDS} optional "
            f"metadata fields (excluding reserved fields); found {len(metadata)}"
        )
    limit = MAX_METADATA_FIELDS.get(kind)
    if limit is not None and len(metadata) > limit:
        return f"A {kind.lower()} schema can have at most {limit} metadata fields; found {len(metadata)}"
    return None


def metadata_fields(columns: Iterable[str], dataset_type: str) -> list[str]:
    """Columns that are neither required nor (for interactions) reserved keywords, sorted."""
    kind = normalize_dataset_type(dataset_type)
    excluded = set(REQUIRED_FIELDS.get(kind, ()))
    if kind == "INTERACTIONS":
        excluded |= RESERVED_INTERACTION_FIELDS
    return sorted(c for c in set(columns) if c not in excluded)


def event_budget_columns(columns: Iterable[str]) -> list[str]:
    """Interaction columns counted with the distinct event types against MAX_EVENT_TYPES_PLUS_METADATA:
    ``EVENT_TYPE``, ``EVENT_VALUE`` and custom metadata columns (sorted)."""
    excluded = set(REQUIRED_FIELDS["INTERACTIONS"]) | EVENT_BUDGET_EXEMPT_FIELDS
    return sorted(c for c in set(columns) if c not in excluded)


def event_budget_problem(event_types: int, columns: Iterable[str]) -> str | None:
    """Why ``event_types`` distinct event types plus the counted columns exceed the limit (or ``None``)."""
    counted = event_budget_columns(columns)
    total = event_types + len(counted)
    if total <= MAX_EVENT_TYPES_PLUS_METADATA:
        return None
    return (
        f"{event_types} event types + {len(counted)} metadata columns ({', '.join(counted)}) = {total} "
        f"exceeds {MAX_EVENT_TYPES_PLUS_METADATA}"
    )


def header_problems(header: list[str], fields: Iterable[SchemaField]) -> list[tuple[str, str]]:
    """``(kind, column)`` for every header problem: ``duplicate``, ``unknown`` (not a schema field) or
    ``missing`` (a non-nullable schema field without a column). Header names map to the schema's
    field names exactly (:data:`FORMAT_URL`)."""
    fields = list(fields)
    names = {f.name for f in fields}
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for column in header:
        if column in seen:
            problems.append(("duplicate", column))
        seen.add(column)
        if column not in names:
            problems.append(("unknown", column))
    problems += [("missing", f.name) for f in fields if not f.nullable and f.name not in seen]
    return problems


def header_is_quoted(first_line: str) -> bool:
    """True when the header row encloses names in quotation marks, which Personalize forbids."""
    return HEADER_QUOTE in first_line


def may_be_empty(field: SchemaField, dataset_type: str) -> bool:
    """Whether an empty CSV cell (a null) is allowed in ``field``.

    An empty cell is null, allowed only in a nullable field (:data:`INTERACTIONS_SCHEMA_URL`: "Depending
    on your schema, interaction metadata can include empty/null values"), never in USER_ID/ITEM_ID
    ("Each event must have a USER_ID", :data:`INTERACTIONS_URL`) nor, in interactions, in EVENT_TYPE
    ("If you add the column, each event must have an event type").
    """
    if field.name in ID_FIELDS:
        return False
    if field.name == "EVENT_TYPE" and normalize_dataset_type(dataset_type) == "INTERACTIONS":
        return False
    return field.nullable


def max_chars(field: SchemaField) -> int | None:
    """The longest value ``field`` accepts, in characters (``None``: no documented limit)."""
    if field.name in ID_FIELDS:
        return MAX_ID_CHARS
    if field.categorical or field.name == IMPRESSION_FIELD:
        return MAX_CATEGORICAL_CHARS
    return None


def int_value_problem(field: SchemaField, value: int) -> str | None:
    """Why an integer ``value`` of an ``int``/``long`` field is invalid (range, epoch seconds)."""
    low, high = INT_RANGES[field.type]
    if not low <= value <= high:
        return f"out of range for {field.type}"
    if field.name in TIMESTAMP_FIELDS:
        if value >= MAX_EPOCH_SECONDS:
            return "looks like epoch milliseconds; Personalize needs Unix epoch time in seconds (e.g. 1596238243)"
        if value < MIN_EPOCH_SECONDS:
            return "not a positive Unix epoch time in seconds"
    return None


def is_int_text(value: str) -> bool:
    return INT_PATTERN.fullmatch(value) is not None


def is_float_text(value: str) -> bool:
    return FLOAT_PATTERN.fullmatch(value) is not None


def is_boolean_text(value: str) -> bool:
    return value.lower() in BOOLEAN_VALUES


def min_records(dataset_type: str) -> int:
    """The fewest records one import job may hold."""
    if normalize_dataset_type(dataset_type) == "INTERACTIONS":
        return MIN_INTERACTIONS_PER_IMPORT
    return MIN_RECORDS_PER_IMPORT


def user_minimums_problem(user_counts: Mapping[Any, int], min_users: int | None = None) -> str | None:
    """Why per-user interaction counts miss the training minimums: at least
    MIN_USERS_WITH_TWO_INTERACTIONS users with 2 or more interactions, and at least
    MIN_SHARE_USERS_WITH_TWO_INTERACTIONS of the users with 2 or more (``None`` when both hold).

    :param min_users: a caller's stricter or looser user minimum (default: the documented one).
    """
    needed = MIN_USERS_WITH_TWO_INTERACTIONS if min_users is None else min_users
    with_two = sum(1 for count in user_counts.values() if count >= 2)
    if with_two < needed:
        return (
            f"at least {needed} unique users with ≥ 2 interactions each are required; "
            f"found {with_two} users with ≥ 2 interactions"
        )
    if user_counts and with_two / len(user_counts) < MIN_SHARE_USERS_WITH_TWO_INTERACTIONS:
        return (
            f"at least {MIN_SHARE_USERS_WITH_TWO_INTERACTIONS:.0%} of the users must have ≥ 2 "
            f"interactions; found {with_two} of {len(user_counts)}"
        )
    return None
