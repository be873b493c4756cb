"""
mParticle Events API emulator (``POST /v2/events``, ``POST /v2/bulkevents``) for the embedded stack.

Behaviour follows the documented contract (``shared/reference/aws-and-mparticle-apis.md`` §5):

* HTTP Basic auth with the Custom Feed key/secret: 401 when missing, 403 when wrong.
* 202 Accepted on success, with ``X-mp-rate-limit-percentage-used``.
* Limits: at most 100 batches per bulk request, 128 KB per batch, 256 KB per request, 100 user
  attributes per batch, attribute names ≤ 256 characters, values ≤ 4096 characters, lists ≤ 1000
  entries of ≤ 512 characters; ``environment`` is required (``production``/``development``).
  The reference names no status code for size limits, so request-level violations (body over 256 KB,
  more than 100 batches, malformed JSON) answer **400** with ``{"errors": [{"code", "message"}]}``.
  Per-batch violations: ``/v2/events`` answers 400; ``/v2/bulkevents`` answers 202 and drops the bad
  batch (documented: "If some event batches succeed and some event batches fail, you will still get an
  'Accepted' response"), counting it in ``/_emulator/stats`` (``batches_rejected``); with
  ``strict=True`` it answers 400 instead. Batch size is measured on the compact re-serialisation.
* A token bucket in batches/s (default 270/s, burst = one second of rate): over it → 429 with an
  integer ``Retry-After`` and ``X-mp-rate-limit-exceeded: feed``.
* ``source_request_id`` deduplicates batches (an id seen before is acknowledged and not applied
  again), as the JSON reference describes.

State (profiles keyed by mpid and by customer_id, seen request ids, an event log) is SQLite under
``state_dir`` and survives a restart. Test/demo endpoints: ``GET /_emulator/profiles/<identity>``,
``GET /_emulator/stats``, ``GET /_emulator/events?limit=N``, ``GET|POST /_emulator/faults`` and
``POST /_emulator/reset``.
"""

from __future__ import annotations

import base64
import hmac
import json
import math
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

MAX_BATCHES_PER_REQUEST = 100
MAX_BATCH_BYTES = 128 * 1024
MAX_REQUEST_BYTES = 256 * 1024
MAX_USER_ATTRIBUTES = 100
MAX_ATTRIBUTE_NAME_CHARS = 256
MAX_ATTRIBUTE_VALUE_CHARS = 4096
MAX_LIST_ENTRIES = 1000
MAX_LIST_ENTRY_CHARS = 512
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


@dataclass
class Faults:
    """
    Runtime fault knobs (``app.faults`` from Python, ``POST /_emulator/faults`` over HTTP).

    :param status_429_storm_requests: the next N Events API requests answer 429.
    :param status_5xx_requests: the next N requests answer ``status_5xx_code`` without applying.
    :param status_5xx_after_accept_requests: the next N requests are applied, then answer 503 (the
        response is "lost": a client retry re-sends what was already accepted).
    :param status_5xx_code: the 5xx code to use (default 503).
    :param latency_ms: added to every Events API request.
    :param retry_after_s: ``Retry-After`` of injected 429s; None omits the header.
    """

    status_429_storm_requests: int = 0
    status_5xx_requests: int = 0
    status_5xx_after_accept_requests: int = 0
    status_5xx_code: int = 503
    latency_ms: float = 0.0
    retry_after_s: int | None = 1

    def update(self, **changes: Any) -> None:
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown fault knobs: {sorted(unknown)}")
        for name, value in changes.items():
            setattr(self, name, value)


class TokenBucket:
    """Non-blocking token bucket: :meth:`take` answers (ok, seconds until enough tokens)."""

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, n: float) -> tuple[bool, float]:
        with self.lock:
            self._refill()
            if self.tokens >= n:
                self.tokens -= n
                return True, 0.0
            return False, (n - self.tokens) / self.rate

    def used_fraction(self) -> float:
        with self.lock:
            self._refill()
            return 1.0 - self.tokens / self.capacity

    def reset(self) -> None:
        with self.lock:
            self.tokens = self.capacity
            self.stamp = time.monotonic()


