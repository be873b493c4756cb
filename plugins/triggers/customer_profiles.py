"""The trigger that waits for an Amazon Connect Customer Profiles upload job; it only configures
AwsBaseWaiterTrigger (waiter ``upload_job_complete`` of ``plugins/waiters/customer_profiles.json``)."""

from __future__ import annotations

from typing import Any

from hooks.customer_profiles import CustomerProfilesHook
from triggers.compat import AwsBaseWaiterTrigger


class CustomerProfilesUploadJobCompleteTrigger(AwsBaseWaiterTrigger):
    """
    Wait until a Customer Profiles upload job is SUCCEEDED or PARTIALLY_SUCCEEDED (or FAILED /
    STOPPED).

    The success event is ``{"status": "success", "job_id": job_id}``; a failure event is
    ``{"status": "error", "message": ..., "job_id": job_id}`` (the operator then reads the job's
    ``StatusReason`` and ``ResultsSummary`` to report them).

    :param domain_name: The Customer Profiles domain.
    :param job_id: The upload job id.
    :param waiter_delay: The amount of time in seconds to wait between attempts.
    :param waiter_max_attempts: The maximum number of attempts to be made.
    :param aws_conn_id: The Airflow connection used for AWS credentials.
    :param region_name: AWS region name; None means the connection's region.
    :param verify: Whether or not to verify SSL certificates.
    :param botocore_config: Configuration dictionary (key-values) for botocore client.
    """

    aws_hook_class = CustomerProfilesHook

    def __init__(
        self,
        *,
        domain_name: str,
        job_id: str,
        waiter_delay: int = 15,
        waiter_max_attempts: int = 240,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            serialized_fields={"domain_name": domain_name, "job_id": job_id},
            waiter_name="upload_job_complete",
            waiter_args={"DomainName": domain_name, "JobId": job_id},
            failure_message="Customer Profiles upload job failed",
            status_message="Status of Customer Profiles upload job is",
            status_queries=["Status", "StatusReason", "ResultsSummary"],
            return_key="job_id",
            return_value=job_id,
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
        )
