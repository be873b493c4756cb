"""Tests for personalize_logic.naming (pure: no Airflow)."""

from __future__ import annotations

import re

import pytest

from personalize_logic.naming import (
    JOB_NAME_PATTERN,
    MAX_JOB_NAME_LENGTH,
    job_name,
    sanitize,
    stable_hash,
    validate_job_name,
)

AWS_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*$")

RUN_IDS = [
    "scheduled__2025-01-01T00:00:00+00:00",
    "manual__2025-06-30T12:34:56.789012+00:00",
    "backfill__2024-02-29T00:00:00+00:00",
    "asset_triggered__2025-01-01T00:00:00+00:00",
    "ünïcødé run / with spaces & symbols!",
    "x" * 300,
    "__",
]


@pytest.mark.parametrize("run_id", RUN_IDS)
@pytest.mark.parametrize("prefix", ["", "import", "batch-inference", "_weird prefix_", "p" * 80])
@pytest.mark.parametrize("map_index", [-1, None, 0, 17])
def test_job_name_is_valid(run_id, prefix, map_index):
    name = job_name(prefix, "personalize_train", run_id, "create_batch_inference_job", map_index)
    assert 1 <= len(name) <= MAX_JOB_NAME_LENGTH
    assert AWS_PATTERN.match(name), name
    assert JOB_NAME_PATTERN.pattern == AWS_PATTERN.pattern


def test_job_name_is_deterministic_and_readable():
    args = ("import", "personalize_train", "scheduled__2025-01-01T00:00:00+00:00", "import_interactions", -1)
    first = job_name(*args)
    assert first == job_name(*args)
    assert first.startswith("import-import_interactions-scheduled_2025-01-01T00")
    assert re.search(r"-[0-9a-f]{10}$", first)


@pytest.mark.parametrize(
    "changed",
    [
        {"prefix": "import2"},
        {"dag_id": "other_dag"},
        {"run_id": "scheduled__2025-01-02T00:00:00+00:00"},
        {"task_id": "import_items"},
        {"map_index": 3},
    ],
)
def test_every_input_changes_the_name(changed):
    base = {
        "prefix": "import",
        "dag_id": "personalize_train",
        "run_id": "scheduled__2025-01-01T00:00:00+00:00",
        "task_id": "import_interactions",
        "map_index": -1,
    }
    assert job_name(**base) != job_name(**{**base, **changed})


def test_truncated_names_stay_unique():
    long_task = "t" * 100
    a = job_name("p", "dag", "run-a", long_task)
    b = job_name("p", "dag", "run-b", long_task)
    assert a != b
    assert len(a) == len(b) == MAX_JOB_NAME_LENGTH


def test_sanitizer_collisions_are_disambiguated_by_the_hash():
    # "a:b" and "a+b" sanitize to the same readable text; the hash of the raw inputs differs.
    assert job_name("", "dag", "a:b", "t") != job_name("", "dag", "a+b", "t")


def test_unmapped_map_index_none_equals_minus_one():
    assert job_name("p", "d", "r", "t", None) == job_name("p", "d", "r", "t", -1)


def test_sanitize():
    assert sanitize("scheduled__2025-01-01T00:00:00+00:00") == "scheduled_2025-01-01T00-00-00-00-00"
    assert sanitize("--a b--") == "a-b"
    assert sanitize("***") == ""


def test_stable_hash_is_unambiguous():
    assert stable_hash("ab", "c") != stable_hash("a", "bc")
    assert len(stable_hash("x")) == 10


@pytest.mark.parametrize("bad", ["", "-starts-with-dash", "has space", "x" * 64, "ümlaut"])
def test_validate_job_name_rejects(bad):
    with pytest.raises(ValueError, match="Personalize job name"):
        validate_job_name(bad)


def test_validate_job_name_accepts():
    assert validate_job_name("bw-segments-20250101") == "bw-segments-20250101"


def test_naming_module_does_not_import_airflow():
    import subprocess
    import sys

    code = (
        "import sys; import personalize_logic.naming; "
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
