"""PersonalizeRecsToMParticleOperator against moto S3 and the mParticle emulator."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from hooks.mparticle import MParticleHook
from operators.mparticle import PersonalizeRecsToMParticleOperator, list_batch_output_files
from tests.integration.mparticle.conftest import BUCKET

pytestmark = pytest.mark.integration

BASE_MPID = 7_000_000_000_000_000_000  # above 2**53: exactness matters


def _items(n: int) -> list[str]:
    return [f"item-{n}-{k}" for k in range(25)]


def _write_output(s3, key: str, users: int, *, errors=(), bad=()) -> dict[int, list[str]]:
    """Write a batch-inference .out file; return {mpid: items} of the users that should arrive."""
    lines, expected = [], {}
    for n in range(users):
        mpid = BASE_MPID + n
        if n in errors:
            lines.append(json.dumps({"input": {"userId": str(mpid)}, "error": "Internal server error"}))
        elif n in bad:
            lines.append(json.dumps({"input": {"userId": f"u{n}"}, "output": {"recommendedItems": ["a"]}}))
        else:
            items = _items(n)
            lines.append(
                json.dumps(
                    {
                        "input": {"userId": str(mpid)},
                        "output": {"recommendedItems": items, "scores": [0.5] * 25},
                        "error": None,
                    },
                    separators=(",", ":"),
                )
            )
            expected[mpid] = items
    s3.put_object(Bucket=BUCKET, Key=key, Body=("\n".join(lines) + "\n").encode())
    return expected


def _operator(key: str, run_key: str, **kwargs) -> PersonalizeRecsToMParticleOperator:
    return PersonalizeRecsToMParticleOperator(
        task_id="recs_to_mparticle",
        output_uri=f"s3://{BUCKET}/{key}",
        state_prefix=f"s3://{BUCKET}/state",
        run_key=run_key,
        rate_limit_per_s=kwargs.pop("rate_limit_per_s", 50_000.0),
        chunk_size=4096,  # many ranged-read chunks even for a small file
        **kwargs,
    )


def _context():
    return {
        "ti": SimpleNamespace(dag_id="activate", run_id="manual__2026-11-22", task_id="recs_to_mparticle")
    }


def _assert_each_user_exactly_once(app, expected):
    for mpid, items in expected.items():
        profile = app.profile(mpid)
        assert profile is not None, mpid
        assert profile["user_attributes"]["product_recs"] == items
        assert profile["accepted_batches"] == 1
    stats = app.stats()
    assert stats["profiles"] == len(expected)
    assert stats["profiles_with_more_than_one_accepted_batch"] == 0
    assert stats["batches_accepted"] == len(expected)


def test_upload_counts_dead_letters_and_profiles(stack_env, mparticle):
    s3 = stack_env
    expected = _write_output(s3, "out/a/users.json.out", 1050, errors={3, 500}, bad={7})
    result = _operator("out/a/users.json.out", run_key=None).execute(_context())
    assert result["users_uploaded"] == 1047 == len(expected)
    assert result["requests"] == 11
    assert result["dead_lettered"] == 3
    assert result["errors_in_output"] == 2
    assert result["lines"] == 1050
    _assert_each_user_exactly_once(mparticle.app, expected)

    bucket, prefix = result["dead_letter"].removeprefix("s3://").split("/", 1)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    records = [
        json.loads(line) for k in keys for line in s3.get_object(Bucket=bucket, Key=k)["Body"].iter_lines()
    ]
    assert sorted((r["line"], r["reason"]) for r in records) == [
        (4, "personalize_error"),
        (8, "invalid_mpid"),
        (501, "personalize_error"),
    ]
    assert records[0]["file"] == "s3://recs-bucket/out/a/users.json.out"
    events = mparticle.app.events(limit=1)
    assert events[0]["event_name"] == "AWS Recs Update"
    assert "product_recs" in events[0]["attributes"]

    # a cleared / re-run task finds the completed checkpoint and sends nothing
    before = mparticle.app.stats()["requests_by_status"]
    again = _operator("out/a/users.json.out", run_key=None).execute(_context())
    assert again == result
    assert mparticle.app.stats()["requests_by_status"] == before


def test_429_storm_and_5xx_bursts_are_survived(stack_env, mparticle):
    expected = _write_output(stack_env, "out/b/users.json.out", 450)
    mparticle.app.faults.update(status_429_storm_requests=3, retry_after_s=1, status_5xx_requests=0)
    operator = _operator("out/b/users.json.out", run_key="faults")
    operator.hook.backoff_base_s = 0.05
    real_post = MParticleHook._send_once
    calls = {"n": 0}

    def post_and_inject(self, *args):
        calls["n"] += 1
        if calls["n"] == 5:  # a 5xx burst in the middle of the upload
            mparticle.app.faults.update(status_5xx_requests=2)
        return real_post(self, *args)

    MParticleHook._send_once = post_and_inject  # type: ignore[method-assign]
    try:
        result = operator.execute(_context())
    finally:
        MParticleHook._send_once = real_post  # type: ignore[method-assign]
    assert result["users_uploaded"] == 450
    assert result["requests"] == 5
    assert operator.hook.stats["status_429"] == 3
    assert operator.hook.stats["status_5xx"] == 2
    statuses = mparticle.app.stats()["requests_by_status"]
    assert statuses == {"202": 5, "429": 3, "503": 2}
    _assert_each_user_exactly_once(mparticle.app, expected)


def test_a_poison_line_is_dead_lettered_and_the_upload_goes_on(stack_env, mparticle):
    """
    Issue 13: a line nested deeper than the parser follows raised RecursionError after the first
    request, so every retry stopped at the same checkpoint and 150 of 250 good users were never
    sent. Now it is one dead letter; so is a line longer than the reader holds.
    """
    from personalize_logic.mparticle_batches import MAX_OUTPUT_LINE_BYTES

    key = "out/poison/users.json.out"
    good = _write_output(stack_env, key, 250)
    lines = stack_env.get_object(Bucket=BUCKET, Key=key)["Body"].read().split(b"\n")
    lines.insert(
        101, b'{"input":{"userId":"7000000000000001000"},"output":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    )
    lines.insert(
        180,
        b'{"input":{"userId":"1"},"output":{"recommendedItems":["' + b"x" * MAX_OUTPUT_LINE_BYTES + b'"]}}',
    )
    stack_env.put_object(Bucket=BUCKET, Key=key, Body=b"\n".join(lines))
    result = _operator(key, run_key="poison").execute(_context())
    assert result["users_uploaded"] == 250
    assert result["dead_lettered"] == 2
    assert result["lines"] == 252
    _assert_each_user_exactly_once(mparticle.app, good)
    bucket, prefix = result["dead_letter"].removeprefix("s3://").split("/", 1)
    records = [
        json.loads(line)
        for o in stack_env.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
        for line in stack_env.get_object(Bucket=bucket, Key=o["Key"])["Body"].iter_lines()
    ]
    assert sorted((r["line"], r["reason"]) for r in records) == [
        (102, "malformed_line"),
        (181, "malformed_line"),
    ]
    assert "nested deeper" in records[0]["detail"]


class _Killed(Exception):
    """Stands in for the worker dying mid-upload."""


@pytest.mark.parametrize("kill_after", [1, 4])
def test_task_killed_mid_upload_resumes_without_loss_or_duplicates(stack_env, mparticle, kill_after):
    key = f"out/c{kill_after}/users.json.out"
    expected = _write_output(stack_env, key, 730, errors={250})
    real = MParticleHook.upload_bulk_body
    sent = {"n": 0}

    def dying_upload(self, body, batch_count):
        if sent["n"] == kill_after:
            raise _Killed
        sent["n"] += 1
        return real(self, body, batch_count)

    MParticleHook.upload_bulk_body = dying_upload  # type: ignore[method-assign]
    try:
        with pytest.raises(_Killed):
            _operator(key, run_key=f"kill-{kill_after}").execute(_context())
    finally:
        MParticleHook.upload_bulk_body = real  # type: ignore[method-assign]
    assert mparticle.app.stats()["batches_accepted"] == kill_after * 100

    result = _operator(key, run_key=f"kill-{kill_after}").execute(_context())  # the retry
    assert result["users_uploaded"] == 729
    assert result["dead_lettered"] == 1
    assert result["errors_in_output"] == 1
    _assert_each_user_exactly_once(mparticle.app, expected)
    assert mparticle.app.stats()["batches_duplicate"] == 0


def test_crash_between_accept_and_checkpoint_is_deduplicated(stack_env, mparticle):
    """The documented window: the request is re-sent and mParticle dedupes it by source_request_id."""
    key = "out/d/users.json.out"
    expected = _write_output(stack_env, key, 350)
    real_save = PersonalizeRecsToMParticleOperator._save
    saves = {"n": 0}

    def crashing_save(self, state, *args):
        saves["n"] += 1
        if saves["n"] == 2:
            raise _Killed
        return real_save(self, state, *args)

    PersonalizeRecsToMParticleOperator._save = crashing_save  # type: ignore[method-assign]
    try:
        with pytest.raises(_Killed):
            _operator(key, run_key="window").execute(_context())
    finally:
        PersonalizeRecsToMParticleOperator._save = real_save  # type: ignore[method-assign]

    result = _operator(key, run_key="window").execute(_context())
    assert result["users_uploaded"] == 350
    _assert_each_user_exactly_once(mparticle.app, expected)
    assert mparticle.app.stats()["batches_duplicate"] == 100  # the one re-sent request


def test_lost_202_is_retried_and_deduplicated(stack_env, mparticle):
    expected = _write_output(stack_env, "out/e/users.json.out", 150)
    mparticle.app.faults.update(status_5xx_after_accept_requests=1)
    operator = _operator("out/e/users.json.out", run_key="lost-ack")
    operator.hook.backoff_base_s = 0.05
    assert operator.execute(_context())["users_uploaded"] == 150
    _assert_each_user_exactly_once(mparticle.app, expected)
    assert mparticle.app.stats()["batches_duplicate"] == 100


def test_replaced_output_file_fails_loudly(stack_env, mparticle):
    key = "out/f/users.json.out"
    _write_output(stack_env, key, 250)
    _operator(key, run_key="replaced").execute(_context())
    _write_output(stack_env, key, 260)  # same key, new content: the checkpoint no longer applies
    from airflow.exceptions import AirflowException

    with pytest.raises(AirflowException, match="changed since checkpoint"):
        _operator(key, run_key="replaced").execute(_context())


def test_max_dead_letter_fraction(stack_env, mparticle):
    _write_output(stack_env, "out/g/users.json.out", 10, errors={0, 1, 2})
    from airflow.exceptions import AirflowException

    with pytest.raises(AirflowException, match="3 of 10 lines"):
        _operator("out/g/users.json.out", run_key="frac", max_dead_letter_fraction=0.2).execute(_context())


def test_list_batch_output_files_ignores_check_and_other_keys(stack_env):
    for key in ("job/x/a.json.out", "job/x/b.json.out", "job/x/_CHECK", "job/x/manifest.json"):
        stack_env.put_object(Bucket=BUCKET, Key=key, Body=b"")
    assert list_batch_output_files(f"s3://{BUCKET}/job/x/") == [
        f"s3://{BUCKET}/job/x/a.json.out",
        f"s3://{BUCKET}/job/x/b.json.out",
    ]


def test_secrets_not_in_logs_or_xcom(stack_env, mparticle, caplog, capsys):
    import logging

    caplog.set_level(logging.DEBUG)
    _write_output(stack_env, "out/h/users.json.out", 120)
    result = _operator("out/h/users.json.out", run_key="secrets").execute(_context())
    from tests.integration.mparticle.conftest import API_SECRET

    text = caplog.text + "".join(capsys.readouterr()) + json.dumps(result)
    assert API_SECRET not in text
    assert "Basic " not in text
