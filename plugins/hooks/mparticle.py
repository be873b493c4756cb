"""
Hook for the mParticle server-to-server Events API (``/v2/bulkevents``), on the HTTP provider.

Connection ``mparticle_default`` (conn type ``http``): host = the pod base URL
(``https://s2s.us1.mparticle.com``; the embedded stack's emulator is ``http://127.0.0.1:<port>``),
login / password = the Custom Feed API key / secret (HTTP Basic). Extras are the HTTP provider's
(``timeout``, ``verify``, ``proxies``; other keys become headers).

Retry policy (tenacity), per request:

* 429: wait what ``Retry-After`` says (integer seconds) plus up to 10 % jitter; without the header,
  exponential backoff with full jitter;
* 5xx, connection errors and timeouts: exponential backoff with full jitter;
* any other 4xx: not retried; raises :class:`MParticleRequestError` carrying the API's ``errors`` body.

A retried request may already have been accepted (a timeout or a lost 202). The Events API has no
idempotency key; batches built by :mod:`personalize_logic.mparticle_batches` carry a deterministic
``source_request_id``, which mParticle deduplicates on.

A client-side token bucket keeps the upload under the feed's rate (default 270 batches/s, the
documented default) so the API's 429 is the exception, not the flow control.

Secrets: the key and secret only live in the ``requests`` session's auth object. Log lines,
exception messages and return values carry the status code, the API's error body and batch counts,
never headers.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import requests
import tenacity
from airflow.exceptions import AirflowException
from airflow.providers.http.hooks.http import HttpHook

BULK_ENDPOINT = "/v2/bulkevents"
EVENTS_ENDPOINT = "/v2/events"
DEFAULT_RATE_LIMIT_PER_S = 270.0
MAX_BATCHES_PER_REQUEST = 100
_ERROR_BODY_CHARS = 2000


class MParticleRequestError(AirflowException):
    """mParticle refused a request (any 4xx but 429); never retried."""

    def __init__(self, status_code: int, body: str) -> None:
        self.status = status_code
        self.body = body[:_ERROR_BODY_CHARS]
        super().__init__(f"mParticle Events API answered {status_code}: {self.body}")


class MParticleRetryableError(AirflowException):
    """A 429 or 5xx answer; retried by the hook, raised once its attempts are used up."""

    def __init__(self, status_code: int, body: str, retry_after: float | None) -> None:
        self.status = status_code
        self.body = body[:_ERROR_BODY_CHARS]
        self.retry_after = retry_after
        hint = "" if retry_after is None else f" (Retry-After {retry_after:g} s)"
        super().__init__(f"mParticle Events API answered {status_code}{hint}: {self.body}")


class TokenBucket:
    """
    Blocking token bucket (thread safe): :meth:`acquire` waits until ``n`` tokens are available.

    A request larger than the capacity waits for a full bucket and leaves it in debt, so the long-run
    rate never exceeds ``rate``.
    """

    def __init__(
        self,
        rate: float,
        capacity: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self, n: float) -> float:
        """Take ``n`` tokens, sleeping as needed; return the seconds slept."""
        slept = 0.0
        with self._lock:
            while True:
                now = self._clock()
                self.tokens = min(self.capacity, self.tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                need = min(n, self.capacity)
                if self.tokens >= need:
                    self.tokens -= n
                    return slept
                wait = (need - self.tokens) / self.rate
                self._sleep(wait)
                slept += wait


def _retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date is not what mParticle documents; fall back to backoff
    return seconds if seconds >= 0 else None


class _WaitRetryAfterOrBackoff(tenacity.wait.wait_base):
    """Retry-After when the error carries one, else exponential backoff with full jitter."""

    def __init__(self, base: float, maximum: float) -> None:
        self.backoff = tenacity.wait_random_exponential(multiplier=base, max=maximum)
        self.maximum = maximum

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, MParticleRetryableError) and exc.retry_after is not None:
            return min(self.maximum, exc.retry_after * (1.0 + random.uniform(0.0, 0.1)))
        return float(self.backoff(retry_state))


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(
        exc,
        MParticleRetryableError
        | requests.exceptions.ConnectionError
        | requests.exceptions.Timeout
        | requests.exceptions.ChunkedEncodingError,
    )


class MParticleHook(HttpHook):
    """
    Upload batches to the mParticle Events API with retries and a client-side rate limit.

    :param mparticle_conn_id: HTTP connection (host = pod base URL, login/password = key/secret).
    :param rate_limit_per_s: client-side limit in batches per second (mParticle's default feed limit
        is 270; divide it among tasks that upload to the same feed concurrently).
    :param burst: token-bucket capacity in batches (default: one full request, 100).
    :param max_attempts: attempts per request, the first included.
    :param backoff_base_s: first backoff step for 5xx / network errors (doubles each attempt).
    :param max_wait_s: cap of one wait (backoff or Retry-After).
    :param timeout_s: (connect, read) timeout of one request, unless the connection's ``timeout``
        extra sets one.
    """

    conn_name_attr = "mparticle_conn_id"
    default_conn_name = "mparticle_default"
    conn_type = "http"
    hook_name = "mParticle Events API"

    def __init__(
        self,
        mparticle_conn_id: str = default_conn_name,
        *,
        rate_limit_per_s: float = DEFAULT_RATE_LIMIT_PER_S,
        burst: float | None = None,
        max_attempts: int = 8,
        backoff_base_s: float = 1.0,
        max_wait_s: float = 120.0,
        timeout_s: float | tuple[float, float] = (10.0, 60.0),
        **kwargs: Any,
    ) -> None:
        super().__init__(method="POST", http_conn_id=mparticle_conn_id, **kwargs)
        self.mparticle_conn_id = mparticle_conn_id
        self.rate_limiter = TokenBucket(rate_limit_per_s, burst or MAX_BATCHES_PER_REQUEST)
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.max_wait_s = max_wait_s
        self.timeout_s = timeout_s
        self._session: requests.Session | None = None
        self._sleep: Callable[[float], None] = time.sleep
        self.stats = {"requests": 0, "attempts": 0, "retries": 0, "status_429": 0, "status_5xx": 0}

    # ------------------------------------------------------------------ session
    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """Return the hook's session (created once: keep-alive across requests)."""
        if self._session is None or headers or extra_options:
            session = super().get_conn(
                {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})},
                extra_options,
            )
            if headers or extra_options:
                return session
            self._session = session
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    # ------------------------------------------------------------------ uploads
    def upload_bulk(self, batches: Sequence[dict[str, Any]]) -> requests.Response:
        """
        POST up to 100 batches (dicts) to ``/v2/bulkevents``; return the 202 response.

        Integers (``mpid``) are serialised exactly by :mod:`json`.
        """
        if not 1 <= len(batches) <= MAX_BATCHES_PER_REQUEST:
            raise ValueError(f"a bulk request holds 1..{MAX_BATCHES_PER_REQUEST} batches, got {len(batches)}")
        body = json.dumps(list(batches), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return self.upload_bulk_body(body, len(batches))

    def upload_bulk_body(self, body: bytes, batch_count: int) -> requests.Response:
        """POST an already serialised ``/v2/bulkevents`` body of ``batch_count`` batches."""
        return self._post(BULK_ENDPOINT, body, batch_count)

    def upload_events(self, batch: dict[str, Any]) -> requests.Response:
        """POST one batch to ``/v2/events``."""
        body = json.dumps(batch, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return self._post(EVENTS_ENDPOINT, body, 1)

    def _post(self, endpoint: str, body: bytes, batch_count: int) -> requests.Response:
        self.stats["requests"] += 1
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_is_retryable),
            wait=_WaitRetryAfterOrBackoff(self.backoff_base_s, self.max_wait_s),
            stop=tenacity.stop_after_attempt(self.max_attempts),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        return retrying(self._send_once, endpoint, body, batch_count)

    def _send_once(self, endpoint: str, body: bytes, batch_count: int) -> requests.Response:
        self.stats["attempts"] += 1
        self.rate_limiter.acquire(batch_count)
        session = self.get_conn()
        timeout = self.merged_extra.get("timeout") or self.timeout_s
        response = session.post(self.url_from_endpoint(endpoint), data=body, timeout=timeout)
        status = response.status_code
        if 200 <= status < 300:
            return response
        text = response.text
        if status == 429:
            self.stats["status_429"] += 1
            raise MParticleRetryableError(status, text, _retry_after_seconds(response))
        if status >= 500:
            self.stats["status_5xx"] += 1
            raise MParticleRetryableError(status, text, None)
        raise MParticleRequestError(status, text)

    def _log_retry(self, retry_state: tenacity.RetryCallState) -> None:
        self.stats["retries"] += 1
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        reason = f"HTTP {exc.status}" if isinstance(exc, MParticleRetryableError) else type(exc).__name__
        self.log.warning(
            "mParticle request attempt %d/%d failed (%s); retrying in %.2f s",
            retry_state.attempt_number,
            self.max_attempts,
            reason,
            wait,
        )

    def test_connection(self) -> tuple[bool, str]:
        """Check the host and the key/secret with an empty bulk request (sends no data)."""
        try:
            self._post(BULK_ENDPOINT, b"[]", 0)
        except Exception as exc:
            return False, str(exc)
        return True, "Connection successfully tested"
