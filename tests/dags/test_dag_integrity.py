"""
DAG integrity: every file under dags/ imports cleanly, touches no Variable, Connection or network
at parse time, and every DAG carries tags, a doc, an owner and retries >= 2.

The parse runs in a fresh interpreter (``tests/dags/parse_guard.py``) with the guards installed
before any DAG file is read. The same checker runs over fixture folders with deliberately bad
DAG files, which proves the check fails when it should.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


@cache
def parse_folder(folder: Path, config_dir: Path | None = None) -> dict:
    """Parse ``folder`` in a fresh interpreter; ``config_dir``: the project configs it reads (AP_CONFIG_DIR)."""
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'plugins'}:{REPO}")
    if config_dir is not None:
        env["AP_CONFIG_DIR"] = str(config_dir)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.dags.parse_guard", str(folder)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def violations(result: dict) -> list[str]:
    """Everything wrong with a parsed DAG folder, one line each (empty means it passes)."""
    problems = [
        f"import error in {f}: {e.strip().splitlines()[-1]}" for f, e in result["import_errors"].items()
    ]
    problems += [f"parse-time access: {what}" for what in result["forbidden"]]
    for dag_id, facts in result["dags"].items():
        where = f"{dag_id} ({Path(facts['fileloc']).name})"
        if not facts["tags"]:
            problems.append(f"{where} has no tags")
        if not facts["doc_md"]:
            problems.append(f"{where} has no doc_md")
        if not facts["owner"] or facts["owner"] == "airflow":
            problems.append(f"{where} has no owner in default_args")
        if (facts["retries"] or 0) < 2 or min(facts["task_retries"] or [0]) < 2:
            problems.append(f"{where} must have retries >= 2 (default_args and every task)")
    return problems


def test_dags_folder_is_clean() -> None:
    result = parse_folder(REPO / "dags")
    assert result["files"], "dags/ holds no DAG file"
    assert result["dags"], "no DAG was generated from dags/"
    assert violations(result) == []


# Defines no DAG by design: it reports invalid project configs as its own import error.
CONFIG_CHECK_FILE = "personalize_config_check.py"


def test_every_dag_file_yields_a_dag() -> None:
    result = parse_folder(REPO / "dags")
    files_with_dags = {Path(d["fileloc"]).name for d in result["dags"].values()}
    dag_files = {Path(f).name for f in result["files"] if not Path(f).name.startswith("_")}
    assert CONFIG_CHECK_FILE in dag_files
    assert dag_files - {CONFIG_CHECK_FILE} <= files_with_dags


def test_each_stage_file_yields_its_own_stage_and_together_they_yield_every_dag() -> None:
    from personalize_pipeline.factory import CONFIG_DIR, STAGES, build_all_dags

    result = parse_folder(REPO / "dags")
    by_file: dict[str, set[str]] = {}
    for dag_id, facts in result["dags"].items():
        by_file.setdefault(Path(facts["fileloc"]).name, set()).add(dag_id)
    assert set(by_file) == {f"personalize_{stage}.py" for stage in STAGES}
    for stage in STAGES:
        expected = {d.dag_id for d in build_all_dags(CONFIG_DIR, stages=(stage,))}
        assert by_file[f"personalize_{stage}.py"] == expected
    assert set(result["dags"]) == {d.dag_id for d in build_all_dags(CONFIG_DIR)}


def test_a_well_behaved_fixture_passes() -> None:
    result = parse_folder(FIXTURES / "good")
    assert list(result["dags"]) == ["good_fixture"]
    assert violations(result) == []


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        pytest.param("bad_variable", "Variable.get", id="variable"),
        pytest.param("bad_connection", "BaseHook.get_connection", id="connection"),
        pytest.param("bad_network", "socket.", id="network"),
    ],
)
def test_parse_time_access_fails_the_check(folder: str, expected: str) -> None:
    result = parse_folder(FIXTURES / folder)
    problems = violations(result)
    assert any(expected in p for p in problems if p.startswith("parse-time access")), problems
    assert any(p.startswith("import error") for p in problems), problems


def test_missing_metadata_fails_the_check() -> None:
    problems = violations(parse_folder(FIXTURES / "bad_metadata"))
    assert any("no tags" in p for p in problems)
    assert any("no doc_md" in p for p in problems)
    assert any("no owner" in p for p in problems)
    assert any("retries" in p for p in problems)
