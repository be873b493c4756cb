"""
Sensor for Amazon Connect Customer Profiles upload jobs.

Its ``INTERMEDIATE_STATES`` / ``FAILURE_STATES`` / ``SUCCESS_STATES`` are the ``UploadJobStatus``
sets of ``personalize_logic.facts.customer_profiles`` (the provider's sensor shape), which the waiter
in ``plugins/waiters/customer_profiles.json`` is tested against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.amazon.aws.sensors.base_aws import AwsBaseSensor
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException, conf

from hooks.customer_profiles import CustomerProfilesHook
from personalize_logic.facts.customer_profiles import (
    UPLOAD_FAILURE_STATES,
    UPLOAD_INTERMEDIATE_STATES,
    UPLOAD_SUCCESS_STATES,
    describe_failure,
)
from triggers.connection import connection_kwargs
from triggers.customer_profiles import CustomerProfilesUploadJobCompleteTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class CustomerProfilesUploadJobSensor(AwsBaseSensor[CustomerProfilesHook]):
    """
    Wait for a Customer Profiles upload job to finish; fail with its ``StatusReason`` and
    ``ResultsSummary`` if it fails or is stopped. An unknown state fails the sensor rather than
    waiting forever.

    :param domain_name: The Customer Profiles domain. (templated)
    :param job_id: The upload job id. (templated)
    :param deferrable: If True, the sensor defers to the trigger the upload operator uses.
        (default: ``[operators] default_deferrable``)
    :param poke_interval: Seconds between two status checks. (default: 15)
    :param max_retries: Maximum number of status checks in deferrable mode. (default: 240)
    """

    aws_hook_class = CustomerProfilesHook
    template_fields: Sequence[str] = aws_template_fields("domain_name", "job_id")
    ui_color = "#c5e3f9"

    INTERMEDIATE_STATES: ClassVar[tuple[str, ...]] = UPLOAD_INTERMEDIATE_STATES
    FAILURE_STATES: ClassVar[tuple[str, ...]] = UPLOAD_FAILURE_STATES
    SUCCESS_STATES: ClassVar[tuple[str, ...]] = UPLOAD_SUCCESS_STATES

    def __init__(
        self,
        *,
        domain_name: str,
        job_id: str,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: float = 15,
        max_retries: int = 240,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.domain_name = domain_name
        self.job_id = job_id
        self.deferrable = deferrable
        self.max_retries = max_retries

    def _get_job(self) -> dict[str, Any]:
        return self.hook.conn.get_upload_job(DomainName=self.domain_name, JobId=self.job_id)

    def execute(self, context: Context) -> Any:
        if self.deferrable:
            self.defer(
                trigger=CustomerProfilesUploadJobCompleteTrigger(
                    domain_name=self.domain_name,
                    job_id=self.job_id,
                    waiter_delay=int(self.poke_interval),
                    waiter_max_attempts=self.max_retries,
                    **connection_kwargs(self),
                ),
                method_name="execute_complete",
            )
        return super().execute(context=context)

    def poke(self, context: Context) -> bool:
        job = self._get_job()
        state = job.get("Status")
        self.log.info("Customer Profiles upload job %s is %s", self.job_id, state)
        if state in self.SUCCESS_STATES:
            return True
        if state in self.INTERMEDIATE_STATES:
            return False
        if state in self.FAILURE_STATES:
            raise AirflowException(
                f"Customer Profiles upload job {self.job_id} failed: {describe_failure(job)}"
            )
        raise AirflowException(f"Customer Profiles upload job {self.job_id} is in unexpected state {state!r}")

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        validated = validate_execute_complete_event(event)
        if validated.get("status") != "success":
            raise AirflowException(
                f"Customer Profiles upload job {self.job_id} did not complete: "
                f"{describe_failure(self._get_job())}; waiter said: {validated.get('message')}"
            )
        return self.job_id
