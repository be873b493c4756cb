from __future__ import annotations

import base64
import json
import logging

import pytest
import requests
from requests.adapters import BaseAdapter

from hooks.mparticle import (
    MParticleHook,
    MParticleRequestError,
    MParticleRetryableError,
    TokenBucket,
)

KEY, SECRET = "us1-key-5f2a9c", "s3cr3t-Value-917"


class ScriptedAdapter(BaseAdapter):
    """Answers each request with the next scripted (status, headers, body) or raises an exception."""

    def __init__(self, script):
        super().__init__()
        self.script = list(script)
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):
        self.requests.append(request)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        status, headers, body = step
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        response._content = body.encode()
        response.url = request.url
        response.request = request
        return response

    def close(self):
        pass


@pytest.fixture(autouse=True)
def _connection(monkeypatch):
    conn = {"conn_type": "http", "host": "https://s2s.us1.mparticle.com", "login": KEY, "password": SECRET}
    monkeypatch.setenv("AIRFLOW_CONN_MPARTICLE_DEFAULT", json.dumps(conn))


def _hook(script, **kwargs):
    adapter = ScriptedAdapter(script)
    hook = MParticleHook(adapter=adapter, rate_limit_per_s=1e6, **kwargs)
    waits: list[float] = []
    hook._sleep = waits.append
    return hook, adapter, waits


BATCHES = [{"environment": "production", "mpid": 2**62 + 1, "user_attributes": {"a": ["x"]}}]


def test_success_posts_exact_json_with_basic_auth():
    hook, adapter, waits = _hook([(202, {}, "")])
    response = hook.upload_bulk(BATCHES)
    assert response.status_code == 202
    (sent,) = adapter.requests
    assert sent.url == "https://s2s.us1.mparticle.com/v2/bulkevents"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert b'"mpid":4611686018427387905' in sent.body
    assert waits == []


def test_429_honours_retry_after():
    hook, adapter, waits = _hook(
        [(429, {"Retry-After": "3"}, ""), (429, {"Retry-After": "1"}, ""), (202, {}, "")]
    )
    hook.upload_bulk(BATCHES)
    assert len(adapter.requests) == 3
    assert 3.0 <= waits[0] <= 3.3
    assert 1.0 <= waits[1] <= 1.1
    assert hook.stats["status_429"] == 2


def test_429_without_retry_after_backs_off_with_jitter():
    hook, _, waits = _hook([(429, {}, "")] * 3 + [(202, {}, "")], backoff_base_s=1.0)
    hook.upload_bulk(BATCHES)
    assert len(waits) == 3
    assert all(0 <= w <= 2**n for n, w in enumerate(waits, start=1))


def test_5xx_and_network_errors_retried_with_exponential_backoff():
    script = [
        (503, {}, ""),
        requests.exceptions.ConnectionError("reset"),
        requests.exceptions.ReadTimeout("slow"),
        (500, {}, "oops"),
        (202, {}, ""),
    ]
    hook, adapter, waits = _hook(script, backoff_base_s=0.5, max_wait_s=4)
    hook.upload_bulk(BATCHES)
    assert len(adapter.requests) == 5
    assert len(waits) == 4
    assert all(0 <= w <= 4 for w in waits)


def test_gives_up_after_max_attempts():
    hook, adapter, _ = _hook([(503, {}, "down")] * 3, max_attempts=3)
    with pytest.raises(MParticleRetryableError, match="503"):
        hook.upload_bulk(BATCHES)
    assert len(adapter.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 413])
def test_other_4xx_not_retried_and_error_body_surfaced(status):
    body = json.dumps({"errors": [{"code": "BAD", "message": "environment is required"}]})
    hook, adapter, waits = _hook([(status, {}, body)])
    with pytest.raises(MParticleRequestError, match="environment is required") as info:
        hook.upload_bulk(BATCHES)
    assert info.value.status == status
    assert len(adapter.requests) == 1
    assert waits == []


def test_bulk_size_checked():
    hook, _, _ = _hook([])
    with pytest.raises(ValueError, match=r"1\.\.100"):
        hook.upload_bulk([BATCHES[0]] * 101)


def test_secrets_never_logged_or_in_errors(caplog, capsys):
    caplog.set_level(logging.DEBUG)
    script = [(429, {"Retry-After": "0"}, ""), requests.exceptions.ConnectionError("boom"), (403, {}, "nope")]
    hook, _, _ = _hook(script)
    with pytest.raises(MParticleRequestError) as info:
        hook.upload_bulk(BATCHES)
    token = base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    logs = caplog.text + "".join(capsys.readouterr())  # Airflow's structlog writes to stdout
    text = logs + str(info.value) + repr(info.value)
    assert "retrying" in logs
    for secret in (KEY, SECRET, token):
        assert secret not in text


def test_token_bucket_enforces_rate():
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    bucket = TokenBucket(rate=100.0, capacity=100.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(10):
        bucket.acquire(100)
    # 1000 batches at 100/s with a 100-batch burst: 9 s
    assert now[0] == pytest.approx(9.0)


def test_client_rate_limit_applies_per_batch():
    hook, _, _ = _hook([(202, {}, "")] * 3)
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    hook.rate_limiter = TokenBucket(rate=50.0, capacity=100.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        hook.upload_bulk(BATCHES * 100)
    assert now[0] == pytest.approx(4.0)  # 300 batches at 50/s after a 100-batch burst
