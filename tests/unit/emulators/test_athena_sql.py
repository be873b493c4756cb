"""The Athena emulator's reading of Athena SQL: DDL into catalog entries, Hive types into DuckDB's,
the partitions a query pins, the tables it reads."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from emulators.athena.sql import (
    AddPartitions,
    AthenaSqlError,
    CreateDatabase,
    CreateTable,
    DropTable,
    Query,
    RepairTable,
    hive_to_duckdb,
    parse_statement,
    partition_values,
    referenced_tables,
    to_duckdb,
)

SQL = Path(__file__).resolve().parents[3] / "include/sql/athena"


def test_the_shipped_table_ddl_is_read_whole() -> None:
    text = jinja2.Template((SQL / "mparticle_batches_table.sql").read_text()).render(
        params={"database": "mp", "table": "batches"}, task={"location": "s3://b/landing/"}
    )
    table = parse_statement(text, "default")
    assert isinstance(table, CreateTable)
    assert (table.database, table.name, table.if_not_exists) == ("mp", "batches", True)
    assert [name for name, _ in table.columns] == ["mpid", "user_identities", "events"]
    assert table.columns[0] == ("mpid", "bigint")
    assert table.partition_keys == [("dt", "string")]
    assert table.serde == "org.openx.data.jsonserde.JsonSerDe"
    assert table.serde_properties == {"ignore.malformed.json": "true"}
    assert table.location == "s3://b/landing/"
    assert table.table_properties["storage.location.template"] == "s3://b/landing/dt=${dt}/"
    assert hive_to_duckdb(table.columns[2][1]).startswith('STRUCT("event_type" VARCHAR, "data" STRUCT(')


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("CREATE DATABASE IF NOT EXISTS `Mp`", CreateDatabase("mp", True)),
        ("DROP TABLE t", DropTable("db", "t", False)),
        ("MSCK REPAIR TABLE mp.t", RepairTable("mp", "t")),
        (
            "ALTER TABLE t ADD IF NOT EXISTS PARTITION (dt='2024-01-01') LOCATION 's3://b/x/' PARTITION (dt = 'it''s')",
            AddPartitions("db", "t", True, [({"dt": "2024-01-01"}, "s3://b/x/"), ({"dt": "it's"}, None)]),
        ),
    ],
)
def test_ddl_statements(sql: str, expected: object) -> None:
    assert parse_statement(sql, "db") == expected


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT 1; SELECT 2", "Only one sql statement"),
        ("CREATE TABLE t (a int) LOCATION 's3://b/'", "CREATE EXTERNAL TABLE"),
        ("CREATE TABLE t AS SELECT 1", "no CTAS"),
        ("SHOW TABLES", "does not support"),
        ("ALTER TABLE t ADD PARTITION (dt='a') garbage", "syntax error"),
    ],
)
def test_what_the_emulator_does_not_run_is_named(sql: str, message: str) -> None:
    with pytest.raises(AthenaSqlError, match=message):
        parse_statement(sql, "db")


@pytest.mark.parametrize(
    ("hive", "duck"),
    [
        ("string", "VARCHAR"),
        ("array<bigint>", "BIGINT[]"),
        ("map<string,array<int>>", "MAP(VARCHAR, INTEGER[])"),
        ("struct<a:string,b:struct<c:double>>", 'STRUCT("a" VARCHAR, "b" STRUCT("c" DOUBLE))'),
        ("decimal(10,2)", "DECIMAL(10,2)"),
    ],
)
def test_hive_types_become_duckdb_types(hive: str, duck: str) -> None:
    assert hive_to_duckdb(hive) == duck


def test_an_unknown_type_is_named() -> None:
    with pytest.raises(AthenaSqlError, match="uniontype"):
        hive_to_duckdb("uniontype<int,string>")


def test_a_query_names_its_tables_and_the_partitions_it_pins() -> None:
    query = parse_statement(
        "WITH c AS (SELECT 1 AS x) SELECT * FROM mp.batches AS b CROSS JOIN UNNEST(b.events) AS t (e), c, other "
        "WHERE b.dt IN ('2024-01-01', '2024-01-02') AND e.x = 1",
        "db",
    )
    assert isinstance(query, Query)
    assert referenced_tables(query.tree, "db") == [("mp", "batches"), ("db", "other")]
    assert partition_values(query.tree, "dt") == {"2024-01-01", "2024-01-02"}
    assert partition_values(parse_statement("SELECT * FROM t WHERE dt = 'x'", "db").tree, "dt") == {"x"}
    assert partition_values(parse_statement("SELECT * FROM t WHERE dt > 'x'", "db").tree, "dt") is None
    assert partition_values(parse_statement("SELECT * FROM t WHERE dt = 'x' OR 1=1", "db").tree, "dt") is None


def test_queries_are_translated_for_duckdb() -> None:
    query = parse_statement(
        "SELECT CAST(mpid AS VARCHAR), strpos(a, chr(10)) FROM t CROSS JOIN UNNEST(l) AS u (x)", "db"
    )
    assert (
        to_duckdb(query.tree)
        == "SELECT CAST(mpid AS TEXT), STRPOS(a, CHR(10)) FROM t CROSS JOIN UNNEST(l) AS u(x)"
    )
