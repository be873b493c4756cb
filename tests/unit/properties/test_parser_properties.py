"""
Properties of the readers on generated hostile input: the line splitter, the batch-output parser,
the segment line parser and the CSV validator.

Invariants: nothing raises (bad data is a record's ``parse_error``, a line's ``error`` or a report
error, never an exception); every line is accounted for exactly once, whatever the chunking; what
parses reads back exactly (the same values as Python's json, the same bytes at the recorded offsets).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from personalize_logic.batch_output import TooLongLine, iter_lines, iter_output_records
from personalize_logic.interactions_validation import CsvValidator
from personalize_logic.line_blocks import LineBlocks, LongLine
from personalize_logic.segments import iter_segment_lines, parse_segment_line
from tests.unit.properties import strategies as hs

SCHEMA = hs.INTERACTIONS_SCHEMA
cuts = st.lists(st.integers(0, 10**7), max_size=8)


@st.composite
def raw_lines(draw: st.DrawFn) -> list[bytes]:
    """Lines as a hostile producer writes them: JSON (any encoding), deep, long, blank, broken bytes."""
    kinds = st.sampled_from(["json", "json", "json", "deep", "long", "blank", "garbage", "cr"])
    lines = []
    for kind in draw(st.lists(kinds, max_size=8)):
        if kind == "json":
            lines.append(hs.encode(draw(hs.json_values()), draw(st.sampled_from(["ascii", "raw"]))))
        elif kind == "deep":
            lines.append(hs.deep(draw(hs.nesting_depth())).encode())
        elif kind == "long":
            lines.append(b'"' + b"x" * draw(st.integers(0, 5000)) + b'"')
        elif kind == "blank":
            lines.append(draw(st.sampled_from([b"", b"  ", b"\t"])))
        elif kind == "garbage":
            lines.append(draw(st.binary(max_size=40)).replace(b"\n", b""))
        else:
            lines.append(hs.encode(draw(hs.json_values()), "ascii") + b"\r")
    return lines


# --------------------------------------------------------------------------------------- splitter
@given(raw_lines(), cuts, st.one_of(st.none(), st.integers(1, 3000)), st.booleans())
def test_line_blocks_are_the_lines_whatever_the_chunking(
    lines: list[bytes], where: list[int], limit: int | None, terminated: bool
) -> None:
    data = b"\n".join(lines) + (b"\n" if terminated and lines else b"")
    blocks = LineBlocks(hs.chunked(data, where), limit)
    got: list[Any] = []
    for block in blocks:
        if isinstance(block, LongLine):
            got.append((block.size, block.head))
        else:
            assert block
            got.extend(block)
    expected_lines = data.split(b"\n")
    tail = expected_lines.pop()
    expected = [
        (len(line), line[: len(block_head(line))]) if limit is not None and len(line) > limit else line
        for line in expected_lines
    ]
    assert got == expected
    if blocks.tail_long is not None:
        assert limit is not None
        assert blocks.tail_long.size == len(tail) > limit
        assert tail.startswith(blocks.tail_long.head)
    else:
        assert blocks.tail == tail


def block_head(line: bytes) -> bytes:
    from personalize_logic.line_blocks import HEAD_BYTES

    return line[:HEAD_BYTES]


# --------------------------------------------------------------------------------------- batch output
@given(raw_lines(), cuts, st.one_of(st.none(), st.integers(1, 3000)))
def test_batch_output_records_every_line_once_and_exactly(
    lines: list[bytes], where: list[int], limit: int | None
) -> None:
    data = b"\n".join(lines) + b"\n"
    records = list(iter_output_records(hs.chunked(data, where), max_line_bytes=limit))
    # a line longer than the bound is reported without being read, even one of spaces
    non_blank = [
        (n, line)
        for n, line in enumerate(lines, 1)
        if line.rstrip(b"\r").strip() or (limit is not None and len(line) > limit)
    ]
    assert [r.line_number for r in records] == [n for n, _ in non_blank]
    for record, (_, line) in zip(records, non_blank, strict=True):
        assert data[record.start_offset : record.end_offset] == line + b"\n"
        if limit is not None and len(line) > limit:
            assert record.parse_error is not None
            continue
        try:
            expected = json.loads(line.rstrip(b"\r"))
        except (ValueError, RecursionError):
            assert record.parse_error is not None
            continue
        if not isinstance(expected, dict):
            assert record.parse_error == "line is not a JSON object"
            continue
        assert record.parse_error is None
        want_input = expected.get("input")
        assert record.input == (want_input if isinstance(want_input, dict) else None)


@given(raw_lines(), cuts)
def test_iter_lines_offsets_resume_exactly(lines: list[bytes], where: list[int]) -> None:
    data = b"\n".join(lines)
    full = list(iter_lines(hs.chunked(data, where)))
    for index, (number, start, _end, _line) in enumerate(full):
        resumed = list(iter_lines([data[start:]], start_offset=start, start_line=number - 1))
        assert resumed == full[index:]
    assert not any(isinstance(line, TooLongLine) for *_, line in full)


# --------------------------------------------------------------------------------------- segments
user_ids = st.one_of(hs.text(), hs.integers(), hs.floats(), st.none(), st.booleans(), hs.json_values(2))


@given(
    st.lists(
        st.fixed_dictionaries(
            {"input": st.fixed_dictionaries({"itemAttributes": st.one_of(hs.text(), hs.scalars())})},
            optional={
                "output": st.fixed_dictionaries({"usersList": st.lists(user_ids, max_size=5)}),
                "error": hs.scalars(),
            },
        )
        | hs.json_values(3),
        max_size=6,
    ),
    st.sampled_from(["ascii", "raw"]),
    hs.nesting_depth(),
)
def test_segment_lines_never_change_an_id(values: list[Any], style: str, depth: int) -> None:
    lines = [hs.encode(v, style) for v in values] + [hs.deep(depth).encode()]
    parsed = list(iter_segment_lines(io.BytesIO(b"\n".join(lines) + b"\n"), source="s.out"))
    assert [p.line_number for p in parsed] == [n for n, line in enumerate(lines, 1) if line.strip()]
    for line in parsed:
        if not line.ok:
            assert line.error
            continue
        raw = json.loads(lines[line.line_number - 1])
        users = raw["output"]["usersList"]
        assert line.users == tuple(u if isinstance(u, str) else str(u) for u in users)
        assert all(type(u) is str or (type(u) is int) for u in users)
        for user in line.users:
            user.encode("utf-8")  # valid text, writable to a CSV


@given(st.binary(max_size=200), st.integers(1, 10))
def test_segment_parser_takes_any_bytes(data: bytes, number: int) -> None:
    line = parse_segment_line(data, number, "s.out")
    assert line is None or line.line_number == number


# --------------------------------------------------------------------------------------- validator
cells = st.one_of(
    hs.text(),
    st.sampled_from(["1704070800", "-1", "1e3", "", "9" * 30, "1.5", "NaN", "x" * 300]),
    st.integers(-(2**64), 2**64).map(str),
)


@given(
    st.lists(st.lists(cells, min_size=0, max_size=7), max_size=8),
    st.sampled_from(["\n", "\r\n"]),
    st.lists(st.integers(0, 10**6), max_size=2),
    st.sampled_from([b"", b"\xff", b"\xc3", b'"', b"\r", b"\x00"]),
    cuts,
)
def test_validator_reports_problems_never_raises(
    rows: list[list[str]], newline: str, positions: list[int], garbage: bytes, where: list[int]
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow([f["name"] for f in SCHEMA["fields"]])
    writer.writerows(rows)
    data = buffer.getvalue().encode("utf-8", "surrogatepass")
    if garbage:
        data = data[:20] + hs.mutate(data[20:], positions, garbage)
    validator = CsvValidator(SCHEMA, max_errors=10_000, min_rows=0, min_users_2plus=0)
    validator.validate_bytes_stream("v.csv", _Chunks(hs.chunked(data, where)))
    report = validator.finish()
    physical = len(io.StringIO(data.decode("utf-8", "replace"), newline="").readlines())
    for error in report.errors:
        assert error.line is None or 1 <= error.line <= physical + 1, (error, physical)
    assert report.rows <= max(physical - 1, 0)  # each row is a line after the header, counted once
    if not garbage:
        assert report.rows <= len(rows)


@given(
    st.lists(
        st.tuples(
            hs.text().filter(lambda t: _writable_id(t)),
            hs.text().filter(lambda t: _writable_id(t)),
            st.sampled_from(["purchase", "view", "click"]),
            st.integers(1, 9_999_999_999),
            st.one_of(st.none(), st.floats(-1e30, 1e30, allow_nan=False), st.integers(-(10**6), 10**6)),
        ),
        max_size=20,
    )
)
def test_valid_rows_validate_and_read_back_exactly(rows: list[tuple[str, str, str, int, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([f["name"] for f in SCHEMA["fields"]])
    text_rows = [
        [u, i, e, str(t), "" if v is None else repr(v) if isinstance(v, float) else str(v)]
        for u, i, e, t, v in rows
    ]
    writer.writerows(text_rows)
    data = buffer.getvalue().encode("utf-8")
    validator = CsvValidator(SCHEMA, min_rows=0, min_users_2plus=0)
    validator.validate_bytes_stream("ok.csv", io.BytesIO(data))
    report = validator.finish()
    assert [str(e) for e in report.errors if e.line is not None] == []
    assert report.rows == len(rows)
    assert list(csv.reader(io.StringIO(data.decode("utf-8"))))[1:] == text_rows


def _writable_id(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return 0 < len(text) <= 256 and "\n" not in text and "\r" not in text


class _Chunks(io.RawIOBase):
    """A binary stream that returns the given chunks one ``read`` at a time (an S3 body's shape)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = [c for c in chunks if c]

    def read(self, size: int = -1) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""

    def readable(self) -> bool:
        return True
