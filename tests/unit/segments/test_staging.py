"""segments.stage_segment_users: every line staged, big lines streamed with the same result; the
DuckDB joins (profile keys → upload CSV) from the staged files."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from personalize_logic.segments import (
    ProfileKeyIndex,
    fingerprint_differences,
    fit_name,
    read_users,
    stage_segment_users,
)

LINES = [
    {"input": {"itemAttributes": 'ITEMS.genres = "Action"'}, "output": {"usersList": [f"u{i}" for i in range(300)]}, "error": None},
    {"output": {"recommendedUsers": ['a"b', "c,d", "é", "back\\slash"]}, "input": {"itemId": "105"}},
    {"input": {"itemAttributes": "z"}, "output": {"usersList": ["q"]}, "error": "boom"},
    {"input": {"itemAttributes": "w"}, "output": {"usersList": ["n\nx"]}},
    {"input": {"itemAttributes": "v"}, "output": {"usersList": []}},
    {"input": {"itemAttributes": 'x "usersList": ["trap"]'}, "output": {"usersList": ["real"]}},
]  # fmt: skip


def _file(separators=(", ", ": ")) -> bytes:
    text = "\n".join(json.dumps(line, separators=separators, ensure_ascii=False) for line in LINES)
    return (text + "\n\n").encode("utf-8")


def _stage(data: bytes, tmp_path: Path, **kwargs) -> list[tuple]:
    out = []
    for staged in stage_segment_users(io.BytesIO(data), "s3://b/o.out", tmp_path / "users", **kwargs):
        users = list(read_users(staged.users_file)) if staged.users_file else None
        out.append((staged.line.line_number, staged.line.query, staged.line.error, staged.users, users))
    return out


def test_every_line_is_staged_with_its_users(tmp_path):
    staged = _stage(_file(), tmp_path)
    assert [s[0] for s in staged] == [1, 2, 3, 4, 5, 6]
    action, item, error, line_break, empty, trap = staged
    assert action[1:4] == ('ITEMS.genres = "Action"', None, 300)
    assert action[4][:3] == ["u0", "u1", "u2"]
    assert item[4] == ['a"b', "c,d", "é", "back\\slash"]
    assert error[2] == "error: boom"
    assert line_break[2] == "a user id contains a line break"
    assert empty[3:] == (0, [])
    assert trap[4] == ["real"]


@pytest.mark.parametrize("separators", [(", ", ": "), (",", ":")])
@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 4096])
def test_a_streamed_line_gives_what_the_parser_gives(tmp_path, separators, chunk):
    data = _file(separators)
    parsed = _stage(data, tmp_path / "parsed")
    streamed = _stage(data, tmp_path / "streamed", big_line_bytes=16, chunk_bytes=chunk)
    assert [s[:2] + s[3:] for s in streamed] == [s[:2] + s[3:] for s in parsed]
    assert [bool(s[2]) for s in streamed] == [bool(s[2]) for s in parsed]


def test_a_streamed_line_that_breaks_off_is_an_error_and_the_next_line_is_read(tmp_path):
    data = b'{"input": {"itemAttributes": "a"}, "output": {"usersList": ["1", "2"\n' + _file()
    staged = _stage(data, tmp_path, big_line_bytes=16, chunk_bytes=5)
    assert staged[0][2] == "the line ends inside the users array"
    assert staged[1][1] == 'ITEMS.genres = "Action"'


def test_a_non_string_user_in_a_streamed_line_is_an_error(tmp_path):
    data = b'{"input": {"itemAttributes": "a"}, "output": {"usersList": ["1", 2]}}\n'
    assert (
        _stage(data, tmp_path, big_line_bytes=16)[0][2]
        == "the users array holds a value that is not a string"
    )


def _snapshot(tmp_path: Path, profiles: list[dict]) -> Path:
    path = tmp_path / "snapshot.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.writelines(json.dumps(p) + "\n" for p in profiles)
    return path


@pytest.mark.parametrize("key", ["Attributes.personalize_user_id", "AccountNumber"])
def test_the_upload_holds_the_users_with_a_profile_and_counts_the_others(tmp_path, key):
    def profile(user: str) -> dict:
        if key == "AccountNumber":
            return {"ProfileId": user, "AccountNumber": user}
        return {"ProfileId": user, "Attributes": {"personalize_user_id": user, "other": "x"}}

    snapshot = _snapshot(tmp_path, [profile("1"), profile("2"), profile("a,b"), {"ProfileId": "nokey"}])
    users = tmp_path / "s.users"
    users.write_text("1\n2\n2\nmissing\na,b\n")
    with ProfileKeyIndex([snapshot], tmp_path / "duck", profile_key=key) as index:
        assert index.size == 3
        upload = index.write_upload(users, "SEG", tmp_path / "upload.csv")
    assert (upload.users, upload.rows, upload.users_without_profile) == (4, 3, 1)
    lines = upload.path.read_text().splitlines()
    assert lines[0] == "user_id,segment"
    assert sorted(lines[1:]) == ['"a,b",SEG', "1,SEG", "2,SEG"]


def test_with_create_missing_profiles_every_user_is_uploaded_unchecked(tmp_path):
    users = tmp_path / "s.users"
    users.write_text("1\nnew\n")
    with ProfileKeyIndex(None, tmp_path / "duck", profile_key="AccountNumber") as index:
        upload = index.write_upload(users, "SEG", tmp_path / "upload.csv")
    assert (upload.rows, upload.users_without_profile) == (2, None)


def test_fingerprint_differences_and_names():
    assert fingerprint_differences({"a": 1, "b": [1]}, {"a": 1, "b": [2], "c": "x"}) == [
        "b: [1] → [2]",
        'c: null → "x"',
    ]
    assert fingerprint_differences({"a": 1}, {"a": 1}) == []
    assert fit_name("a" * 10, 64) == "a" * 10
    assert len(fit_name("a" * 100, 64)) == 64


def test_a_statement_duckdb_cannot_fit_is_retried_with_a_doubled_limit(tmp_path, monkeypatch):
    import duckdb

    from personalize_logic.segments import SegmentJoin, _megabytes

    assert (_megabytes("64MB"), _megabytes("1GB"), _megabytes("512KiB")) == (64, 1024, 1)
    with pytest.raises(ValueError, match="memory_limit"):
        _megabytes("lots")
    join = SegmentJoin(tmp_path, memory_limit="64MB")
    limits: list[str] = []
    failures = [duckdb.OutOfMemoryException("Out of Memory Error: could not allocate")]
    real = join.con

    class _Con:
        def execute(self, sql, params=None):
            if sql.startswith("SET memory_limit"):
                limits.append(sql)
                return real.execute(sql)
            if failures:  # fails once under the configured limit
                raise failures.pop()
            return real.execute(sql) if params is None else real.execute(sql, params)

    join.con = _Con()
    assert join._run("SELECT 42") == [(42,)]
    assert limits == ["SET memory_limit = '128MB'", "SET memory_limit = '64MB'"]  # back to the configured one
    join.con = real
    join.close()
