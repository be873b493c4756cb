"""
Sensors for Amazon Pinpoint import / export jobs.

Their ``INTERMEDIATE_STATES`` / ``FAILURE_STATES`` / ``SUCCESS_STATES`` are the ``JobStatus`` sets of
``personalize_logic.facts.pinpoint`` (the provider's sensor shape), which the waiters in
``plugins/waiters/pinpoint.json`` are tested against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.amazon.aws.sensors.base_aws import AwsBaseSensor
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException, conf

from hooks.pinpoint import PinpointHook
from personalize_logic.facts.pinpoint import (
    FAILURE_STATES,
    INTERMEDIATE_STATES,
    SUCCESS_STATES,
    describe_failure,
)
from triggers.connection import connection_kwargs
from triggers.pinpoint import PinpointExportJobCompleteTrigger, PinpointImportJobCompleteTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class PinpointImportJobSensor(AwsBaseSensor[PinpointHook]):
    """
    Wait for a Pinpoint import job to complete; fail with its ``Failures`` if it fails.

    An unknown state fails the sensor rather than waiting forever.

    :param application_id: The Pinpoint project id. (templated)
    :param job_id: The job id. (templated)
    :param deferrable: If True, the sensor defers to the same trigger the operators use.
        (default: ``[operators] default_deferrable``)
    :param poke_interval: Seconds between two status checks. (default: 15)
    :param max_retries: Maximum number of status checks in deferrable mode. (default: 240)
    """

    aws_hook_class = PinpointHook
    template_fields: Sequence[str] = aws_template_fields("application_id", "job_id")
    ui_color = "#f9c5d1"

    INTERMEDIATE_STATES: ClassVar[tuple[str, ...]] = INTERMEDIATE_STATES
    FAILURE_STATES: ClassVar[tuple[str, ...]] = FAILURE_STATES
    SUCCESS_STATES: ClassVar[tuple[str, ...]] = SUCCESS_STATES
    trigger_class: ClassVar[type[PinpointImportJobCompleteTrigger]] = PinpointImportJobCompleteTrigger
    get_method: ClassVar[str] = "get_import_job"
    response_key: ClassVar[str] = "ImportJobResponse"
    label: ClassVar[str] = "import"

    def __init__(
        self,
        *,
        application_id: str,
        job_id: str,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: float = 15,
        max_retries: int = 240,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.application_id = application_id
        self.job_id = job_id
        self.deferrable = deferrable
        self.max_retries = max_retries

    def _get_job(self) -> dict[str, Any]:
        response = getattr(self.hook.conn, self.get_method)(
            ApplicationId=self.application_id, JobId=self.job_id
        )
        return response[self.response_key]

    def execute(self, context: Context) -> Any:
        if self.deferrable:
            self.defer(
                trigger=self.trigger_class(
                    application_id=self.application_id,
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
        state = job.get("JobStatus")
        self.log.info("Pinpoint %s job %s is %s", self.label, self.job_id, state)
        if state in self.SUCCESS_STATES:
            return True
        if state in self.INTERMEDIATE_STATES:
            return False
        if state in self.FAILURE_STATES:
            raise AirflowException(f"Pinpoint {self.label} job {self.job_id} failed: {describe_failure(job)}")
        raise AirflowException(f"Pinpoint {self.label} job {self.job_id} is in unexpected state {state!r}")

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        validated = validate_execute_complete_event(event)
        if validated.get("status") != "success":
            job = self._get_job()
            raise AirflowException(
                f"Pinpoint {self.label} job {self.job_id} did not complete: {describe_failure(job)}; "
                f"waiter said: {validated.get('message')}"
            )
        self.log.info("Pinpoint %s job %s is COMPLETED", self.label, self.job_id)
        return self.job_id


class PinpointExportJobSensor(PinpointImportJobSensor):
    """Wait for a Pinpoint export job (see :class:`PinpointImportJobSensor`)."""

    trigger_class = PinpointExportJobCompleteTrigger
    get_method = "get_export_job"
    response_key = "ExportJobResponse"
    label = "export"
