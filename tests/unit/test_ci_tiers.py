"""Every test folder runs in CI: `make test` runs the tiers listed in the Makefile, nothing else."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _tier_paths(target: str) -> set[str]:
    makefile = (REPO / "Makefile").read_text()
    block = re.search(rf"^{target}:.*?\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert block, f"no {target} target in the Makefile"
    return set(re.findall(r"\btests/[a-z0-9_]+", block.group(1)))


def _test_folders() -> set[str]:
    return {
        f"tests/{child.name}"
        for child in (REPO / "tests").iterdir()
        if child.is_dir() and any(child.rglob("test_*.py"))
    }


def test_every_test_folder_is_in_the_newest_tiers() -> None:
    missing = _test_folders() - _tier_paths("test-newest")
    assert not missing, f"test folders no CI tier runs: {sorted(missing)} (add them to test-newest)"


def test_the_oldest_tiers_run_everything_but_end_to_end() -> None:
    missing = _test_folders() - {"tests/e2e"} - _tier_paths("test-oldest")
    assert not missing, f"test folders the Airflow 3.1.8 tiers skip: {sorted(missing)}"
