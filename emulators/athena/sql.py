"""Athena SQL for the emulator: the DDL it keeps in the Glue catalog, and queries translated for DuckDB.

Athena runs Trino SQL for queries and Hive DDL for tables
(https://docs.aws.amazon.com/athena/latest/ug/ddl-reference.html). The emulator parses both with
sqlglot's ``athena`` dialect:

* :func:`parse_statement` turns a statement into one of :class:`CreateDatabase`, :class:`CreateTable`
  (``CREATE EXTERNAL TABLE`` with columns, ``PARTITIONED BY``, ``ROW FORMAT SERDE`` /
  ``WITH SERDEPROPERTIES``, ``LOCATION``, ``TBLPROPERTIES``), :class:`DropTable`,
  :class:`AddPartitions` (``ALTER TABLE … ADD [IF NOT EXISTS] PARTITION (…) [LOCATION '…']``),
  :class:`RepairTable` (``MSCK REPAIR TABLE``) or :class:`Query` (``SELECT`` / ``WITH``). Anything
  else fails the query naming what is not supported.
* :func:`to_duckdb` translates a query with ``sqlglot.transpile(read="athena", write="duckdb")``.
  The emulator does not infer types, so where Trino and DuckDB differ on untyped expressions
  (``bigint / bigint`` truncates in Trino and is a double in DuckDB) the project's SQL is written to
  mean the same on both: ``docs/emulators.md`` lists these rules.
* :func:`hive_to_duckdb` maps the catalog's Hive types (``array<struct<a:string>>``) to DuckDB's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlglot
import sqlglot.errors
from sqlglot import exp


class AthenaSqlError(ValueError):
    """A statement the emulator cannot run; the message becomes ``StateChangeReason``."""


@dataclass
class CreateDatabase:
    name: str
    if_not_exists: bool


@dataclass
class CreateTable:
    database: str
    name: str
    if_not_exists: bool
    columns: list[tuple[str, str]]
    partition_keys: list[tuple[str, str]]
    location: str
    serde: str | None = None
    serde_properties: dict[str, str] = field(default_factory=dict)
    table_properties: dict[str, str] = field(default_factory=dict)


@dataclass
class DropTable:
    database: str
    name: str
    if_exists: bool


@dataclass
class AddPartitions:
    database: str
    name: str
    if_not_exists: bool
    partitions: list[tuple[dict[str, str], str | None]]


@dataclass
class RepairTable:
    database: str
    name: str


@dataclass
class Query:
    tree: exp.Expression


Statement = CreateDatabase | CreateTable | DropTable | AddPartitions | RepairTable | Query

_MSCK = re.compile(r"^\s*MSCK\s+REPAIR\s+TABLE\s+(?P<table>[`\"\w.]+)\s*;?\s*$", re.IGNORECASE)
_ALTER_ADD = re.compile(
    r"^\s*ALTER\s+TABLE\s+(?P<table>[`\"\w.]+)\s+ADD\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<rest>PARTITION\b.*?)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_PARTITION = re.compile(
    r"PARTITION\s*\((?P<spec>[^)]*)\)\s*(?:LOCATION\s+'(?P<location>[^']*)')?\s*", re.IGNORECASE
)
_KEY_VALUE = re.compile(r"\s*[`\"]?(\w+)[`\"]?\s*=\s*'((?:[^']|'')*)'\s*")


def _qualified(name: str, default_db: str) -> tuple[str, str]:
    parts = [p.strip('`"').lower() for p in name.split(".")]
    if len(parts) == 1:
        return default_db, parts[0]
    return parts[-2], parts[-1]


def _literal(node: exp.Expression | None) -> str | None:
    return None if node is None else node.name


def _hive_type(kind: exp.Expression) -> str:
    """A column type as the Glue catalog keeps it (``array<struct<a:string>>``)."""
    return re.sub(r"\s+", "", kind.sql("hive")).lower()


def parse_statement(sql: str, default_db: str) -> Statement:
    text = sql.strip()
    msck = _MSCK.match(text)
    if msck:
        return RepairTable(*_qualified(msck["table"], default_db))
    alter = _ALTER_ADD.match(text)
    if alter:
        return _add_partitions(alter, default_db)
    try:
        trees = [t for t in sqlglot.parse(text, read="athena") if t is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise AthenaSqlError(f"line 1:1: {exc}") from None
    if len(trees) != 1:
        raise AthenaSqlError("Only one sql statement is allowed.")
    tree = trees[0]
    if isinstance(tree, exp.Query):
        return Query(tree)
    if isinstance(tree, exp.Create) and tree.args.get("kind") in ("DATABASE", "SCHEMA"):
        return CreateDatabase(tree.this.name.lower(), bool(tree.args.get("exists")))
    if isinstance(tree, exp.Create) and tree.args.get("kind") == "TABLE":
        return _create_table(tree, default_db)
    if isinstance(tree, exp.Drop) and tree.args.get("kind") == "TABLE":
        table = tree.this if isinstance(tree.this, exp.Table) else (tree.args.get("tables") or [None])[0]
        if not isinstance(table, exp.Table):
            raise AthenaSqlError("DROP TABLE needs a table name")
        return DropTable((table.db or default_db).lower(), table.name.lower(), bool(tree.args.get("exists")))
    raise AthenaSqlError(f"the emulator does not support this statement: {text.split(None, 3)[:3]}")


def _create_table(tree: exp.Create, default_db: str) -> CreateTable:
    schema = tree.this
    if not isinstance(schema, exp.Schema) or tree.expression is not None:
        raise AthenaSqlError("the emulator supports CREATE EXTERNAL TABLE with a column list only (no CTAS)")
    table = schema.this
    columns = [(c.name.lower(), _hive_type(c.args["kind"])) for c in schema.expressions]
    partition_keys: list[tuple[str, str]] = []
    location = None
    serde: str | None = None
    serde_properties: dict[str, str] = {}
    table_properties: dict[str, str] = {}
    external = False
    for prop in (tree.args.get("properties") or exp.Properties(expressions=[])).expressions:
        if isinstance(prop, exp.ExternalProperty):
            external = True
        elif isinstance(prop, exp.PartitionedByProperty):
            partition_keys = [(c.name.lower(), _hive_type(c.args["kind"])) for c in prop.this.expressions]
        elif isinstance(prop, exp.LocationProperty):
            location = _literal(prop.this)
        elif isinstance(prop, exp.RowFormatSerdeProperty):
            serde = _literal(prop.this)
            props = prop.args.get("serde_properties")
            for item in props.expressions if props is not None else []:
                serde_properties[item.name] = _literal(item.args.get("value")) or ""
        elif isinstance(prop, exp.Property):
            table_properties[prop.name] = _literal(prop.args.get("value")) or ""
    if not external or not location:
        raise AthenaSqlError("the emulator supports CREATE EXTERNAL TABLE … LOCATION 's3://…' only")
    return CreateTable(
        database=(table.db or default_db).lower(), name=table.name.lower(),
        if_not_exists=bool(tree.args.get("exists")), columns=columns, partition_keys=partition_keys,
        location=location, serde=serde, serde_properties=serde_properties, table_properties=table_properties,
    )  # fmt: skip


def _add_partitions(found: re.Match[str], default_db: str) -> AddPartitions:
    rest = found["rest"]
    partitions: list[tuple[dict[str, str], str | None]] = []
    position = 0
    for match in _PARTITION.finditer(rest):
        if rest[position : match.start()].strip():
            break
        values = {k.lower(): v.replace("''", "'") for k, v in _KEY_VALUE.findall(match["spec"])}
        partitions.append((values, match["location"]))
        position = match.end()
    if not partitions or rest[position:].strip():
        raise AthenaSqlError("syntax error in ALTER TABLE ADD PARTITION")
    return AddPartitions(*_qualified(found["table"], default_db), bool(found["ine"]), partitions)


def referenced_tables(query: exp.Expression, default_db: str) -> list[tuple[str, str]]:
    """The catalog tables a query reads (CTE names excluded), as ``(database, table)``."""
    ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
    found: list[tuple[str, str]] = []
    for table in query.find_all(exp.Table):
        if not table.name or (not table.db and table.name.lower() in ctes):
            continue
        if isinstance(table.this, exp.Func) or table.find_ancestor(exp.Unnest):  # UNNEST(...) AS t(x)
            continue
        key = ((table.db or default_db).lower(), table.name.lower())
        if key not in found:
            found.append(key)
    return found


def partition_values(query: exp.Expression, key: str) -> set[str] | None:
    """The values a query's WHERE pins partition column ``key`` to (``=`` / ``IN`` of literals, under
    AND), or None when it does not: the emulator then reads every partition, as Athena would scan them."""
    where = query.find(exp.Where)
    if where is None:
        return None
    conditions = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    for condition in conditions:
        if (
            (
                isinstance(condition, exp.EQ)
                and isinstance(condition.left, exp.Column)
                and condition.left.name.lower() == key
            )
            and isinstance(condition.right, exp.Literal)
            and condition.right.is_string
        ):
            return {condition.right.name}
        if (
            isinstance(condition, exp.In)
            and isinstance(condition.this, exp.Column)
            and condition.this.name.lower() == key
        ):
            values = condition.expressions
            if values and all(isinstance(v, exp.Literal) and v.is_string for v in values):
                return {v.name for v in values}
    return None


def to_duckdb(query: exp.Expression) -> str:
    try:
        return query.sql(dialect="duckdb")
    except sqlglot.errors.SqlglotError as exc:  # pragma: no cover - generation rarely fails
        raise AthenaSqlError(str(exc)) from None


# ------------------------------------------------------------------------------------------- types
_SCALARS = {
    "string": "VARCHAR", "varchar": "VARCHAR", "char": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER",
    "integer": "INTEGER", "smallint": "SMALLINT", "tinyint": "TINYINT", "double": "DOUBLE", "float": "FLOAT",
    "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP", "binary": "BLOB",
}  # fmt: skip


def hive_to_duckdb(hive: str) -> str:
    """``array<struct<a:string,b:bigint>>`` → ``STRUCT("a" VARCHAR, "b" BIGINT)[]``."""
    text = re.sub(r"\s+", "", hive.lower())
    result, position = _type(text, 0)
    if position != len(text):
        raise AthenaSqlError(f"unsupported column type {hive!r}")
    return result


def _type(text: str, i: int) -> tuple[str, int]:
    if text.startswith("array<", i):
        inner, i = _type(text, i + len("array<"))
        return f"{inner}[]", _expect(text, i, ">")
    if text.startswith("map<", i):
        key, i = _type(text, i + len("map<"))
        value, i = _type(text, _expect(text, i, ","))
        return f"MAP({key}, {value})", _expect(text, i, ">")
    if text.startswith("struct<", i):
        i += len("struct<")
        fields = []
        while True:
            colon = text.index(":", i)
            name = text[i:colon]
            ftype, i = _type(text, colon + 1)
            fields.append(f'"{name}" {ftype}')
            if text.startswith(">", i):
                return f"STRUCT({', '.join(fields)})", i + 1
            i = _expect(text, i, ",")
    match = re.match(r"(decimal\(\d+,\d+\)|varchar\(\d+\)|char\(\d+\)|[a-z]+)", text[i:])
    if match is None:
        raise AthenaSqlError(f"unsupported column type at {text[i:]!r}")
    word = match.group(1)
    base = word.split("(", 1)[0]
    if base == "decimal":
        return word.upper(), i + len(word)
    if base not in _SCALARS:
        raise AthenaSqlError(f"unsupported column type {word!r}")
    return _SCALARS[base], i + len(word)


def _expect(text: str, i: int, char: str) -> int:
    if not text.startswith(char, i):
        raise AthenaSqlError(f"malformed column type near {text[i:]!r}")
    return i + 1
