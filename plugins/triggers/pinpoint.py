"""Triggers that wait for Amazon Pinpoint import / export jobs; each only configures AwsBaseWaiterTrigger."""

from __future__ import annotations

from typing import Any

from hooks.pinpoint import PinpointHook
from triggers.compat import AwsBaseWaiterTrigger


class PinpointImportJobCompleteTrigger(AwsBaseWaiterTrigger):
    """
    Wait until a Pinpoint import job is COMPLETED (or FAILING / FAILED).

    The success event is ``{"status": "success", "job_id": job_id}``; a failure event is
    ``{"status": "error", "message": ..., "job_id": job_id}`` (the operator then reads the job's
    ``Failures`` to report them).

    :param application_id: The Pinpoint project (application) id.
    :param job_id: The import job id.
    :param waiter_delay: The amount of time in seconds to wait between attempts.
    :param waiter_max_attempts: The maximum number of attempts to be made.
    :param aws_conn_id: The Airflow connection used for AWS credentials.
    :param region_name: AWS region name; None means the connection's region.
    :param verify: Whether or not to verify SSL certificates.
    :param botocore_config: Configuration dictionary (key-values) for botocore client.
    """

    aws_hook_class = PinpointHook
    waiter_name = "import_job_complete"
    response_key = "ImportJobResponse"
    label = "import"

    def __init__(
        self,
        *,
        application_id: str,
        job_id: str,
        waiter_delay: int = 15,
        waiter_max_attempts: int = 240,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            serialized_fields={"application_id": application_id, "job_id": job_id},
            waiter_name=self.waiter_name,
            waiter_args={"ApplicationId": application_id, "JobId": job_id},
            failure_message=f"Pinpoint {self.label} job failed",
            status_message=f"Status of Pinpoint {self.label} job is",
            status_queries=[f"{self.response_key}.JobStatus", f"{self.response_key}.Failures"],
            return_key="job_id",
            return_value=job_id,
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
        )


class PinpointExportJobCompleteTrigger(PinpointImportJobCompleteTrigger):
    """Wait until a Pinpoint export job is COMPLETED (see :class:`PinpointImportJobCompleteTrigger`)."""

    waiter_name = "export_job_complete"
    response_key = "ExportJobResponse"
    label = "export"
