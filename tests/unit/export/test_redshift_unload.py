"""The UNLOAD statement the export runs and the manifest it reads (pure), and the emulator's reading of
UNLOAD (the two must agree: what one writes, the other parses)."""

from __future__ import annotations

import json

import pytest

from emulators.redshift_data.sql import RedshiftSqlError, parse_unload, to_postgres
from personalize_logic.redshift_unload import (
    DEFAULT_UNLOAD_OPTIONS,
    UnloadError,
    parse_unload_manifest,
    unload_statement,
    unload_target,
    without_comments,
)

ROLE = "arn:aws:iam::123456789012:role/unload"
TARGET = "s3://bkt/p/interactions/dt=2024-01-01/run=r.try1/part-"


def test_the_statement_quotes_the_query_and_names_the_role_and_options() -> None:
    sql = "-- a comment with ' and ;\nSELECT 'it''s' AS \"USER_ID\" /* ; */ FROM t WHERE x = 'a;b';"
    statement = unload_statement(sql, TARGET, ROLE)
    assert (
        statement.splitlines()[0] == "UNLOAD ('SELECT ''it''''s'' AS \"USER_ID\"   FROM t WHERE x = ''a;b''')"
    )
    assert f"TO '{TARGET}'" in statement
    assert f"IAM_ROLE '{ROLE}'" in statement
    assert statement.endswith("\n".join(DEFAULT_UNLOAD_OPTIONS))
    assert unload_target(statement) == TARGET
    parsed = parse_unload(statement)  # the emulator reads back exactly the query and the options
    assert parsed.query == "SELECT 'it''s' AS \"USER_ID\"   FROM t WHERE x = 'a;b'"
    assert (parsed.target, parsed.iam_role, parsed.csv, parsed.header, parsed.manifest, parsed.verbose) == (
        TARGET, ROLE, True, True, True, True,
    )  # fmt: skip
    assert (parsed.extension, parsed.max_file_bytes, parsed.parallel) == ("csv", 256 * 1024 * 1024, True)


@pytest.mark.parametrize(
    ("sql", "role", "options", "message"),
    [
        ("SELECT 1; SELECT 2", ROLE, DEFAULT_UNLOAD_OPTIONS, "one SELECT"),
        ("-- only a comment", ROLE, DEFAULT_UNLOAD_OPTIONS, "empty"),
        ("SELECT '\\\\'", ROLE, DEFAULT_UNLOAD_OPTIONS, "backslash"),
        ("SELECT 1", "my-role", DEFAULT_UNLOAD_OPTIONS, "IAM role ARN"),
        ("SELECT 1", ROLE, ("FORMAT AS CSV", "HEADER"), "MANIFEST VERBOSE"),
        ("SELECT 1", ROLE, (*DEFAULT_UNLOAD_OPTIONS, "ALLOWOVERWRITE"), "ALLOWOVERWRITE"),
        ("SELECT 1", ROLE, (*DEFAULT_UNLOAD_OPTIONS, "GZIP"), "GZIP"),
    ],
)
def test_statements_the_publish_step_could_not_read_are_refused(sql, role, options, message) -> None:
    with pytest.raises(UnloadError, match=message):
        unload_statement(sql, TARGET, role, options)


def test_comments_go_and_literals_stay() -> None:
    assert without_comments("SELECT '--x' -- y\n, 1 /* z */") == "SELECT '--x' \n, 1  "
    assert without_comments("SELECT 'a;''b'", literals=False) == "SELECT "


