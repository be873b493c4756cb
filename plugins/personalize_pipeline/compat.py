"""
What the DAG definitions need that differs between the supported Airflow versions.

The supported range is Airflow 3.1.8 to 3.3.x with the Amazon provider 9.22 to 9.x
(``requirements-deploy.txt``; why, in ``docs/deployment.md``). CI runs the unit and integration
tiers on both ends of it (``make test``: the pinned ``.venv`` and ``.venv-oldest``). Every shim
names the version that has the real thing. The provider-side differences (the trigger base class)
are in ``triggers/compat.py``, kept apart so the export DAG's parse does not import the trigger
machinery.

Import cost: nothing beyond what the DAG files already import; this module is read at parse time.
"""

from __future__ import annotations

try:  # Airflow >= 3.2: the Task SDK exports the timetables.
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 3.1: the same class lives in core, and the SDK's DAG accepts it.
    from airflow.timetables.interval import (  # type: ignore[assignment]
        CronDataIntervalTimetable,
    )

__all__ = ["CronDataIntervalTimetable"]
