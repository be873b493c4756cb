"""Amazon Pinpoint hook: a thin wrapper around ``boto3.client("pinpoint")`` plus paginated finders.

.. warning::
    AWS ended support for the Amazon Pinpoint engagement APIs (endpoints, segments, campaigns,
    journeys) on **2026-10-30**. This hook serves the legacy activation path; the successor is
    Amazon Connect Customer Profiles (see ``operators/audience_destinations.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from personalize_logic.facts.pinpoint import FAILURE_STATES

WAITER_FILE = Path(__file__).resolve().parents[1] / "waiters" / "pinpoint.json"


class PinpointHook(AwsBaseHook):
    """
    Interact with Amazon Pinpoint.

    Provide thin wrapper around :external+boto3:py:class:`boto3.client("pinpoint") <Pinpoint.Client>`;
    operators call the client through :attr:`conn`. The hook ships its own waiters
    (``plugins/waiters/pinpoint.json``): ``import_job_complete`` and ``export_job_complete``.

    Additional arguments (such as ``aws_conn_id``) may be specified and
    are passed down to the underlying AwsBaseHook.

    .. seealso::
        - :class:`airflow.providers.amazon.aws.hooks.base_aws.AwsBaseHook`
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "pinpoint"
        super().__init__(*args, **kwargs)

    @cached_property
    def waiter_path(self) -> os.PathLike[str] | None:
        """The project's custom waiter model (the provider looks inside its own package)."""
        return WAITER_FILE

    def _iter_pages(self, method: str, response_key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Yield every ``Item`` of a Pinpoint list call (``Token`` / ``NextToken`` pagination)."""
        request: dict[str, Any] = {key: value for key, value in kwargs.items() if value is not None}
        while True:
            page = getattr(self.conn, method)(**request)[response_key]
            yield from page.get("Item", [])
            token = page.get("NextToken")
            if not token:
                return
            request["Token"] = token

    def iter_import_jobs(self, application_id: str) -> Iterator[dict[str, Any]]:
        """Every import job of the application (``GetImportJobs``, paginated)."""
        return self._iter_pages("get_import_jobs", "ImportJobsResponse", ApplicationId=application_id)

    def iter_export_jobs(self, application_id: str) -> Iterator[dict[str, Any]]:
        """Every export job of the application (``GetExportJobs``, paginated)."""
        return self._iter_pages("get_export_jobs", "ExportJobsResponse", ApplicationId=application_id)

    def iter_segments(self, application_id: str) -> Iterator[dict[str, Any]]:
        """Every segment of the application (``GetSegments``, paginated)."""
        return self._iter_pages("get_segments", "SegmentsResponse", ApplicationId=application_id)

    def find_import_job(self, application_id: str, segment_name: str) -> dict[str, Any] | None:
        """
        The newest import job that defines or updates the segment called ``segment_name``, or ``None``.

        Jobs in a failure state (FAILING, FAILED) are skipped (a retry after a failure creates a new job).
        """
        found: list[dict[str, Any]] = []
        for job in self.iter_import_jobs(application_id):
            definition = job.get("Definition", {})
            if definition.get("SegmentName") == segment_name and job.get("JobStatus") not in FAILURE_STATES:
                found.append(job)
        found.sort(key=lambda job: str(job.get("CreationDate", "")), reverse=True)
        return found[0] if found else None

    def find_segment(self, application_id: str, segment_name: str) -> dict[str, Any] | None:
        """The segment called ``segment_name`` (newest first if several), or ``None``."""
        found = [s for s in self.iter_segments(application_id) if s.get("Name") == segment_name]
        found.sort(key=lambda segment: str(segment.get("CreationDate", "")), reverse=True)
        return found[0] if found else None

    def find_export_job(self, application_id: str, s3_url_prefix: str) -> dict[str, Any] | None:
        """The newest non-failed export job writing to ``s3_url_prefix``, or ``None``."""
        found = [
            job
            for job in self.iter_export_jobs(application_id)
            if job.get("Definition", {}).get("S3UrlPrefix") == s3_url_prefix
            and job.get("JobStatus") not in FAILURE_STATES
        ]
        found.sort(key=lambda job: str(job.get("CreationDate", "")), reverse=True)
        return found[0] if found else None
