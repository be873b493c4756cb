from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from personalize_logic.batch_output import parse_line
from personalize_logic.mparticle_batches import (
    MAX_ATTRIBUTE_VALUE_CHARS,
    MAX_BATCH_BYTES,
    MAX_REQUEST_BYTES,
    REASON_BATCH_TOO_LARGE,
    REASON_INVALID_MPID,
    REASON_ITEM_TOO_LONG,
    REASON_ITEMS_TRUNCATED,
    REASON_MALFORMED_LINE,
    REASON_MISSING_USER_ID,
    REASON_NO_RECOMMENDATIONS,
    REASON_PERSONALIZE_ERROR,
    BatchBuilder,
    BatchSettings,
    RequestPacker,
    batch_dict,
    iter_requests,
    joined_within_limit,
    run_namespace,
    source_request_id,
)

SCHEMA_PATH = Path("/work/shared/reference/mparticle/mparticle.inbound.eventsapi.schema.json")
HUGE_MPID = "-8016957248024779345"  # beyond 2**53: a float would corrupt it


def _line(user_id, items, *, error=None, compact=True, scores=True):
    obj = {"input": {"userId": user_id}, "output": {"recommendedItems": items}, "error": error}
    if scores:
        obj["output"]["scores"] = [round(1 / (i + 2), 6) for i in range(len(items))]
    return json.dumps(obj, separators=(",", ":") if compact else None).encode()


def _build(builder, line):
    _, result = builder.build_line(line, 7, 100, 100 + len(line))
    return result


def _slow(builder, line):
    return builder.build(parse_line(line, 7, 100, 100 + len(line), keep_scores=False))


@pytest.fixture
def builder():
    return BatchBuilder(BatchSettings(run_key="dag/run/task"))


def test_batch_shape(builder):
    result = _build(builder, _line("42", ["i1", "i2"]))
    batch = json.loads(result.batch)
    request_id = str(uuid.uuid5(run_namespace("dag/run/task"), "42"))
    assert batch == {
        "environment": "production",
        "source_request_id": request_id,
        "mpid": 42,
        "user_attributes": {"product_recs": ["i1", "i2"]},
        "events": [
            {
                "event_type": "custom_event",
                "data": {
                    "event_name": "AWS Recs Update",
                    "custom_event_type": "other",
                    "source_message_id": request_id,
                    "custom_attributes": {"product_recs": "i1,i2"},
                },
            }
        ],
    }
    assert result.dead_letters == ()
    assert result.user_id == "42"


def test_huge_mpid_is_an_exact_json_integer(builder):
    batch_bytes = _build(builder, _line(HUGE_MPID, ["a"])).batch
    assert b'"mpid":-8016957248024779345,' in batch_bytes
    assert json.loads(batch_bytes)["mpid"] == int(HUGE_MPID)
    assert float(int(HUGE_MPID)) != int(HUGE_MPID)


@pytest.mark.parametrize("user_id", ["abc", "1.5", "9223372036854775808", "1e3", ""])
def test_invalid_mpid_is_dead_lettered(builder, user_id):
    result = _build(builder, _line(user_id, ["a"]))
    assert result.batch is None
    reasons = {d.reason for d in result.dead_letters}
    assert reasons <= {REASON_INVALID_MPID, REASON_MISSING_USER_ID}
    assert reasons


def test_customer_id_identity():
    builder = BatchBuilder(
        BatchSettings(run_key="r", identity_type="customer_id", environment="development", event_name="Recs")
    )
    batch = json.loads(_build(builder, _line("user-é", ["a"])).batch)
    assert batch["user_identities"] == {"customer_id": "user-é"}
    assert "mpid" not in batch
    assert batch["environment"] == "development"
    assert batch["events"][0]["data"]["event_name"] == "Recs"


def test_no_event_when_event_name_is_none():
    builder = BatchBuilder(BatchSettings(run_key="r", event_name=None))
    batch = json.loads(_build(builder, _line("1", ["a"])).batch)
    assert "events" not in batch


def test_source_request_id_is_deterministic_per_run_and_user(builder):
    a = json.loads(_build(builder, _line("1", ["a"])).batch)["source_request_id"]
    b = json.loads(_build(builder, _line("1", ["b", "c"])).batch)["source_request_id"]
    other_run = BatchBuilder(BatchSettings(run_key="dag/run2/task"))
    c = json.loads(_build(other_run, _line("1", ["a"])).batch)["source_request_id"]
    assert a == b != c
    assert source_request_id(run_namespace("x"), "u") == str(uuid.uuid5(run_namespace("x"), "u"))


def test_list_truncated_to_max_items_and_reported(builder):
    items = [f"i{n}" for n in range(1005)]
    result = _build(builder, _line("1", items))
    batch = json.loads(result.batch)
    assert batch["user_attributes"]["product_recs"] == items[:1000]
    (dead,) = result.dead_letters
    assert dead.reason == REASON_ITEMS_TRUNCATED
    assert dead.items == tuple(items[1000:])
    assert dead.user_uploaded
    assert result.items_dropped == 5
    joined = batch["events"][0]["data"]["custom_attributes"]["product_recs"]
    assert len(joined) <= MAX_ATTRIBUTE_VALUE_CHARS
    assert items[:1000][0] in joined


def test_over_long_item_ids_dropped(builder):
    long_id = "x" * 513
    result = _build(builder, _line("1", ["a", long_id, "b"]))
    assert json.loads(result.batch)["user_attributes"]["product_recs"] == ["a", "b"]
    assert [d.reason for d in result.dead_letters] == [REASON_ITEM_TOO_LONG]
    assert result.dead_letters[0].items == (long_id,)


