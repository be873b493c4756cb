"""
The Amazon provider's ``AwsBaseWaiterTrigger`` as this package's triggers need it, on every
supported provider version (9.22 to 9.x; ``requirements-deploy.txt``). Two provider changes matter:

* 9.36.0: a failed or timed-out wait ends in an error *event* (``{"status": "error", "message": ...}``)
  that the operator's ``execute_complete`` turns into a clear task failure. Before, ``run()`` raised,
  so the task failed with the triggerer's traceback instead and never reached ``execute_complete``
  (the Pinpoint import operator, for one, reads the job's ``Failures`` there).
* 9.37.0: a subclass names its hook with ``aws_hook_class`` and the base class builds it from the
  parameters the trigger serializes (``aws_conn_id``, ``region_name``, ``verify``,
  ``botocore_config``). Before, ``hook()`` was abstract.

On an older provider this module adds both, in the shape the newer provider has them, so the
triggers stay "configuration only" everywhere and behave the same. MWAA's constraints pin 9.25.0
for Airflow 3.2.1 and 9.34.0 for 3.3.1 (docs/deployment.md): both take this path.

Kept apart from ``personalize_pipeline.compat`` because importing the trigger base costs ~9 ms that
the export DAG's parse should not pay; operators and sensors import their triggers lazily.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib.metadata import version

from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook
from airflow.providers.amazon.aws.triggers.base import AwsBaseWaiterTrigger as _ProviderWaiterTrigger
from airflow.providers.common.compat.sdk import AirflowException
from airflow.triggers.base import TriggerEvent

_PROVIDER_VERSION = version("apache-airflow-providers-amazon")
#: The provider builds the hook from ``aws_hook_class`` (9.37.0 and newer).
PROVIDER_BUILDS_HOOK = not getattr(_ProviderWaiterTrigger.hook, "__isabstractmethod__", False)
#: The provider turns a failed wait into an error event (9.36.0 and newer).
PROVIDER_YIELDS_ERROR_EVENTS = hasattr(_ProviderWaiterTrigger, "_event_from_exception")

if PROVIDER_BUILDS_HOOK and PROVIDER_YIELDS_ERROR_EVENTS:
    AwsBaseWaiterTrigger = _ProviderWaiterTrigger
else:  # Amazon provider < 9.37.0

    class AwsBaseWaiterTrigger(_ProviderWaiterTrigger):  # type: ignore[no-redef]
        """``AwsBaseWaiterTrigger`` with provider 9.37.0's ``aws_hook_class`` and error events."""

        aws_hook_class: type[AwsGenericHook]

        def hook(self) -> AwsGenericHook:
            if PROVIDER_BUILDS_HOOK:
                return super().hook()
            return self.aws_hook_class(
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                config=self.botocore_config,
            )

        async def run(self) -> AsyncIterator[TriggerEvent]:
            try:
                async for event in super().run():
                    yield event
            except AirflowException as error:
                if PROVIDER_YIELDS_ERROR_EVENTS:
                    raise
                self.log.info(
                    "Amazon provider %s raised instead of yielding an error event "
                    "(error event from triggers/compat.py): %s",
                    _PROVIDER_VERSION,
                    error,
                )
                yield TriggerEvent(
                    {"status": "error", "message": str(error), self.return_key: self.return_value}
                )


__all__ = ["PROVIDER_BUILDS_HOOK", "PROVIDER_YIELDS_ERROR_EVENTS", "AwsBaseWaiterTrigger"]
