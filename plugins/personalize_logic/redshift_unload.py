"""Redshift UNLOAD: the statement the export runs, and the manifest it leaves (pure: no Airflow, no boto3).

Every behaviour relied on here is from the UNLOAD reference,
https://docs.aws.amazon.com/redshift/latest/dg/r_UNLOAD.html (and its examples page,
https://docs.aws.amazon.com/redshift/latest/dg/r_UNLOAD_command_examples.html):

* ``UNLOAD ('select-statement') TO 's3://object-path/name-prefix' IAM_ROLE '<arn>' [options]``: the
  query is enclosed in single quotation marks, a quotation mark inside it is written twice.
* ``FORMAT AS CSV``: a field with the delimiter, a double quotation mark, a newline or a carriage
  return is enclosed in double quotation marks, a quotation mark doubled (RFC 4180, what
  Personalize reads); ``HEADER`` adds the column names as the first line of *each* file.
* Files are ``<name-prefix><slice>_part_<part>`` (``PARALLEL ON``, the default), ``EXTENSION 'csv'``
  appends ``.csv``; ``MANIFEST VERBOSE`` writes ``<name-prefix>manifest``: JSON with ``entries``
  (``url``, ``meta.content_length``, ``meta.record_count``), ``schema`` and a total ``meta``. With
  ``HEADER`` the record counts *include* the header line of each file.
* ``MAXFILESIZE`` is 5 MB to 6.2 GB; by default UNLOAD fails when it would overwrite a file (no
  ``ALLOWOVERWRITE``/``CLEANPATH`` here: every attempt writes a fresh run folder).

The export reads the row counts from the manifest, so no data file is ever downloaded to count it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from personalize_logic.layout import is_s3_uri

# HEADER and MANIFEST VERBOSE are what the publish step relies on; the others are sane defaults.
DEFAULT_UNLOAD_OPTIONS: tuple[str, ...] = (
    "FORMAT AS CSV",
    "HEADER",
    "MANIFEST VERBOSE",
    "MAXFILESIZE 256 MB",
    "EXTENSION 'csv'",
)
REQUIRED_OPTIONS = ("FORMAT AS CSV", "HEADER", "MANIFEST VERBOSE")
_IAM_ROLE = re.compile(r"^(default|arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+)$")
_TO = re.compile(r"\)\s*TO\s+'(?P<uri>[^']+)'", re.IGNORECASE)


class UnloadError(ValueError):
    """An UNLOAD statement cannot be built from the inputs, or its manifest is not what UNLOAD writes."""


def _normalised(option: str) -> str:
    return " ".join(option.upper().split())


def unload_statement(
    select_sql: str, target_prefix_uri: str, iam_role: str, options: Sequence[str] = DEFAULT_UNLOAD_OPTIONS
) -> str:
    """
    The UNLOAD statement that writes the result of ``select_sql`` under ``target_prefix_uri``.

    :param select_sql: one SELECT (no trailing ``;``, no ``LIMIT`` in the outer select: UNLOAD's rules).
    :param target_prefix_uri: ``s3://bucket/key-prefix`` the files are named after.
    :param iam_role: the role the cluster assumes to write to S3 (``default`` or an IAM role ARN).
    :param options: UNLOAD options; ``FORMAT AS CSV``, ``HEADER`` and ``MANIFEST VERBOSE`` are required.
    """
    query = without_comments(select_sql).strip().rstrip(";").strip()
    if not query:
        raise UnloadError("the UNLOAD query is empty")
    if ";" in without_comments(query, literals=False):
        raise UnloadError("the UNLOAD query must be one SELECT statement (found ';')")
    if "\\" in query:
        # UNLOAD's quoting rules for a backslash changed between versions of the reference: refuse it
        raise UnloadError("the UNLOAD query must not contain a backslash")
    if not _IAM_ROLE.match(iam_role or ""):
        raise UnloadError(f"iam_role must be 'default' or an IAM role ARN, got {iam_role!r}")
    if not is_s3_uri(target_prefix_uri) or "'" in target_prefix_uri:
        raise UnloadError(f"not an UNLOAD target: {target_prefix_uri!r}")
    given = {_normalised(o) for o in options}
    missing = [o for o in REQUIRED_OPTIONS if o not in given]
    if missing:
        raise UnloadError(f"UNLOAD options must include {missing} (the publish step reads them)")
    for option in given:
        if (
            option.startswith(("ALLOWOVERWRITE", "CLEANPATH", "PARALLEL OFF", "PARALLEL FALSE"))
            or "GZIP" in option
        ):
            raise UnloadError(f"UNLOAD option {option!r} is not supported by the partition export")
    quoted = query.replace("'", "''")
    lines = [f"UNLOAD ('{quoted}')", f"TO '{target_prefix_uri}'", f"IAM_ROLE '{iam_role}'", *options]
    return "\n".join(lines)


def without_comments(sql: str, *, literals: bool = True) -> str:
    """``sql`` without ``--`` and ``/* */`` comments (string literals kept intact, or, with
    ``literals=False``, dropped too), so the text UNLOAD quotes holds only the query."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "'":
            end = i + 1
            while end < n and (sql[end] != "'" or sql[end + 1 : end + 2] == "'"):
                end += 2 if sql[end] == "'" else 1
            if literals:
                out.append(sql[i : end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
            out.append(" ")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def unload_target(statement: str) -> str:
    """The ``TO 's3://…'`` prefix of an UNLOAD statement (what a reconnected statement writes)."""
    found = [m["uri"] for m in _TO.finditer(statement) if is_s3_uri(m["uri"])]
    if not found:
        raise UnloadError("not an UNLOAD statement: no TO '<S3 URI>' clause")
    return found[-1]


@dataclass(frozen=True)
class UnloadedFile:
    uri: str
    rows: int  # data rows: the header line is not counted
    bytes: int


def parse_unload_manifest(body: bytes | str, where: str, *, header: bool = True) -> list[UnloadedFile]:
    """
    The files of a ``MANIFEST VERBOSE`` manifest, with their data row counts.

    :param where: the manifest's location, named in every error.
    :param header: whether the UNLOAD ran with ``HEADER`` (its record counts then include one
        header line per file).
    """
    try:
        data: Any = json.loads(body)
    except ValueError as exc:
        raise UnloadError(f"{where}: not valid JSON ({exc})") from exc
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise UnloadError(f"{where}: no 'entries' list: not an UNLOAD manifest")
    files = []
    for index, entry in enumerate(entries):
        meta = entry.get("meta") if isinstance(entry, dict) else None
        url = entry.get("url") if isinstance(entry, dict) else None
        if not isinstance(url, str) or not isinstance(meta, dict):
            raise UnloadError(f"{where}: entries[{index}] has no url / meta (UNLOAD ... MANIFEST VERBOSE?)")
        count, size = meta.get("record_count"), meta.get("content_length")
        if not isinstance(count, int) or not isinstance(size, int) or count < 0 or size < 0:
            raise UnloadError(f"{where}: entries[{index}].meta needs integer record_count and content_length")
        rows = count - 1 if header and count > 0 else count
        files.append(UnloadedFile(uri=url, rows=rows, bytes=size))
    return files
