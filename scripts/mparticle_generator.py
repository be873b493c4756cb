"""Realistic mParticle event batches for demos, tests and benchmarks (pure, deterministic).

Two generators:

* :func:`bingewatch_batches` replays the Bingewatch sample (``include/data/bingewatch/
  interactions.csv``: 1,500 "Watch" events of users 1-100) as mParticle batches: every user gets a
  deterministic signed 64-bit ``mpid`` (users 1, 2, 3 get the edge values -2^63, 2^53+1 and
  2^63-1; the others a hash, so about half are negative and nearly all beyond 2^53),
  ``user_identities.customer_id`` = the Bingewatch USER_ID, the events are re-timed in
  chronological order into a window of ``days`` days ending at ``end_date`` (so every day of a
  30-day backfill has data), "Watch" becomes ``view_detail`` (a deterministic ~15 % minority
  becomes ``add_to_cart`` / ``purchase``), product id = ITEM_ID and price = EVENT_VALUE. One batch
  per (user, day) also carries a session_start and a screen_view event. Files are gzip NDJSON
  under ``<prefix>/dt=YYYY-MM-DD/batches-0000.json.gz``.
* :func:`synthetic_batch_lines` / :func:`write_synthetic_ndjson` produce any volume with constant
  memory (a generator of NDJSON lines) for benchmarks.

The batches validate against mParticle's published JSON schema (checked in the unit tests).

It lives in ``scripts/``, beside the demo that seeds the embedded stack with it, and not in
``plugins/``: it is demo, test and benchmark data, and Airflow never imports it.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import json
import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from personalize_logic import layout

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
EDGE_MPIDS = {1: INT64_MIN, 2: 2**53 + 1, 3: INT64_MAX}
DEVICE_INFO = {
    "platform": "iOS",
    "device_manufacturer": "Apple",
    "device_model": "iPhone15,2",
    "os_version": "17.4",
    "locale_language": "en",
    "locale_country": "US",
    "timezone_offset": 0,
    "is_tablet": False,
}
APPLICATION_INFO = {
    "application_name": "Bingewatch",
    "application_version": "4.2.0",
    "package": "com.example.bingewatch",
    "os": "IOS",
}


def _h64(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _uuid(*parts: object) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:16]))


def bingewatch_mpid(user_id: int | str) -> int:
    """The deterministic mpid of a Bingewatch user (never 0)."""
    uid = int(user_id)
    if uid in EDGE_MPIDS:
        return EDGE_MPIDS[uid]
    value = _h64("bingewatch-mpid", uid)
    return value or 1


def bingewatch_action(user_id: str, item_id: str, timestamp: str) -> str:
    bucket = abs(_h64("action", user_id, item_id, timestamp)) % 100
    if bucket < 10:
        return "add_to_cart"
    if bucket < 15:
        return "purchase"
    return "view_detail"


def _event(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"event_type": event_type, "data": data}


def commerce_event(
    action: str, products: list[dict[str, Any]], ts_ms: int, session_id: int, session_uuid: str, event_id: int
) -> dict[str, Any]:
    return _event(
        "commerce_event",
        {
            "timestamp_unixtime_ms": ts_ms,
            "event_id": event_id,
            "source_message_id": _uuid("msg", event_id),
            "session_id": session_id,
            "session_uuid": session_uuid,
            "product_action": {"action": action, "products": products},
            "currency_code": "USD",
            "custom_event_type": action,
        },
    )


def make_batch(
    mpid: int | None,
    customer_id: str | None,
    events: list[dict[str, Any]],
    *,
    batch_ts_ms: int,
    environment: str = "production",
) -> dict[str, Any]:
    batch: dict[str, Any] = {
        "source_request_id": _uuid("request", mpid, batch_ts_ms),
        "environment": environment,
        "timestamp_unixtime_ms": batch_ts_ms,
        "batch_id": _h64("batch", mpid, batch_ts_ms),
        "device_info": DEVICE_INFO,
        "application_info": APPLICATION_INFO,
        "source_info": {"channel": "native", "is_historical": False},
        "events": events,
    }
    if mpid is not None:
        batch["mpid"] = mpid
    if customer_id is not None:
        batch["user_identities"] = {"customer_id": customer_id}
    return batch


@dataclass
class GeneratedBatches:
    """What :func:`bingewatch_batches` wrote."""

    mapping: dict[str, int]  # customer_id (Bingewatch USER_ID) -> mpid
    files: list[str] = field(default_factory=list)
    events_per_day: dict[str, int] = field(default_factory=dict)
    rows_per_day: dict[str, int] = field(default_factory=dict)  # expected CSV rows per interval
    actions: dict[str, int] = field(default_factory=dict)


def _day_list(end_date: dt.date, days: int) -> list[dt.date]:
    return [end_date - dt.timedelta(days=n) for n in range(days - 1, -1, -1)]


def bingewatch_batches(
    interactions_csv: str,
    *,
    end_date: dt.date | str,
    days: int,
    prefix: str,
    sink: Callable[[str, bytes], None],
    batches_per_file: int = 1000,
    late_fraction: float = 0.0,
) -> GeneratedBatches:
    """Write the Bingewatch interactions as daily gzip NDJSON mParticle batch files.

    :param interactions_csv: path of the Bingewatch ``interactions.csv``.
    :param end_date: last day of the window (inclusive).
    :param days: window length; the events are spread over it in chronological order.
    :param prefix: key prefix; files go to ``<prefix>/dt=YYYY-MM-DD/batches-XXXX.json.gz``.
    :param sink: called with ``(key, gzip bytes)`` for every file (write to disk or S3).
    :param late_fraction: share of batches delivered into the *next* day's folder (mParticle
        delivers by arrival time); their events keep their own event time.
    """
    if isinstance(end_date, str):
        end_date = dt.date.fromisoformat(end_date)
    if days < 1:
        raise ValueError("days must be >= 1")
    with open(interactions_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    indexed = sorted(enumerate(rows), key=lambda p: (int(p[1]["TIMESTAMP"]), p[0]))
    day_list = _day_list(end_date, days)
    per_user_day: dict[tuple[str, dt.date], list[tuple[int, dict[str, str]]]] = defaultdict(list)
    result = GeneratedBatches(mapping={})
    actions: dict[str, int] = defaultdict(int)
    for position, (_, row) in enumerate(indexed):
        day = day_list[position * days // len(indexed)]
        offset_s = abs(_h64("second", row["USER_ID"], row["ITEM_ID"], row["TIMESTAMP"], position)) % 86_340
        ts_ms = (
            int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) + 30 + offset_s
        ) * 1000 + position % 1000
        per_user_day[(row["USER_ID"], day)].append((ts_ms, row))
    prefix = prefix.strip("/")
    files: dict[str, list[bytes]] = defaultdict(list)
    for (user, day), events_in in sorted(per_user_day.items(), key=lambda kv: (kv[0][1], int(kv[0][0]))):
        mpid = bingewatch_mpid(user)
        result.mapping[user] = mpid
        events_in.sort(key=lambda e: e[0])
        session_id = _h64("session", user, day)
        session_uuid = _uuid("session", user, day)
        first_ts = events_in[0][0]
        events = [
            _event("session_start", {"timestamp_unixtime_ms": first_ts - 20_000, "session_id": session_id,
                                     "session_uuid": session_uuid}),
            _event("screen_view", {"timestamp_unixtime_ms": first_ts - 10_000, "session_id": session_id,
                                   "session_uuid": session_uuid, "screen_name": "Browse"}),
        ]  # fmt: skip
        for ts_ms, row in events_in:
            action = bingewatch_action(row["USER_ID"], row["ITEM_ID"], row["TIMESTAMP"])
            actions[action] += 1
            product = {
                "id": row["ITEM_ID"],
                "name": f"Title {row['ITEM_ID']}",
                "price": float(row["EVENT_VALUE"]),
                "quantity": 1,
            }
            event_id = _h64("event", user, row["ITEM_ID"], row["TIMESTAMP"], ts_ms)
            events.append(commerce_event(action, [product], ts_ms, session_id, session_uuid, event_id))
        batch = make_batch(mpid, user, events, batch_ts_ms=events_in[-1][0] + 5_000)
        deliver = day
        if late_fraction > 0 and (abs(_h64("late", user, day)) % 10_000) < late_fraction * 10_000:
            deliver = day + dt.timedelta(days=1)
        ds = day.isoformat()
        result.events_per_day[ds] = result.events_per_day.get(ds, 0) + len(events_in)
        result.rows_per_day[ds] = result.rows_per_day.get(ds, 0) + len(events_in)
        files[deliver.isoformat()].append(json.dumps(batch, separators=(",", ":")).encode())
    for ds in sorted(files):
        lines = files[ds]
        for n, start in enumerate(range(0, len(lines), batches_per_file)):
            key = f"{layout.mparticle_source_day_prefix(prefix, ds)}batches-{n:04d}.json.gz"
            body = b"\n".join(lines[start : start + batches_per_file]) + b"\n"
            sink(key, gzip.compress(body, compresslevel=6, mtime=0))
            result.files.append(key)
    result.actions = dict(actions)
    return result


def synthetic_batch_lines(
    *,
    n_users: int,
    n_items: int,
    n_batches: int,
    seed: int = 7,
    start_ms: int = 1_704_067_200_000,
    span_ms: int = 86_400_000,
    events_per_batch: int = 12,
) -> Iterator[bytes]:
    """Yield ``n_batches`` NDJSON batch lines (bytes, no newline) with constant memory.

    About half of the events are commerce events (mostly view_detail, some add_to_cart / purchase /
    remove_from_cart), each with 1-3 products; the rest are session/screen/custom events.
    """
    rng = random.Random(seed)
    actions = ["view_detail"] * 6 + ["add_to_cart"] * 2 + ["purchase", "remove_from_cart"]
    for n in range(n_batches):
        user = rng.randrange(n_users)
        mpid = _h64("synthetic-mpid", seed, user) or 1
        base = start_ms + rng.randrange(span_ms)
        session_id = rng.getrandbits(63)
        session_uuid = str(uuid.UUID(int=rng.getrandbits(128)))
        events: list[dict[str, Any]] = [
            _event("session_start", {"timestamp_unixtime_ms": base, "session_id": session_id,
                                     "session_uuid": session_uuid}),
        ]  # fmt: skip
        for k in range(events_per_batch - 1):
            ts = base + 1000 * (k + 1)
            if k % 2 == 0:
                products = [
                    {
                        "id": f"item-{rng.randrange(n_items)}",
                        "name": "Product",
                        "price": round(rng.uniform(1, 200), 2),
                        "quantity": 1,
                    }
                    for _ in range(1 + (rng.random() < 0.3) + (rng.random() < 0.1))
                ]
                events.append(
                    commerce_event(
                        rng.choice(actions), products, ts, session_id, session_uuid, rng.getrandbits(63)
                    )
                )
            elif k % 4 == 1:
                events.append(
                    _event("screen_view", {"timestamp_unixtime_ms": ts, "session_id": session_id,
                                           "session_uuid": session_uuid, "screen_name": "Home"})
                )  # fmt: skip
            else:
                events.append(
                    _event(
                        "custom_event",
                        {"timestamp_unixtime_ms": ts, "session_id": session_id, "session_uuid": session_uuid,
                         "event_name": "scroll", "custom_event_type": "navigation",
                         "custom_attributes": {"depth": str(rng.randrange(100))}},
                    )
                )  # fmt: skip
        yield json.dumps(
            make_batch(mpid, f"cust-{user}", events, batch_ts_ms=base + 60_000), separators=(",", ":")
        ).encode()
        del n


def write_synthetic_ndjson(
    path: str, *, target_bytes: int, compress: bool = True, seed: int = 7, **kwargs: Any
) -> int:
    """Write synthetic NDJSON batches until ``target_bytes`` (uncompressed) are written.

    Returns the uncompressed size. Memory is constant (lines are streamed).
    """
    written = 0
    kwargs.setdefault("n_users", 50_000)
    kwargs.setdefault("n_items", 20_000)
    with gzip.open(path, "wb", compresslevel=1) if compress else open(path, "wb") as fh:
        block: list[bytes] = []
        for line in synthetic_batch_lines(n_batches=10**12, seed=seed, **kwargs):
            block.append(line)
            written += len(line) + 1
            if len(block) >= 512:
                fh.write(b"\n".join(block) + b"\n")
                block = []
            if written >= target_bytes:
                break
        if block:
            fh.write(b"\n".join(block) + b"\n")
    return written
