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

This module is the HTTP side (authentication, request limits, rate limiting, fault injection, the
admin endpoints); the batch rules and the SQLite profile store are
:mod:`emulators.mparticle.models`. Test/demo endpoints: ``GET /_emulator/profiles/<identity>``,
``GET /_emulator/stats``, ``GET /_emulator/events?limit=N``, ``GET|POST /_emulator/faults`` and
``POST /_emulator/reset``.
"""

from __future__ import annotations

import base64
import hmac
import json
import math
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from werkzeug.exceptions import BadRequest, HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from emulators.mparticle.models import (
    MAX_BATCHES_PER_REQUEST,
    MAX_REQUEST_BYTES,
    BatchError,
    MParticleBackend,
    validate_batch,
)


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
        """
        Set knobs, all or none: an unknown knob or a value of the wrong type or range is a
        ``ValueError`` naming the knob (``POST /_emulator/faults`` answers it as a 400), and no knob
        changes, so a bad request can never leave the emulator failing every call.
        """
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown fault knobs: {sorted(unknown)}")
        checked = {name: _check_knob(name, value) for name, value in changes.items()}
        for name, value in checked.items():
            setattr(self, name, value)


# Each knob's rule: (accepts None, accepts a float, lowest, highest, what the error says it wants).
_KNOBS: dict[str, tuple[bool, bool, float, float, str]] = {
    "status_429_storm_requests": (False, False, 0, 1_000_000, "a count of requests (integer, 0..1000000)"),
    "status_5xx_requests": (False, False, 0, 1_000_000, "a count of requests (integer, 0..1000000)"),
    "status_5xx_after_accept_requests": (
        False,
        False,
        0,
        1_000_000,
        "a count of requests (integer, 0..1000000)",
    ),
    "status_5xx_code": (False, False, 500, 599, "an HTTP status code 500..599"),
    "latency_ms": (False, True, 0, 60_000, "milliseconds (a number, 0..60000)"),
    "retry_after_s": (True, False, 0, 3600, "seconds (integer, 0..3600) or null"),
}


def _check_knob(name: str, value: Any) -> Any:
    """``value`` if it suits knob ``name``, else ``ValueError`` naming the knob and what it takes."""
    nullable, real, low, high, wanted = _KNOBS[name]
    if value is None and nullable:
        return None
    kinds = (int, float) if real else (int,)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        raise ValueError(f"fault knob {name}: expected {wanted}, got {json.dumps(value)[:40]}")
    return value


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


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"errors": [{"code": code, "message": message}]}
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")


def _json(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj, sort_keys=True), status=status, content_type="application/json")


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
        self.backend = MParticleBackend(state_dir)
        self._expected_auth = "Basic " + base64.b64encode(f"{api_key}:{api_secret}".encode()).decode()
        self.strict = strict
        self.faults = Faults()
        capacity = float(burst) if burst else max(rate_limit_per_s, float(MAX_BATCHES_PER_REQUEST))
        self.bucket = TokenBucket(rate_limit_per_s, capacity)
        self._lock = threading.RLock()
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
        except BadRequest as exc:
            response = _error(400, "INVALID_JSON", str(exc.description))
        except HTTPException as exc:
            response = exc.get_response(environ)  # type: ignore[assignment]
        return response(environ, start_response)

    def close(self) -> None:
        self.backend.close()

    # ------------------------------------------------------------------ Python accessors
    def profile(self, identity: str | int) -> dict[str, Any] | None:
        """The stored profile for an mpid or a customer_id, or None."""
        return self.backend.profile(identity)

    def events(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` logged events, newest first."""
        return self.backend.events(limit)

    def stats(self) -> dict[str, Any]:
        """Request counts and rejections since the last reset, plus the store's persistent counters."""
        with self._lock:
            requests = {str(k): v for k, v in sorted(self.status_counts.items())}
            recent = self.rejections[-20:]
        return {"requests_by_status": requests, **self.backend.stats(), "recent_rejections": recent}

    def reset(self, *, data: bool = True) -> None:
        """Clear faults, the rate bucket and counters; with ``data`` also profiles and logs."""
        with self._lock:
            self.faults = Faults()
            self.bucket.reset()
            self.status_counts.clear()
            self.rejections.clear()
        self.backend.reset(data=data)

    # ------------------------------------------------------------------ admin endpoints
    def _on_faults(self, request: Request) -> Response:
        if request.method == "POST":
            changes = _json_body(request)
            if not isinstance(changes, dict):
                return _error(400, "INVALID_FAULTS", "the body must be a JSON object of fault knobs")
            try:
                self.faults.update(**changes)
            except ValueError as exc:
                return _error(400, "INVALID_FAULTS", str(exc))
        return _json(asdict(self.faults))

    def _on_reset(self, request: Request) -> Response:
        body = _json_body(request) if request.get_data(cache=True) else {}
        if not isinstance(body, dict):
            return _error(400, "INVALID_BODY", 'the body must be a JSON object such as {"keep_data": true}')
        self.reset(data=not body.get("keep_data", False))
        return _json({"reset": True})

    def _on_stats(self, request: Request) -> Response:
        return _json(self.stats())

    def _on_event_log(self, request: Request) -> Response:
        limit = request.args.get("limit", "100")
        if not limit.isdigit() or not 0 < int(limit) <= 10_000:
            return _error(400, "INVALID_LIMIT", f"limit must be an integer 1..10000, got {limit[:20]!r}")
        return _json({"events": self.events(int(limit))})

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
        """Authenticate, inject faults, read and check the batches, rate-limit, apply, answer 202."""
        if self.faults.latency_ms:
            time.sleep(self.faults.latency_ms / 1000.0)
        refusal = self._authenticate(request) or self._injected_failure()
        if refusal is not None:
            return refusal
        batches = self._read_batches(request, bulk=bulk)
        if isinstance(batches, Response):
            return batches
        valid, errors = _split_valid(batches)
        if errors and (not bulk or self.strict):
            return Response(json.dumps({"errors": errors}), status=400, content_type="application/json")
        if valid:
            ok, wait = self.bucket.take(len(valid))
            if not ok:
                return self._rate_limited(wait)
        self.backend.apply(valid, rejected=len(errors))
        with self._lock:
            self.rejections.extend(errors)
            del self.rejections[:-1000]
        if self._take_fault("status_5xx_after_accept_requests"):
            return _error(503, "SERVICE_UNAVAILABLE", "injected server error after accepting")
        used = round(100 * self.bucket.used_fraction())
        return Response(b"", status=202, headers={"X-mp-rate-limit-percentage-used": str(used)})

    def _authenticate(self, request: Request) -> Response | None:
        auth = request.headers.get("Authorization")
        if not auth:
            return _error(401, "UNAUTHORIZED", "missing Authorization header")
        if not hmac.compare_digest(auth.encode(), self._expected_auth.encode()):
            return _error(403, "FORBIDDEN", "invalid API key or secret")
        return None

    def _injected_failure(self) -> Response | None:
        if self._take_fault("status_429_storm_requests"):
            retry = self.faults.retry_after_s
            return self._rate_limited(None if retry is None else float(retry))
        if self._take_fault("status_5xx_requests"):
            return _error(int(self.faults.status_5xx_code), "SERVICE_UNAVAILABLE", "injected server error")
        return None

    def _read_batches(self, request: Request, *, bulk: bool) -> list[Any] | Response:
        """The request's batches, or the 400 answer for a body over the limit or not JSON."""
        raw = request.get_data(cache=False)
        if len(raw) > MAX_REQUEST_BYTES:
            return _error(
                400, "REQUEST_TOO_LARGE", f"request is {len(raw)} bytes; the limit is {MAX_REQUEST_BYTES}"
            )
        try:
            payload = json.loads(raw)
            # a lone surrogate escape ("\\ud800") is JSON but not text: no profile store can hold it
            json.dumps(payload, ensure_ascii=False).encode("utf-8")
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, UnicodeEncodeError
            return _error(400, "INVALID_JSON", f"the body is not JSON text: {exc}")
        except RecursionError:
            return _error(400, "INVALID_JSON", "the body is nested deeper than the parser can follow")
        if not bulk:
            return [payload]
        if not isinstance(payload, list):
            return _error(400, "INVALID_BODY", "/v2/bulkevents expects a JSON array of batches")
        if len(payload) > MAX_BATCHES_PER_REQUEST:
            return _error(
                400, "TOO_MANY_BATCHES", f"{len(payload)} batches; at most {MAX_BATCHES_PER_REQUEST}"
            )
        return payload


def _json_body(request: Request) -> Any:
    """The request's JSON body; malformed or too deeply nested JSON is a 400 (``BadRequest``)."""
    try:
        return json.loads(request.get_data(cache=True) or b"null")
    except ValueError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("the body is nested deeper than the parser can follow") from None


def _split_valid(batches: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The batches that pass :func:`validate_batch`, and an error entry for each one that does not."""
    valid: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for index, batch in enumerate(batches):
        try:
            validate_batch(batch)
            valid.append(batch)
        except BatchError as exc:
            errors.append({"code": exc.code, "message": f"batch {index}: {exc}"})
        except RecursionError:
            errors.append({"code": "INVALID_BATCH", "message": f"batch {index}: nested too deeply"})
    return valid, errors


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
