"""
Sensors for Amazon Personalize resources and jobs.

The state sets declared here are the source of truth for the acceptors of
``plugins/waiters/personalize.json``; the waiter tests check the JSON against them.

Decisions (from the botocore model's status documentation):

* Named resources (dataset group, dataset, filter, solution, campaign):
  ``CREATE PENDING > CREATE IN_PROGRESS > ACTIVE -or- CREATE FAILED``. ``DELETE PENDING`` /
  ``DELETE IN_PROGRESS`` are failures: a resource being deleted never becomes ACTIVE.
* Solution versions also have ``CREATE STOPPING`` and ``CREATE STOPPED`` (StopSolutionVersionCreation).
  Both are failures: a version that is being stopped never becomes ACTIVE, so waiting on would only
  burn the timeout.
* Batch inference and batch segment jobs: the model spells ``PENDING, IN PROGRESS`` (with a space);
  other AWS sources use ``CREATE PENDING, CREATE IN_PROGRESS``. Both spellings are intermediate.
* A state outside all three sets is logged and treated as "not done yet" (like the waiter, which
  retries on a status no acceptor matches), so a status AWS adds later does not break a pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.amazon.aws.sensors.base_aws import AwsBaseSensor
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, conf

from hooks.personalize import RESOURCE_KINDS, PersonalizeHook

# The DAG files import this module on every parse; the modules only execute() needs are imported
# inside the methods that use them (benchmarks/bench_parse.py measures the difference).
if TYPE_CHECKING:
    from airflow.sdk import Context

SUCCESS_STATES: tuple[str, ...] = ("ACTIVE",)
CREATE_INTERMEDIATE_STATES: tuple[str, ...] = ("CREATE PENDING", "CREATE IN_PROGRESS")
NAMED_RESOURCE_FAILURE_STATES: tuple[str, ...] = ("CREATE FAILED", "DELETE PENDING", "DELETE IN_PROGRESS")
JOB_FAILURE_STATES: tuple[str, ...] = ("CREATE FAILED",)
SOLUTION_VERSION_FAILURE_STATES: tuple[str, ...] = ("CREATE FAILED", "CREATE STOPPING", "CREATE STOPPED")
BATCH_JOB_INTERMEDIATE_STATES: tuple[str, ...] = ("PENDING", "IN PROGRESS", *CREATE_INTERMEDIATE_STATES)


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

    kind: ClassVar[str]
    INTERMEDIATE_STATES: ClassVar[tuple[str, ...]] = ()
    FAILURE_STATES: ClassVar[tuple[str, ...]] = ()
    SUCCESS_STATES: ClassVar[tuple[str, ...]] = SUCCESS_STATES

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
        from triggers.personalize import TRIGGERS

        if self.deferrable:
            self.defer(
                trigger=TRIGGERS[self.kind](
                    arn=self.arn,
                    waiter_delay=int(self.poke_interval),
                    waiter_max_attempts=self.max_retries,
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region_name,
                    verify=self.verify,
                    botocore_config=self.botocore_config,
                ),
                method_name="execute_complete",
            )
        return super().execute(context=context)

    def poke(self, context: Context) -> bool:
        label = RESOURCE_KINDS[self.kind].label
        status, reason, _ = self.hook.get_status(self.kind, self.arn)
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
            self.log.info("Amazon Personalize %s %s is ACTIVE", RESOURCE_KINDS[self.kind].label, self.arn)
            return self.arn
        label = RESOURCE_KINDS[self.kind].label
        status, reason, _ = self.hook.get_status(self.kind, self.arn)
        exception = AirflowFailException if status in self.FAILURE_STATES else AirflowException
        raise exception(
            f"Amazon Personalize {label} {self.arn} is not ACTIVE (status {status}): "
            f"failureReason={reason!r}; trigger said: {validated.get('message')}"
        )


class PersonalizeDatasetGroupSensor(PersonalizeBaseSensor):
    """Wait for a dataset group to be ACTIVE. See :class:`PersonalizeBaseSensor`."""

    kind = "dataset_group"
    INTERMEDIATE_STATES = CREATE_INTERMEDIATE_STATES
    FAILURE_STATES = NAMED_RESOURCE_FAILURE_STATES


class PersonalizeDatasetSensor(PersonalizeBaseSensor):
    """Wait for a dataset to be ACTIVE. See :class:`PersonalizeBaseSensor`."""

    kind = "dataset"
    INTERMEDIATE_STATES = CREATE_INTERMEDIATE_STATES
    FAILURE_STATES = NAMED_RESOURCE_FAILURE_STATES


class PersonalizeFilterSensor(PersonalizeBaseSensor):
    """Wait for a filter to be ACTIVE. See :class:`PersonalizeBaseSensor`."""

    kind = "filter"
    INTERMEDIATE_STATES = CREATE_INTERMEDIATE_STATES
    FAILURE_STATES = NAMED_RESOURCE_FAILURE_STATES


class PersonalizeSolutionSensor(PersonalizeBaseSensor):
    """Wait for a solution to be ACTIVE. See :class:`PersonalizeBaseSensor`."""

    kind = "solution"
    INTERMEDIATE_STATES = CREATE_INTERMEDIATE_STATES
    FAILURE_STATES = NAMED_RESOURCE_FAILURE_STATES


class PersonalizeCampaignSensor(PersonalizeBaseSensor):
    """
    Wait for a campaign, and its latest update, to be ACTIVE. See :class:`PersonalizeBaseSensor`.

    The status read is ``campaign.latestCampaignUpdate.status || campaign.status``: while an
    ``UpdateCampaign`` is deploying a new solution version the campaign itself stays ACTIVE.
    """

    kind = "campaign"
    INTERMEDIATE_STATES = CREATE_INTERMEDIATE_STATES
    FAILURE_STATES = NAMED_RESOURCE_FAILURE_STATES


class PersonalizeDatasetImportJobSensor(PersonalizeBaseSensor):
    """Wait for a dataset import job to be ACTIVE. See :class:`PersonalizeBaseSensor`."""

    kind = "dataset_import_job"
    INTERMEDIATE_STATES = CREATE_INTERMEDIATE_STATES
    FAILURE_STATES = JOB_FAILURE_STATES


class PersonalizeSolutionVersionSensor(PersonalizeBaseSensor):
    """
    Wait for a solution version to finish training. See :class:`PersonalizeBaseSensor`.

    ``CREATE STOPPING`` and ``CREATE STOPPED`` fail the sensor: a stopped version never becomes ACTIVE.
    """

    kind = "solution_version"
    INTERMEDIATE_STATES = CREATE_INTERMEDIATE_STATES
    FAILURE_STATES = SOLUTION_VERSION_FAILURE_STATES


class PersonalizeBatchInferenceJobSensor(PersonalizeBaseSensor):
    """Wait for a batch inference job to be ACTIVE. See :class:`PersonalizeBaseSensor`."""

    kind = "batch_inference_job"
    INTERMEDIATE_STATES = BATCH_JOB_INTERMEDIATE_STATES
    FAILURE_STATES = JOB_FAILURE_STATES


class PersonalizeBatchSegmentJobSensor(PersonalizeBaseSensor):
    """Wait for a batch segment job to be ACTIVE. See :class:`PersonalizeBaseSensor`."""

    kind = "batch_segment_job"
    INTERMEDIATE_STATES = BATCH_JOB_INTERMEDIATE_STATES
    FAILURE_STATES = JOB_FAILURE_STATES


SENSORS: dict[str, type[PersonalizeBaseSensor]] = {
    cls.kind: cls
    for cls in (
        PersonalizeDatasetGroupSensor,
        PersonalizeDatasetSensor,
        PersonalizeFilterSensor,
        PersonalizeSolutionSensor,
        PersonalizeCampaignSensor,
        PersonalizeDatasetImportJobSensor,
        PersonalizeSolutionVersionSensor,
        PersonalizeBatchInferenceJobSensor,
        PersonalizeBatchSegmentJobSensor,
    )
}
"""The sensor class (and so the state sets) of each kind of resource."""
