"""Amazon Connect Customer Profiles hook: a thin wrapper around ``boto3.client("customer-profiles")``.

Besides the client (:attr:`conn`), it pages the list calls the operators search (upload jobs,
segment definitions) and PUTs an upload file to the pre-signed URL of ``GetUploadJobPath`` with the
SSE-C headers (``personalize_logic.facts.customer_profiles.sse_c_headers``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

WAITER_FILE = Path(__file__).resolve().parents[1] / "waiters" / "customer_profiles.json"


class CustomerProfilesHook(AwsBaseHook):
    """
    Interact with Amazon Connect Customer Profiles.

    Provide thin wrapper around
    :external+boto3:py:class:`boto3.client("customer-profiles") <CustomerProfiles.Client>`; operators
    call the client through :attr:`conn`. The hook ships its own waiters
    (``plugins/waiters/customer_profiles.json``): ``upload_job_complete``,
    ``segment_estimate_complete`` and ``segment_snapshot_complete``.

    Additional arguments (such as ``aws_conn_id``) may be specified and
    are passed down to the underlying AwsBaseHook.

    .. seealso::
        - :class:`airflow.providers.amazon.aws.hooks.base_aws.AwsBaseHook`
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "customer-profiles"
        super().__init__(*args, **kwargs)

    @cached_property
    def waiter_path(self) -> os.PathLike[str] | None:
        """The project's custom waiter model (the provider looks inside its own package)."""
        return WAITER_FILE

    def _iter_items(self, method: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every ``Items`` entry of a list call (``NextToken`` pagination)."""
        request: dict[str, Any] = {key: value for key, value in kwargs.items() if value is not None}
        while True:
            page = getattr(self.conn, method)(**request)
            yield from page.get("Items", [])
            token = page.get("NextToken")
            if not token:
                return
            request["NextToken"] = token

    def iter_upload_jobs(self, domain_name: str) -> Iterator[dict[str, Any]]:
        """Every upload job of the domain (``ListUploadJobs``, paginated)."""
        return self._iter_items("list_upload_jobs", DomainName=domain_name, MaxResults=500)

    def find_upload_job(self, domain_name: str, display_name: str) -> dict[str, Any] | None:
        """The newest upload job called ``display_name`` that did not fail or stop, or ``None``."""
        from personalize_logic.facts.customer_profiles import UPLOAD_FAILURE_STATES

        found = [
            job
            for job in self.iter_upload_jobs(domain_name)
            if job.get("DisplayName") == display_name and job.get("Status") not in UPLOAD_FAILURE_STATES
        ]
        found.sort(key=lambda job: str(job.get("CreatedAt", "")), reverse=True)
        return found[0] if found else None

    def get_segment_definition(self, domain_name: str, name: str) -> dict[str, Any] | None:
        """``GetSegmentDefinition``, or ``None`` when there is no segment definition of that name."""
        try:
            return self.conn.get_segment_definition(DomainName=domain_name, SegmentDefinitionName=name)
        except self.conn.exceptions.ResourceNotFoundException:
            return None

    def put_upload_file(self, url: str, client_token: str, path: Path | str, timeout: float = 600) -> None:
        """
        PUT ``path`` (streamed) to an upload job's pre-signed ``url`` with the SSE-C headers built
        from ``client_token``. The token is a data key: it is never logged.

        :raises RuntimeError: with the HTTP status and the answer's first 500 characters.
        """
        import requests

        from personalize_logic.facts.customer_profiles import sse_c_headers

        path = Path(path)
        headers = {**sse_c_headers(client_token), "Content-Length": str(path.stat().st_size)}
        with path.open("rb") as body:
            response = requests.put(url, data=body, headers=headers, timeout=timeout)
        if response.status_code >= 300:
            raise RuntimeError(
                f"the upload to the upload job's URL answered HTTP {response.status_code}: {response.text[:500]}"
            )
