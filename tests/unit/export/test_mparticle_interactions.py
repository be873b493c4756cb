"""One test per bad input: each is a counted quarantine (or a clear error), never a silent drop."""

from __future__ import annotations

import csv
import gzip
import io
import json

import pytest

from personalize_logic.mparticle_interactions import (
    ExportStats,
    MParticleExportConfig,
    MParticleInteractionsExporter,
)

DAY_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
IN_DAY = DAY_MS + 3_600_000


def event(
    action="view_detail", products=None, ts=IN_DAY, session_uuid="8B8DFAA2-17C7-43E8-88EE-5F2DCF016D56"
):
    if products is None:
        products = [{"id": "item-1", "price": 9.5}]
    return {
        "event_type": "commerce_event",
        "data": {
            "timestamp_unixtime_ms": ts,
            "session_uuid": session_uuid,
            "product_action": {"action": action, "products": products},
        },
    }


def batch(mpid=-42, events=None, **extra):
    body = {"environment": "production", "mpid": mpid, "user_identities": {"customer_id": "c-1"}}
    body["events"] = [event()] if events is None else events
    body.update(extra)
    return body


def line(obj) -> bytes:
    return json.dumps(obj).encode()


def run(
    data: bytes,
    config: MParticleExportConfig | None = None,
    start=DAY_MS,
    end=DAY_MS + 86_400_000,
    name="f.json",
):
    rows: list[tuple[str, ...]] = []
    quarantine: list[dict] = []
    exporter = MParticleInteractionsExporter(
        config or MParticleExportConfig(),
        interval_start_ms=start,
        interval_end_ms=end,
        row_sink=rows.extend,
        quarantine_sink=quarantine.append,
    )
    exporter.process_stream(name, io.BytesIO(data))
    exporter.stats.check_accounting()
    return rows, quarantine, exporter.stats


def csv_roundtrip(rows, header=("USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP", "EVENT_VALUE")):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    text = buf.getvalue()
    return text, list(csv.reader(io.StringIO(text)))[1:]


