"""The emulator enforces the documented Events API contract (auth, limits, rate, dedupe, store)."""

from __future__ import annotations

import json

import pytest
import requests

from emulators.http_server import RunningServer
from emulators.mparticle import create_app
from tests.integration.mparticle.conftest import API_KEY, API_SECRET

pytestmark = pytest.mark.integration

AUTH = (API_KEY, API_SECRET)


def _batch(mpid=1, **extra):
    batch = {"environment": "production", "mpid": mpid, "user_attributes": {"product_recs": ["a"]}}
    batch.update(extra)
    return batch


def _post(server, batches, *, path="/v2/bulkevents", auth=AUTH, raw=None):
    data = raw if raw is not None else json.dumps(batches).encode()
    return requests.post(server.url + path, data=data, auth=auth, timeout=10)


def test_auth_missing_401_wrong_403(mparticle):
    assert requests.post(mparticle.url + "/v2/bulkevents", data=b"[]", timeout=10).status_code == 401
    assert _post(mparticle, [], auth=(API_KEY, "wrong")).status_code == 403
    assert _post(mparticle, []).status_code == 202


def test_accepts_and_stores_profile_with_exact_mpid(mparticle):
    mpid = 2**63 - 1
    response = _post(mparticle, [_batch(mpid, source_request_id="r-1")])
    assert response.status_code == 202
    assert "X-mp-rate-limit-percentage-used" in response.headers
    profile = requests.get(f"{mparticle.url}/_emulator/profiles/{mpid}", timeout=10).json()
    assert profile["mpid"] == mpid
    assert profile["user_attributes"] == {"product_recs": ["a"]}
    assert mparticle.app.profile(mpid)["accepted_batches"] == 1


def test_customer_id_profile_lookup(mparticle):
    batch = {
        "environment": "development",
        "user_identities": {"customer_id": "c-9"},
        "user_attributes": {"x": "1"},
    }
    assert _post(mparticle, [batch]).status_code == 202
    assert mparticle.app.profile("c-9")["user_attributes"] == {"x": "1"}
    assert requests.get(f"{mparticle.url}/_emulator/profiles/nobody", timeout=10).status_code == 404


def test_source_request_id_deduplicates(mparticle):
    for _ in range(3):
        assert _post(mparticle, [_batch(5, source_request_id="same")]).status_code == 202
    profile = mparticle.app.profile(5)
    assert profile["accepted_batches"] == 1
    assert profile["received_batches"] == 3
    stats = requests.get(mparticle.url + "/_emulator/stats", timeout=10).json()
    assert stats["batches_duplicate"] == 2
    assert stats["batches_accepted"] == 1


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ([_batch(n) for n in range(101)], "TOO_MANY_BATCHES"),
        ([_batch(n, user_attributes={"p": ["x" * 500] * 200}) for n in range(4)], "REQUEST_TOO_LARGE"),
        ({"not": "a list"}, "INVALID_BODY"),
    ],
)
def test_request_level_limits_answer_400_with_errors(mparticle, payload, code):
    response = _post(mparticle, payload)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == code


@pytest.mark.parametrize(
    ("batch", "code"),
    [
        ({"mpid": 1}, "INVALID_ENVIRONMENT"),
        (_batch(user_attributes={"p": ["x"] * 1001}), "ATTRIBUTE_LIST_TOO_LONG"),
        (_batch(user_attributes={"p": ["x" * 513]}), "ATTRIBUTE_LIST_ENTRY_INVALID"),
        (_batch(user_attributes={f"a{n}": "v" for n in range(101)}), "TOO_MANY_USER_ATTRIBUTES"),
        (_batch(user_attributes={"p": ["y" * 500] * 270}), "BATCH_TOO_LARGE"),
        (_batch(mpid=1.5), "INVALID_MPID"),
        (_batch(user_identities={"customerid": "u1"}), "INVALID_USER_IDENTITIES"),
    ],
)
def test_batch_rules(mparticle, batch, code):
    single = _post(mparticle, batch, path="/v2/events")
    assert single.status_code == 400
    assert single.json()["errors"][0]["code"] == code
    # bulk: accepted with the bad batch dropped and counted (documented partial acceptance)
    bulk = _post(mparticle, [batch, _batch(77)])
    assert bulk.status_code == 202
    assert mparticle.app.stats()["batches_rejected"] == 1
    assert mparticle.app.profile(77) is not None
    mparticle.app.strict = True
    try:
        assert _post(mparticle, [batch, _batch(78)]).status_code == 400
    finally:
        mparticle.app.strict = False


