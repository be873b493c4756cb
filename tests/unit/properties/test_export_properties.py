"""
Properties of the mParticle → interactions export on generated hostile batch files.

Invariants: ``process_stream`` never raises (bad data is never an exception); every line, batch,
event and product is accounted for exactly once (the accounting identities, plus an independent
count of the events); every row written reads back exactly (CSV round trip, valid UTF-8, each value
equal to its source); every quarantine record is valid UTF-8 JSON naming file, line, field, reason.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from personalize_logic.interactions_validation import CsvValidator
from personalize_logic.mparticle_interactions import MParticleExportConfig, MParticleInteractionsExporter
from tests.unit.properties import strategies as hs

ACTIONS = ["purchase", "view_detail", "add_to_cart", "add_to_wishlist", "refund"]
TS = 1_704_070_800_000
SCHEMA = hs.INTERACTIONS_SCHEMA
CLEAN = "<clean id>"  # placeholder the test replaces with a unique id per product


def mostly(valid: st.SearchStrategy[Any], *others: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` 85 % of the time, else one of ``others`` (hostile variants): rows still get written."""
    return st.integers(0, 19).flatmap(lambda n: valid if n < 17 or not others else others[n % len(others)])


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``strategy``, sometimes missing (None) or any hostile JSON value."""
    return mostly(strategy, st.none(), hs.json_values(4))


prices = mostly(
    st.one_of(st.floats(0, 10_000, allow_nan=False), st.integers(0, 10_000)),
    st.sampled_from(
        ["19.99", "1e3", "-0", "0.1", "$5", "19,99", "NaN", "1e400", "\u0661\u0669", " 1", "007"]
    ),
    st.sampled_from([math.nan, math.inf, -math.inf, 10**400, True, None]),
)
products = mostly(
    st.fixed_dictionaries({"id": st.just(CLEAN)}, optional={"price": prices, "sku": hs.text()}),
    st.fixed_dictionaries({}, optional={"id": hs.scalars(), "sku": hs.scalars(), "price": prices}),
    st.none(),
    hs.scalars(),
)
timestamps = mostly(
    st.integers(TS - 10**8, TS + 10**8), st.sampled_from([None, 0, -1, TS // 1000, TS * 1000]), hs.scalars()
)
events = mostly(
    st.fixed_dictionaries(
        {
            "event_type": mostly(st.just("commerce_event"), st.sampled_from(["screen_view", None, 5, ["x"]])),
            "data": maybe(
                st.fixed_dictionaries(
                    {
                        "timestamp_unixtime_ms": maybe(timestamps),
                        "product_action": maybe(
                            st.fixed_dictionaries(
                                {
                                    "action": mostly(st.sampled_from(ACTIONS), hs.scalars()),
                                    "products": mostly(
                                        st.lists(products, min_size=1, max_size=4),
                                        st.just([]),
                                        st.none(),
                                        hs.scalars(),
                                    ),
                                }
                            )
                        ),
                    },
                    optional={
                        "session_uuid": hs.scalars(),
                        "promotion_action": hs.json_values(2),
                    },
                )
            ),
        }
    ),
    hs.json_values(3),
)
mpids = mostly(
    st.integers(1, 2**63 - 1),
    st.integers(-(2**63), -1),
    st.sampled_from(["123", "-42", "\u0661\u0662\u0663", "\uff11\uff12\uff13", "0", "9" * 41, "12a"]),
    hs.integers(),
    hs.scalars(),
)
batches = mostly(
    st.fixed_dictionaries(
        {
            "environment": st.just("production"),
            "mpid": mpids,
            "events": mostly(st.lists(events, min_size=1, max_size=4), st.just([]), st.none(), hs.scalars()),
        },
        optional={
            "timestamp_unixtime_ms": timestamps,
            "user_identities": maybe(st.fixed_dictionaries({"customer_id": hs.scalars()})),
            "device_info": hs.json_values(6),
        },
    ),
    hs.json_values(3),
)


@st.composite
def batch_files(draw: st.DrawFn) -> tuple[bytes, list[Any], str]:
    """(file bytes, the JSON values it holds, its shape)."""
    values = draw(st.lists(batches, min_size=draw(st.sampled_from([0, 1, 1, 1])), max_size=6))
    shape = draw(st.sampled_from(["ndjson", "ndjson", "ndjson", "crlf", "pretty", "array", "gzip"]))
    style = draw(st.sampled_from(["ascii", "raw"]))
    if shape in ("ndjson", "crlf", "gzip"):
        lines = [hs.encode(v, style) for v in values]
        depth = draw(hs.nesting_depth())
        if depth:  # a batch carrying a nested value in a field the export never reads
            lines.append(
                b'{"environment":"production","mpid":1,"device_info":' + hs.deep(depth).encode() + b"}"
            )
        if draw(st.booleans()):
            lines.insert(draw(st.integers(0, len(lines))), b"")
        garbage = draw(st.sampled_from([b"", b"\xff", b"\xc3", b'"', b"\x00", b"{"]))
        if garbage and lines:
            index = draw(st.integers(0, len(lines) - 1))
            lines[index] = hs.mutate(lines[index], draw(st.lists(st.integers(0, 10**6), max_size=2)), garbage)
        data = (b"\r\n" if shape == "crlf" else b"\n").join(lines) + draw(st.sampled_from([b"", b"\n"]))
        if shape == "gzip":
            data = gzip.compress(data)
        return data, values, shape
    if shape == "pretty":
        value = values[0] if values else {}
        return hs.encode(value, "pretty"), [value], shape
    return hs.encode(values, style), [values], shape


def number_text(price: Any) -> str:
    """What the export writes for a valid EVENT_VALUE (see mparticle_interactions' docstring)."""
    if price is None:
        return ""
    if isinstance(price, str):
        price = json.loads(price)
    return str(price) if isinstance(price, int) else repr(float(price))


def with_clean_ids(value: Any, table: dict[str, tuple[Any, Any, Any]], batch: Any = None) -> Any:
    """Give every placeholder product a unique id; remember (batch, event data, product) per id."""
    if isinstance(value, dict) and isinstance(value.get("events"), list):
        batch = value
    if isinstance(value, dict):
        action = value.get("product_action")
        if isinstance(action, dict) and isinstance(action.get("products"), list):
            for product in action["products"]:
                if isinstance(product, dict) and product.get("id") == CLEAN:
                    product["id"] = f"p{len(table)}"
                    table[product["id"]] = (batch, value, product)
        for child in value.values():
            with_clean_ids(child, table, batch)
    elif isinstance(value, list):
        for child in value:
            with_clean_ids(child, table, batch)
    return value


def expected_events(data: bytes, shape: str) -> int | None:
    """The events an exporter must see, counted with Python's json on its own (None: cannot tell)."""
    if shape == "gzip":
        data = gzip.decompress(data)
    units = [data] if shape in ("pretty", "array") else data.split(b"\n")
    total = 0
    for unit in units:
        if not unit.strip():
            continue
        try:
            obj = json.loads(unit.decode("utf-8", "surrogateescape"))
        except (ValueError, RecursionError):
            if shape in ("pretty", "array"):
                return None  # the document path re-reads it line by line
            continue
        for batch in obj if isinstance(obj, list) else [obj]:
            if isinstance(batch, dict) and isinstance(batch.get("events"), list | None):
                total += len(batch.get("events") or [])
    return total


@given(batch_files(), st.booleans(), st.booleans())
def test_export_never_raises_and_accounts_for_every_record(
    sample: tuple[bytes, list[Any], str], bounded: bool, required: bool
) -> None:
    data, values, shape = sample
    table: dict[str, tuple[Any, Any, Any]] = {}
    for value in values:
        with_clean_ids(value, table)
    # re-encode with the unique ids in place (the ids are plain ASCII, so nothing else changes)
    if table:
        data, values, shape = _reencode(data, values, shape)
    rows: list[tuple[str, ...]] = []
    quarantine: list[dict[str, Any]] = []
    config = MParticleExportConfig(event_value_required=required)
    exporter = MParticleInteractionsExporter(
        config,
        interval_start_ms=TS - 5 * 10**7 if bounded else None,
        interval_end_ms=TS + 5 * 10**7 if bounded else None,
        row_sink=rows.extend,
        quarantine_sink=quarantine.append,
    )
    exporter.process_stream("s3://bucket/file.json", io.BytesIO(data))  # never raises
    st_ = exporter.stats
    st_.check_accounting()  # the four identities, quarantine records included
    assert st_.quarantine_records == len(quarantine)
    expected = expected_events(data, shape)
    if expected is not None:
        assert st_.events_seen == expected
    keys = [
        (q["line"], q["offset"], q["batch_index"], q["event_index"], q["product_index"]) for q in quarantine
    ]
    assert len(keys) == len(set(keys)), "a record was quarantined twice"
    for record in quarantine:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
        assert record["file"] == "s3://bucket/file.json"
        assert isinstance(record["line"], int)
        assert record["line"] >= 1
        assert record["field"]
        assert record["reason"]
    checked = _rows_read_back_exactly(rows, table, config)
    event(f"rows checked against their source: {min(checked, 3)}{'+' if checked >= 3 else ''}")
    event(f"quarantined: {min(len(quarantine), 3)}{'+' if len(quarantine) >= 3 else ''}")


def _reencode(data: bytes, values: list[Any], shape: str) -> tuple[bytes, list[Any], str]:
    if shape == "pretty":
        return hs.encode(values[0], "pretty"), values, shape
    if shape == "array":
        return hs.encode(values[0], "ascii"), values, shape
    # line files: keep the extra lines (nesting, blank, garbage) by re-encoding only the batches
    text = gzip.decompress(data) if shape == "gzip" else data
    sep = b"\r\n" if shape == "crlf" else b"\n"
    lines = text.split(sep)
    out = [hs.encode(values[i], "ascii") if i < len(values) else line for i, line in enumerate(lines)]
    joined = sep.join(out)
    return (gzip.compress(joined) if shape == "gzip" else joined), values, shape


def _rows_read_back_exactly(rows: list[tuple[str, ...]], table: dict, config: MParticleExportConfig) -> int:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([config.header, *rows])
    text = buffer.getvalue()
    assert list(csv.reader(io.StringIO(text)))[1:] == [list(r) for r in rows]
    encoded = text.encode("utf-8")  # no lone surrogate reached a row
    validator = CsvValidator(SCHEMA, min_rows=0, min_users_2plus=0)
    validator.validate_bytes_stream("rows.csv", io.BytesIO(encoded))
    assert [str(e) for e in validator.finish().errors if e.line is not None] == []
    seen: set[str] = set()
    for user, item, action, ts, value in rows:
        if item not in table:
            continue
        assert item not in seen, "a product was written twice"
        seen.add(item)
        batch, event_data, product = table[item]
        mpid = batch["mpid"]
        assert user == str(int(mpid))
        assert -(2**63) <= int(user) < 2**63
        assert action == event_data["product_action"]["action"]
        own = event_data.get("timestamp_unixtime_ms")
        assert int(ts) == (own if own is not None else batch["timestamp_unixtime_ms"]) // 1000
        assert value == number_text(product.get("price"))
    return len(seen)
