"""The mParticle emulator's backend: the Events API's batch rules and the profile store (SQLite).

No HTTP here (that is :mod:`emulators.mparticle.responses`: authentication, request limits, rate
limiting, fault injection). Rules and limits follow the documented contract
(``shared/reference/aws-and-mparticle-apis.md`` §5, from mParticle's ``default-service-limits`` and
``server/json-reference`` pages): a batch needs an ``environment`` and an identity (``mpid`` or
``user_identities``), at most 100 user attributes with names ≤ 256 characters, values ≤ 4096
characters and lists of ≤ 1000 entries of ≤ 512 characters; a batch is at most 128 KB (measured on
the compact re-serialisation). ``source_request_id`` deduplicates batches: an id seen before is
acknowledged and not applied again, as the JSON reference describes.

State (profiles keyed by mpid and by customer_id, seen request ids, an event log, counters) is
SQLite under ``state_dir`` and survives a restart.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

MAX_BATCHES_PER_REQUEST = 100
MAX_BATCH_BYTES = 128 * 1024
MAX_REQUEST_BYTES = 256 * 1024
MAX_USER_ATTRIBUTES = 100
MAX_ATTRIBUTE_NAME_CHARS = 256
MAX_ATTRIBUTE_VALUE_CHARS = 4096
MAX_LIST_ENTRIES = 1000
MAX_LIST_ENTRY_CHARS = 512
MAX_EVENT_ATTRIBUTES = 100
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
USER_IDENTITY_KEYS = frozenset(
    {
        "customer_id",
        "email",
        "facebook",
        "twitter",
        "google",
        "microsoft",
        "yahoo",
        "other",
        "alias",
        "facebook_custom_audience_id",
        "mobile_number",
        "phone_number_2",
        "phone_number_3",
        *(f"other_id_{n}" for n in range(2, 11)),
    }
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS profiles (
    pk TEXT PRIMARY KEY, mpid TEXT, customer_id TEXT, attributes TEXT NOT NULL,
    accepted_batches INTEGER NOT NULL DEFAULT 0, received_batches INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS profiles_mpid ON profiles (mpid);
CREATE INDEX IF NOT EXISTS profiles_customer_id ON profiles (customer_id);
CREATE TABLE IF NOT EXISTS request_ids (source_request_id TEXT PRIMARY KEY, pk TEXT, received_at REAL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, received_at REAL, pk TEXT, source_request_id TEXT,
    event_type TEXT, event_name TEXT, custom_event_type TEXT, attributes TEXT);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class BatchError(ValueError):
    """A batch breaks a documented rule; ``code`` is the error code of the API error body."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def validate_batch(batch: Any) -> None:
    """Raise :class:`BatchError` if ``batch`` breaks a documented Events API rule."""
    if not isinstance(batch, dict):
        raise BatchError("INVALID_BATCH", "a batch must be a JSON object")
    size = len(json.dumps(batch, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > MAX_BATCH_BYTES:
        raise BatchError("BATCH_TOO_LARGE", f"batch is {size} bytes; the limit is {MAX_BATCH_BYTES}")
    if batch.get("environment") not in ("production", "development"):
        raise BatchError("INVALID_ENVIRONMENT", "environment is required: 'production' or 'development'")
    _check_identity(batch.get("mpid"), batch.get("user_identities"))
    _check_user_attributes(batch.get("user_attributes"))
    _check_events(batch.get("events"))


def _check_identity(mpid: Any, identities: Any) -> None:
    if mpid is not None and (
        not isinstance(mpid, int) or isinstance(mpid, bool) or not INT64_MIN <= mpid <= INT64_MAX
    ):
        raise BatchError("INVALID_MPID", "mpid must be a 64-bit integer")
    if identities is not None:
        if not isinstance(identities, dict):
            raise BatchError("INVALID_USER_IDENTITIES", "user_identities must be an object")
        unknown = set(identities) - USER_IDENTITY_KEYS
        if unknown:
            raise BatchError("INVALID_USER_IDENTITIES", f"unknown user identity types: {sorted(unknown)}")
    if mpid is None and not identities:
        raise BatchError("MISSING_IDENTITY", "the batch has no mpid and no user identity")


def _check_user_attributes(attributes: Any) -> None:
    if attributes is None:
        return
    if not isinstance(attributes, dict):
        raise BatchError("INVALID_USER_ATTRIBUTES", "user_attributes must be an object")
    if len(attributes) > MAX_USER_ATTRIBUTES:
        raise BatchError(
            "TOO_MANY_USER_ATTRIBUTES", f"{len(attributes)} user attributes; at most {MAX_USER_ATTRIBUTES}"
        )
    for name, value in attributes.items():
        if len(name) > MAX_ATTRIBUTE_NAME_CHARS:
            raise BatchError("ATTRIBUTE_NAME_TOO_LONG", f"user attribute name {name[:40]!r}... too long")
        if isinstance(value, list):
            _check_attribute_list(name, value)
        elif isinstance(value, str) and len(value) > MAX_ATTRIBUTE_VALUE_CHARS:
            raise BatchError("ATTRIBUTE_VALUE_TOO_LONG", f"user attribute {name!r} value too long")


def _check_attribute_list(name: str, value: list[Any]) -> None:
    if len(value) > MAX_LIST_ENTRIES:
        raise BatchError(
            "ATTRIBUTE_LIST_TOO_LONG",
            f"user attribute {name!r} has {len(value)} entries; at most {MAX_LIST_ENTRIES}",
        )
    for entry in value:
        if not isinstance(entry, str) or len(entry) > MAX_LIST_ENTRY_CHARS:
            raise BatchError(
                "ATTRIBUTE_LIST_ENTRY_INVALID",
                f"user attribute {name!r} has an entry that is not a string of at most "
                f"{MAX_LIST_ENTRY_CHARS} characters",
            )


def _check_events(events: Any) -> None:
    if events is None:
        return
    if not isinstance(events, list):
        raise BatchError("INVALID_EVENTS", "events must be an array")
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("event_type"), str):
            raise BatchError("INVALID_EVENT", "each event needs an event_type")
        data = event.get("data") or {}
        custom = (data.get("custom_attributes") or {}) if isinstance(data, dict) else None
        if not isinstance(custom, dict):
            raise BatchError("INVALID_EVENT", "event data and custom_attributes must be objects")
        if len(custom) > MAX_EVENT_ATTRIBUTES:
            raise BatchError(
                "TOO_MANY_EVENT_ATTRIBUTES", f"at most {MAX_EVENT_ATTRIBUTES} attributes per event"
            )
        for name, value in custom.items():
            if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_VALUE_CHARS:
                raise BatchError("EVENT_ATTRIBUTE_TOO_LONG", f"event attribute {name!r} value too long")


def profile_key(batch: dict[str, Any]) -> str:
    """The profile a batch updates: its mpid, else its customer_id, else all its identities."""
    mpid = batch.get("mpid")
    customer_id = (batch.get("user_identities") or {}).get("customer_id")
    if mpid is not None:
        return f"mpid:{mpid}"
    if customer_id is not None:
        return f"customer_id:{customer_id}"
    return "identity:" + json.dumps(batch.get("user_identities"), sort_keys=True)


class MParticleBackend:
    """Profiles, seen ``source_request_id`` values, an event log and counters in one SQLite file."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.state_dir / "mparticle.sqlite3", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ writes
    def apply(self, batches: list[dict[str, Any]], *, rejected: int) -> None:
        """Apply valid batches (a repeated ``source_request_id`` is counted, not applied) and count
        them with the ``rejected`` ones, in one transaction."""
        now = time.time()
        with self._lock:
            accepted = duplicate = 0
            for batch in batches:
                pk = profile_key(batch)
                if self._seen(batch.get("source_request_id"), pk, now):
                    duplicate += 1
                    continue
                self._merge_profile(pk, batch, now)
                self._log_events(pk, batch, now)
                accepted += 1
            self._count(
                batches_received=len(batches) + rejected,
                batches_accepted=accepted,
                batches_duplicate=duplicate,
                batches_rejected=rejected,
            )
            self._db.commit()

    def _seen(self, request_id: Any, pk: str, now: float) -> bool:
        """Whether ``request_id`` was applied before (then the profile only counts one more receipt);
        otherwise remember it."""
        if request_id is None:
            return False
        db = self._db
        if db.execute("SELECT 1 FROM request_ids WHERE source_request_id = ?", (str(request_id),)).fetchone():
            db.execute("UPDATE profiles SET received_batches = received_batches + 1 WHERE pk = ?", (pk,))
            return True
        db.execute(
            "INSERT INTO request_ids (source_request_id, pk, received_at) VALUES (?, ?, ?)",
            (str(request_id), pk, now),
        )
        return False

    def _merge_profile(self, pk: str, batch: dict[str, Any], now: float) -> None:
        row = self._db.execute("SELECT attributes FROM profiles WHERE pk = ?", (pk,)).fetchone()
        attributes = json.loads(row[0]) if row else {}
        attributes.update(batch.get("user_attributes") or {})
        for name in batch.get("deleted_user_attributes") or []:
            attributes.pop(name, None)
        mpid = batch.get("mpid")
        self._db.execute(
            "INSERT INTO profiles (pk, mpid, customer_id, attributes, accepted_batches, "
            "received_batches, updated_at) VALUES (?, ?, ?, ?, 1, 1, ?) "
            "ON CONFLICT (pk) DO UPDATE SET attributes = excluded.attributes, "
            "customer_id = COALESCE(excluded.customer_id, profiles.customer_id), "
            "accepted_batches = accepted_batches + 1, received_batches = received_batches + 1, "
            "updated_at = excluded.updated_at",
            (
                pk,
                None if mpid is None else str(mpid),
                (batch.get("user_identities") or {}).get("customer_id"),
                json.dumps(attributes, ensure_ascii=False),
                now,
            ),
        )

    def _log_events(self, pk: str, batch: dict[str, Any], now: float) -> None:
        for event in batch.get("events") or []:
            data = event.get("data") or {}
            self._db.execute(
                "INSERT INTO events (received_at, pk, source_request_id, event_type, event_name, "
                "custom_event_type, attributes) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    now,
                    pk,
                    batch.get("source_request_id"),
                    event.get("event_type"),
                    data.get("event_name"),
                    data.get("custom_event_type"),
                    json.dumps(data.get("custom_attributes") or {}, ensure_ascii=False),
                ),
            )

    def _count(self, **increments: int) -> None:
        for name, value in increments.items():
            if value:
                self._db.execute(
                    "INSERT INTO counters (name, value) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                    (name, value),
                )

    def reset(self, *, data: bool = True) -> None:
        """Clear the counters; with ``data`` also profiles, seen request ids and the event log."""
        with self._lock:
            self._db.execute("DELETE FROM counters")
            if data:
                for table in ("profiles", "request_ids", "events"):
                    self._db.execute(f"DELETE FROM {table}")
            self._db.commit()

    # ------------------------------------------------------------------ reads
    def profile(self, identity: str | int) -> dict[str, Any] | None:
        """The stored profile for an mpid or a customer_id, or None."""
        key = str(identity)
        with self._lock:
            row = self._db.execute(
                "SELECT pk, mpid, customer_id, attributes, accepted_batches, received_batches "
                "FROM profiles WHERE pk = ? OR pk = ? ORDER BY pk DESC LIMIT 1",
                (f"mpid:{key}", f"customer_id:{key}"),
            ).fetchone()
        if row is None:
            return None
        _pk, mpid, customer_id, attributes, accepted, received = row
        return {
            "mpid": int(mpid) if mpid is not None else None,
            "customer_id": customer_id,
            "user_attributes": json.loads(attributes),
            "accepted_batches": accepted,
            "received_batches": received,
        }

    def stats(self) -> dict[str, Any]:
        """Persistent counters since the last reset, and profile totals."""
        with self._lock:
            counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
            profiles, max_accepted = self._db.execute(
                "SELECT COUNT(*), COALESCE(MAX(accepted_batches), 0) FROM profiles"
            ).fetchone()
            over = self._db.execute("SELECT COUNT(*) FROM profiles WHERE accepted_batches > 1").fetchone()[0]
            events = self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        return {
            "batches_received": counters.get("batches_received", 0),
            "batches_accepted": counters.get("batches_accepted", 0),
            "batches_duplicate": counters.get("batches_duplicate", 0),
            "batches_rejected": counters.get("batches_rejected", 0),
            "profiles": profiles,
            "profiles_with_more_than_one_accepted_batch": over,
            "max_accepted_batches_per_profile": max_accepted,
            "events_logged": events,
        }

    def events(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, received_at, pk, source_request_id, event_type, event_name, custom_event_type,"
                " attributes FROM events ORDER BY seq DESC LIMIT ?",
                (limit,),
            ).fetchall()
        keys = ("seq", "received_at", "identity", "source_request_id", "event_type", "event_name")
        return [
            {
                **dict(zip(keys, row[:6], strict=True)),
                "custom_event_type": row[6],
                "attributes": json.loads(row[7]),
            }
            for row in rows
        ]