def test_rate_limit_429_with_retry_after(tmp_path):
    server = RunningServer(create_app(state_dir=tmp_path, rate_limit_per_s=20.0, burst=100)).start()
    try:
        auth = ("local-key", "local-secret")
        assert _post(server, [_batch(n) for n in range(100)], auth=auth).status_code == 202
        limited = _post(server, [_batch(n) for n in range(100)], auth=auth)
        assert limited.status_code == 429
        assert limited.headers["X-mp-rate-limit-exceeded"] == "feed"
        assert 1 <= int(limited.headers["Retry-After"]) <= 5
    finally:
        server.shutdown()


def test_fault_knobs_over_http(mparticle):
    faults = {"status_429_storm_requests": 2, "status_5xx_requests": 1, "retry_after_s": 2}
    assert requests.post(mparticle.url + "/_emulator/faults", json=faults, timeout=10).status_code == 200
    first, second = _post(mparticle, [_batch()]), _post(mparticle, [_batch()])
    assert (first.status_code, second.status_code) == (429, 429)
    assert first.headers["Retry-After"] == "2"
    assert _post(mparticle, [_batch()]).status_code == 503
    assert _post(mparticle, [_batch()]).status_code == 202
    bad = requests.post(mparticle.url + "/_emulator/faults", json={"nope": 1}, timeout=10)
    assert bad.status_code == 400
    assert requests.post(mparticle.url + "/_emulator/reset", timeout=10).json() == {"reset": True}
    assert mparticle.app.stats()["profiles"] == 0


@pytest.mark.parametrize(
    "knobs",
    [
        {"latency_ms": "abc"},
        {"status_5xx_requests": -1},
        {"status_5xx_code": 200},
        {"retry_after_s": 1.5},
        [1],
    ],
)
def test_a_bad_fault_knob_is_a_400_naming_it_and_changes_nothing(mparticle, knobs):
    """Issue 13: ``latency_ms: "abc"`` made every later call answer 500 until a reset."""
    before = requests.get(mparticle.url + "/_emulator/faults", timeout=10).json()
    bad = requests.post(mparticle.url + "/_emulator/faults", json=knobs, timeout=10)
    assert bad.status_code == 400
    message = bad.json()["errors"][0]["message"]
    assert next(iter(knobs)) in message if isinstance(knobs, dict) else "JSON object" in message
    assert requests.get(mparticle.url + "/_emulator/faults", timeout=10).json() == before
    assert _post(mparticle, [_batch()]).status_code == 202


def test_hostile_bodies_are_400s_not_500s(mparticle):
    deep = b"[" * 100_000 + b"]" * 100_000
    assert _post(mparticle, None, raw=deep).status_code == 400
    surrogate = b'[{"environment":"production","user_identities":{"customer_id":"\\ud800"}}]'
    assert _post(mparticle, None, raw=surrogate).status_code == 400
    assert requests.get(mparticle.url + "/_emulator/events?limit=abc", timeout=10).status_code == 400
    assert _post(mparticle, [_batch()]).status_code == 202


def test_profiles_survive_restart(tmp_path):
    app = create_app(state_dir=tmp_path)
    server = RunningServer(app).start()
    _post(server, [_batch(9, source_request_id="s9")], auth=("local-key", "local-secret"))
    server.shutdown()
    again = create_app(state_dir=tmp_path)
    try:
        assert again.profile(9)["user_attributes"] == {"product_recs": ["a"]}
        assert again.stats()["batches_accepted"] == 1
    finally:
        again.close()
