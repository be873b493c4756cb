"""
Triggers waiting for Amazon Personalize resources to become ACTIVE.

Each trigger only configures :class:`~airflow.providers.amazon.aws.triggers.base.AwsBaseWaiterTrigger`
with one of the waiters of ``plugins/waiters/personalize.json``. Events:

* success: ``{"status": "success", "arn": <arn>}``;
* failure: ``{"status": "error", "message": ..., "arn": <arn>}``; the message carries the resource's
  status and AWS's ``failureReason`` (``status_queries``).

The triggerer must be able to import ``plugins/`` (the serialized classpath is
``triggers.personalize.<Class>``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from hooks.personalize import RESOURCE_KINDS, PersonalizeHook
from triggers.compat import AwsBaseWaiterTrigger


class PersonalizeBaseTrigger(AwsBaseWaiterTrigger):
    """
    Wait until a Personalize resource is ACTIVE (base class: subclasses set ``kind`` only).

    :param arn: ARN of the resource (job) to wait for.
    :param waiter_delay: Seconds between two status checks.
    :param waiter_max_attempts: Maximum number of status checks.
    :param aws_conn_id: The Airflow connection used for AWS credentials.
    :param region_name: AWS region name; ``None`` uses the connection's region.
    :param verify: Whether or not to verify SSL certificates.
    :param botocore_config: Configuration dictionary (key-values) for botocore client.
    """

    aws_hook_class = PersonalizeHook
    kind: ClassVar[str]

    def __init__(
        self,
        *,
        arn: str,
        waiter_delay: int = 60,
        waiter_max_attempts: int = 720,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
    ) -> None:
        spec = RESOURCE_KINDS[self.kind]
        super().__init__(
            serialized_fields={"arn": arn},
            waiter_name=spec.waiter_name,
            waiter_args={spec.arn_param: arn},
            failure_message=f"Amazon Personalize {spec.label} {arn} failed",
            status_message=f"Status of Amazon Personalize {spec.label} {arn} is",
            status_queries=[spec.status_query, spec.failure_reason_query],
            return_key="arn",
            return_value=arn,
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
        )


class PersonalizeDatasetGroupActiveTrigger(PersonalizeBaseTrigger):
    """Wait until a dataset group is ACTIVE. See :class:`PersonalizeBaseTrigger`."""

    kind = "dataset_group"


class PersonalizeDatasetActiveTrigger(PersonalizeBaseTrigger):
    """Wait until a dataset is ACTIVE. See :class:`PersonalizeBaseTrigger`."""

    kind = "dataset"


class PersonalizeFilterActiveTrigger(PersonalizeBaseTrigger):
    """Wait until a filter is ACTIVE. See :class:`PersonalizeBaseTrigger`."""

    kind = "filter"


class PersonalizeSolutionActiveTrigger(PersonalizeBaseTrigger):
    """Wait until a solution is ACTIVE. See :class:`PersonalizeBaseTrigger`."""

    kind = "solution"


class PersonalizeCampaignActiveTrigger(PersonalizeBaseTrigger):
    """Wait until a campaign (and its latest update) is ACTIVE. See :class:`PersonalizeBaseTrigger`."""

    kind = "campaign"


class PersonalizeDatasetImportJobCompleteTrigger(PersonalizeBaseTrigger):
    """Wait until a dataset import job is ACTIVE. See :class:`PersonalizeBaseTrigger`."""

    kind = "dataset_import_job"


class PersonalizeSolutionVersionCompleteTrigger(PersonalizeBaseTrigger):
    """Wait until a solution version is trained (ACTIVE). See :class:`PersonalizeBaseTrigger`."""

    kind = "solution_version"


class PersonalizeBatchInferenceJobCompleteTrigger(PersonalizeBaseTrigger):
    """Wait until a batch inference job is ACTIVE. See :class:`PersonalizeBaseTrigger`."""

    kind = "batch_inference_job"


class PersonalizeBatchSegmentJobCompleteTrigger(PersonalizeBaseTrigger):
    """Wait until a batch segment job is ACTIVE. See :class:`PersonalizeBaseTrigger`."""

    kind = "batch_segment_job"


TRIGGERS: dict[str, type[PersonalizeBaseTrigger]] = {
    cls.kind: cls
    for cls in (
        PersonalizeDatasetGroupActiveTrigger,
        PersonalizeDatasetActiveTrigger,
        PersonalizeFilterActiveTrigger,
        PersonalizeSolutionActiveTrigger,
        PersonalizeCampaignActiveTrigger,
        PersonalizeDatasetImportJobCompleteTrigger,
        PersonalizeSolutionVersionCompleteTrigger,
        PersonalizeBatchInferenceJobCompleteTrigger,
        PersonalizeBatchSegmentJobCompleteTrigger,
    )
}
"""The trigger class waiting for each kind of resource (keys of ``hooks.personalize.RESOURCE_KINDS``)."""
