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
# staging: every good output line → its users in a local file, one id a line, memory flat
# --------------------------------------------------------------------------------------------------

BIG_LINE_BYTES = 1 << 20
"""Lines longer than this are streamed: the users array never sits in memory as a whole."""
READ_CHUNK_BYTES = 1 << 20
_USER_KEYS = (b"usersList", b"recommendedUsers")
_ARRAY_TOKEN = re.compile(rb'\s+|,|\]|"(?:[^"\\]|\\.)*"|.', re.DOTALL)


@dataclass(frozen=True)
class StagedSegment:
    """
    One output line, staged: its parsed fields (``line.users`` is empty: the users are in the file)
    and the local file holding its user ids, one a line, in Personalize's order (duplicates kept).

    :param line: The parsed line (``error`` set for a bad line; then ``users_file`` is None).
    :param users_file: The users file of a good line.
    :param users: How many ids the file holds.
    """

    line: SegmentLine
    users_file: Path | None = None
    users: int = 0


class _Reader:
    """A binary stream with pushback, so reading a long line in chunks never loses the next line."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.pending = b""

    def read(self, size: int) -> bytes:
        if self.pending:
            data, self.pending = self.pending, b""
            return data
        return self.handle.read(size)

    def readline(self, limit: int) -> bytes:
        if self.pending:
            end = self.pending.find(b"\n", 0, limit)
            cut = end + 1 if end >= 0 else min(limit, len(self.pending))
            data, self.pending = self.pending[:cut], self.pending[cut:]
            if data.endswith(b"\n") or len(data) >= limit:
                return data
            return data + self.handle.readline(limit - len(data))
        return self.handle.readline(limit)

    def unread(self, data: bytes) -> None:
        self.pending = data + self.pending


class _LineScanner:
    """
    Walks the JSON structure of one line outside the users array, byte by byte (only the small
    part of a line around the users goes through it), and stops where the value of
    ``output.usersList`` / ``output.recommendedUsers`` opens.
    """

    def __init__(self) -> None:
        self.stack: list[list[Any]] = []  # [kind, state, key]; kind "{" or "["
        self.in_string = False
        self.escape = False
        self.text = bytearray()
        self.depth0_done = False

    def _value_started(self) -> None:
        if self.stack and self.stack[-1][0] == "{":
            self.stack[-1][1] = "after"

    def feed(self, data: bytes) -> tuple[int, str | None]:
        """Scan ``data``; return (bytes consumed, ``"array"`` | ``"eol"`` | None)."""
        for index, byte in enumerate(data):
            char = chr(byte)
            if self.in_string:
                if self.escape:
                    self.escape = False
                elif char == "\\":
                    self.escape = True
                elif char == '"':
                    self.in_string = False
                    top = self.stack[-1] if self.stack else None
                    if top is not None and top[0] == "{" and top[1] == "key":
                        top[2], top[1] = bytes(self.text), "colon"
                    else:
                        self._value_started()
                elif char == "\n":
                    return index + 1, "eol"
                else:
                    self.text.append(byte)
                continue
            if char == "\n":
                return index + 1, "eol"
            if char == '"':
                self.in_string, self.text = True, bytearray()
            elif char == "{":
                self.stack.append(["{", "key", None])
            elif char == "[":
                path = [frame[2] for frame in self.stack if frame[0] == "{"]
                if (
                    len(self.stack) == 2
                    and all(frame[0] == "{" for frame in self.stack)
                    and self.stack[1][1] == "value"
                    and path[0] == b"output"
                    and path[1] in _USER_KEYS
                ):
                    return index + 1, "array"
                self.stack.append(["[", "value", None])
            elif char in "}]":
                if self.stack:
                    self.stack.pop()
                self._value_started()
            elif char == ":":
                if self.stack and self.stack[-1][1] == "colon":
                    self.stack[-1][1] = "value"
            elif char == ",":
                if self.stack and self.stack[-1][0] == "{":
                    self.stack[-1][1] = "key"
            elif not char.isspace():
                self._value_started()
        return len(data), None

    def array_closed(self) -> None:
        self._value_started()


class _UsersArray:
    """
    The content of a users array (after ``[``), fed chunk by chunk: every string element goes to
    ``out`` as one line. Fast path (no backslash in the chunk): ``split(b'"')``, so the per-user
    work stays in C; with escapes, a token regex and ``json.loads`` per string.
    """

    def __init__(self, out: Any) -> None:
        self.out = out
        self.carry = b""
        self.count = 0
        self.seen_value = False
        self.error: str | None = None

    def _fail(self, message: str) -> int:
        self.error = message
        return -1

    def feed(self, data: bytes) -> int | None:
        """Consume ``data``; return the offset in ``data`` just after the closing ``]`` (None: not yet;
        -1: the array is not a list of strings, see :attr:`error`)."""
        offset_base = len(self.carry)
        buf = self.carry + data
        end = self._slow(buf) if b"\\" in buf else self._fast(buf)
        if end is None or end < 0:
            return end
        return end - offset_base

    def _separator_ok(self, text: bytes, *, before_value: bool) -> bool:
        stripped = text.strip()
        if before_value:
            return stripped == (b"," if self.seen_value else b"")
        return stripped == b""  # before "]"

    def _fast(self, buf: bytes) -> int | None:
        pieces = buf.split(b'"')
        tail = b""
        if len(pieces) % 2 == 0:  # the last string is not closed yet
            tail = b'"' + pieces.pop()
        position = 0
        values: list[bytes] = []
        result: int | None = None
        for index in range(0, len(pieces), 2):
            outside = pieces[index]
            last = index == len(pieces) - 1
            close = outside.find(b"]")
            newline = outside.find(b"\n")
            if newline >= 0 and (close < 0 or newline < close):
                return self._fail("the line ends inside the users array")
            if close >= 0:
                if not self._separator_ok(outside[:close], before_value=False):
                    return self._fail("the users array holds a value that is not a string")
                result = position + close + 1
                break
            if last:  # an outside piece that may continue in the next chunk
                tail = outside + tail
                break
            if not self._separator_ok(outside, before_value=True):
                return self._fail("the users array holds a value that is not a string")
            values.append(pieces[index + 1])
            self.seen_value = True
            position += len(outside) + len(pieces[index + 1]) + 2
        self._write(values)
        self.carry = b"" if result is not None else tail
        return result

    def _slow(self, buf: bytes) -> int | None:
        """Escapes in the chunk: tokenize, decode each string; carry from the last complete value on."""
        values: list[bytes] = []
        separator = bytearray()
        boundary = 0  # the carry starts at a value boundary, like the fast path's
        for match in _ARRAY_TOKEN.finditer(buf):
            token = match.group()
            if token.isspace() or token == b",":
                separator += token
                continue
            if token == b"]":
                if not self._separator_ok(bytes(separator), before_value=False):
                    return self._fail("the users array is not valid JSON")
                self._write(values)
                self.carry = b""
                return match.end()
            if token == b'"':  # a string that continues in the next chunk
                break
            if not (token.startswith(b'"') and len(token) > 1 and token.endswith(b'"')):
                return self._fail("the users array holds a value that is not a string")
            if not self._separator_ok(bytes(separator), before_value=True):
                return self._fail("the users array is not valid JSON")
            try:
                value = json.loads(token)
            except ValueError:
                return self._fail("a user id in the users array is not a valid JSON string")
            if "\n" in value or "\r" in value:
                return self._fail("a user id contains a line break")
            values.append(value.encode("utf-8"))
            self.seen_value = True
            separator = bytearray()
            boundary = match.end()
        self._write(values)
        self.carry = buf[boundary:]
        return None

    def _write(self, values: list[bytes]) -> None:
        if values:
            self.out.write(b"\n".join(values) + b"\n")
            self.count += len(values)


def _users_path(out_dir: Path, source_index: int, line_number: int) -> Path:
    return out_dir / f"{source_index:05d}-{line_number:07d}.users"


def _stage_small(text: bytes, number: int, source: str, path: Path) -> StagedSegment | None:
    parsed = parse_segment_line(text, number, source)
    if parsed is None:
        return None
    if not parsed.ok:
        return StagedSegment(parsed)
    if any("\n" in user or "\r" in user for user in parsed.users):
        return StagedSegment(
            SegmentLine(
                source, number, parsed.query, parsed.query_kind, error="a user id contains a line break"
            )
        )
    with path.open("wb") as out:
        if parsed.users:
            out.write(("\n".join(parsed.users) + "\n").encode("utf-8"))
    line = SegmentLine(source, number, parsed.query, parsed.query_kind)
    return StagedSegment(line, path, len(parsed.users))


def _stage_big(
    reader: _Reader, head: bytes, number: int, source: str, path: Path, chunk_bytes: int
) -> StagedSegment | None:
    scanner = _LineScanner()
    skeleton = bytearray()
    array: _UsersArray | None = None
    closed = False
    data = head
    with path.open("wb") as out:
        while True:
            if not data:
                data = reader.read(chunk_bytes)
                if not data:
                    break
            if array is not None and not closed:
                end = array.feed(data)
                if end is not None and end < 0:
                    _skip_rest_of_line(reader, data)
                    query, kind = _query_hint(bytes(skeleton))
                    return StagedSegment(SegmentLine(source, number, query, kind, error=array.error))
                if end is None:
                    data = b""
                    continue
                skeleton += b"]"
                closed = True
                scanner.array_closed()
                data = data[end:]
                continue
            consumed, event = scanner.feed(data)
            if event == "eol":
                skeleton += data[: consumed - 1]
                reader.unread(data[consumed:])
                break
            skeleton += data[:consumed]
            data = data[consumed:]
            if event == "array":
                array = _UsersArray(out)
    parsed = parse_segment_line(bytes(skeleton), number, source)
    if parsed is None:
        return None
    if not parsed.ok or array is None:
        if parsed.ok:  # no users array found by the scanner: the parser had the users
            return _stage_small(bytes(skeleton), number, source, path)
        return StagedSegment(parsed)
    line = SegmentLine(source, number, parsed.query, parsed.query_kind)
    return StagedSegment(line, path, array.count)


_QUERY_HINT = re.compile(rb'"(itemAttributes|itemId)"\s*:\s*("(?:[^"\\]|\\.)*")')


def _query_hint(skeleton: bytes) -> tuple[str | None, str | None]:
    """The query of a streamed line whose users could not be read, when it came before them."""
    match = _QUERY_HINT.search(skeleton)
    if match is None:
        return None, None
    try:
        return str(json.loads(match.group(2))), match.group(1).decode()
    except ValueError:
        return None, None


def _skip_rest_of_line(reader: _Reader, data: bytes) -> None:
    """After a bad users array: drop the rest of the line (the next line starts after its newline)."""
    while True:
        newline = data.find(b"\n")
        if newline >= 0:
            reader.unread(data[newline + 1 :])
            return
        data = reader.read(READ_CHUNK_BYTES)
        if not data:
            return


def stage_segment_users(
    handle: Any,
    source: str,
    out_dir: Path | str,
    *,
    source_index: int = 0,
    big_line_bytes: int = BIG_LINE_BYTES,
    chunk_bytes: int = READ_CHUNK_BYTES,
) -> Iterator[StagedSegment]:
    """
    Stage every line of one batch segment output file: yield a :class:`StagedSegment` per non-blank
    line, its users written to ``<out_dir>/<source_index>-<line>.users``.

    A line up to ``big_line_bytes`` goes through :func:`parse_segment_line`; a longer one (one
    query of a million users is a 10 MB line) is streamed: the users array is copied to the file
    chunk by chunk and the rest of the line (query, error) is parsed by :func:`parse_segment_line`,
    so memory does not grow with the segment. A line whose users cannot be read (a value that is not
    a string, a user id with a line break) is an error line naming why.

    :param handle: The file, opened in binary mode.
    :param source: Its name, for error messages (the S3 URI).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reader = _Reader(handle)
    number = 0
    while True:
        head = reader.readline(big_line_bytes)
        if not head:
            return
        number += 1
        path = _users_path(out, source_index, number)
        if head.endswith(b"\n") or len(head) < big_line_bytes:
            staged = _stage_small(head, number, source, path)
        else:
            staged = _stage_big(reader, head, number, source, path, chunk_bytes)
        if staged is not None:
            yield staged


