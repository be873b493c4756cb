"""
Amazon Personalize batch segment output → audience segments (pure logic, no Airflow import).

Three jobs, each fixing a defect of the AWS contextual-targeting sample (``prior-art.md`` §2.6):

* :func:`iter_segment_lines` parses **every** line of a batch segment ``.out`` file (the sample kept
  only the last one). Both output spellings are accepted: ``output.usersList`` (what the service
  writes) and ``output.recommendedUsers`` (what the docs show); the query comes from
  ``input.itemAttributes``, top-level ``itemAttributes`` or ``input.itemId``. A line with an
  ``error`` or that is not valid JSON is returned with ``error`` set (counted, never dropped).
* :func:`segment_name` builds the sample's readable names (``ITEMSgenresAction_20220802-154955``) but
  from a timestamp the caller passes (the run's logical date or the batch job's time, never
  ``now()``), and appends a short hash of the exact query whenever stripping non-letters could make
  two queries collide (``genres = "Sci-Fi"`` vs ``"SciFi"``).
* :class:`EndpointCsvWriter` writes the segment file (header ``Id``, one endpoint id per row; or
  ``User.UserId``) split into parts of at most ``max_bytes`` (Pinpoint imports at most 1 GB per job).
  :func:`resolve_segment_endpoints` joins segment users with a Pinpoint endpoint export (a hash
  semi-join in DuckDB, which spills to disk, so memory does not grow with the export), keeping every
  endpoint of a user and counting users with none.

pyarrow / duckdb are imported inside the functions that need them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from personalize_logic.text import is_text

PINPOINT_MAX_IMPORT_BYTES = 1_000_000_000
"""Pinpoint imports at most 1 GB per import job (quotas page)."""

ENDPOINT_ID_COLUMN = "Id"
USER_ID_COLUMN = "User.UserId"
CSV_COLUMNS = (ENDPOINT_ID_COLUMN, USER_ID_COLUMN)

QUERY_HASH_LENGTH = 8
TIMESTAMP_FORMAT = "%Y%m%d-%H%M%S"

_NON_LETTERS = re.compile(r"[^A-Za-z]")
_NON_NAME_CHARS = re.compile(r"[^A-Za-z0-9_\-]")
# one canonical clause, as Personalize writes it back: ITEMS.genres = "Action" (letters only)
_CANONICAL_CLAUSE = re.compile(r'^ITEMS\.([A-Za-z]+) = "([A-Za-z]+)"$')
_FORBIDDEN_IN_CSV = re.compile(r"[\n\r\t]")
_NEEDS_QUOTING = re.compile(r'[,"]')


# --------------------------------------------------------------------------------------------------
# parsing the batch segment output
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentLine:
    """
    One line of a batch segment job output file.

    :param source: Name of the file the line came from (for error messages).
    :param line_number: 1-based line number in that file.
    :param query: The query string (an ``itemAttributes`` expression or an item id); ``None`` if absent.
    :param query_kind: ``"itemAttributes"``, ``"itemId"`` or ``None``.
    :param users: The user ids, in the order Personalize ranked them.
    :param error: Why the line cannot be used (the line's ``error`` field, bad JSON, missing query);
        ``None`` for a good line.
    """

    source: str
    line_number: int
    query: str | None
    query_kind: str | None
    users: tuple[str, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def parse_segment_line(text: str | bytes, line_number: int, source: str = "<input>") -> SegmentLine | None:
    """
    Parse one output line; return ``None`` for a blank line, a :class:`SegmentLine` otherwise.

    Never raises on bad input: a problem is reported in :attr:`SegmentLine.error`, naming the field.
    Ids are taken as written: a string, or a JSON integer as its decimal text; any other value
    (``null``, ``1.0``, an object, a string holding a lone UTF-16 surrogate) is an error naming its
    position, never a changed id (``str(None)`` would be the user ``"None"``). Invalid UTF-8 and JSON
    nested deeper than the parser can follow are errors of the line.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            return SegmentLine(
                source, line_number, None, None, error=f"not UTF-8 ({exc.reason} at byte {exc.start})"
            )
    text = text.strip()
    if not text:
        return None
    try:
        record = json.loads(text)
    except ValueError as exc:
        return SegmentLine(source, line_number, None, None, error=f"invalid JSON: {exc}")
    except RecursionError:
        return SegmentLine(
            source, line_number, None, None, error="invalid JSON: nested deeper than the parser can follow"
        )
    if not isinstance(record, dict):
        return SegmentLine(source, line_number, None, None, error="line is not a JSON object")
    raw_input = record.get("input")
    inp: dict[str, Any] = raw_input if isinstance(raw_input, dict) else {}
    query: str | None = None
    kind: str | None = None
    for where, candidate, candidate_kind in (
        ("input.itemAttributes", inp.get("itemAttributes"), "itemAttributes"),
        ("itemAttributes", record.get("itemAttributes"), "itemAttributes"),
        ("input.itemId", inp.get("itemId"), "itemId"),
        ("itemId", record.get("itemId"), "itemId"),
    ):
        if candidate is None or candidate == "":
            continue
        query = _id_text(candidate)
        if query is None:
            return SegmentLine(
                source, line_number, None, None, error=f"field {where} is not a string: {_shown(candidate)}"
            )
        kind = candidate_kind
        break
    raw_output = record.get("output")
    output: dict[str, Any] = raw_output if isinstance(raw_output, dict) else {}
    users_value = output.get("usersList")
    users_field = "output.usersList"
    if users_value is None:
        users_value = output.get("recommendedUsers")
        users_field = "output.recommendedUsers"
    error = record.get("error")
    if error not in (None, "", {}):
        shown = error if isinstance(error, str) and _id_text(error) is not None else _shown(error)
        return SegmentLine(source, line_number, query, kind, error=f"error: {shown}")
    if query is None:
        return SegmentLine(
            source, line_number, None, None,
            error="missing field input.itemAttributes / itemAttributes / input.itemId",
        )  # fmt: skip
    if users_value is None:
        return SegmentLine(
            source, line_number, query, kind, error="missing field output.usersList / output.recommendedUsers"
        )
    if not isinstance(users_value, list):
        return SegmentLine(source, line_number, query, kind, error=f"field {users_field} is not a list")
    if set(map(type, users_value)) <= {str} and all(map(str.isascii, users_value)):
        return SegmentLine(source, line_number, query, kind, tuple(users_value))  # the common case, in C
    users = [_id_text(user) for user in users_value]
    if None in users:
        index = users.index(None)
        return SegmentLine(
            source, line_number, query, kind,
            error=f"{users_field}[{index}] is not a user id (a string): {_shown(users_value[index])}",
        )  # fmt: skip
    return SegmentLine(source, line_number, query, kind, tuple(users))  # type: ignore[arg-type]


def _id_text(value: Any) -> str | None:
    """An id as written (a string that is valid text, or a JSON integer's decimal text), else None."""
    if type(value) is str:
        return value if is_text(value) else None  # a lone surrogate escape: no file can hold it
    if type(value) is int:
        return str(value)
    return None


def _shown(value: Any) -> str:
    """A bad value for an error message: short, and safe to print whatever it holds."""
    try:
        text = json.dumps(value)
    except (RecursionError, ValueError, TypeError):
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def iter_segment_lines(lines: Iterable[str | bytes], source: str = "<input>") -> Iterator[SegmentLine]:
    """Yield a :class:`SegmentLine` for every non-blank line of ``lines`` (one file), in order."""
    for number, text in enumerate(lines, start=1):
        parsed = parse_segment_line(text, number, source)
        if parsed is not None:
            yield parsed


@dataclass
class SegmentOutputSummary:
    """Counts over a whole batch segment output (all files, all lines)."""

    lines: int = 0
    good_lines: int = 0
    error_lines: list[SegmentLine] = field(default_factory=list)

    def add(self, line: SegmentLine) -> None:
        self.lines += 1
        if line.ok:
            self.good_lines += 1
        else:
            self.error_lines.append(line)


# --------------------------------------------------------------------------------------------------
# segment names
# --------------------------------------------------------------------------------------------------


def query_hash(query: str, length: int = QUERY_HASH_LENGTH) -> str:
    """First ``length`` hex digits of the SHA-256 of the exact query string."""
    return hashlib.sha256(query.encode("utf-8")).hexdigest()[:length]


def format_timestamp(when: datetime | str) -> str:
    """``20220802-154955`` from a datetime (or an ISO string); the seed's ``%Y%m%d-%H%M%S``."""
    if isinstance(when, str):
        when = datetime.fromisoformat(when.replace("Z", "+00:00"))
    return when.strftime(TIMESTAMP_FORMAT)


def segment_name(
    query: str, query_kind: str | None, when: datetime | str, *, always_hash: bool = False
) -> str:
    """
    Deterministic segment name for one query of one run, in the seed's format.

    ``ITEMS.genres = "Action"`` + 2022-08-02T15:49:55 → ``ITEMSgenresAction_20220802-154955``;
    item id ``105`` → ``item_105_20220802-154955``.

    **Collision fix.** The seed strips every non-letter, so ``genres = "Sci-Fi"`` and ``"SciFi"``
    (or two multi-clause queries whose clause boundaries move) get the same name and one import
    silently replaces the other segment. Here the stripped name is kept only for a single canonical
    clause ``ITEMS.<letters> = "<letters>"`` (the grammar characters removed are implied, so nothing
    is lost); any other query gets ``-<8 hex digits of sha256(query)>`` appended. For item ids the
    hash is added when sanitizing changed the id. ``always_hash=True`` appends it unconditionally
    (this also rules out the remaining theoretical clash of two letter-only columns whose name+value
    concatenate identically, e.g. ``genre = "sX"`` vs ``genres = "X"``).

    :param query: The exact query string from the output line.
    :param query_kind: ``"itemAttributes"`` or ``"itemId"``.
    :param when: The run's logical date or the batch job's time (never ``now()``: a retry must
        produce the same name).
    :param always_hash: Append the query hash even when the readable name is lossless.
    """
    stamp = format_timestamp(when)
    if query_kind == "itemId":
        readable = "item_" + _NON_NAME_CHARS.sub("", query)
        lossy = _NON_NAME_CHARS.search(query) is not None or not query
    else:
        readable = _NON_LETTERS.sub("", query)
        lossy = _CANONICAL_CLAUSE.match(query.strip()) is None or query != query.strip()
    if lossy or always_hash or not readable:
        readable = f"{readable}-{query_hash(query)}" if readable else query_hash(query)
    return f"{readable}_{stamp}"


# --------------------------------------------------------------------------------------------------
# endpoint CSV files, split at max_bytes
# --------------------------------------------------------------------------------------------------


def csv_value(value: str) -> str:
    """
    Return ``value`` as one CSV field (quoted only when needed).

    :raises ValueError: for line breaks or tabs, which Pinpoint segment files cannot contain.
    """
    if _FORBIDDEN_IN_CSV.search(value):
        raise ValueError(
            f"value {value!r} contains a line break or tab, which Pinpoint CSV files cannot hold"
        )
    if _NEEDS_QUOTING.search(value):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow([value])
        return buffer.getvalue()
    return value


@dataclass(frozen=True)
class CsvPart:
    """One written part: local path, rows (without header) and size in bytes."""

    path: Path
    rows: int
    bytes: int


class EndpointCsvWriter:
    """
    Write one column (``Id`` or ``User.UserId``) to CSV parts of at most ``max_bytes`` each.

    Parts are ``<directory>/<stem>-00000.csv``, ``-00001.csv``…; each starts with the header line.
    Files are UTF-8 with ``\\n`` line ends. Use as a context manager or call :meth:`close`.

    :param directory: Local directory for the parts (created if missing).
    :param stem: File name stem (the segment name).
    :param column: ``"Id"`` (endpoint ids) or ``"User.UserId"``.
    :param max_bytes: Upper bound of a part's size (Pinpoint: 1 GB per import job).
    """

    def __init__(
        self,
        directory: Path | str,
        stem: str,
        *,
        column: str = ENDPOINT_ID_COLUMN,
        max_bytes: int = PINPOINT_MAX_IMPORT_BYTES,
    ) -> None:
        if column not in CSV_COLUMNS:
            raise ValueError(f"column must be one of {CSV_COLUMNS}, not {column!r}")
        self.directory = Path(directory)
        self.stem = stem
        self.header = (column + "\n").encode("utf-8")
        if max_bytes < len(self.header) + 2:
            raise ValueError(f"max_bytes={max_bytes} cannot hold the header and one row")
        self.max_bytes = max_bytes
        self.parts: list[CsvPart] = []
        self.rows = 0
        self._file: Any = None
        self._part_rows = 0
        self._part_bytes = 0
        self.directory.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> EndpointCsvWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_part(self) -> None:
        self._finish_part()
        path = self.directory / f"{self.stem}-{len(self.parts):05d}.csv"
        self._file = path.open("wb")
        self._file.write(self.header)
        self._part_rows = 0
        self._part_bytes = len(self.header)
        self._path = path

    def _finish_part(self) -> None:
        if self._file is not None:
            self._file.close()
            self.parts.append(CsvPart(self._path, self._part_rows, self._part_bytes))
            self._file = None

    def write(self, value: str) -> None:
        """Write one row."""
        self.write_encoded([(csv_value(value) + "\n").encode("utf-8")])

    def write_many(self, values: Iterable[str]) -> None:
        """Write many rows (Python strings)."""
        self.write_encoded((csv_value(value) + "\n").encode("utf-8") for value in values)

    def write_encoded(self, lines: Iterable[bytes]) -> None:
        """Write rows already encoded as ``b"value\\n"``."""
        for line in lines:
            if len(self.header) + len(line) > self.max_bytes:
                raise ValueError(f"a row of {len(line)} bytes cannot fit in a part of {self.max_bytes}")
            if self._file is None or self._part_bytes + len(line) > self.max_bytes:
                self._open_part()
            self._file.write(line)
            self._part_rows += 1
            self._part_bytes += len(line)
            self.rows += 1

    def write_arrow(self, values: Any) -> None:
        """
        Write a pyarrow string array / chunked array (vectorized: one ``write`` per chunk when the
        values need no quoting, splitting at ``max_bytes`` by a cumulative byte count).
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
        for chunk in chunks:
            if len(chunk) == 0:
                continue
            chunk = chunk.cast(pa.string())
            if chunk.null_count:
                chunk = pc.drop_null(chunk)
            if pc.any(pc.match_substring_regex(chunk, r'[,"\n\r\t]')).as_py():
                self.write_many(chunk.to_pylist())
                continue
            self._write_plain_chunk(chunk)

    def _write_plain_chunk(self, chunk: Any) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        sizes = pc.add(pc.binary_length(chunk), 1)  # + "\n"
        if pc.max(sizes).as_py() + len(self.header) > self.max_bytes:
            raise ValueError(f"a row cannot fit in a part of {self.max_bytes} bytes")
        start = 0
        total = len(chunk)
        while start < total:
            if self._file is None:
                self._open_part()
            room = self.max_bytes - self._part_bytes
            rest = sizes.slice(start)
            cumulative = pc.cumulative_sum(rest)
            # rows that still fit in the current part
            fit = pc.sum(pc.less_equal(cumulative, pa.scalar(room, cumulative.type))).as_py() or 0
            if fit == 0:
                self._open_part()
                continue
            piece = chunk.slice(start, fit)
            data = ("\n".join(piece.to_pylist()) + "\n").encode("utf-8")
            self._file.write(data)
            self._part_rows += fit
            self._part_bytes += len(data)
            self.rows += fit
            start += fit
            if start < total:
                self._open_part()

    def close(self) -> list[CsvPart]:
        """Close the current part; an empty segment still gets one part with just the header."""
        if self._file is None and not self.parts:
            self._open_part()
        self._finish_part()
        return self.parts


# --------------------------------------------------------------------------------------------------
# user ids → endpoint ids (join with a Pinpoint endpoint export)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedSegment:
    """Result of resolving one segment's users to endpoint CSV parts."""

    users: int
    endpoints: int
    users_without_endpoint: int
    parts: tuple[CsvPart, ...]


class EndpointIndex:
    """
    The ``(user_id, endpoint_id)`` rows of a Pinpoint endpoint export, in DuckDB (which spills to
    ``work_dir/spill`` beyond ``memory_limit``, so memory stays bounded). Endpoint ids are unique in
    an export, so every row is one endpoint.

    A Pinpoint export is a set of gzipped (or plain) JSON-lines files, one endpoint object a line
    (``Id``, ``ChannelType``, ``Address``, ``User.UserId``, ...). Endpoints without a user id are
    ignored (they cannot belong to a Personalize user segment).

    :param export_files: Local export files (``.gz`` or plain JSON lines).
    :param work_dir: Directory for the DuckDB file and its spill files.
    :param channel_types: Keep only these channels (e.g. ``["EMAIL"]``); ``None`` keeps all.
    :param memory_limit: DuckDB ``memory_limit`` (e.g. ``"1GB"``).
    """

    def __init__(
        self,
        export_files: Sequence[Path | str],
        work_dir: Path | str,
        *,
        channel_types: Collection[str] | None = None,
        memory_limit: str = "1GB",
        threads: int | None = None,
    ) -> None:
        import duckdb

        work = Path(work_dir)
        work.mkdir(parents=True, exist_ok=True)
        self.work_dir = work
        # in-memory database: DuckDB still spills to temp_directory beyond memory_limit
        self.con = duckdb.connect(":memory:")
        self._run("SET enable_progress_bar = false")
        self._run(f"SET memory_limit = '{memory_limit}'")
        self._run(f"SET temp_directory = '{work / 'spill'}'")
        self._run("SET preserve_insertion_order = false")
        if threads:
            self._run(f"SET threads = {int(threads)}")
        self._run("CREATE OR REPLACE TABLE endpoints (user_id VARCHAR, endpoint_id VARCHAR)")
        files = [str(Path(f)) for f in export_files]
        if files:
            channel_filter = ""
            params: list[Any] = [files]
            if channel_types:
                channel_filter = "AND ChannelType IN (SELECT unnest(?::VARCHAR[]))"
                params.append([c.upper() for c in channel_types])
            self._run(
                f"""
                INSERT INTO endpoints
                SELECT "User".UserId, Id
                FROM read_json(?, format = 'newline_delimited', compression = 'auto_detect',
                               columns = {{'Id': 'VARCHAR', 'ChannelType': 'VARCHAR',
                                          'User': 'STRUCT(UserId VARCHAR)'}})
                WHERE "User".UserId IS NOT NULL AND Id IS NOT NULL {channel_filter}
                """,
                params,
            )
        self.size = int(self._run("SELECT count(*) FROM endpoints")[0][0])

    def _run(self, sql: str, params: Any = None) -> list[Any]:
        """Execute and fully consume one statement (DuckDB refuses new work while a result is open)."""
        return (
            self.con.execute(sql, params).fetchall()
            if params is not None
            else self.con.execute(sql).fetchall()
        )

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> EndpointIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resolve(
        self,
        users: Sequence[str],
        writer: EndpointCsvWriter,
        batch_rows: int = 1_000_000,
    ) -> ResolvedSegment:
        """
        Write every endpoint of every user in ``users`` to ``writer`` (semi-join; an endpoint appears
        once even if its user is listed twice) and count the users with no endpoint.
        """
        con = self.con
        users_file = self.work_dir / "segment_users.txt"
        text = "\n".join(users)
        if users and text.count("\n") + text.count("\r") == len(users) - 1:
            # fast path: DuckDB reads the ids from a plain file (one id a line, no quoting at all)
            users_file.write_text(text + "\n", encoding="utf-8")
            self._run(
                "CREATE OR REPLACE TABLE segment_users AS SELECT DISTINCT user_id FROM read_csv(?, "
                "columns = {'user_id': 'VARCHAR'}, header = false, delim = '\x1f', quote = '', escape = '', "
                "auto_detect = false) WHERE user_id IS NOT NULL",
                [str(users_file)],
            )
            users_file.unlink()
        else:  # empty segment, or ids with line breaks: pass them as a list parameter
            self._run(
                "CREATE OR REPLACE TABLE segment_users AS "
                "SELECT DISTINCT user_id FROM (SELECT unnest(?::VARCHAR[]) AS user_id) WHERE user_id IS NOT NULL",
                [list(users)],
            )
        cursor = con.cursor()
        try:
            reader = cursor.sql(
                "SELECT e.endpoint_id FROM endpoints e SEMI JOIN segment_users u ON e.user_id = u.user_id"
            ).to_arrow_reader(batch_rows)
            endpoints = 0
            for batch in reader:
                writer.write_arrow(batch.column(0))
                endpoints += batch.num_rows
        finally:
            cursor.close()
        counts = self._run(
            "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS "
            "(SELECT 1 FROM endpoints e WHERE e.user_id = u.user_id)) FROM segment_users u"
        )[0]
        parts = writer.close()
        distinct_users, missing = (int(counts[0]), int(counts[1])) if counts else (0, 0)
        return ResolvedSegment(distinct_users, endpoints, missing, tuple(parts))


def resolve_with_lookup(
    users: Sequence[str],
    lookup: Any,
    writer: EndpointCsvWriter,
    channel_types: Collection[str] | None = None,
) -> ResolvedSegment:
    """
    Small-segment path: ``lookup(user_id) -> list of endpoint dicts`` (``GetUserEndpoints``; an
    empty list for a user with no endpoint). Keeps every endpoint (optionally of ``channel_types``).
    """
    wanted = {c.upper() for c in channel_types} if channel_types else None
    seen_users: set[str] = set()
    seen_endpoints: set[str] = set()
    missing = 0
    for user in users:
        if user in seen_users:
            continue
        seen_users.add(user)
        kept = 0
        for endpoint in lookup(user):
            if wanted is not None and str(endpoint.get("ChannelType", "")).upper() not in wanted:
                continue
            endpoint_id = endpoint.get("Id")
            if endpoint_id and endpoint_id not in seen_endpoints:
                seen_endpoints.add(endpoint_id)
                writer.write(endpoint_id)
            kept += 1
        if kept == 0:
            missing += 1
    parts = writer.close()
    return ResolvedSegment(len(seen_users), len(seen_endpoints), missing, tuple(parts))


def write_user_ids(users: Sequence[str], writer: EndpointCsvWriter) -> ResolvedSegment:
    """``User.UserId`` mode: write the (distinct) user ids; Pinpoint resolves them on import."""
    distinct = list(dict.fromkeys(users))
    writer.write_many(distinct)
    parts = writer.close()
    return ResolvedSegment(len(distinct), 0, 0, tuple(parts))
