"""
Triggers waiting for Amazon Personalize resources to become ACTIVE.

Each trigger only configures :class:`~airflow.providers.amazon.aws.triggers.base.AwsBaseWaiterTrigger`
with the facts of one kind of resource (``personalize_logic.facts.personalize``): its waiter of
``plugins/waiters/personalize.json``, the waiter's ARN parameter and the status / failureReason
queries. Events:

* success: ``{"status": "success", "arn": <arn>}``;
* failure: ``{"status": "error", "message": ..., "arn": <arn>}``; the message carries the resource's
  status and AWS's ``failureReason`` (``status_queries``).

The triggerer must be able to import ``plugins/`` (the serialized classpath is
``triggers.personalize.<Class>``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from hooks.personalize import PersonalizeHook
from personalize_logic.facts import personalize as facts
from triggers.compat import AwsBaseWaiterTrigger


class PersonalizeBaseTrigger(AwsBaseWaiterTrigger):
    """
    Wait until a Personalize resource is ACTIVE (base class: subclasses set ``resource`` only).

    :param arn: ARN of the resource (job) to wait for.
    :param waiter_delay: Seconds between two status checks.
    :param waiter_max_attempts: Maximum number of status checks.
    :param aws_conn_id: The Airflow connection used for AWS credentials.
    :param region_name: AWS region name; ``None`` uses the connection's region.
    :param verify: Whether or not to verify SSL certificates.
    :param botocore_config: Configuration dictionary (key-values) for botocore client.
    """

    aws_hook_class = PersonalizeHook
    #: The facts of the resource waited for: waiter name, ARN parameter, status queries, label.
    resource: ClassVar[facts.PersonalizeResourceKind]
    #: ``resource.kind``, set on each subclass.
    kind: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.kind = cls.resource.kind

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
        resource = self.resource
        super().__init__(
            serialized_fields={"arn": arn},
            waiter_name=resource.waiter_name,
            waiter_args={resource.arn_param: arn},
            failure_message=f"Amazon Personalize {resource.label} {arn} failed",
            status_message=f"Status of Amazon Personalize {resource.label} {arn} is",
            status_queries=[resource.status_query, resource.failure_reason_query],
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
    """Wait until a dataset group is ACTIVE."""

    resource = facts.DATASET_GROUP


class PersonalizeDatasetActiveTrigger(PersonalizeBaseTrigger):
    """Wait until a dataset is ACTIVE."""

    resource = facts.DATASET


class PersonalizeFilterActiveTrigger(PersonalizeBaseTrigger):
    """Wait until a filter is ACTIVE."""

    resource = facts.FILTER


class PersonalizeSolutionActiveTrigger(PersonalizeBaseTrigger):
    """Wait until a solution is ACTIVE."""

    resource = facts.SOLUTION


class PersonalizeCampaignActiveTrigger(PersonalizeBaseTrigger):
    """Wait until a campaign, and its latest update, is ACTIVE."""

    resource = facts.CAMPAIGN


class PersonalizeDatasetImportJobCompleteTrigger(PersonalizeBaseTrigger):
    """Wait until a dataset import job is ACTIVE."""

    resource = facts.DATASET_IMPORT_JOB


class PersonalizeSolutionVersionCompleteTrigger(PersonalizeBaseTrigger):
    """Wait until a solution version is trained (ACTIVE)."""

    resource = facts.SOLUTION_VERSION


class PersonalizeBatchInferenceJobCompleteTrigger(PersonalizeBaseTrigger):
    """Wait until a batch inference job is ACTIVE."""

    resource = facts.BATCH_INFERENCE_JOB


class PersonalizeBatchSegmentJobCompleteTrigger(PersonalizeBaseTrigger):
    """Wait until a batch segment job is ACTIVE."""

    resource = facts.BATCH_SEGMENT_JOB
