"""
What differs between the Airflow versions this package supports, in one place.

The supported range is Airflow 3.1.8 to 3.3.x with the Amazon provider 9.22 to 9.x
(``requirements-deploy.txt``; the reasons are in ``docs/deployment.md``). CI runs the unit and
integration tiers on both ends of it (``make test``: the pinned ``.venv`` and ``.venv-oldest``).
Code that needs something only a newer Airflow has imports it from here; every shim names the
version that has the real thing, and a shim that gives up behaviour logs it where it happens.

Import cost: nothing heavy; this module is imported at DAG parse time.
"""

from __future__ import annotations

import airflow

#: The Airflow version the package runs on (``airflow.__version__``), shown by the demo summary
#: and the run report.
AIRFLOW_VERSION: str = airflow.__version__

try:  # Airflow >= 3.2: the Task SDK exports the timetables.
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 3.1: the same class lives in core (the SDK's DAG accepts it).
    from airflow.timetables.interval import (  # type: ignore[assignment]
        CronDataIntervalTimetable,
    )


def airflow_version_tuple(version: str = AIRFLOW_VERSION) -> tuple[int, ...]:
    """``"3.1.8"`` → ``(3, 1, 8)``; local labels (``3.1.8+astro.2``) and pre-release tags are ignored."""
    from packaging.version import Version

    return Version(version).release


__all__ = ["AIRFLOW_VERSION", "CronDataIntervalTimetable", "airflow_version_tuple"]