def read_users(users_file: Path | str) -> Iterator[str]:
    """The user ids of a users file, one per line (blank lines skipped)."""
    with Path(users_file).open(encoding="utf-8") as handle:
        for line in handle:
            user = line.rstrip("\n")
            if user:
                yield user


# --------------------------------------------------------------------------------------------------
# joins in DuckDB: memory bounded (spills to disk), whatever the size of the segment
# --------------------------------------------------------------------------------------------------

DEFAULT_MEMORY_LIMIT = "64MB"
"""What the joins hold in memory before they spill (measured: ``benchmarks/bench_customer_profiles.py``
keeps peak RSS at 5 M users within 1.2x of 1 M with it)."""
DEFAULT_THREADS = 1
MAX_MEMORY_LIMIT_MB = 1024
"""DuckDB fails some statements with "Out of Memory" under a small limit (an allocation it cannot
spill); such a statement is retried with the limit doubled, up to this."""
MAX_OBJECT_BYTES = 1 << 20
"""The largest JSON object (one endpoint, one profile) the exports are read with: DuckDB's JSON reader
keeps buffers of this size per thread (its 16 MB default would hold most of ``memory_limit``). A
profile object is at most 250 KB (Customer Profiles terminology page); an endpoint is smaller."""


class SegmentJoin:
    """
    A DuckDB session (a database file in ``work_dir``, spilling to ``work_dir/spill`` beyond
    ``memory_limit``) that holds
    one side of a join, ``keys (user_id, value)``, loaded by the subclass, and joins staged users
    files with it. :class:`EndpointIndex` (Pinpoint endpoints) and :class:`ProfileKeyIndex`
    (Customer Profiles keys) are its two sides.
    """

    def __init__(
        self,
        work_dir: Path | str,
        *,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        threads: int | None = DEFAULT_THREADS,
    ) -> None:
        import duckdb

        work = Path(work_dir)
        work.mkdir(parents=True, exist_ok=True)
        self.work_dir = work
        # a database file, not ":memory:": table data beyond memory_limit is evicted to it, so the
        # keys of a domain of any size fit (an in-memory database fails with "Out of Memory")
        self.con = duckdb.connect(str(work / "join.duckdb"))
        self.memory_limit_mb = _megabytes(memory_limit)
        self._run("SET enable_progress_bar = false")
        self._run(f"SET memory_limit = '{self.memory_limit_mb}MB'")
        self._run(f"SET temp_directory = '{work / 'spill'}'")
        self._run("SET preserve_insertion_order = false")
        if threads:
            self._run(f"SET threads = {int(threads)}")
        self._run("CREATE OR REPLACE TABLE keys (user_id VARCHAR, value VARCHAR)")
        self.size = 0

    def _run(self, sql: str, params: Any = None) -> list[Any]:
        """Execute and fully consume one statement (DuckDB refuses new work while a result is open);
        on DuckDB's "Out of Memory", retry with the memory limit doubled (up to 1 GB)."""
        import duckdb

        limit = self.memory_limit_mb
        try:
            while True:
                try:
                    if params is None:
                        return self.con.execute(sql).fetchall()
                    return self.con.execute(sql, params).fetchall()
                except duckdb.OutOfMemoryException:
                    if limit * 2 > MAX_MEMORY_LIMIT_MB:
                        raise
                    limit *= 2
                    self.con.execute(f"SET memory_limit = '{limit}MB'")
        finally:
            if limit != self.memory_limit_mb:  # the next statement starts from the configured limit
                self.con.execute(f"SET memory_limit = '{self.memory_limit_mb}MB'")

    def _count_keys(self) -> None:
        self.size = int(self._run("SELECT count(*) FROM keys")[0][0])

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> SegmentJoin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load_users(self, users_file: Path | str) -> int:
        """The distinct users of a staged users file into table ``segment_users``; their number."""
        self._run(
            "CREATE OR REPLACE TABLE segment_users AS SELECT DISTINCT user_id FROM read_csv(?, "
            "columns = {'user_id': 'VARCHAR'}, header = false, delim = '\x1f', quote = '', escape = '', "
            "auto_detect = false, strict_mode = false) WHERE user_id IS NOT NULL AND user_id <> ''",
            [str(users_file)],
        )
        return int(self._run("SELECT count(*) FROM segment_users")[0][0])

    def users_without_key(self) -> int:
        """Users of ``segment_users`` with no row in ``keys``."""
        return int(
            self._run(
                "SELECT count(*) FROM segment_users u WHERE NOT EXISTS "
                "(SELECT 1 FROM keys k WHERE k.user_id = u.user_id)"
            )[0][0]
        )


