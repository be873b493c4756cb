"""
``make dist`` (scripts/build_dist.py) builds what docs/deployment.md says, and what it builds works
when laid out the way MWAA lays it out: plugins.zip extracted into a plugins folder on sys.path,
include/ under the DAGs folder, AP_INCLUDE_DIR from startup.sh.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from scripts.build_dist import (
    MWAA_DAGS_FOLDER,
    MWAA_VERSIONS,
    PLUGIN_PACKAGES,
    UNSUPPORTED_MWAA_VERSIONS,
    build,
)

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "deployment.md"


def _guide_layout() -> list[str]:
    text = GUIDE.read_text()
    match = re.search(r"<!-- dist-layout:.*?-->\s*```text\n(.*?)```", text, re.S)
    assert match, "docs/deployment.md lost its dist-layout block"
    return [line.strip() for line in match.group(1).splitlines() if line.strip()]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build(out, "3.3.1")
    return out


def _zip_names(dist: Path) -> list[str]:
    with zipfile.ZipFile(dist / "plugins.zip") as archive:
        return archive.namelist()


def test_every_path_the_guide_lists_is_built(dist: Path) -> None:
    names = _zip_names(dist)
    for entry in _guide_layout():
        if entry.startswith("plugins.zip:"):
            prefix = entry.removeprefix("plugins.zip:")
            assert any(n.startswith(prefix) for n in names), f"plugins.zip has no {prefix}"
        elif entry.endswith("/"):
            assert any((dist / entry).iterdir()), f"{entry} is empty"
        else:
            assert (dist / entry).is_file(), f"{entry} missing"


def test_the_guide_lists_everything_that_is_built(dist: Path) -> None:
    layout = _guide_layout()
    covered = [e for e in layout if not e.startswith("plugins.zip:")]
    for path in sorted(p for p in dist.rglob("*") if p.is_file()):
        rel = path.relative_to(dist).as_posix()
        assert any(rel == e or (e.endswith("/") and rel.startswith(e)) for e in covered), (
            f"{rel} is built but docs/deployment.md does not list it"
        )
    top_level = {n.split("/", 1)[0] for n in _zip_names(dist)}
    assert top_level == set(PLUGIN_PACKAGES)
    assert {e.removeprefix("plugins.zip:").rstrip("/") for e in layout if e.startswith("plugins.zip:")} == (
        top_level
    )


def test_plugins_zip_holds_sources_only_and_every_plugin_file(dist: Path) -> None:
    names = _zip_names(dist)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    expected = sorted(
        p.relative_to(REPO / "plugins").as_posix()
        for package in PLUGIN_PACKAGES
        for p in (REPO / "plugins" / package).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    assert sorted(names) == expected
    assert "waiters/personalize.json" in names


def test_the_build_is_reproducible(dist: Path, tmp_path: Path) -> None:
    build(tmp_path / "again", "3.3.1")
    assert (tmp_path / "again" / "plugins.zip").read_bytes() == (dist / "plugins.zip").read_bytes()


def test_requirements_carry_mwaas_constraint_line_and_no_airflow(dist: Path) -> None:
    lines = [
        ln for ln in (dist / "requirements.txt").read_text().splitlines() if ln and not ln.startswith("#")
    ]
    assert lines[0] == (
        '--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/constraints-3.12.txt"'
    )
    names = {Requirement(ln).name for ln in lines[1:]}
    assert "apache-airflow" not in names
    assert "apache-airflow-providers-amazon" in names
    assert not names & {"moto", "pytest", "implicit", "scipy", "matplotlib"}


@pytest.mark.parametrize("mwaa_version", sorted(MWAA_VERSIONS))
def test_the_ranges_admit_what_mwaa_pins(mwaa_version: str, tmp_path: Path) -> None:
    build(tmp_path, mwaa_version)
    lines = [
        ln for ln in (tmp_path / "requirements.txt").read_text().splitlines() if ln and ln[0] not in "#-"
    ]
    requirements = {Requirement(ln).name: Requirement(ln) for ln in lines}
    for package, pinned in MWAA_VERSIONS[mwaa_version].pins.items():
        if package in requirements:
            assert requirements[package].specifier.contains(pinned), (
                f"MWAA {mwaa_version} pins {package}=={pinned}, outside {requirements[package].specifier}"
            )


def test_mwaa_below_the_floor_is_refused(tmp_path: Path) -> None:
    (version,) = UNSUPPORTED_MWAA_VERSIONS
    with pytest.raises(SystemExit, match="below the supported floor"):
        build(tmp_path, version)


def test_startup_script_points_the_factory_at_include_under_dags(dist: Path) -> None:
    script = (dist / "startup.sh").read_text()
    assert f"export AP_INCLUDE_DIR={MWAA_DAGS_FOLDER}/include\n" in script
    assert os.access(dist / "startup.sh", os.X_OK)
    assert "include/" in (dist / "dags" / ".airflowignore").read_text().splitlines()


def test_the_artefacts_parse_as_mwaa_lays_them_out(dist: Path, tmp_path: Path) -> None:
    """plugins.zip extracted into a plugins folder, include/ found only through AP_INCLUDE_DIR."""
    plugins = tmp_path / "usr-local-airflow" / "plugins"
    with zipfile.ZipFile(dist / "plugins.zip") as archive:
        archive.extractall(plugins)
    dags = dist / "dags"
    # The repository root is on the path only for tests.dags.parse_guard; its plugins/ is not.
    env = dict(os.environ, PYTHONPATH=f"{plugins}:{REPO}", AP_INCLUDE_DIR=str(dags / "include"))
    env.pop("AP_CONFIG_DIR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.dags.parse_guard", str(dags)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["import_errors"] == {}
    assert result["forbidden"] == []
    assert {"bingewatch_export", "bingewatch_train", "bingewatch_batch"} <= set(result["dags"])
    assert all(str(plugins) in f or str(dags) in f for f in result["files"])


def test_pyproject_declares_the_same_range_as_requirements_deploy() -> None:
    import tomllib

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    deploy = [
        line.split("#", 1)[0].strip()
        for line in (REPO / "requirements-deploy.txt").read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    assert [str(Requirement(d)) for d in declared] == [str(Requirement(d)) for d in deploy]


def test_the_oldest_tier_runs_the_floor_of_the_declared_range() -> None:
    """The Makefile's oldest tier, its lock and the declared floor name the same Airflow version."""
    makefile = (REPO / "Makefile").read_text()
    oldest = re.search(r"^OLDEST_AIRFLOW := (\S+)$", makefile, re.M)
    assert oldest
    lock = REPO / ".ci" / "oldest" / f"constraints-airflow-{oldest.group(1)}-python3.11.txt"
    assert f"apache-airflow=={oldest.group(1)}\n" in lock.read_text()
    airflow = next(
        Requirement(line)
        for line in (REPO / "requirements-deploy.txt").read_text().splitlines()
        if line.startswith("apache-airflow>")
    )
    floor = min(s.version for s in airflow.specifier if s.operator == ">=")
    assert floor == oldest.group(1)
    # every lower bound of requirements-deploy.txt is what the oldest tier installs: the floors are tested
    for line in (REPO / "requirements-deploy.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("apache-airflow>"):
            continue
        req = Requirement(line)
        pinned = re.search(rf"^{re.escape(req.name)}==(\S+)$", lock.read_text(), re.M | re.I)
        assert pinned, f"{req.name} is not in {lock.name}"
        assert min(s.version for s in req.specifier if s.operator == ">=") == pinned.group(1), req.name
