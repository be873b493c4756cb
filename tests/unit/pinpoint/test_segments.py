from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pytest

from personalize_logic.segments import (
    EndpointCsvWriter,
    EndpointIndex,
    iter_segment_lines,
    resolve_with_lookup,
    segment_name,
)

WHEN = datetime(2022, 8, 2, 15, 49, 55, tzinfo=UTC)


def test_every_line_both_spellings_and_errors_counted():
    lines = [
        json.dumps(
            {
                "input": {"itemAttributes": 'ITEMS.genres = "Action"'},
                "output": {"usersList": ["1", "2"]},
                "error": None,
            }
        ),
        "",
        json.dumps({"itemAttributes": 'ITEMS.genres = "Comedy"', "output": {"recommendedUsers": ["3"]}}),
        json.dumps({"input": {"itemId": "105"}, "output": {"usersList": ["4", 5]}}),
        json.dumps({"input": {"itemId": "106"}, "output": None, "error": "Item not found"}),
        "{not json",
        json.dumps({"output": {"usersList": ["9"]}}),
    ]
    parsed = list(iter_segment_lines(lines, source="job.out"))
    assert [p.line_number for p in parsed] == [1, 3, 4, 5, 6, 7]
    good = [p for p in parsed if p.ok]
    assert [(p.query, p.query_kind, p.users) for p in good] == [
        ('ITEMS.genres = "Action"', "itemAttributes", ("1", "2")),
        ('ITEMS.genres = "Comedy"', "itemAttributes", ("3",)),
        ("105", "itemId", ("4", "5")),
    ]
    bad = [p for p in parsed if not p.ok]
    assert len(bad) == 3
    assert "Item not found" in bad[0].error
    assert "invalid JSON" in bad[1].error
    assert "input.itemAttributes" in bad[2].error
    assert all(p.source == "job.out" for p in parsed)


def test_segment_name_matches_seed_and_is_deterministic():
    assert (
        segment_name('ITEMS.genres = "Action"', "itemAttributes", WHEN) == "ITEMSgenresAction_20220802-154955"
    )
    assert segment_name('ITEMS.genres = "Action"', "itemAttributes", "2022-08-02T15:49:55+00:00") == (
        "ITEMSgenresAction_20220802-154955"
    )
    assert segment_name("105", "itemId", WHEN) == "item_105_20220802-154955"


def test_segment_name_collision_fix():
    a = segment_name('ITEMS.genres = "Sci-Fi"', "itemAttributes", WHEN)
    b = segment_name('ITEMS.genres = "SciFi"', "itemAttributes", WHEN)
    assert a != b
    assert a.startswith("ITEMSgenresSciFi-")
    assert b == "ITEMSgenresSciFi_20220802-154955"
    multi = segment_name('ITEMS.genres = "Comedy" AND ITEMS.genres = "Action"', "itemAttributes", WHEN)
    assert multi.startswith("ITEMSgenresComedyANDITEMSgenresAction-")
    assert segment_name("a/b", "itemId", WHEN) != segment_name("ab", "itemId", WHEN)
    forced = segment_name('ITEMS.genres = "Action"', "itemAttributes", WHEN, always_hash=True)
    assert forced != "ITEMSgenresAction_20220802-154955"


def test_csv_split_respects_max_bytes(tmp_path):
    ids = [f"endpoint-{i:04d}" for i in range(100)]  # 14 bytes + newline per row
    with EndpointCsvWriter(tmp_path, "seg", max_bytes=100) as writer:
        writer.write_many(ids)
    parts = writer.parts
    assert len(parts) > 1
    rows = []
    for part in parts:
        data = part.path.read_bytes()
        assert len(data) <= 100
        assert len(data) == part.bytes
        lines = data.decode().splitlines()
        assert lines[0] == "Id"
        rows.extend(lines[1:])
    assert rows == ids