def _megabytes(limit: str) -> int:
    """``"64MB"`` / ``"1GB"`` → megabytes (what ``SET memory_limit`` takes)."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]i?B)\s*", limit, re.IGNORECASE)
    if match is None:
        raise ValueError(f"memory_limit {limit!r}: expected e.g. '64MB' or '1GB'")
    factor = {"K": 1 / 1024, "M": 1, "G": 1024}[match[2][0].upper()]
    return max(1, int(int(match[1]) * factor))


@dataclass(frozen=True)
class ResolvedSegment:
    """Result of resolving one segment's users to endpoint CSV parts."""

    users: int
    endpoints: int
    users_without_endpoint: int
    parts: tuple[CsvPart, ...]


class EndpointIndex(SegmentJoin):
    """
    The ``(user_id, endpoint_id)`` rows of a Pinpoint endpoint export. Endpoint ids are unique in an
    export, so every row is one endpoint.

    A Pinpoint export is a set of gzipped JSON-lines files, one endpoint object a line (``Id``,
    ``ChannelType``, ``Address``, ``User.UserId``, ...). Endpoints without a user id are ignored
    (they cannot belong to a Personalize user segment).

    :param export_files: Local export files (``.gz``; plain JSON lines are read too).
    :param work_dir: Directory for DuckDB's spill files.
    :param channel_types: Keep only these channels (e.g. ``["EMAIL"]``); ``None`` keeps all.
    :param memory_limit: DuckDB ``memory_limit`` (e.g. ``"1GB"``).
    """

    def __init__(
        self,
        export_files: Sequence[Path | str],
        work_dir: Path | str,
        *,
        channel_types: Collection[str] | None = None,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        threads: int | None = DEFAULT_THREADS,
    ) -> None:
        super().__init__(work_dir, memory_limit=memory_limit, threads=threads)
        files = [str(Path(f)) for f in export_files]
        if files:
            channel_filter = ""
            params: list[Any] = [files]
            if channel_types:
                channel_filter = "AND ChannelType IN (SELECT unnest(?::VARCHAR[]))"
                params.append([c.upper() for c in channel_types])
            self._run(
                f"""
                INSERT INTO keys
                SELECT "User".UserId, Id
                FROM read_json(?, format = 'newline_delimited', compression = 'auto_detect', maximum_object_size = {MAX_OBJECT_BYTES},
                               columns = {{'Id': 'VARCHAR', 'ChannelType': 'VARCHAR',
                                          'User': 'STRUCT(UserId VARCHAR)'}})
                WHERE "User".UserId IS NOT NULL AND Id IS NOT NULL {channel_filter}
                """,
                params,
            )
        self._count_keys()

    def resolve(
        self, users_file: Path | str, writer: EndpointCsvWriter, batch_rows: int = 1_000_000
    ) -> ResolvedSegment:
        """
        Write every endpoint of every user of ``users_file`` to ``writer`` (semi-join; an endpoint
        appears once even if its user is listed twice) and count the users with no endpoint.
        """
        users = self.load_users(users_file)
        cursor = self.con.cursor()
        endpoints = 0
        try:
            reader = cursor.sql(
                "SELECT k.value FROM keys k SEMI JOIN segment_users u ON k.user_id = u.user_id"
            ).to_arrow_reader(batch_rows)
            for batch in reader:
                writer.write_arrow(batch.column(0))
                endpoints += batch.num_rows
        finally:
            cursor.close()
        missing = self.users_without_key()
        return ResolvedSegment(users, endpoints, missing, tuple(writer.close()))

    def distinct_users(
        self, users_file: Path | str, writer: EndpointCsvWriter, batch_rows: int = 1_000_000
    ) -> ResolvedSegment:
        """``User.UserId`` layout: the distinct user ids of ``users_file``; Pinpoint resolves them on import."""
        users = self.load_users(users_file)
        cursor = self.con.cursor()
        try:
            for batch in cursor.sql("SELECT user_id FROM segment_users").to_arrow_reader(batch_rows):
                writer.write_arrow(batch.column(0))
        finally:
            cursor.close()
        return ResolvedSegment(users, 0, 0, tuple(writer.close()))


