from __future__ import annotations

import json

import pytest

from personalize_logic.batch_output import is_output_key, iter_lines, iter_output_records, parse_line

LINES = [
    b'{"input":{"userId":"1"},"output":{"recommendedItems":["a"],"scores":[0.5]},"error":null}',
    b"",
    b'{"input": {"userId": "2"}, "output": {"recommendedItems": ["b"]}}',
    b'{"input":{"userId":"3"},"output":null,"error":"Item not found"}',
    b"not json",
]


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 64, 10_000])
def test_lines_and_offsets_do_not_depend_on_chunking(chunk_size):
    data = b"\n".join(LINES) + b"\r\n"
    got = list(iter_lines(_chunks(data, chunk_size)))
    assert [n for n, *_ in got] == [1, 3, 4, 5]
    for _, start, end, line in got:
        assert data[start:end].rstrip(b"\r\n") == line
    assert got[-1][2] == len(data)


def test_resume_from_offset_continues_numbering():
    data = b"\n".join(LINES) + b"\n"
    full = list(iter_lines([data]))
    _, start, _, _ = full[2]
    resumed = list(iter_lines([data[start:]], start_offset=start, start_line=3))
    assert resumed == full[2:]


def test_last_line_without_newline():
    assert list(iter_lines([b"a\nb"])) == [(1, 0, 2, b"a"), (2, 2, 3, b"b")]


def test_records_classify_error_and_parse_problems():
    records = list(iter_output_records([b"\n".join(LINES)]))
    assert [r.ok for r in records] == [True, True, False, False]
    assert records[2].error == "Item not found"
    assert records[3].parse_error.startswith("invalid JSON")
    assert records[1].output == {"recommendedItems": ["b"]}


def test_non_string_error_is_kept_as_json_text():
    record = parse_line(b'{"input":{},"error":{"code":1}}', 1, 0, 10)
    assert record.error == json.dumps({"code": 1})


@pytest.mark.parametrize(
    "line",
    [
        b'{"input":{"userId":"1"},"output":{"recommendedItems":["a"],"scores":[1e-3,2]},"error":null}',
        b'{"input":{"userId":"1"},"output":{"scores":[0.1, 0.2], "recommendedItems":["a"]}}',
    ],
)
def test_keep_scores_false_drops_only_scores(line):
    record = parse_line(line, 1, 0, len(line), keep_scores=False)
    assert record.output == {"recommendedItems": ["a"]}


def test_scores_text_inside_a_string_is_not_touched():
    line = b'{"input":{"userId":"x\\",\\"scores\\":[1]"},"output":{"recommendedItems":["a"]}}'
    record = parse_line(line, 1, 0, len(line), keep_scores=False)
    assert record.input == {"userId": 'x","scores":[1]'}


@pytest.mark.parametrize(
    ("key", "expected"),
    [("out/users.json.out", True), ("out/_CHECK", False), ("out/users.json", False), ("out/", False)],
)
def test_is_output_key(key, expected):
    assert is_output_key(key) is expected