class BatchError(ValueError):
    """A batch breaks a documented rule; ``code`` is the error code of the API error body."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"errors": [{"code": code, "message": message}]}
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")


def _json(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj, sort_keys=True), status=status, content_type="application/json")


def validate_batch(batch: Any) -> None:
    """Raise :class:`BatchError` if ``batch`` breaks a documented Events API rule."""
    if not isinstance(batch, dict):
        raise BatchError("INVALID_BATCH", "a batch must be a JSON object")
    size = len(json.dumps(batch, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > MAX_BATCH_BYTES:
        raise BatchError("BATCH_TOO_LARGE", f"batch is {size} bytes; the limit is {MAX_BATCH_BYTES}")
    if batch.get("environment") not in ("production", "development"):
        raise BatchError("INVALID_ENVIRONMENT", "environment is required: 'production' or 'development'")
    mpid = batch.get("mpid")
    if mpid is not None and (
        not isinstance(mpid, int) or isinstance(mpid, bool) or not INT64_MIN <= mpid <= INT64_MAX
    ):
        raise BatchError("INVALID_MPID", "mpid must be a 64-bit integer")
    identities = batch.get("user_identities")
    if identities is not None:
        if not isinstance(identities, dict):
            raise BatchError("INVALID_USER_IDENTITIES", "user_identities must be an object")
        unknown = set(identities) - USER_IDENTITY_KEYS
        if unknown:
            raise BatchError("INVALID_USER_IDENTITIES", f"unknown user identity types: {sorted(unknown)}")
    if mpid is None and not identities:
        raise BatchError("MISSING_IDENTITY", "the batch has no mpid and no user identity")
    attributes = batch.get("user_attributes")
    if attributes is not None:
        if not isinstance(attributes, dict):
            raise BatchError("INVALID_USER_ATTRIBUTES", "user_attributes must be an object")
        if len(attributes) > MAX_USER_ATTRIBUTES:
            raise BatchError(
                "TOO_MANY_USER_ATTRIBUTES",
                f"{len(attributes)} user attributes; at most {MAX_USER_ATTRIBUTES}",
            )
        for name, value in attributes.items():
            if len(name) > MAX_ATTRIBUTE_NAME_CHARS:
                raise BatchError("ATTRIBUTE_NAME_TOO_LONG", f"user attribute name {name[:40]!r}... too long")
            if isinstance(value, list):
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
            elif isinstance(value, str) and len(value) > MAX_ATTRIBUTE_VALUE_CHARS:
                raise BatchError("ATTRIBUTE_VALUE_TOO_LONG", f"user attribute {name!r} value too long")
    events = batch.get("events")
    if events is not None:
        if not isinstance(events, list):
            raise BatchError("INVALID_EVENTS", "events must be an array")
        for event in events:
            if not isinstance(event, dict) or not isinstance(event.get("event_type"), str):
                raise BatchError("INVALID_EVENT", "each event needs an event_type")
            data = event.get("data") or {}
            custom = (data.get("custom_attributes") or {}) if isinstance(data, dict) else None
            if not isinstance(custom, dict):
                raise BatchError("INVALID_EVENT", "event data and custom_attributes must be objects")
            if len(custom) > 100:
                raise BatchError("TOO_MANY_EVENT_ATTRIBUTES", "at most 100 attributes per event")
            for name, value in custom.items():
                if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_VALUE_CHARS:
                    raise BatchError("EVENT_ATTRIBUTE_TOO_LONG", f"event attribute {name!r} value too long")


class MParticleEmulator:
    """The WSGI application; see the module docstring. Create it with :func:`create_app`."""

    def __init__(
        self,
        *,
        state_dir: Path,
        api_key: str,
        api_secret: str,
        rate_limit_per_s: float,
        burst: int | None,
        strict: bool,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._expected_auth = "Basic " + base64.b64encode(f"{api_key}:{api_secret}".encode()).decode()
        self.strict = strict
        self.faults = Faults()
        capacity = float(burst) if burst else max(rate_limit_per_s, float(MAX_BATCHES_PER_REQUEST))
        self.bucket = TokenBucket(rate_limit_per_s, capacity)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.state_dir / "mparticle.sqlite3", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self.status_counts: Counter[int] = Counter()
        self.rejections: list[dict[str, Any]] = []
        self.url_map = Map(
            [
                Rule("/v2/events", endpoint="events", methods=["POST"]),
                Rule("/v2/bulkevents", endpoint="bulkevents", methods=["POST"]),
                Rule("/_emulator/faults", endpoint="faults", methods=["GET", "POST"]),
                Rule("/_emulator/reset", endpoint="reset", methods=["POST"]),
                Rule("/_emulator/stats", endpoint="stats", methods=["GET"]),
                Rule("/_emulator/events", endpoint="event_log", methods=["GET"]),
                Rule("/_emulator/profiles/<path:identity>", endpoint="profile", methods=["GET"]),
            ]
        )

    # ------------------------------------------------------------------ WSGI
    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            endpoint, args = self.url_map.bind_to_environ(environ).match()
            response = getattr(self, f"_on_{endpoint}")(request, **args)
        except HTTPException as exc:
            response = exc.get_response(environ)  # type: ignore[assignment]
        return response(environ, start_response)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ Python accessors
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
        """Counters since the last reset (persistent ones from SQLite)."""
        with self._lock:
            counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
            profiles, max_accepted = self._db.execute(
                "SELECT COUNT(*), COALESCE(MAX(accepted_batches), 0) FROM profiles"
            ).fetchone()
            over = self._db.execute("SELECT COUNT(*) FROM profiles WHERE accepted_batches > 1").fetchone()[0]
            events = self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        return {
            "requests_by_status": {str(k): v for k, v in sorted(self.status_counts.items())},
            "batches_received": counters.get("batches_received", 0),
            "batches_accepted": counters.get("batches_accepted", 0),
            "batches_duplicate": counters.get("batches_duplicate", 0),
            "batches_rejected": counters.get("batches_rejected", 0),
            "profiles": profiles,
            "profiles_with_more_than_one_accepted_batch": over,
            "max_accepted_batches_per_profile": max_accepted,
            "events_logged": events,
            "recent_rejections": self.rejections[-20:],
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

    def reset(self, *, data: bool = True) -> None:
        """Clear faults, the rate bucket and counters; with ``data`` also profiles and logs."""
        with self._lock:
            self.faults = Faults()
            self.bucket.reset()
            self.status_counts.clear()
            self.rejections.clear()
            self._db.execute("DELETE FROM counters")
            if data:
                for table in ("profiles", "request_ids", "events"):
                    self._db.execute(f"DELETE FROM {table}")
            self._db.commit()

    # ------------------------------------------------------------------ admin endpoints
    def _on_faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                self.faults.update(**(request.get_json(force=True) or {}))
            except (ValueError, TypeError) as exc:
                return _error(400, "INVALID_FAULTS", str(exc))
        return _json(asdict(self.faults))

    def _on_reset(self, request: Request) -> Response:
        body = request.get_json(force=True, silent=True) or {}
        self.reset(data=not body.get("keep_data", False))
        return _json({"reset": True})

    def _on_stats(self, request: Request) -> Response:
        return _json(self.stats())

    def _on_event_log(self, request: Request) -> Response:
        return _json({"events": self.events(int(request.args.get("limit", 100)))})

    def _on_profile(self, request: Request, identity: str) -> Response:
        profile = self.profile(identity)
        if profile is None:
            raise NotFound(f"no profile for {identity!r}")
        return _json(profile)

    # ------------------------------------------------------------------ Events API
    def _on_events(self, request: Request) -> Response:
        return self._counted(self._handle(request, bulk=False))

    def _on_bulkevents(self, request: Request) -> Response:
        return self._counted(self._handle(request, bulk=True))

    def _counted(self, response: Response) -> Response:
        with self._lock:
            self.status_counts[response.status_code] += 1
        return response

    def _take_fault(self, name: str) -> bool:
        with self._lock:
            remaining = getattr(self.faults, name)
            if remaining > 0:
                setattr(self.faults, name, remaining - 1)
                return True
        return False

    def _rate_limited(self, retry_after: float | None) -> Response:
        headers = {"X-mp-rate-limit-exceeded": "feed"}
        if retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        return _error(429, "RATE_LIMITED", "rate limit exceeded", headers)

    def _handle(self, request: Request, *, bulk: bool) -> Response:
        if self.faults.latency_ms:
            time.sleep(self.faults.latency_ms / 1000.0)
        auth = request.headers.get("Authorization")
        if not auth:
            return _error(401, "UNAUTHORIZED", "missing Authorization header")
        if not hmac.compare_digest(auth.encode(), self._expected_auth.encode()):
            return _error(403, "FORBIDDEN", "invalid API key or secret")
        if self._take_fault("status_429_storm_requests"):
            retry = self.faults.retry_after_s
            return self._rate_limited(None if retry is None else float(retry))
        if self._take_fault("status_5xx_requests"):
            code = int(self.faults.status_5xx_code)
            return _error(code, "SERVICE_UNAVAILABLE", "injected server error")
        raw = request.get_data(cache=False)
        if len(raw) > MAX_REQUEST_BYTES:
            return _error(
                400, "REQUEST_TOO_LARGE", f"request is {len(raw)} bytes; the limit is {MAX_REQUEST_BYTES}"
            )
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            return _error(400, "INVALID_JSON", f"the body is not JSON: {exc}")
        if bulk:
            if not isinstance(payload, list):
                return _error(400, "INVALID_BODY", "/v2/bulkevents expects a JSON array of batches")
            if len(payload) > MAX_BATCHES_PER_REQUEST:
                return _error(
                    400, "TOO_MANY_BATCHES", f"{len(payload)} batches; at most {MAX_BATCHES_PER_REQUEST}"
                )
            batches = payload
        else:
            batches = [payload]
        valid: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for index, batch in enumerate(batches):
            try:
                validate_batch(batch)
                valid.append(batch)
            except BatchError as exc:
                errors.append({"code": exc.code, "message": f"batch {index}: {exc}"})
        if errors and (not bulk or self.strict):
            return Response(json.dumps({"errors": errors}), status=400, content_type="application/json")
        if valid:
            ok, wait = self.bucket.take(len(valid))
            if not ok:
                return self._rate_limited(wait)
        self._apply(valid, rejected=errors)
        if self._take_fault("status_5xx_after_accept_requests"):
            return _error(503, "SERVICE_UNAVAILABLE", "injected server error after accepting")
        used = round(100 * self.bucket.used_fraction())
        return Response(b"", status=202, headers={"X-mp-rate-limit-percentage-used": str(used)})

    # ------------------------------------------------------------------ profile store
    def _apply(self, batches: list[dict[str, Any]], *, rejected: list[dict[str, Any]]) -> None:
        now = time.time()
        with self._lock:
            db = self._db
            accepted = duplicate = 0
            for batch in batches:
                mpid = batch.get("mpid")
                customer_id = (batch.get("user_identities") or {}).get("customer_id")
                if mpid is not None:
                    pk = f"mpid:{mpid}"
                elif customer_id is not None:
                    pk = f"customer_id:{customer_id}"
                else:
                    pk = "identity:" + json.dumps(batch.get("user_identities"), sort_keys=True)
                request_id = batch.get("source_request_id")
                row = db.execute("SELECT attributes FROM profiles WHERE pk = ?", (pk,)).fetchone()
                if request_id is not None:
                    seen = db.execute(
                        "SELECT 1 FROM request_ids WHERE source_request_id = ?", (str(request_id),)
                    ).fetchone()
                    if seen:
                        duplicate += 1
                        db.execute(
                            "UPDATE profiles SET received_batches = received_batches + 1 WHERE pk = ?", (pk,)
                        )
                        continue
                    db.execute(
                        "INSERT INTO request_ids (source_request_id, pk, received_at) VALUES (?, ?, ?)",
                        (str(request_id), pk, now),
                    )
                attributes = json.loads(row[0]) if row else {}
                attributes.update(batch.get("user_attributes") or {})
                for name in batch.get("deleted_user_attributes") or []:
                    attributes.pop(name, None)
                db.execute(
                    "INSERT INTO profiles (pk, mpid, customer_id, attributes, accepted_batches, "
                    "received_batches, updated_at) VALUES (?, ?, ?, ?, 1, 1, ?) "
                    "ON CONFLICT (pk) DO UPDATE SET attributes = excluded.attributes, "
                    "customer_id = COALESCE(excluded.customer_id, profiles.customer_id), "
                    "accepted_batches = accepted_batches + 1, received_batches = received_batches + 1, "
                    "updated_at = excluded.updated_at",
                    (
                        pk,
                        None if mpid is None else str(mpid),
                        customer_id,
                        json.dumps(attributes, ensure_ascii=False),
                        now,
                    ),
                )
                for event in batch.get("events") or []:
                    data = event.get("data") or {}
                    db.execute(
                        "INSERT INTO events (received_at, pk, source_request_id, event_type, event_name, "
                        "custom_event_type, attributes) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            now,
                            pk,
                            request_id,
                            event.get("event_type"),
                            data.get("event_name"),
                            data.get("custom_event_type"),
                            json.dumps(data.get("custom_attributes") or {}, ensure_ascii=False),
                        ),
                    )
                accepted += 1
            for name, value in (
                ("batches_received", len(batches) + len(rejected)),
                ("batches_accepted", accepted),
                ("batches_duplicate", duplicate),
                ("batches_rejected", len(rejected)),
            ):
                if value:
                    db.execute(
                        "INSERT INTO counters (name, value) VALUES (?, ?) "
                        "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                        (name, value),
                    )
            db.commit()
            self.rejections.extend(rejected)
            del self.rejections[:-1000]


def create_app(
    *,
    state_dir: Path,
    api_key: str = "local-key",
    api_secret: str = "local-secret",
    rate_limit_per_s: float = 270.0,
    burst: int | None = None,
    strict: bool = False,
) -> MParticleEmulator:
    """
    Create the emulator WSGI app (serve it with ``emulators.http_server.RunningServer``).

    :param state_dir: directory of the SQLite store (created if missing).
    :param api_key: accepted Basic-auth user name (the Custom Feed key).
    :param api_secret: accepted Basic-auth password (the Custom Feed secret).
    :param rate_limit_per_s: token-bucket refill in batches per second (mParticle's default 270).
    :param burst: bucket capacity in batches (default: one second of rate, at least 100).
    :param strict: answer 400 for a bulk request holding any invalid batch (mParticle accepts the
        valid ones and answers 202; see the module docstring).
    """
    return MParticleEmulator(
        state_dir=state_dir,
        api_key=api_key,
        api_secret=api_secret,
        rate_limit_per_s=rate_limit_per_s,
        burst=burst,
        strict=strict,
    )