def resolve_with_lookup(
    users: Iterable[str],
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


# --------------------------------------------------------------------------------------------------
# user ids → Customer Profiles upload CSV (join with a snapshot of the domain's profile keys)
# --------------------------------------------------------------------------------------------------

UPLOAD_KEY_COLUMN = "user_id"
UPLOAD_SEGMENT_COLUMN = "segment"


@dataclass(frozen=True)
class UploadFile:
    """
    One segment's Customer Profiles upload CSV (header ``user_id,segment``).

    :param users: Distinct users of the segment.
    :param rows: Rows written (users matched to a profile, or every user with ``create_missing``).
    :param users_without_profile: Users with no profile (``None`` when not checked: ``create_missing``).
    :param bytes: Size of the file.
    :param sha256: Hex SHA-256 of the file.
    """

    path: Path
    users: int
    rows: int
    users_without_profile: int | None
    bytes: int
    sha256: str


class ProfileKeyIndex(SegmentJoin):
    """
    The profile keys of a Customer Profiles domain, read from a segment snapshot (JSON lines, one
    profile a line, ``.jsonl`` or gzipped), or none at all (``snapshot_files=None``: every user is
    written, the upload creates the missing profiles).

    :param snapshot_files: Local snapshot files, or ``None`` when missing profiles are created.
    :param profile_key: The profile attribute holding the user id: ``AccountNumber`` (a standard
        attribute) or ``Attributes.<name>`` (a custom one).
    """

    def __init__(
        self,
        snapshot_files: Sequence[Path | str] | None,
        work_dir: Path | str,
        *,
        profile_key: str,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        threads: int | None = DEFAULT_THREADS,
    ) -> None:
        super().__init__(work_dir, memory_limit=memory_limit, threads=threads)
        self.checked = snapshot_files is not None
        files = [str(Path(f)) for f in snapshot_files or ()]
        if files:
            if not re.fullmatch(r"(Attributes\.)?[A-Za-z0-9_-]+", profile_key):
                raise ValueError(f"profile_key {profile_key!r}: a profile attribute or Attributes.<name>")
            if profile_key.startswith("Attributes."):
                # a one-field STRUCT: DuckDB parses only that field of the custom attributes
                name = profile_key.removeprefix("Attributes.")
                column, columns = f'Attributes."{name}"', f"""{{'Attributes': 'STRUCT("{name}" VARCHAR)'}}"""
            else:
                column, columns = f'"{profile_key}"', f"{{'{profile_key}': 'VARCHAR'}}"
            params: list[Any] = [files]
            self._run(
                f"""
                INSERT INTO keys
                SELECT {column} AS user_id, NULL
                FROM read_json(?, format = 'newline_delimited', compression = 'auto_detect', maximum_object_size = {MAX_OBJECT_BYTES},
                               columns = {columns})
                WHERE user_id IS NOT NULL
                """,
                params,
            )
        self._count_keys()

    def write_upload(self, users_file: Path | str, segment_value: str, path: Path | str) -> UploadFile:
        """
        Write the upload CSV of one segment: one row ``<user id>,<segment_value>`` per distinct user
        that has a profile (every distinct user when the index is not checked), and count the users
        without one.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        users = self.load_users(users_file)
        join = "SEMI JOIN keys k ON k.user_id = u.user_id" if self.checked else ""
        copied = self._run(
            f"COPY (SELECT u.user_id AS {UPLOAD_KEY_COLUMN}, ?::VARCHAR AS {UPLOAD_SEGMENT_COLUMN} "
            f"FROM segment_users u {join}) TO '{path}' (FORMAT csv, HEADER)",
            [segment_value],
        )
        rows = int(copied[0][0])  # COPY answers the number of rows it wrote
        missing = users - rows if self.checked else None
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return UploadFile(path, users, rows, missing, path.stat().st_size, digest.hexdigest())


# --------------------------------------------------------------------------------------------------
# what an activation was made from: compared when a retry or rerun finds an earlier activation
# --------------------------------------------------------------------------------------------------


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def fingerprint_differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """
    The keys whose values differ between two activation fingerprints, as ``key: before → now``
    (sorted; a key missing on one side shows as ``null``). Empty when they are equal.

    >>> fingerprint_differences({"rows": 3, "sha256": "a"}, {"rows": 2, "sha256": "a"})
    ['rows: 3 → 2']
    """
    return [
        f"{key}: {_short(before.get(key))} → {_short(now.get(key))}"
        for key in sorted(set(before) | set(now))
        if before.get(key) != now.get(key)
    ]


def fit_name(name: str, max_length: int) -> str:
    """``name`` itself when it fits in ``max_length`` characters; else its head and a hash of all of it
    (deterministic, so a retry finds the same resource)."""
    if len(name) <= max_length:
        return name
    digest = query_hash(name, QUERY_HASH_LENGTH)
    return f"{name[: max_length - len(digest) - 1]}-{digest}"
