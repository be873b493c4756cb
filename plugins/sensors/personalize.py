"""
Sensors for Amazon Personalize resources and jobs.

Each sensor names the facts of its resource (``personalize_logic.facts.personalize``: describe
call, status query, status sets) and the trigger it defers to. Its ``INTERMEDIATE_STATES`` /
``FAILURE_STATES`` / ``SUCCESS_STATES`` are the facts module's sets (the provider's sensor shape);
the decisions behind them (stop and delete states are failures, both spellings of a batch job's
pending states) are documented there.

A state outside all three sets is logged and treated as "not done yet" (like the waiter, which
retries on a status no acceptor matches), so a status AWS adds later does not break a pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.amazon.aws.sensors.base_aws import AwsBaseSensor
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, conf

from hooks.personalize import PersonalizeHook
from personalize_logic.facts import personalize as facts
from triggers.connection import connection_kwargs
from triggers.personalize import (
    PersonalizeBaseTrigger,
    PersonalizeBatchInferenceJobCompleteTrigger,
    PersonalizeBatchSegmentJobCompleteTrigger,
    PersonalizeCampaignActiveTrigger,
    PersonalizeDatasetActiveTrigger,
    PersonalizeDatasetGroupActiveTrigger,
    PersonalizeDatasetImportJobCompleteTrigger,
    PersonalizeFilterActiveTrigger,
    PersonalizeSolutionActiveTrigger,
    PersonalizeSolutionVersionCompleteTrigger,
)

# The DAG files import this module on every parse; the modules only execute() needs are imported
# inside the methods that use them (benchmarks/bench_parse.py measures the difference).
if TYPE_CHECKING:
    from airflow.sdk import Context


class PersonalizeBaseSensor(AwsBaseSensor[PersonalizeHook]):
    """
    Wait until a Personalize resource is ACTIVE; fail with AWS's ``failureReason`` if it fails.

    Works in ``mode="poke"``, ``mode="reschedule"`` (``poke`` is stateless) and with
    ``deferrable=True`` (defers to the same trigger the operators use).

    :param arn: ARN of the resource or job to watch. (templated)
    :param deferrable: If True, the sensor defers to the trigger of this resource kind.
        (default: ``[operators] default_deferrable``)
    :param poke_interval: Seconds between two status checks (also the trigger's delay). (default: 60)
    :param max_retries: Maximum number of status checks in deferrable mode. (default: 720)
    :param aws_conn_id: The Airflow connection used for AWS credentials.
    :param region_name: AWS region name. If not specified then the connection's region is used.
    :param verify: Whether or not to verify SSL certificates.
    :param botocore_config: Configuration dictionary (key-values) for botocore client.
    """

    aws_hook_class = PersonalizeHook
    template_fields: Sequence[str] = aws_template_fields("arn")
    ui_color = "#7ad1c4"

    #: The facts of the resource watched: describe call, status query, label.
    resource: ClassVar[facts.PersonalizeResourceKind]
    #: The trigger deferred to (the one the operators of this resource use).
    trigger_class: ClassVar[type[PersonalizeBaseTrigger]]
    INTERMEDIATE_STATES: ClassVar[tuple[str, ...]] = ()
    FAILURE_STATES: ClassVar[tuple[str, ...]] = ()
    SUCCESS_STATES: ClassVar[tuple[str, ...]] = facts.SUCCESS_STATES

    def __init__(
        self,
        *,
        arn: str,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: float = 60,
        max_retries: int = 720,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.arn = arn
        self.deferrable = deferrable
        self.max_retries = max_retries

    def execute(self, context: Context) -> Any:
        if self.deferrable:
            self.defer(
                trigger=self.trigger_class(
                    arn=self.arn,
                    waiter_delay=int(self.poke_interval),
                    waiter_max_attempts=self.max_retries,
                    **connection_kwargs(self),
                ),
                method_name="execute_complete",
            )
        return super().execute(context=context)

    def poke(self, context: Context) -> bool:
        label = self.resource.label
        status, reason, _ = self.hook.get_status(self.resource.kind, self.arn)
        self.log.info("Amazon Personalize %s %s is %s", label, self.arn, status)
        if status in self.SUCCESS_STATES:
            return True
        if status in self.FAILURE_STATES:
            raise AirflowFailException(
                f"Amazon Personalize {label} {self.arn} ended in status {status}: failureReason={reason!r}"
            )
        if status not in self.INTERMEDIATE_STATES:
            self.log.warning("Unknown status %r of %s %s; waiting on.", status, label, self.arn)
        return False

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """Resume after the trigger fired: return the ARN, or raise with AWS's ``failureReason``."""
        validated = validate_execute_complete_event(event)
        if validated.get("status") == "success":
            self.log.info("Amazon Personalize %s %s is ACTIVE", self.resource.label, self.arn)
            return self.arn
        label = self.resource.label
        status, reason, _ = self.hook.get_status(self.resource.kind, self.arn)
        exception = AirflowFailException if status in self.FAILURE_STATES else AirflowException
        raise exception(
            f"Amazon Personalize {label} {self.arn} is not ACTIVE (status {status}): "
            f"failureReason={reason!r}; trigger said: {validated.get('message')}"
        )


class PersonalizeDatasetGroupSensor(PersonalizeBaseSensor):
    """Wait for a dataset group to be ACTIVE. See :class:`PersonalizeBaseSensor`."""

    resource = facts.DATASET_GROUP
    trigger_class = PersonalizeDatasetGroupActiveTrigger
    INTERMEDIATE_STATES = facts.DATASET_GROUP.intermediate_states
    FAILURE_STATES = facts.DATASET_GROUP.failure_states


class PersonalizeDatasetSensor(PersonalizeBaseSensor):
    """Wait for a dataset to be ACTIVE. See :class:`PersonalizeBaseSensor`."""

    resource = facts.DATASET
    trigger_class = PersonalizeDatasetActiveTrigger
    INTERMEDIATE_STATES = facts.DATASET.intermediate_states
    FAILURE_STATES = facts.DATASET.failure_states


class PersonalizeFilterSensor(PersonalizeBaseSensor):
    """Wait for a filter to be ACTIVE. See :class:`PersonalizeBaseSensor`."""

    resource = facts.FILTER
    trigger_class = PersonalizeFilterActiveTrigger
    INTERMEDIATE_STATES = facts.FILTER.intermediate_states
    FAILURE_STATES = facts.FILTER.failure_states


class PersonalizeSolutionSensor(PersonalizeBaseSensor):
    """Wait for a solution to be ACTIVE. See :class:`PersonalizeBaseSensor`."""

    resource = facts.SOLUTION
    trigger_class = PersonalizeSolutionActiveTrigger
    INTERMEDIATE_STATES = facts.SOLUTION.intermediate_states
    FAILURE_STATES = facts.SOLUTION.failure_states


class PersonalizeCampaignSensor(PersonalizeBaseSensor):
    """
    Wait for a campaign, and its latest update, to be ACTIVE. See :class:`PersonalizeBaseSensor`.

    The status read is ``campaign.latestCampaignUpdate.status || campaign.status``: while an
    ``UpdateCampaign`` is deploying a new solution version the campaign itself stays ACTIVE.
    """

    resource = facts.CAMPAIGN
    trigger_class = PersonalizeCampaignActiveTrigger
    INTERMEDIATE_STATES = facts.CAMPAIGN.intermediate_states
    FAILURE_STATES = facts.CAMPAIGN.failure_states


class PersonalizeDatasetImportJobSensor(PersonalizeBaseSensor):
    """Wait for a dataset import job to be ACTIVE. See :class:`PersonalizeBaseSensor`."""

    resource = facts.DATASET_IMPORT_JOB
    trigger_class = PersonalizeDatasetImportJobCompleteTrigger
    INTERMEDIATE_STATES = facts.DATASET_IMPORT_JOB.intermediate_states
    FAILURE_STATES = facts.DATASET_IMPORT_JOB.failure_states


class PersonalizeSolutionVersionSensor(PersonalizeBaseSensor):
    """
    Wait for a solution version to finish training. See :class:`PersonalizeBaseSensor`.

    ``CREATE STOPPING`` and ``CREATE STOPPED`` fail the sensor: a stopped version never becomes ACTIVE.
    """

    resource = facts.SOLUTION_VERSION
    trigger_class = PersonalizeSolutionVersionCompleteTrigger
    INTERMEDIATE_STATES = facts.SOLUTION_VERSION.intermediate_states
    FAILURE_STATES = facts.SOLUTION_VERSION.failure_states


class PersonalizeBatchInferenceJobSensor(PersonalizeBaseSensor):
    """Wait for a batch inference job to be ACTIVE. See :class:`PersonalizeBaseSensor`."""

    resource = facts.BATCH_INFERENCE_JOB
    trigger_class = PersonalizeBatchInferenceJobCompleteTrigger
    INTERMEDIATE_STATES = facts.BATCH_INFERENCE_JOB.intermediate_states
    FAILURE_STATES = facts.BATCH_INFERENCE_JOB.failure_states


class PersonalizeBatchSegmentJobSensor(PersonalizeBaseSensor):
    """Wait for a batch segment job to be ACTIVE. See :class:`PersonalizeBaseSensor`."""

    resource = facts.BATCH_SEGMENT_JOB
    trigger_class = PersonalizeBatchSegmentJobCompleteTrigger
    INTERMEDIATE_STATES = facts.BATCH_SEGMENT_JOB.intermediate_states
    FAILURE_STATES = facts.BATCH_SEGMENT_JOB.failure_states
