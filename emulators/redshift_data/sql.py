"""Redshift SQL on PostgreSQL: parse an UNLOAD statement, and transpile Redshift SQL with sqlglot.

The embedded stack has no Redshift; the machine's PostgreSQL runs the very same SQL file. Redshift's
dialect is PostgreSQL 8-based and differs in types and functions (``FLOAT`` is ``FLOAT8``,
``GETDATE()``, ``NVL``, ``DATEADD``, ``LISTAGG``...): :func:`to_postgres` rewrites one statement
with ``sqlglot.transpile(read="redshift", write="postgres")``, so the file is written once, in
Redshift's dialect, and never kept as two drifting copies.

``UNLOAD`` is not SQL PostgreSQL knows: :func:`parse_unload` reads it as the reference
(https://docs.aws.amazon.com/redshift/latest/dg/r_UNLOAD.html) defines it —
``UNLOAD ('select-statement') TO 's3://object-path/name-prefix' authorization [option ...]`` — with
the query quoted in single quotation marks (a quotation mark inside written twice; ``\\'`` as older
versions of the page show is accepted too) or, as the provider's ``RedshiftToS3Operator`` writes
it, in ``$$...$$``. The options the emulator implements are listed in :data:`SUPPORTED`; any other
option fails the statement naming it, rather than being ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlglot
import sqlglot.errors

SUPPORTED = (
    "IAM_ROLE",
    "CREDENTIALS",
    "FORMAT [AS] CSV",
    "CSV",
    "HEADER",
    "MANIFEST [VERBOSE]",
    "DELIMITER [AS] 'c'",
    "NULL [AS] 'string'",
    "MAXFILESIZE [AS] n [MB | GB]",
    "EXTENSION 'ext'",
    "PARALLEL [ON | TRUE | OFF | FALSE]",
    "ALLOWOVERWRITE",
    "CLEANPATH",
    "REGION [AS] 'region'",
)
MB = 1024 * 1024
MIN_FILE_BYTES = 5 * MB
MAX_FILE_BYTES = int(6.2 * 1024 * MB)


class RedshiftSqlError(ValueError):
    """A statement the emulator cannot run; the message is what DescribeStatement's ``Error`` says."""


@dataclass
class Unload:
    """A parsed UNLOAD statement."""

    query: str
    target: str
    iam_role: str | None = None
    csv: bool = False
    header: bool = False
    manifest: bool = False
    verbose: bool = False
    delimiter: str = "|"
    null_as: str = ""
    max_file_bytes: int = MAX_FILE_BYTES
    extension: str = ""
    parallel: bool = True
    allow_overwrite: bool = False
    clean_path: bool = False
    options: list[str] = field(default_factory=list)


_UNLOAD = re.compile(r"^\s*UNLOAD\s*\(\s*", re.IGNORECASE)
_QUOTED = r"'((?:[^'\\]|''|\\.)*)'"
_OPTION_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in [
        ("iam_role", rf"IAM_ROLE\s+(?:{_QUOTED}|(default)\b)"),
        ("credentials", rf"(?:WITH\s+)?CREDENTIALS\s+(?:AS\s+)?{_QUOTED}"),
        ("format", r"(?:FORMAT\s+(?:AS\s+)?)?(CSV|PARQUET|JSON)\b"),
        ("header", r"HEADER\b"),
        ("manifest", r"MANIFEST(\s+VERBOSE)?\b"),
        ("delimiter", rf"DELIMITER\s+(?:AS\s+)?{_QUOTED}"),
        ("null_as", rf"NULL\s+(?:AS\s+)?{_QUOTED}"),
        ("maxfilesize", r"MAXFILESIZE\s+(?:AS\s+)?(\d+(?:\.\d+)?)\s*(MB|GB)?\b"),
        ("extension", rf"EXTENSION\s+{_QUOTED}"),
        ("parallel", r"PARALLEL(?:\s+(ON|TRUE|OFF|FALSE))?\b"),
        ("allowoverwrite", r"ALLOWOVERWRITE\b"),
        ("cleanpath", r"CLEANPATH\b"),
        ("region", rf"REGION\s+(?:AS\s+)?{_QUOTED}"),
    ]
]


def _unquote(text: str) -> str:
    return re.sub(r"''|\\(.)", lambda m: "'" if m.group(0) == "''" else m.group(1), text)


def is_unload(statement: str) -> bool:
    return _UNLOAD.match(statement) is not None


