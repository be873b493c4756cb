"""
One broken project config stays in its project: a DagBag over the real ``dags/`` folder, with a
config folder holding a valid project next to broken ones (``tests/corpus/config/``).

What Airflow shows: its "DAG Import Errors" view lists the DagBag's ``import_errors``, one per DAG
file. An import error in a stage file would also mark every DAG of that file stale (Airflow 3's
``_update_import_errors`` deactivates the DAGs of a file that has one), so the stage files leave the
broken projects out and ``dags/personalize_config_check.py`` carries the error, naming each file and
key; the valid project's DAGs are all there and none is in a file with an import error.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.dags.test_dag_integrity import parse_folder

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "corpus" / "config"
STAGE_DAGS = {"export", "train"}  # the corpus' valid project: an mParticle export, no solutions


CHECK_FILE = "personalize_config_check.py"


def _check_error(result: dict) -> str:
    (error,) = [e for f, e in result["import_errors"].items() if Path(f).name == CHECK_FILE]
    return error


def parse_with_configs(config_dir: Path) -> dict:
    return parse_folder(REPO / "dags", config_dir)


def test_a_broken_config_is_its_own_import_error_and_the_other_projects_stay(tmp_path: Path) -> None:
    shutil.copy(CORPUS / "good" / "good-proj.json", tmp_path)
    for path in (CORPUS / "broken").iterdir():
        shutil.copy(path, tmp_path)
    (tmp_path / "bad_json.json").write_text('{\n  "datasetGroup": {,\n}')
    result = parse_with_configs(tmp_path)

    assert set(result["dags"]) == {f"good_proj_{stage}" for stage in STAGE_DAGS}
    assert [Path(f).name for f in result["import_errors"]] == [CHECK_FILE]
    error = _check_error(result)
    assert "ConfigError: 6 problems in the project configs" in error
    for needle in (
        f"{tmp_path / 'bad_json.json'}: not valid JSON (line 2, column 20)",
        f"{tmp_path / 'wrong_type.json'}: invalid key datasetGroup: Expected `object`, got `array`",
        f"{tmp_path / 'not_utf8.json'}: not UTF-8 (line 4, column 19",
        f"{tmp_path / 'deep.json'}: not a config: JSON nested deeper",
        f"{tmp_path / 'with_sidecar.pipeline.json'}: invalid key pipeline.export.schedule",
        f"{tmp_path / 'event_value_long.json'}: invalid key datasets.interactions.schema.serviceConfig.schema",
    ):
        assert needle in error, (needle, error)
    assert f"{tmp_path / 'good-proj.json'}" not in error


def test_duplicate_project_ids_keep_both_out_and_name_both_files(tmp_path: Path) -> None:
    for path in (CORPUS / "duplicate").iterdir():
        shutil.copy(path, tmp_path)
    result = parse_with_configs(tmp_path)
    assert result["dags"] == {}
    error = _check_error(result)
    assert f"{tmp_path / 'good-proj.json'}: invalid key datasetGroup.serviceConfig.name" in error
    assert f"the project id of {tmp_path / 'good_proj.json'}" in error
    assert f"the project id of {tmp_path / 'good-proj.json'}" in error


def test_valid_configs_give_no_import_error(tmp_path: Path) -> None:
    shutil.copy(CORPUS / "good" / "good-proj.json", tmp_path)
    result = parse_with_configs(tmp_path)
    assert result["import_errors"] == {}
    assert set(result["dags"]) == {f"good_proj_{stage}" for stage in STAGE_DAGS}