def test_all_items_invalid_means_no_batch(builder):
    result = _build(builder, _line("1", ["x" * 600]))
    assert result.batch is None
    assert [d.reason for d in result.dead_letters] == [REASON_ITEM_TOO_LONG, REASON_NO_RECOMMENDATIONS]


def test_batch_over_128kb_dead_lettered(builder):
    result = _build(builder, _line("1", ["y" * 500] * 300))
    assert result.batch is None
    assert result.dead_letters[-1].reason == REASON_BATCH_TOO_LARGE


def test_personalize_error_and_malformed_lines(builder):
    error = _build(builder, _line("5", [], error="Internal error"))
    assert error.batch is None
    assert error.dead_letters[0].reason == REASON_PERSONALIZE_ERROR
    assert error.dead_letters[0].error == "Internal error"
    assert error.dead_letters[0].to_dict("s3://b/k")["file"] == "s3://b/k"
    malformed = _build(builder, b'{"input":')
    assert malformed.dead_letters[0].reason == REASON_MALFORMED_LINE


def test_joined_within_limit_keeps_whole_ids():
    items = ["a" * 1000] * 5
    assert joined_within_limit(items) == ",".join(items[:4])


CASES = [
    _line("42", ["i1", "i2"]),
    _line("42", ["i1", "i2"], compact=False),
    _line("42", ["i1", "i2"], scores=False),
    _line(HUGE_MPID, ["a b", "c"]),
    _line("0042", ["a"]),
    _line("7", ['with "quote', "back\\slash", "ünïcode", "tab\there"]),
    _line("7", [str(n) for n in range(1200)]),
    _line("7", ["z" * 513, "ok"]),
    _line("7", []),
    _line("7", ["a"], error="boom"),
    b'{"input":{"userId":"7"},"output":{"recommendedItems":["a",1,null]},"error":null}',
    b'{"input":{"userId":"7"},"output":{"recommendedItems":["a"],"scores":[1..2]},"error":null}',
    b'{"input":{"userId":7},"output":{"recommendedItems":["a"]}}',
    b'{"error":null,"output":{"recommendedItems":["a"]},"input":{"userId":"7"}}',
]


@pytest.mark.parametrize("identity_type", ["mpid", "customer_id"])
@pytest.mark.parametrize("line", CASES)
def test_fast_path_equals_general_path(line, identity_type):
    builder = BatchBuilder(BatchSettings(run_key="r", identity_type=identity_type))
    fast = _build(builder, line)
    slow = _slow(builder, line)
    assert fast.batch == slow.batch
    assert fast.dead_letters == slow.dead_letters


@pytest.mark.parametrize("identity_type", ["mpid", "customer_id"])
def test_template_equals_json_dumps_of_reference_dict(identity_type):
    settings = BatchSettings(run_key="r", identity_type=identity_type)
    builder = BatchBuilder(settings)
    items = ["a", "é", 'q"']
    expected = json.dumps(batch_dict(settings, HUGE_MPID, items), separators=(",", ":")).encode()
    assert _build(builder, _line(HUGE_MPID, items)).batch == expected


@pytest.mark.skipif(not SCHEMA_PATH.exists(), reason="mParticle JSON schema not available")
@pytest.mark.parametrize("identity_type", ["mpid", "customer_id"])
def test_batches_validate_against_published_schema(identity_type):
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    builder = BatchBuilder(BatchSettings(run_key="r", identity_type=identity_type))
    for line in (_line(HUGE_MPID, ["a", "b"]), _line("3", [str(n) for n in range(1000)])):
        validator.validate(json.loads(_build(builder, line).batch))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("environment", "staging"),
        ("identity_type", "email"),
        ("attribute_name", "$age"),
        ("max_items", 1001),
        ("custom_event_type", "bogus"),
        ("run_key", ""),
    ],
)
def test_settings_validation_names_the_field(field, value):
    kwargs = {"run_key": "r", field: value}
    with pytest.raises(ValueError, match=field):
        BatchBuilder(BatchSettings(**kwargs))


def test_packer_limits_count_and_bytes(builder):
    lines = [_line(str(n), [f"item-{n}-{k}" for k in range(25)]) for n in range(1, 1001)]
    data = b"\n".join(lines) + b"\n"
    from personalize_logic.batch_output import iter_output_records

    requests = list(iter_requests(iter_output_records([data]), builder))
    assert sum(r.batch_count for r in requests) == 1000
    for request in requests:
        batches = json.loads(request.body)
        assert len(batches) == request.batch_count <= 100
        assert len(request.body) <= MAX_REQUEST_BYTES
    assert requests[-1].resume_offset == len(data)
    # resume offsets are line starts and strictly increasing
    offsets = [r.resume_offset for r in requests]
    assert offsets == sorted(set(offsets))
    assert all(data[o - 1 : o] == b"\n" for o in offsets)


def test_packer_splits_by_bytes():
    packer = RequestPacker()
    big = b"{" + b"x" * (100 * 1024) + b"}"
    assert packer.add(big, start_offset=0, lines_before=0) is None
    assert packer.add(big, start_offset=10, lines_before=1) is None
    out = packer.add(big, start_offset=20, lines_before=2)
    assert out is not None
    assert out.batch_count == 2
    assert out.resume_offset == 20
    assert len(out.body) <= MAX_REQUEST_BYTES
    last = packer.finish(end_offset=30, lines=3)
    assert last.batch_count == 1
    assert last.resume_line == 3


def test_packer_rejects_batch_larger_than_a_request():
    with pytest.raises(ValueError, match="cannot fit"):
        RequestPacker().add(b"x" * MAX_REQUEST_BYTES, start_offset=0, lines_before=0)
    assert MAX_BATCH_BYTES < MAX_REQUEST_BYTES
