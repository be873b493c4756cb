"""Hostile inputs for the property tests: JSON values, ids, numbers, encodings, nesting, line shapes."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import strategies as st

# Strings that broke something once, or could: lone surrogates, digits of other scripts, line
# breaks, quotes and commas, empty, too long, a BOM, NUL, non-BMP characters.
HOSTILE_TEXT = [
    "\ud800", "a\udfffb", "\udc80", "١٢٣", "\uff11\uff12\uff13", "٣", "\n", "a\rb", "", " ", "x" * 257, "a,b",
    'say "hi"', "\ufeffid", "nul\x00", "😀", "é", "-0", "007", "1e3", "NaN", "Infinity", "$5", "19,99",
    "19.99", " 1", "1 ", "0x1F", "1_000",
]  # fmt: skip
#: The interactions schema the export writes for (EVENT_VALUE nullable), as the validator reads it.
INTERACTIONS_SCHEMA = {
    "type": "record",
    "name": "Interactions",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "ITEM_ID", "type": "string"},
        {"name": "EVENT_TYPE", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"},
        {"name": "EVENT_VALUE", "type": ["null", "float"]},
    ],
}
HOSTILE_INTS = [0, 1, -1, 2**53 + 1, -(2**63), 2**63 - 1, 2**63, -(2**63) - 1, 10**40, 10**400]


def text() -> st.SearchStrategy[str]:
    """Any string, surrogates included, or one of the known troublemakers."""
    return st.one_of(
        st.sampled_from(HOSTILE_TEXT),
        st.text(st.characters(codec=None, exclude_categories=()), max_size=12),
        st.text(max_size=8),
    )


def integers() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(HOSTILE_INTS), st.integers(-(2**70), 2**70))


def floats() -> st.SearchStrategy[float]:
    return st.floats(allow_nan=True, allow_infinity=True)


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.booleans(), integers(), floats(), text())


def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Any JSON value (Python's json dumps NaN and the infinities as its own extension)."""
    return st.recursive(
        scalars(),
        lambda children: st.one_of(
            st.lists(children, max_size=3), st.dictionaries(text(), children, max_size=3)
        ),
        max_leaves=max_leaves,
    )


def nesting_depth() -> st.SearchStrategy[int]:
    """Shallow, or far deeper than any Python parser follows (never the ambiguous zone between)."""
    return st.one_of(st.integers(0, 40), st.integers(3000, 20000))


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def encode(value: Any, style: str) -> bytes:
    """One JSON value as bytes: escaped ASCII, raw UTF-8 (lone surrogates as invalid bytes), pretty."""
    if style == "ascii":
        return json.dumps(value).encode()
    if style == "pretty":
        return json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def mutate(data: bytes, positions: list[int], garbage: bytes) -> bytes:
    """``data`` with ``garbage`` inserted at each position (taken modulo the length)."""
    out = bytearray(data)
    for pos in sorted((p % (len(out) + 1) for p in positions), reverse=True):
        out[pos:pos] = garbage
    return bytes(out)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` split at ``cuts`` (any values; taken modulo the length): the same bytes, any chunking."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]