def test_happy_path_row_shape():
    rows, q, st = run(line(batch(mpid=-7636538281262557000)) + b"\n")
    assert rows == [("-7636538281262557000", "item-1", "view_detail", str(IN_DAY // 1000), "9.5")]
    assert q == []
    assert st.rows_written == 1
    assert st.events_used == 1


def test_malformed_json_line_is_quarantined_and_rest_kept():
    data = line(batch()) + b"\n" + b'{"mpid": 1, "events": [\n' + line(batch(mpid=7)) + b"\n"
    rows, q, st = run(data)
    assert len(rows) == 2
    assert st.lines_read == 3
    assert st.lines_quarantined == 1
    assert st.batches_parsed == 2
    (rec,) = q
    assert rec["file"] == "f.json"
    assert rec["line"] == 2
    assert rec["reason"] == "malformed_json"
    assert rec["field"] == "line"
    assert rec["raw"].startswith('{"mpid": 1')
    assert rec["offset"] == len(line(batch())) + 1


def test_truncated_gzip_keeps_readable_lines_and_names_offset():
    lines = [line(batch(mpid=n + 1)) for n in range(200)]
    full = gzip.compress(b"\n".join(lines) + b"\n")
    rows, q, st = run(full[: len(full) // 2], name="s3://b/k.json.gz")
    assert 0 < len(rows) < 200
    assert st.files_truncated == 1
    assert st.lines_quarantined == 1
    (rec,) = q
    assert rec["reason"] == "truncated_gzip"
    assert rec["file"] == "s3://b/k.json.gz"
    assert rec["line"] == len(rows) + 1
    assert f"offset {rec['offset']}" in rec["detail"]
    assert rec["offset"] == sum(len(x) + 1 for x in lines[: len(rows)])


def test_gzip_detected_by_magic_and_multi_member():
    data = gzip.compress(line(batch(mpid=1)) + b"\n") + gzip.compress(line(batch(mpid=2)) + b"\n")
    rows, q, _ = run(data, name="no-extension")
    assert [r[0] for r in rows] == ["1", "2"]
    assert q == []


def test_missing_product_action_quarantined_but_promotions_ignored():
    bad = {"event_type": "commerce_event", "data": {"timestamp_unixtime_ms": IN_DAY}}
    promo = {
        "event_type": "commerce_event",
        "data": {"timestamp_unixtime_ms": IN_DAY, "promotion_action": {}},
    }
    rows, q, st = run(line(batch(events=[bad, promo, event()])))
    assert len(rows) == 1
    assert st.events_quarantined == 1
    assert st.events_ignored == 1
    assert q[0]["reason"] == "missing_product_action"
    assert q[0]["event_index"] == 0
    assert q[0]["line"] == 1


def test_empty_products_list_quarantined():
    rows, q, st = run(line(batch(events=[event(products=[])])))
    assert rows == []
    assert st.events_quarantined == 1
    assert q[0]["reason"] == "empty_products"
    assert q[0]["field"] == "product_action.products"


@pytest.mark.parametrize(
    "mpid", [-9223372036854775808, 9223372036854775807, 2**53 + 1, -(2**53) - 1, -1, "-9223372036854775808"]
)
def test_mpid_exact_in_csv_text(mpid):
    rows, q, _ = run(line(batch(mpid=mpid)))
    text, back = csv_roundtrip(rows)
    assert q == []
    assert f"\n{int(mpid)},item-1," in text
    assert back[0][0] == str(int(mpid))


@pytest.mark.parametrize(
    ("mpid", "reason"),
    [
        (2**63, "mpid_out_of_int64_range"),
        (2**64 + 5, "mpid_out_of_int64_range"),
        (-(2**63) - 1, "mpid_out_of_int64_range"),
        (-7.636538281262557e18, "mpid_not_integer"),
        (None, "missing_user_id"),
        (0, "missing_user_id"),
        ("abc", "invalid_mpid"),
    ],
)
def test_invalid_mpid_quarantined(mpid, reason):
    rows, q, st = run(line(batch(mpid=mpid)))
    assert rows == []
    assert st.events_quarantined == 1
    assert q[0]["reason"] == reason
    assert q[0]["field"] == "mpid"
    if isinstance(mpid, int) and mpid:
        assert q[0]["value"] == str(mpid)


def test_mpid_above_int64_raw_text_not_rounded():
    raw = b'{"environment":"production","mpid":9223372036854775808,"events":[' + line(event()) + b"]}"
    _, q, _ = run(raw)
    assert q[0]["value"] == "9223372036854775808"


@pytest.mark.parametrize("item", ["a,b", 'say "hi"', "ünïcødé-✓", "x" * 256, 'a,"b",ü'])
def test_ids_with_commas_quotes_unicode_round_trip(item):
    rows, q, _ = run(line(batch(events=[event(products=[{"id": item, "price": 1}])])))
    assert q == []
    _, back = csv_roundtrip(rows)
    assert back[0][1] == item


@pytest.mark.parametrize(("item", "reason"), [("a\nb", "newline_in_id"), ("a\rb", "newline_in_id"),
                                               ("x" * 257, "id_too_long")])  # fmt: skip
def test_bad_ids_quarantined_per_product(item, reason):
    products = [{"id": item, "price": 1}, {"id": "ok", "price": 2}]
    rows, q, st = run(line(batch(events=[event(products=products)])))
    assert [r[1] for r in rows] == ["ok"]
    assert st.rows_quarantined == 1
    assert st.products_seen == 2
    assert q[0]["reason"] == reason
    assert q[0]["field"] == "ITEM_ID"
    assert q[0]["product_index"] == 0


def test_item_id_falls_back_to_sku():
    rows, _, _ = run(line(batch(events=[event(products=[{"sku": "SKU-9", "price": 1}])])))
    assert rows[0][1] == "SKU-9"


def test_seconds_timestamps_named_or_converted():
    ev = event(ts=IN_DAY // 1000)
    rows, q, st = run(line(batch(events=[ev])))
    assert rows == []
    assert q[0]["reason"] == "timestamp_in_seconds"
    assert q[0]["value"] == str(IN_DAY // 1000)
    rows, q, st = run(line(batch(events=[ev])), MParticleExportConfig(seconds_timestamps="convert"))
    assert rows[0][3] == str(IN_DAY // 1000)
    assert st.reasons["timestamp_in_seconds_converted"] == 1
    _, q, _ = run(line(batch(events=[event(ts=IN_DAY * 1000)])))
    assert q[0]["reason"] == "timestamp_in_microseconds"


def test_events_outside_interval_counted_not_exported():
    events = [event(ts=DAY_MS - 1), event(ts=DAY_MS), event(ts=DAY_MS + 86_400_000)]
    rows, q, st = run(line(batch(events=events)))
    assert len(rows) == 1
    assert q == []
    assert st.events_out_of_interval == 2
    assert st.rows_out_of_interval == 2


def test_empty_interval_and_empty_file():
    rows, q, st = run(b"")
    assert rows == []
    assert q == []
    assert st.files == 1
    assert st.lines_read == 0
    rows, q, st = run(line(batch(events=[event(ts=DAY_MS - 5)])) + b"\n\n")
    assert rows == []
    assert st.blank_lines == 1
    assert st.events_out_of_interval == 1


def test_non_utf8_bytes_in_unused_field_keep_rows_in_id_quarantined():
    good = line(batch()).replace(b'"production"', b'"produc\xfftion"')
    bad_id = line(batch(events=[event(products=[{"id": "ITEMX", "price": 1}])])).replace(
        b"ITEMX", b"IT\xffEM"
    )
    rows, q, st = run(good + b"\n" + bad_id + b"\n")
    # bytes in a field the export never reads are skipped by the fast path (they cannot reach the CSV)
    assert len(rows) == 1
    assert st.lines_invalid_utf8 == 1
    assert q[0]["reason"] == "invalid_utf8"
    assert q[0]["line"] == 2
    assert q[0]["field"] == "ITEM_ID"
    assert "\\xff" in q[0]["value"]


def test_non_utf8_and_malformed_line():
    rows, q, st = run(b'{"mpid": \xff\xfe, oops\n')
    assert rows == []
    assert st.lines_quarantined == 1
    assert q[0]["reason"] == "malformed_json"
    assert "invalid UTF-8 at byte" in q[0]["detail"]


def test_wrong_structure_goes_through_slow_path():
    ev = {"event_type": "commerce_event", "data": {"timestamp_unixtime_ms": IN_DAY, "product_action": "buy"}}
    rows, q, st = run(line(batch(events=[ev, event()])))
    assert len(rows) == 1
    assert st.lines_slow_path == 1
    assert q[0]["reason"] == "invalid_product_action"
    assert q[0]["event_index"] == 0


def test_document_files_pretty_and_array():
    doc = json.dumps(batch(mpid=5), indent=2).encode()
    rows, _, st = run(doc)
    assert rows[0][0] == "5"
    assert st.lines_read == 1
    rows, _q, st = run(json.dumps([batch(mpid=1), batch(mpid=2)]).encode())
    assert [r[0] for r in rows] == ["1", "2"]


def test_customer_id_identity_and_session_column():
    cfg = MParticleExportConfig(user_id_source="customer_id", include_session_id=True)
    rows, q, _ = run(line(batch()), cfg)
    assert rows[0][0] == "c-1"
    assert rows[0][-1] == "8B8DFAA2-17C7-43E8-88EE-5F2DCF016D56"
    rows, q, _ = run(line(batch(user_identities={})), cfg)
    assert q[0]["reason"] == "missing_user_id"


def test_actions_filter_counts_ignored():
    rows, _, st = run(line(batch(events=[event(action="refund"), event(action="purchase")])))
    assert [r[2] for r in rows] == ["purchase"]
    assert st.events_ignored == 1


@pytest.mark.parametrize("action", [["purchase"], {"name": "purchase"}, 7, None])
def test_an_action_that_is_not_a_string_is_quarantined_not_a_crash(action):
    # a list or an object used to reach a set lookup and raise TypeError (unhashable)
    rows, q, st = run(line(batch(events=[event(action=action), event(action="purchase")])))
    assert [r[2] for r in rows] == ["purchase"]
    assert [(r["event_index"], r["field"], r["reason"]) for r in q] == [
        (0, "product_action.action", "invalid_action")
    ]
    assert st.events_quarantined == 1


def test_a_batch_without_a_user_quarantines_each_selected_event_and_ignores_the_rest():
    events = [event(action="refund"), event(), {"event_type": "screen_view"}, event(action="purchase")]
    rows, q, st = run(line(batch(mpid=None, events=events)))
    assert rows == []
    assert [(r["event_index"], r["field"], r["reason"]) for r in q] == [
        (1, "mpid", "missing_user_id"),
        (3, "mpid", "missing_user_id"),
    ]
    assert (st.events_ignored, st.events_quarantined, st.products_seen) == (2, 2, 0)


def test_accounting_invariant_mixed_input():
    data = b"\n".join(
        [
            line(batch()),
            b"not json",
            line(batch(mpid=2**63)),
            line(
                batch(events=[event(products=[]), event(ts=1), event(products=[{"id": "a\nb"}, {"id": "c"}])])
            ),
            b"",
        ]
    )
    _rows, q, st = run(data)
    assert st.products_seen == st.rows_written + st.rows_quarantined
    assert (
        st.events_seen
        == st.events_ignored + st.events_quarantined + st.events_out_of_interval + st.events_used
    )
    assert st.quarantine_records == len(q) == 5
    assert 0 < st.quarantine_share < 1


def test_check_accounting_detects_loss():
    st = ExportStats(lines_read=2, batches_parsed=1)
    with pytest.raises(AssertionError, match="lines_read"):
        st.check_accounting()


def test_sample_batch_from_mparticle_docs():
    import pathlib

    path = pathlib.Path("/work/shared/reference/mparticle/sample_batch.json")
    if not path.exists():
        pytest.skip("mParticle reference sample not available")
    rows, _q, st = run(path.read_bytes(), start=None, end=None)
    assert rows == [("-7636538281262557000", "Product SKU", "purchase", "1558388284", "123")]
    assert st.events_ignored == st.events_seen - 1
