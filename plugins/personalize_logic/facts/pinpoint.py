"""
Amazon Pinpoint facts: the status sets of import and export jobs, and how a failed job is reported.

The hook, the waiters (``plugins/waiters/pinpoint.json``), sensors, operators and the audience
destination take them from this module. Pure: no Airflow import.

**Source**: the botocore service model of Pinpoint, ``botocore/data/pinpoint/2016-12-01/
service-2.json`` (in the virtualenv as ``service-2.json.gz``):

* ``JobStatus`` (the enum of ``ImportJobResponse.JobStatus`` and ``ExportJobResponse.JobStatus``):
  ``CREATED, PREPARING_FOR_INITIALIZATION, INITIALIZING, PROCESSING, PENDING_JOB, COMPLETING,
  COMPLETED, FAILING, FAILED``. The three sets below are the whole enum (a list without
  ``PREPARING_FOR_INITIALIZATION`` and ``PENDING_JOB`` is incomplete); the unit tests check it.
* The model documents no order of the values. **Assumption**: ``FAILING`` leads only to ``FAILED``,
  so it is a failure already; every value other than ``COMPLETED``, ``FAILING`` and ``FAILED`` is on
  the way to one of them.
* ``ImportJobResponse.JobStatus`` / ``ExportJobResponse.JobStatus``: "The job status is FAILED if
  Amazon Pinpoint wasn't able to process one or more pieces in the job"; ``Failures`` holds "one
  [entry] for each of the first 100 entries that weren't processed successfully", ``FailedPieces``
  and ``TotalPieces`` count the pieces: :func:`describe_failure` reports these four members.
"""

from __future__ import annotations

from typing import Any

INTERMEDIATE_STATES: tuple[str, ...] = (
    "CREATED",
    "PREPARING_FOR_INITIALIZATION",
    "INITIALIZING",
    "PROCESSING",
    "PENDING_JOB",
    "COMPLETING",
)
FAILURE_STATES: tuple[str, ...] = ("FAILING", "FAILED")
SUCCESS_STATES: tuple[str, ...] = ("COMPLETED",)


def describe_failure(job: dict[str, Any]) -> str:
    """
    One-line summary of a failed import / export job: status, Failures, FailedPieces / TotalPieces.

    >>> describe_failure({"JobStatus": "FAILED", "Failures": ["row 3"], "FailedPieces": 1, "TotalPieces": 2})
    "status 'FAILED', Failures=['row 3'], FailedPieces=1, TotalPieces=2"
    """
    return (
        f"status {job.get('JobStatus')!r}, Failures={job.get('Failures') or []!r}, "
        f"FailedPieces={job.get('FailedPieces')}, TotalPieces={job.get('TotalPieces')}"
    )
