"""
Split a byte stream into whole lines in linear time, with a bound on the memory one line may take.

The one line splitter of the file readers (the mParticle export, the batch-output reader, the CSV
validator). Each consumes *blocks*: runs of whole lines, each block ending with ``\\n``, so the
per-line work stays in the consumer's own loop (one ``bytes.split`` per block, in C).

Why a module of its own: the obvious loop (``buf = rest + chunk`` then ``buf.split(b"\\n")``) copies
the unfinished line once per chunk, so a line of ``n`` chunks costs ``n²/2`` chunk copies: a 256 MB
line took 41 s where 64 MB took 3 s (issue 13). Here the parts of an unfinished line are kept in a
list and joined once, when the line ends: every byte is copied a bounded number of times whatever
the line length.

Memory: a line longer than ``max_line_bytes`` is not held: once its parts pass the bound (plus at
most one chunk) they are dropped, the rest of the line is only counted, and the consumer receives a :class:`LongLine` (its
first bytes and its length) in its place. Without a bound, memory is one chunk plus one line.

Pure module: no Airflow import.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

HEAD_BYTES = 1200  # what a LongLine keeps of its line (enough for a quarantine snippet)


@dataclass(frozen=True, slots=True)
class LongLine:
    """
    A line longer than the reader's ``max_line_bytes``, in place of its bytes.

    :param head: the first :data:`HEAD_BYTES` bytes of the line.
    :param size: the length of the line in bytes, without its ``\\n``.
    :param terminated: False when the stream ended inside the line (no ``\\n`` after it).
    """

    head: bytes
    size: int
    terminated: bool = True


class LineBlocks:
    """
    Iterate ``chunks`` as lists of whole lines (without their ``\\n``) and :class:`LongLine` s.

    Concatenating the lines, each followed by ``\\n`` (a LongLine standing for its line), gives the
    stream up to its last ``\\n``. What follows the last ``\\n`` (an unterminated last line) is not
    yielded: after the iteration it is :attr:`tail` (bytes), or :attr:`tail_long` when it is longer
    than the bound. The consumer decides what a last line without terminator is (a line, or the
    truncated remainder of a damaged stream).

    One list per chunk that ends a line: the same ``rest + chunk`` and ``split`` as the classic loop
    when lines are shorter than a chunk, so the common case costs nothing extra.

    :param chunks: the stream's bytes in any chunking (empty chunks are skipped).
    :param max_line_bytes: lines longer than this come as :class:`LongLine`; None: no bound.
    """

    def __init__(self, chunks: Iterable[bytes], max_line_bytes: int | None = None) -> None:
        if max_line_bytes is not None and max_line_bytes < 1:
            raise ValueError("max_line_bytes must be at least 1")
        self._chunks = chunks
        self.max_line_bytes = max_line_bytes
        self.tail: bytes = b""
        self.tail_long: LongLine | None = None

    def __iter__(self) -> Iterator[list[bytes] | LongLine]:
        limit = self.max_line_bytes
        parts: list[bytes] = []  # the start of the unfinished line, in order
        size = 0  # bytes in parts
        skipped: bytes | None = None  # head of an unfinished line past the bound (its parts dropped)
        for chunk in self._chunks:
            if not chunk:
                continue
            if skipped is not None:  # inside a line past the bound: count until its end
                end = chunk.find(b"\n")
                if len(skipped) < HEAD_BYTES:
                    skipped += chunk[: min(HEAD_BYTES - len(skipped), len(chunk) if end < 0 else end)]
                if end < 0:
                    size += len(chunk)
                    continue
                yield LongLine(skipped, size + end)
                skipped, size = None, 0
                chunk = chunk[end + 1 :]
                if not chunk:
                    continue
            if b"\n" not in chunk:
                parts.append(chunk)
                size += len(chunk)
                if limit is not None and size > limit:
                    skipped = _head(parts)
                    parts = []
                continue
            if len(parts) > 1:  # a line longer than a chunk ends here: joined once, never re-split
                end = chunk.find(b"\n")
                parts.append(chunk[:end])
                long_line = b"".join(parts)
                lines = chunk[end + 1 :].split(b"\n")
                rest = lines.pop()
                lines.insert(0, long_line)
                longest = max(len(long_line), size + len(chunk) - len(long_line))
            else:
                buf = parts[0] + chunk if parts else chunk
                lines = buf.split(b"\n")
                rest = lines.pop()
                longest = len(buf)
            parts = [rest] if rest else []
            size = len(rest)
            if limit is not None and longest > limit:
                yield from _bounded(lines, limit)
            else:
                yield lines
        if skipped is not None:
            self.tail_long = LongLine(skipped, size, terminated=False)
        elif parts:
            tail = b"".join(parts)
            if limit is not None and len(tail) > limit:
                self.tail_long = LongLine(tail[:HEAD_BYTES], len(tail), terminated=False)
            else:
                self.tail = tail


def _head(parts: list[bytes]) -> bytes:
    head = parts[0][:HEAD_BYTES]
    for part in parts[1:]:
        if len(head) >= HEAD_BYTES:
            break
        head += part[: HEAD_BYTES - len(head)]
    return head


def _bounded(lines: list[bytes], limit: int) -> Iterator[list[bytes] | LongLine]:
    """Lines of a buffer longer than the bound: runs of short lines, each long line as a LongLine."""
    run: list[bytes] = []
    for line in lines:
        if len(line) > limit:
            if run:
                yield run
                run = []
            yield LongLine(line[:HEAD_BYTES], len(line))
        else:
            run.append(line)
    if run:
        yield run