def test_csv_split_arrow_path_same_as_python_path(tmp_path):
    pa = pytest.importorskip("pyarrow")
    ids = [f"e{i}" for i in range(1000)]
    with EndpointCsvWriter(tmp_path / "a", "seg", max_bytes=333) as w1:
        w1.write_arrow(pa.chunked_array([ids[:400], ids[400:]]))
    with EndpointCsvWriter(tmp_path / "b", "seg", max_bytes=333) as w2:
        w2.write_many(ids)
    assert [p.path.read_bytes() for p in w1.parts] == [p.path.read_bytes() for p in w2.parts]
    assert all(p.bytes <= 333 for p in w1.parts)


def test_csv_quoting_and_forbidden_chars(tmp_path):
    with EndpointCsvWriter(tmp_path, "q") as writer:
        writer.write('a,"b"')
        with pytest.raises(ValueError, match="line break"):
            writer.write("a\nb")
    assert writer.parts[0].path.read_text() == 'Id\n"a,""b"""\n'


def test_empty_segment_has_header_only(tmp_path):
    writer = EndpointCsvWriter(tmp_path, "empty", column="User.UserId")
    parts = writer.close()
    assert parts[0].path.read_text() == "User.UserId\n"
    assert parts[0].rows == 0


def _export(tmp_path):
    rows = [
        {
            "Id": "e1a",
            "ChannelType": "EMAIL",
            "Address": "a@x",
            "User": {"UserId": "1", "UserAttributes": {"x": ["y"]}},
        },
        {"Id": "e1b", "ChannelType": "SMS", "Address": "+1", "User": {"UserId": "1"}},
        {
            "Id": "e2",
            "ChannelType": "EMAIL",
            "Address": "b@x",
            "User": {"UserId": "2"},
            "Attributes": {"k": ["v"]},
        },
        {"Id": "e-nouser", "ChannelType": "EMAIL", "Address": "c@x"},
    ]
    path = tmp_path / "export" / "part-0.gz"
    path.parent.mkdir()
    with gzip.open(path, "wt") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return path


def _users(tmp_path, *users):
    path = tmp_path / "segment.users"
    path.write_text("".join(f"{user}\n" for user in users))
    return path


def test_index_keeps_every_endpoint_and_counts_missing(tmp_path):
    export = _export(tmp_path)
    with EndpointIndex([export], tmp_path / "work") as index:
        assert index.size == 3
        result = index.resolve(_users(tmp_path, "1", "2", "3", "1"), EndpointCsvWriter(tmp_path / "out", "s"))
    assert (result.users, result.endpoints, result.users_without_endpoint) == (3, 3, 1)
    assert sorted(result.parts[0].path.read_text().splitlines()[1:]) == ["e1a", "e1b", "e2"]


def test_index_channel_filter(tmp_path):
    export = _export(tmp_path)
    with EndpointIndex([export], tmp_path / "work", channel_types=["email"]) as index:
        result = index.resolve(_users(tmp_path, "1", "2"), EndpointCsvWriter(tmp_path / "out", "s"))
    assert (result.endpoints, result.users_without_endpoint) == (2, 0)


def test_lookup_path_and_user_id_mode(tmp_path):
    table = {"1": [{"Id": "e1a", "ChannelType": "EMAIL"}, {"Id": "e1b", "ChannelType": "SMS"}], "2": []}
    result = resolve_with_lookup(
        ["1", "2", "1"], lambda u: table.get(u, []), EndpointCsvWriter(tmp_path / "a", "s")
    )
    assert (result.users, result.endpoints, result.users_without_endpoint) == (2, 2, 1)
    only_sms = resolve_with_lookup(["1"], table.__getitem__, EndpointCsvWriter(tmp_path / "b", "s"), ["SMS"])
    assert only_sms.endpoints == 1
    with EndpointIndex([], tmp_path / "work") as index:
        users = index.distinct_users(
            _users(tmp_path, "1", "2", "1"), EndpointCsvWriter(tmp_path / "c", "s", column="User.UserId")
        )
    # User.UserId layout: the distinct users are the rows (Pinpoint resolves them on import)
    assert users.users == 2
    assert sorted(users.parts[0].path.read_text().splitlines()) == ["1", "2", "User.UserId"]