def test_the_manifest_gives_files_and_data_rows() -> None:
    body = json.dumps({
        "entries": [
            {"url": TARGET + "0000_part_00.csv", "meta": {"content_length": 120, "record_count": 3}},
            {"url": TARGET + "0001_part_00.csv", "meta": {"content_length": 40, "record_count": 1}},
        ],
        "meta": {"content_length": 160, "record_count": 4},
    })  # fmt: skip
    files = parse_unload_manifest(body, "s3://bkt/m")
    assert [(f.uri.rsplit("/", 1)[1], f.rows, f.bytes) for f in files] == [
        ("part-0000_part_00.csv", 2, 120),
        ("part-0001_part_00.csv", 0, 40),
    ]  # fmt: skip  (record counts include each file's HEADER line: r_UNLOAD, MANIFEST VERBOSE)
    assert parse_unload_manifest(body, "m", header=False)[0].rows == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"files": []}', "no 'entries'"),
        ('{"entries": [{"url": "s3://b/k"}]}', "MANIFEST VERBOSE"),
        ('{"entries": [{"url": "s3://b/k", "meta": {"record_count": "3", "content_length": 1}}]}', "integer"),
    ],
)
def test_a_manifest_that_is_not_unloads_is_named(body: str, message: str) -> None:
    with pytest.raises(UnloadError, match=rf"s3://bkt/m: .*{message}"):
        parse_unload_manifest(body, "s3://bkt/m")


# --------------------------------------------------------------------------------- the emulator side
def test_the_emulator_reads_dollar_quoted_queries_and_every_supported_option() -> None:
    parsed = parse_unload(
        "UNLOAD ($$SELECT 'x'$$) TO 's3://b/p_' credentials 'aws_iam_role=arn:aws:iam::1:role/r' "
        "FORMAT AS CSV HEADER MANIFEST DELIMITER AS ';' NULL AS 'NULL' MAXFILESIZE 1 GB "
        "PARALLEL OFF CLEANPATH REGION 'us-east-1';"
    )
    assert parsed.query == "SELECT 'x'"
    assert (parsed.delimiter, parsed.null_as, parsed.max_file_bytes, parsed.parallel) == (
        ";",
        "NULL",
        1 << 30,
        False,
    )
    assert (parsed.manifest, parsed.verbose, parsed.clean_path) == (True, False, True)
    assert parse_unload("unload ('select \\'a\\'') to 's3://b/x' iam_role default").query == "select 'a'"


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("UNLOAD ('SELECT 1') TO 's3://b/p' FORMAT CSV", "needs authorization"),
        ("UNLOAD ('SELECT 1') TO 's3://b/p' IAM_ROLE default PARQUET", "PARQUET is not supported"),
        ("UNLOAD ('SELECT 1') TO 's3://b/p' IAM_ROLE default GZIP", "'GZIP' is not supported"),
        ("UNLOAD ('SELECT 1') TO 's3://b/p' IAM_ROLE default MAXFILESIZE 1 MB", "between 5 MB and 6.2 GB"),
        ("UNLOAD ('SELECT 1') TO 's3://b/p' IAM_ROLE default ALLOWOVERWRITE CLEANPATH", "CLEANPATH"),
        ("UNLOAD ('SELECT 1') TO '/tmp/p' IAM_ROLE default", "must be an s3:// path"),
        ("UNLOAD (SELECT 1) TO 's3://b/p' IAM_ROLE default", "single quotation marks"),
    ],
)
def test_the_emulator_fails_what_it_does_not_implement_naming_it(statement: str, message: str) -> None:
    with pytest.raises(RedshiftSqlError, match=message):
        parse_unload(statement)


def test_redshift_sql_is_transpiled_for_postgresql() -> None:
    assert to_postgres("SELECT NVL(a, 'x'), CAST(b AS FLOAT) FROM t") == (
        "SELECT COALESCE(a, 'x'), CAST(b AS DOUBLE PRECISION) FROM t"
    )
    assert to_postgres("SELECT GETDATE()") == "SELECT CURRENT_TIMESTAMP"
    with pytest.raises(RedshiftSqlError, match="syntax error"):
        to_postgres("SELECT FROM WHERE (")
    with pytest.raises(RedshiftSqlError, match="one statement"):
        to_postgres("SELECT 1; SELECT 2")