def parse_unload(statement: str) -> Unload:
    """Parse ``UNLOAD ('…') TO '…' …``; :class:`RedshiftSqlError` names what is wrong."""
    text = statement.strip().rstrip(";").strip()
    head = _UNLOAD.match(text)
    if head is None:
        raise RedshiftSqlError("not an UNLOAD statement")
    rest = text[head.end() :]
    if rest.startswith("$$"):
        end = rest.find("$$", 2)
        if end < 0:
            raise RedshiftSqlError("syntax error in UNLOAD: unterminated $$ quoted query")
        query, rest = rest[2:end], rest[end + 2 :]
    else:
        quoted = re.match(_QUOTED, rest)
        if quoted is None:
            raise RedshiftSqlError(
                "syntax error in UNLOAD: the query must be enclosed in single quotation marks"
            )
        query, rest = _unquote(quoted.group(1)), rest[quoted.end() :]
    to = re.match(rf"\s*\)\s*TO\s+{_QUOTED}", rest, re.IGNORECASE)
    if to is None:
        raise RedshiftSqlError("syntax error in UNLOAD: expected ) TO 's3://object-path/name-prefix'")
    unload = Unload(query=query.strip(), target=_unquote(to.group(1)))
    if not unload.target.startswith("s3://"):
        raise RedshiftSqlError(f"UNLOAD target must be an s3:// path, got {unload.target!r}")
    rest = rest[to.end() :]
    authorized = False
    while rest.strip():
        rest = rest.lstrip()
        for name, pattern in _OPTION_PATTERNS:
            found = pattern.match(rest)
            if found:
                authorized = _apply(unload, name, found) or authorized
                unload.options.append(found.group(0))
                rest = rest[found.end() :]
                break
        else:
            word = rest.split(None, 1)[0]
            raise RedshiftSqlError(
                f"UNLOAD option {word!r} is not supported by the emulator (supported: {', '.join(SUPPORTED)})"
            )
    if not authorized:
        raise RedshiftSqlError("UNLOAD needs authorization: IAM_ROLE or CREDENTIALS")
    if unload.allow_overwrite and unload.clean_path:
        raise RedshiftSqlError(
            "You can't specify the CLEANPATH option if you specify the ALLOWOVERWRITE option"
        )
    return unload


def _apply(unload: Unload, name: str, found: re.Match[str]) -> bool:
    """Set one option on ``unload``; True when it is the authorization."""
    if name == "iam_role":
        unload.iam_role = _unquote(found.group(1)) if found.group(1) is not None else "default"
        return True
    if name == "credentials":
        return True
    if name == "format":
        if found.group(1).upper() != "CSV":
            raise RedshiftSqlError(f"UNLOAD format {found.group(1).upper()} is not supported by the emulator")
        unload.csv = True
        unload.delimiter = ","
    elif name == "header":
        unload.header = True
    elif name == "manifest":
        unload.manifest, unload.verbose = True, bool(found.group(1))
    elif name == "delimiter":
        unload.delimiter = _unquote(found.group(1))
        if len(unload.delimiter) != 1:
            raise RedshiftSqlError("DELIMITER must be a single ASCII character")
    elif name == "null_as":
        unload.null_as = _unquote(found.group(1))
    elif name == "maxfilesize":
        size = float(found.group(1)) * (1024 * MB if (found.group(2) or "MB").upper() == "GB" else MB)
        if not MIN_FILE_BYTES <= size <= MAX_FILE_BYTES:
            raise RedshiftSqlError("MAXFILESIZE must be between 5 MB and 6.2 GB")
        unload.max_file_bytes = int(size)
    elif name == "extension":
        unload.extension = _unquote(found.group(1)).lstrip(".")
    elif name == "parallel":
        unload.parallel = (found.group(1) or "ON").upper() in ("ON", "TRUE")
    elif name == "allowoverwrite":
        unload.allow_overwrite = True
    elif name == "cleanpath":
        unload.clean_path = True
    return False


def to_postgres(sql: str) -> str:
    """One Redshift statement as PostgreSQL runs it (sqlglot); :class:`RedshiftSqlError` if unparsable."""
    try:
        statements = sqlglot.transpile(sql, read="redshift", write="postgres")
    except sqlglot.errors.SqlglotError as exc:
        raise RedshiftSqlError(f"syntax error: {exc}") from None
    statements = [s for s in statements if s.strip()]
    if len(statements) != 1:
        raise RedshiftSqlError(f"expected one statement, got {len(statements)}")
    return statements[0]
