"""An ``aws_default`` connection in the environment for the export operators' unit tests (no network)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def aws_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT", '{"conn_type": "aws", "extra": {"region_name": "us-east-1"}}'
    )
