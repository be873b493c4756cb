"""The AWS connection settings an operator or sensor hands to the trigger it defers to."""

from __future__ import annotations

from typing import Any, Protocol


class AwsConnectionSettings(Protocol):
    """What :class:`~airflow.providers.amazon.aws.utils.mixins.AwsBaseHookMixin` gives every AWS task."""

    aws_conn_id: str | None
    region_name: str | None
    verify: bool | str | None
    botocore_config: dict[str, Any] | None


def connection_kwargs(task: AwsConnectionSettings) -> dict[str, Any]:
    """
    ``aws_conn_id``, ``region_name``, ``verify`` and ``botocore_config`` of ``task``, as trigger kwargs.

    Every trigger of this package takes these four keyword arguments (those of
    :class:`~airflow.providers.amazon.aws.triggers.base.AwsBaseWaiterTrigger`), so the triggerer
    connects exactly as the task would have: ``Trigger(arn=..., **connection_kwargs(self))``.
    """
    return {
        "aws_conn_id": task.aws_conn_id,
        "region_name": task.region_name,
        "verify": task.verify,
        "botocore_config": task.botocore_config,
    }
