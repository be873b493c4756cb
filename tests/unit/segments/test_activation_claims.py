"""ActivationClaims: once per DAG run and segment, over S3 conditional writes."""

from __future__ import annotations

import json
import threading
import time

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from operators.audience_destinations import ActivationClaims
from tests.unit.segments.fake_s3 import FakeS3

STATE = "s3://bucket/p/state/activation/dest"


def _claims(s3, **kwargs):
    params = dict(holder="t try 1", wait_seconds=5, stale_seconds=60, poll_seconds=0.01)
    return ActivationClaims(s3, STATE, "run-1", **{**params, **kwargs})


def test_the_first_claim_creates_and_a_retry_reuses_what_it_recorded():
    s3 = FakeS3()
    assert _claims(s3).claim("seg", {"sha": "a"}) == {}
    _claims(s3).record("seg", job_id="j1")
    assert _claims(s3).claim("seg", {"sha": "a"}) == {"job_id": "j1"}
    record = json.loads(
        s3.get_object(Bucket="bucket", Key="p/state/activation/dest/run-1/seg.json")["Body"].read()
    )
    assert record["fingerprint"] == {"sha": "a"}
    assert record["resources"] == {"job_id": "j1"}


def test_a_claim_with_another_input_fails_naming_the_difference():
    s3 = FakeS3()
    _claims(s3).claim("seg", {"sha": "a", "rows": 3})
    with pytest.raises(AirflowException, match='differs in: rows: 3 → 2; sha: "a" → "b"'):
        _claims(s3).claim("seg", {"sha": "b", "rows": 2})


def test_concurrent_claims_let_one_attempt_create_and_the_others_wait_for_its_resources():
    s3 = FakeS3()
    created: list[str] = []
    got: list[dict] = []

    def attempt(n: int) -> None:
        claims = _claims(s3, holder=f"attempt {n}")
        resources = claims.claim("seg", {"sha": "a"})
        if not resources:
            time.sleep(0.05)  # the create call
            created.append(f"job-{n}")
            claims.record("seg", job_id=f"job-{n}")
            resources = {"job_id": f"job-{n}"}
        got.append(resources)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(created) == 1
    assert {r["job_id"] for r in got} == set(created)


def test_a_claim_left_without_resources_is_waited_on_then_taken_over_when_stale():
    s3 = FakeS3()
    _claims(s3).claim("seg", {"sha": "a"})  # an attempt that died before its create call
    with pytest.raises(AirflowException, match="no resource recorded"):
        _claims(s3, wait_seconds=0.05).claim("seg", {"sha": "a"})
    assert _claims(s3, stale_seconds=0).claim("seg", {"sha": "a"}) == {}
