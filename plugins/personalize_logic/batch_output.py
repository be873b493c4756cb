"""
Stream Amazon Personalize batch-inference output (JSON lines, ``<input name>.out``).

Each output line is ``{"input": {...}, "output": {...}, "error": null | "<message>"}``. A non-null
``error`` means Personalize could not score that input line and its ``output`` must not be used
(the ``error`` field is absent from some documented examples, so a missing field counts as null).

The reader works on an iterable of byte chunks (an S3 ``StreamingBody.iter_chunks()``, a file read in
blocks, a generator) and never holds more than one chunk plus one line in memory (lines are split by
:class:`personalize_logic.line_blocks.LineBlocks`, in time linear in the line's length; with
``max_line_bytes`` a longer line is not held at all and comes back as a record whose ``parse_error``
says so). Every record carries its 1-based line number and its byte offsets in the *file* so a
consumer can checkpoint and later resume with an S3 ranged read from ``end_offset``.

Hostile lines never raise: invalid JSON, invalid UTF-8 and JSON nested deeper than the parser can
follow (``RecursionError``) all become a record with ``parse_error`` set, which the consumer counts
(the mParticle upload dead-letters it and goes on).

Pure module: no Airflow import.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from personalize_logic.line_blocks import LineBlocks, LongLine

OUTPUT_SUFFIX = ".out"

# ``"scores": [numbers]`` with its separating comma. Outside a JSON string a ``"scores"`` followed by
# ``:`` can only be a key (a quote inside a string is always escaped), and the class only admits
# number characters, so removing the match leaves valid JSON with the same other members.
_SCORES = re.compile(rb',\s*"scores"\s*:\s*\[[-+0-9.eE,\s]*\]|"scores"\s*:\s*\[[-+0-9.eE,\s]*\]\s*,')


class OutputRecord(NamedTuple):
    """
    One line of a batch-inference output file.

    :param line_number: 1-based line number in the file.
    :param start_offset: byte offset of the line's first byte.
    :param end_offset: byte offset just after the line's terminator (where the next line starts).
    :param input: the ``input`` object (e.g. ``{"userId": "42"}``), or None if unparsable.
    :param output: the ``output`` object (e.g. ``{"recommendedItems": [...]}``), or None.
    :param error: Personalize's own ``error`` value as text when it is not null, else None.
    :param parse_error: why the line itself is not a JSON object, else None.
    """

    line_number: int
    start_offset: int
    end_offset: int
    input: dict[str, Any] | None
    output: dict[str, Any] | None
    error: str | None
    parse_error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the line parsed and Personalize reported no error for it."""
        return self.error is None and self.parse_error is None


def is_output_key(key: str) -> bool:
    """
    Tell whether an S3 key under a batch-inference output prefix is a result file.

    Personalize writes ``<input name>.out`` per input file, plus a ``_CHECK`` object (a write probe)
    that is not output; everything not ending in ``.out`` is ignored.
    """
    name = key.rsplit("/", 1)[-1]
    return name.endswith(OUTPUT_SUFFIX) and name != "_CHECK"


def iter_lines(
    chunks: Iterable[bytes], *, start_offset: int = 0, start_line: int = 0, max_line_bytes: int | None = None
) -> Iterator[tuple[int, int, int, bytes]]:
    """
    Split a byte stream into lines with their positions.

    Yields ``(line_number, start_offset, end_offset, line)`` where ``line`` has no terminator
    (``\\n`` or ``\\r\\n``). Blank lines are counted but not yielded; a last line without a
    terminator is yielded. ``start_offset`` / ``start_line`` describe where ``chunks`` begins in the
    file (the first byte of a ranged read and the number of lines before it). A line longer than
    ``max_line_bytes`` is yielded as a :class:`TooLongLine` (its first bytes and its size) instead of
    its bytes, which are not kept.
    """
    line_number = start_line
    offset = start_offset
    blocks = LineBlocks(chunks, max_line_bytes)
    for lines in blocks:
        if isinstance(lines, LongLine):
            line_number += 1
            end = offset + lines.size + 1
            yield line_number, offset, end, _too_long(lines)
            offset = end
            continue
        for part in lines:
            line_number += 1
            end = offset + len(part) + 1
            line = part[:-1] if part.endswith(b"\r") else part
            if line.strip():
                yield line_number, offset, end, line
            offset = end
    if blocks.tail_long is not None:
        yield line_number + 1, offset, offset + blocks.tail_long.size, _too_long(blocks.tail_long)
    elif blocks.tail:
        carry = blocks.tail
        line = carry[:-1] if carry.endswith(b"\r") else carry
        if line.strip():
            yield line_number + 1, offset, offset + len(carry), line


class TooLongLine(bytes):
    """
    What :func:`iter_lines` yields in place of a line longer than ``max_line_bytes``: the line's first
    bytes, with its full length in :attr:`size` (its other bytes were never held).
    """

    size: int

    def __new__(cls, head: bytes, size: int) -> TooLongLine:
        line = super().__new__(cls, head)
        line.size = size
        return line


def _too_long(line: LongLine) -> TooLongLine:
    return TooLongLine(line.head, line.size)


def parse_line(
    line: bytes, line_number: int, start_offset: int, end_offset: int, *, keep_scores: bool = True
) -> OutputRecord:
    """
    Parse one output line into an :class:`OutputRecord` (never raises on bad data).

    :param keep_scores: False skips parsing ``output.scores`` (about half the parse time for
        USER_PERSONALIZATION lines); the record's ``output`` then has no ``scores`` key.
    """
    if isinstance(line, TooLongLine):
        return OutputRecord(
            line_number, start_offset, end_offset, None, None, None,
            f"line of {line.size} bytes is longer than the reader's limit: not parsed",
        )  # fmt: skip
    try:
        obj = json.loads(line if keep_scores else _SCORES.sub(b"", line, 1))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        return OutputRecord(line_number, start_offset, end_offset, None, None, None, f"invalid JSON: {exc}")
    except RecursionError:
        return OutputRecord(
            line_number, start_offset, end_offset, None, None, None,
            "invalid JSON: nested deeper than the parser can follow",
        )  # fmt: skip
    if not isinstance(obj, dict):
        return OutputRecord(
            line_number, start_offset, end_offset, None, None, None, "line is not a JSON object"
        )
    raw_input = obj.get("input")
    raw_output = obj.get("output")
    error = obj.get("error")
    if error is not None and not isinstance(error, str):
        try:
            error = json.dumps(error, sort_keys=True)
        except (RecursionError, ValueError):
            error = f"<a {type(error).__name__} too deeply nested to show>"
    return OutputRecord(
        line_number,
        start_offset,
        end_offset,
        raw_input if isinstance(raw_input, dict) else None,
        raw_output if isinstance(raw_output, dict) else None,
        error,
    )


def iter_output_records(
    chunks: Iterable[bytes],
    *,
    start_offset: int = 0,
    start_line: int = 0,
    keep_scores: bool = True,
    max_line_bytes: int | None = None,
) -> Iterator[OutputRecord]:
    """
    Yield an :class:`OutputRecord` for every non-blank line of a batch-inference output stream.

    ``start_offset``/``start_line``/``max_line_bytes`` as in :func:`iter_lines`; ``keep_scores`` as in
    :func:`parse_line`.
    """
    for line_number, start, end, line in iter_lines(
        chunks, start_offset=start_offset, start_line=start_line, max_line_bytes=max_line_bytes
    ):
        yield parse_line(line, line_number, start, end, keep_scores=keep_scores)
