"""
Operators for Amazon Personalize.

Two families:

* **Named resources** (dataset group, schema, dataset, filter, solution, campaign): create-if-missing
  by name. A rerun finds the resource and reuses it; an existing resource whose definition differs
  from the request is an error naming the field that differs (campaigns are updated instead). The
  operator returns the ARN and, for resources that take time, waits for ACTIVE with the same switch
  as the jobs.
* **Jobs** (dataset import job, solution version, batch inference job, batch segment job):
  prepare → ONE ``create_*`` call → wait. The job name is deterministic for (DAG run, task, map index)
  (:func:`personalize_logic.naming.job_name`), so a retry finds the job its previous attempt created
  and waits on it (``if_job_exists="reuse"``, default) instead of starting and paying for a second
  one; ``if_job_exists="fail"`` raises instead.

Each operator names its create call (``create``), its waiter (``waiter_name``, in
``waiters/personalize.json``) and its trigger (``trigger_class``, in ``triggers.personalize``);
``resource`` names the facts of what it creates (``personalize_logic.facts.personalize``: the
describe / list calls and the status sets). Waiting: ``deferrable=True`` defers to the trigger;
otherwise ``wait_for_completion=True`` polls with the waiter.

A resource that fails in AWS raises :class:`AirflowFailException` (a subclass of ``AirflowException``)
whose message contains AWS's ``failureReason``. It is a *fail* exception on purpose: the job name is
fixed for the run, Personalize jobs cannot be deleted, and a retry would only find the same failed
job. To run a failed job again, start a new DAG run or pass another ``job_name``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NoReturn

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, conf
from botocore.exceptions import ClientError, WaiterError

from hooks.personalize import PersonalizeHook
from links.personalize import (
    PersonalizeBaseLink,
    PersonalizeBatchInferenceJobLink,
    PersonalizeBatchSegmentJobLink,
    PersonalizeCampaignLink,
    PersonalizeDatasetGroupLink,
    PersonalizeDatasetImportJobLink,
    PersonalizeDatasetLink,
    PersonalizeFilterLink,
    PersonalizeSchemaLink,
    PersonalizeSolutionLink,
    PersonalizeSolutionVersionLink,
)
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

IfJobExists = Literal["reuse", "fail"]
IF_JOB_EXISTS_CHOICES: tuple[str, ...] = ("reuse", "fail")

_MISSING = object()


class PersonalizeDefinitionMismatchError(AirflowFailException):
    """A Personalize resource with the requested name exists with a different definition."""


def first_difference(requested: Any, actual: Any, path: str) -> tuple[str, Any, Any] | None:
    """
    Return ``(field, requested, actual)`` for the first field where ``actual`` differs, else ``None``.

    Only what was requested is compared: keys the request leaves out, and keys AWS does not report
    (``actual`` lacks them), are not differences, so defaults filled in by AWS never cause an error.
    Numbers are compared by value (``"5"`` from a rendered template equals ``5``).

    >>> first_difference({"a": {"b": 1}}, {"a": {"b": 2, "c": 3}}, "solutionConfig")
    ('solutionConfig.a.b', 1, 2)
    """
    if actual is _MISSING or requested is None:
        return None
    if isinstance(requested, dict):
        if not isinstance(actual, dict):
            return path, requested, actual
        for key, value in requested.items():
            difference = first_difference(value, actual.get(key, _MISSING), f"{path}.{key}")
            if difference is not None:
                return difference
        return None
    if isinstance(requested, bool) or isinstance(actual, bool):
        return None if requested == actual else (path, requested, actual)
    if isinstance(actual, int | float) and isinstance(requested, str | int | float):
        try:
            return None if float(requested) == float(actual) else (path, requested, actual)
        except ValueError:
            return path, requested, actual
    return None if requested == actual else (path, requested, actual)


def normalize_schema(schema: str | dict[str, Any]) -> str:
    """Return the canonical JSON text of an Avro schema given as dict or JSON string (sorted keys)."""
    parsed = json.loads(schema) if isinstance(schema, str) else schema
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"))


def _short(value: Any, limit: int = 300) -> str:
    """``repr`` cut to ``limit`` characters for error messages (schemas can be long)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...(truncated)"


def _as_int(value: Any) -> int | None:
    """Parse an integer field that Jinja may have rendered to a string."""
    return None if value is None or value == "" else int(value)


class PersonalizeBaseOperator(AwsBaseOperator[PersonalizeHook]):
    """
    Shared waiting, failure reporting and console links of Personalize operators (not used directly).

    :param wait_for_completion: Whether to wait until the resource is ACTIVE. (default: True)
    :param waiter_delay: Seconds between two status checks.
    :param waiter_max_attempts: Maximum number of status checks.
    :param deferrable: If True, wait in the triggerer instead of a worker slot (implies waiting).
        (default: ``[operators] default_deferrable``)
    :param create_kwargs: Further parameters of the ``Create*`` request, passed through unchanged
        (real API names, e.g. ``{"tags": [...]}``); they must not repeat what the operator sets.
        (templated)
    :param aws_conn_id: The Airflow connection used for AWS credentials.
        If this is ``None`` or empty then the default boto3 behaviour is used.
    :param region_name: AWS region_name. If not specified then the connection's region is used.
    :param verify: Whether or not to verify SSL certificates.
    :param botocore_config: Configuration dictionary (key-values) for botocore client.
    """

    aws_hook_class = PersonalizeHook
    ui_color = "#7ad1c4"

    #: The facts of what this operator creates: describe / list calls, ARN key, status sets, label.
    resource: ClassVar[facts.PersonalizeResourceKind]
    #: The waiter (``waiters/personalize.json``) that waits for the created resource to be ACTIVE.
    waiter_name: ClassVar[str]
    #: The trigger deferred to while waiting (``deferrable=True``).
    trigger_class: ClassVar[type[PersonalizeBaseTrigger]]
    #: Console link persisted for the created resource.
    link_class: ClassVar[type[PersonalizeBaseLink]]
    #: Overrides the label of ``resource`` in messages (for resources without a status: schemas).
    resource_label: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        wait_for_completion: bool = True,
        waiter_delay: int = 60,
        waiter_max_attempts: int = 720,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        create_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wait_for_completion = wait_for_completion
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        self.deferrable = deferrable
        self.create_kwargs = create_kwargs or {}

    # -------------------------------------------------------------- helpers

    @property
    def label(self) -> str:
        """Human-readable resource name for messages, e.g. ``"batch inference job"``."""
        return self.resource_label or self.resource.label

    def create(self, request: dict[str, Any]) -> str:
        """The one ``create_*`` call: send ``request``, return the new resource's ARN."""
        raise NotImplementedError

    def with_create_kwargs(self, request: dict[str, Any]) -> dict[str, Any]:
        """
        Drop the request's ``None`` values (optional parameters left out) and add ``create_kwargs``;
        a key the operator already sets is an error. Every request passes through here.
        """
        request = {key: value for key, value in request.items() if value is not None}
        overlap = sorted(set(self.create_kwargs or {}) & set(request))
        if overlap:
            raise ValueError(f"create_kwargs must not repeat parameters the operator sets: {overlap}")
        return {**request, **(self.create_kwargs or {})}

    def persist_link(self, context: Context, arn: str) -> None:
        """Store the console link of ``arn`` (done before waiting, so it works while the job runs)."""
        self.link_class.persist(
            context=context,
            operator=self,
            region_name=self.hook.conn_region_name,
            aws_partition=self.hook.conn_partition,
            arn=arn,
        )

    def raise_failed(self, arn: str, status: str | None, reason: str | None, detail: str = "") -> NoReturn:
        """Raise the error for a resource that ended in a failure state, with AWS's failureReason."""
        message = (
            f"Amazon Personalize {self.label} {arn} ended in status {status!r}: failureReason={reason!r}"
        )
        raise AirflowFailException(f"{message}. {detail}".strip() if detail else message)

    def raise_not_active(self, arn: str, detail: str) -> NoReturn:
        """After a waiter / trigger error: describe the resource and raise the most useful error."""
        status, reason, _ = self.hook.get_status(self.resource.kind, arn)
        if status in self.resource.failure_states:
            self.raise_failed(arn, status, reason)
        if status in self.resource.intermediate_states:
            raise AirflowException(
                f"Amazon Personalize {self.label} {arn} is still {status!r} after "
                f"{self.waiter_max_attempts} checks every {self.waiter_delay}s. It keeps running in AWS; "
                f"a retry of this task resumes waiting for it. ({detail})"
            )
        raise AirflowException(
            f"Amazon Personalize {self.label} {arn} is not ACTIVE (status {status!r}, "
            f"failureReason={reason!r}): {detail}"
        )

    def wait_until_active(self, arn: str) -> None:
        """Poll synchronously with the custom waiter; raise with the failureReason on failure."""
        self.log.info("Waiting for Amazon Personalize %s %s to be ACTIVE", self.label, arn)
        try:
            self.hook.get_waiter(self.waiter_name).wait(
                **{self.resource.arn_param: arn},
                WaiterConfig={"Delay": self.waiter_delay, "MaxAttempts": self.waiter_max_attempts},
            )
        except WaiterError as error:
            self.raise_not_active(arn, str(error))

    def wait_or_defer(self, arn: str) -> None:
        """The one wait switch: defer, wait synchronously, or return at once."""
        if self.deferrable:
            self.log.info("Deferring until Amazon Personalize %s %s is ACTIVE", self.label, arn)
            self.defer(
                trigger=self.trigger_class(
                    arn=arn,
                    waiter_delay=self.waiter_delay,
                    waiter_max_attempts=self.waiter_max_attempts,
                    **connection_kwargs(self),
                ),
                method_name="execute_complete",
            )
        elif self.wait_for_completion:
            self.wait_until_active(arn)

    def result(self, context: Context, arn: str) -> Any:
        """The XCom return value once ``arn`` is created (and ACTIVE when waited for)."""
        return arn

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        validated = validate_execute_complete_event(event)
        arn = validated["arn"]
        if validated["status"] != "success":
            self.raise_not_active(arn, str(validated.get("message")))
        self.log.info("Amazon Personalize %s %s is ACTIVE", self.label, arn)
        return self.result(context, arn)


# ====================================================================== named resources


class PersonalizeNamedResourceOperator(PersonalizeBaseOperator):
    """Create-if-missing by name (base class, not used directly)."""

    #: Whether the resource has a status to wait for (schemas have none).
    has_status: ClassVar[bool] = True

    def find_existing(self) -> str | None:
        raise NotImplementedError

    def build_request(self) -> dict[str, Any]:
        raise NotImplementedError

    def comparable(self, request: dict[str, Any]) -> dict[str, Any]:
        """The requested fields an existing resource must match (``None`` values are not compared)."""
        return {key: value for key, value in request.items() if key not in ("tags",)}

    def check_definition(self, arn: str, request: dict[str, Any], existing: dict[str, Any]) -> None:
        """Raise :class:`PersonalizeDefinitionMismatchError` naming the first field that differs."""
        for field, value in self.comparable(request).items():
            difference = first_difference(value, existing.get(field, _MISSING), field)
            if difference is not None:
                name, wanted, actual = difference
                raise PersonalizeDefinitionMismatchError(
                    f"Amazon Personalize {self.label} {request.get('name')!r} ({arn}) already exists "
                    f"with a different {name}: requested {_short(wanted)}, existing {_short(actual)}. Use another "
                    f"name, or delete the existing {self.label} first."
                )

    def execute(self, context: Context) -> Any:
        request = self.with_create_kwargs(self.build_request())
        arn = self.find_existing()
        if arn is None:
            self.log.info("Creating Amazon Personalize %s %r", self.label, request.get("name"))
            try:
                arn = self.create(request)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                    raise
                arn = self.find_existing()  # created concurrently (e.g. by a parallel run)
                if arn is None:
                    raise
                return self.reuse(context, arn, request)
            self.persist_link(context, arn)
            if self.has_status:
                self.wait_or_defer(arn)
            return self.result(context, arn)
        return self.reuse(context, arn, request)

    def reuse(self, context: Context, arn: str, request: dict[str, Any]) -> Any:
        """An existing resource with this name: check its definition and status, then wait or return."""
        existing = self.describe_existing(arn)
        self.check_definition(arn, request, existing)
        self.log.info("Reusing existing Amazon Personalize %s %s", self.label, arn)
        self.persist_link(context, arn)
        if not self.has_status:
            return self.result(context, arn)
        status, reason, _ = self.hook.get_status(self.resource.kind, arn)
        if status in self.resource.failure_states:
            self.raise_failed(arn, status, reason)
        if status not in self.resource.success_states:
            self.wait_or_defer(arn)
        return self.result(context, arn)

    def describe_existing(self, arn: str) -> dict[str, Any]:
        return self.hook.describe(self.resource.kind, arn)


class PersonalizeCreateDatasetGroupOperator(PersonalizeNamedResourceOperator):
    """
    Create an Amazon Personalize dataset group if none with this name exists; return its ARN.

    :param name: Dataset group name. (templated)
    :param domain: ``ECOMMERCE`` or ``VIDEO_ON_DEMAND`` for a domain dataset group; ``None`` for custom.
        (templated)
    :param role_arn: Role with KMS access, only with ``kms_key_arn``. (templated)
    :param kms_key_arn: KMS key encrypting the datasets. (templated)
    :param tags: ``[{"tagKey": ..., "tagValue": ...}]`` applied on creation. (templated)

    Waiting parameters and AWS parameters: see :class:`PersonalizeBaseOperator`
    (defaults: ``waiter_delay=30``, ``waiter_max_attempts=120``).
    """

    resource = facts.DATASET_GROUP
    waiter_name = "dataset_group_active"
    trigger_class = PersonalizeDatasetGroupActiveTrigger
    link_class = PersonalizeDatasetGroupLink
    operator_extra_links = (PersonalizeDatasetGroupLink(),)
    template_fields: Sequence[str] = aws_template_fields(
        "name", "domain", "role_arn", "kms_key_arn", "tags", "create_kwargs"
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"tags": "json", "create_kwargs": "json"}

    def __init__(
        self,
        *,
        name: str,
        domain: str | None = None,
        role_arn: str | None = None,
        kms_key_arn: str | None = None,
        tags: list[dict[str, str]] | None = None,
        waiter_delay: int = 30,
        waiter_max_attempts: int = 120,
        **kwargs: Any,
    ) -> None:
        super().__init__(waiter_delay=waiter_delay, waiter_max_attempts=waiter_max_attempts, **kwargs)
        self.name = name
        self.domain = domain
        self.role_arn = role_arn
        self.kms_key_arn = kms_key_arn
        self.tags = tags

    def build_request(self) -> dict[str, Any]:
        request = {
            "name": self.name,
            "domain": self.domain,
            "roleArn": self.role_arn,
            "kmsKeyArn": self.kms_key_arn,
            "tags": self.tags,
        }
        return request

    def create(self, request: dict[str, Any]) -> str:
        return self.hook.conn.create_dataset_group(**request)["datasetGroupArn"]

    def find_existing(self) -> str | None:
        return self.hook.find_dataset_group_arn(self.name)


class PersonalizeCreateSchemaOperator(PersonalizeNamedResourceOperator):
    """
    Create an Amazon Personalize schema if none with this name exists; return its ARN.

    An existing schema with the same name must have the same definition (compared as normalized JSON:
    key order and whitespace do not matter).

    :param name: Schema name. (templated)
    :param schema: The Avro schema, as a dict or a JSON string. (templated)
    :param domain: ``ECOMMERCE`` or ``VIDEO_ON_DEMAND`` for a domain schema. (templated)
    """

    resource_label = "schema"
    has_status = False  # schemas have no status: nothing to wait for
    link_class = PersonalizeSchemaLink
    operator_extra_links = (PersonalizeSchemaLink(),)
    template_fields: Sequence[str] = aws_template_fields("name", "schema", "domain", "create_kwargs")
    template_fields_renderers: ClassVar[dict[str, str]] = {"schema": "json", "create_kwargs": "json"}

    def __init__(
        self,
        *,
        name: str,
        schema: str | dict[str, Any],
        domain: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.schema = schema
        self.domain = domain

    def build_request(self) -> dict[str, Any]:
        request = {"name": self.name, "schema": normalize_schema(self.schema), "domain": self.domain}
        return request

    def find_existing(self) -> str | None:
        return self.hook.find_schema_arn(self.name)

    def create(self, request: dict[str, Any]) -> str:
        return self.hook.conn.create_schema(**request)["schemaArn"]

    def describe_existing(self, arn: str) -> dict[str, Any]:
        existing = dict(self.hook.conn.describe_schema(schemaArn=arn)["schema"])
        if "schema" in existing:
            existing["schema"] = normalize_schema(existing["schema"])
        return existing


class PersonalizeCreateDatasetOperator(PersonalizeNamedResourceOperator):
    """
    Create the dataset of one type in a dataset group if it does not exist; return its ARN.

    A dataset group holds at most one dataset per type, so the existing dataset is found by
    ``dataset_type``; it must have the same ``name`` and ``schema_arn``.

    :param name: Dataset name. (templated)
    :param dataset_group_arn: The dataset group. (templated)
    :param dataset_type: ``Interactions``, ``Items``, ``Users``, ``Actions`` or
        ``Action_Interactions``. (templated)
    :param schema_arn: The schema of the dataset. (templated)
    :param tags: Tags applied on creation. (templated)

    Waiting parameters: see :class:`PersonalizeBaseOperator`
    (defaults: ``waiter_delay=30``, ``waiter_max_attempts=120``).
    """

    resource = facts.DATASET
    waiter_name = "dataset_active"
    trigger_class = PersonalizeDatasetActiveTrigger
    link_class = PersonalizeDatasetLink
    operator_extra_links = (PersonalizeDatasetLink(),)
    template_fields: Sequence[str] = aws_template_fields(
        "name", "dataset_group_arn", "dataset_type", "schema_arn", "tags", "create_kwargs"
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"tags": "json", "create_kwargs": "json"}

    def __init__(
        self,
        *,
        name: str,
        dataset_group_arn: str,
        dataset_type: str,
        schema_arn: str,
        tags: list[dict[str, str]] | None = None,
        waiter_delay: int = 30,
        waiter_max_attempts: int = 120,
        **kwargs: Any,
    ) -> None:
        super().__init__(waiter_delay=waiter_delay, waiter_max_attempts=waiter_max_attempts, **kwargs)
        self.name = name
        self.dataset_group_arn = dataset_group_arn
        self.dataset_type = dataset_type
        self.schema_arn = schema_arn
        self.tags = tags

    def build_request(self) -> dict[str, Any]:
        request = {
            "name": self.name,
            "datasetGroupArn": self.dataset_group_arn,
            "datasetType": self.dataset_type,
            "schemaArn": self.schema_arn,
            "tags": self.tags,
        }
        return request

    def create(self, request: dict[str, Any]) -> str:
        return self.hook.conn.create_dataset(**request)["datasetArn"]

    def comparable(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"name": request["name"], "schemaArn": request["schemaArn"]}

    def find_existing(self) -> str | None:
        return self.hook.find_dataset_arn(self.dataset_group_arn, self.dataset_type)


class PersonalizeCreateFilterOperator(PersonalizeNamedResourceOperator):
    """
    Create an Amazon Personalize filter if none with this name exists in the dataset group.

    :param name: Filter name. (templated)
    :param dataset_group_arn: The dataset group. (templated)
    :param filter_expression: The filter expression, e.g.
        ``EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")``. (templated)
    :param tags: Tags applied on creation. (templated)

    Returns the filter ARN. Waiting parameters: see :class:`PersonalizeBaseOperator`
    (defaults: ``waiter_delay=30``, ``waiter_max_attempts=120``).
    """

    resource = facts.FILTER
    waiter_name = "filter_active"
    trigger_class = PersonalizeFilterActiveTrigger
    link_class = PersonalizeFilterLink
    operator_extra_links = (PersonalizeFilterLink(),)
    template_fields: Sequence[str] = aws_template_fields(
        "name", "dataset_group_arn", "filter_expression", "tags", "create_kwargs"
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"tags": "json", "create_kwargs": "json"}

    def __init__(
        self,
        *,
        name: str,
        dataset_group_arn: str,
        filter_expression: str,
        tags: list[dict[str, str]] | None = None,
        waiter_delay: int = 30,
        waiter_max_attempts: int = 120,
        **kwargs: Any,
    ) -> None:
        super().__init__(waiter_delay=waiter_delay, waiter_max_attempts=waiter_max_attempts, **kwargs)
        self.name = name
        self.dataset_group_arn = dataset_group_arn
        self.filter_expression = filter_expression
        self.tags = tags

    def build_request(self) -> dict[str, Any]:
        request = {
            "name": self.name,
            "datasetGroupArn": self.dataset_group_arn,
            "filterExpression": self.filter_expression.strip(),
            "tags": self.tags,
        }
        return request

    def create(self, request: dict[str, Any]) -> str:
        return self.hook.conn.create_filter(**request)["filterArn"]

    def find_existing(self) -> str | None:
        return self.hook.find_filter_arn(self.dataset_group_arn, self.name)


class PersonalizeCreateSolutionOperator(PersonalizeNamedResourceOperator):
    """
    Create an Amazon Personalize solution if none with this name exists in the dataset group.

    :param name: Solution name. (templated)
    :param dataset_group_arn: The dataset group. (templated)
    :param recipe_arn: The recipe, e.g. ``arn:aws:personalize:::recipe/aws-user-personalization-v2``.
        (templated)
    :param event_type: Train only on interactions of this event type. (templated)
    :param perform_auto_training: Whether Personalize trains new versions on its own schedule.
        **Default False**: this package trains on the DAG's schedule
        (:class:`PersonalizeCreateSolutionVersionOperator`); automatic training (AWS's default: a new
        version every 7 days) would train, and bill, a second time, and its versions would not be
        the ones the DAG evaluates and deploys.
    :param perform_hpo: Whether to run hyperparameter optimisation. (templated)
    :param solution_config: ``solutionConfig`` dict (hyperparameters, events config, ...). (templated)
    :param create_kwargs: Further ``CreateSolution`` parameters passed through
        (e.g. ``performIncrementalUpdate``, ``tags``). (templated)

    An existing solution must match ``recipeArn``, ``eventType``, ``performAutoTraining``,
    ``performHPO`` and every key given in ``solution_config``. Returns the solution ARN.
    Waiting parameters: see :class:`PersonalizeBaseOperator`
    (defaults: ``waiter_delay=30``, ``waiter_max_attempts=120``).
    """

    resource = facts.SOLUTION
    waiter_name = "solution_active"
    trigger_class = PersonalizeSolutionActiveTrigger
    link_class = PersonalizeSolutionLink
    operator_extra_links = (PersonalizeSolutionLink(),)
    template_fields: Sequence[str] = aws_template_fields(
        "name", "dataset_group_arn", "recipe_arn", "event_type", "solution_config", "create_kwargs"
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "solution_config": "json",
        "create_kwargs": "json",
    }

    def __init__(
        self,
        *,
        name: str,
        dataset_group_arn: str,
        recipe_arn: str | None = None,
        event_type: str | None = None,
        perform_auto_training: bool = False,
        perform_hpo: bool | None = None,
        solution_config: dict[str, Any] | None = None,
        waiter_delay: int = 30,
        waiter_max_attempts: int = 120,
        **kwargs: Any,
    ) -> None:
        super().__init__(waiter_delay=waiter_delay, waiter_max_attempts=waiter_max_attempts, **kwargs)
        self.name = name
        self.dataset_group_arn = dataset_group_arn
        self.recipe_arn = recipe_arn
        self.event_type = event_type
        self.perform_auto_training = perform_auto_training
        self.perform_hpo = perform_hpo
        self.solution_config = solution_config

    def build_request(self) -> dict[str, Any]:
        request: dict[str, Any] = {
            "name": self.name,
            "datasetGroupArn": self.dataset_group_arn,
            "recipeArn": self.recipe_arn,
            "eventType": self.event_type,
            "performAutoTraining": self.perform_auto_training,
            "performHPO": self.perform_hpo,
            "solutionConfig": self.solution_config,
        }
        return request

    def create(self, request: dict[str, Any]) -> str:
        return self.hook.conn.create_solution(**request)["solutionArn"]

    def find_existing(self) -> str | None:
        return self.hook.find_solution_arn(self.dataset_group_arn, self.name)


class PersonalizeCreateOrUpdateCampaignOperator(PersonalizeNamedResourceOperator):
    """
    Deploy a solution version to a campaign: create the campaign, or update it if it differs.

    If no campaign with this name exists it is created. If it exists with a different
    ``solutionVersionArn``, ``minProvisionedTPS`` or ``campaignConfig`` key, ``UpdateCampaign`` is called
    (after waiting for an update in flight) and the operator waits for the update. A rerun after the
    update was issued finds the update in ``latestCampaignUpdate`` and does not issue it again.

    :param name: Campaign name. (templated)
    :param solution_version_arn: The solution version to deploy. (templated)
    :param min_provisioned_tps: Minimum provisioned transactions per second (billed). (templated)
    :param campaign_config: ``campaignConfig`` dict. (templated)
    :param tags: Tags applied on creation. (templated)

    Returns the campaign ARN. Waiting parameters: see :class:`PersonalizeBaseOperator`
    (defaults: ``waiter_delay=60``, ``waiter_max_attempts=180``).
    """

    resource = facts.CAMPAIGN
    waiter_name = "campaign_active"
    trigger_class = PersonalizeCampaignActiveTrigger
    link_class = PersonalizeCampaignLink
    operator_extra_links = (PersonalizeCampaignLink(),)
    template_fields: Sequence[str] = aws_template_fields(
        "name", "solution_version_arn", "min_provisioned_tps", "campaign_config", "tags", "create_kwargs"
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "campaign_config": "json",
        "tags": "json",
        "create_kwargs": "json",
    }

    def __init__(
        self,
        *,
        name: str,
        solution_version_arn: str,
        min_provisioned_tps: int | None = None,
        campaign_config: dict[str, Any] | None = None,
        tags: list[dict[str, str]] | None = None,
        waiter_delay: int = 60,
        waiter_max_attempts: int = 180,
        **kwargs: Any,
    ) -> None:
        super().__init__(waiter_delay=waiter_delay, waiter_max_attempts=waiter_max_attempts, **kwargs)
        self.name = name
        self.solution_version_arn = solution_version_arn
        self.min_provisioned_tps = min_provisioned_tps
        self.campaign_config = campaign_config
        self.tags = tags

    def build_request(self) -> dict[str, Any]:
        request = {
            "name": self.name,
            "solutionVersionArn": self.solution_version_arn,
            "minProvisionedTPS": _as_int(self.min_provisioned_tps),
            "campaignConfig": self.campaign_config,
            "tags": self.tags,
        }
        return request

    def create(self, request: dict[str, Any]) -> str:
        return self.hook.conn.create_campaign(**request)["campaignArn"]

    def find_existing(self) -> str | None:
        return self.hook.find_campaign_arn(self.name)

    def reuse(self, context: Context, arn: str, request: dict[str, Any]) -> Any:
        status, _reason, campaign = self.hook.get_status(self.resource.kind, arn)
        self.persist_link(context, arn)
        latest = campaign.get("latestCampaignUpdate") or {}
        # The deployed-or-deploying definition: the latest update unless it failed.
        target = latest if latest and latest.get("status") not in self.resource.failure_states else campaign
        wanted = {key: value for key, value in request.items() if key not in ("name", "tags")}
        difference = None
        for field, value in wanted.items():
            difference = first_difference(value, target.get(field, _MISSING), field)
            if difference is not None:
                break
        if difference is None:
            if campaign.get("status") in self.resource.failure_states:
                self.raise_failed(arn, campaign.get("status"), campaign.get("failureReason"))
            active = self.resource.success_states
            if status in active or (campaign.get("status") in active and target is campaign):
                self.log.info("Amazon Personalize campaign %s is up to date", arn)
                return self.result(context, arn)
            self.log.info("Amazon Personalize campaign %s is deploying the requested definition", arn)
            self.wait_or_defer(arn)
            return self.result(context, arn)
        field, requested, actual = difference
        self.log.info("Updating campaign %s: %s %r -> %r", arn, field, actual, requested)
        if status in self.resource.intermediate_states:
            self.log.info("Campaign %s is %s; waiting before the update", arn, status)
            self.wait_until_active(arn)
        elif campaign.get("status") in self.resource.failure_states:
            self.raise_failed(arn, campaign.get("status"), campaign.get("failureReason"))
        self.hook.conn.update_campaign(campaignArn=arn, **wanted)
        self.wait_or_defer(arn)
        return self.result(context, arn)


# ====================================================================== jobs


class PersonalizeJobOperator(PersonalizeBaseOperator):
    """
    Prepare → one ``create_*`` call → wait, with a deterministic job name (base class).

    :param job_name: The job name. (templated) ``None`` (default) derives it from the run:
        :func:`personalize_logic.naming.job_name` of ``job_name_prefix``, dag_id, run_id, task_id and
        map index: at most 63 characters, readable prefix + stable hash. The same run and task always
        get the same name, which is what makes a retry find its job.
    :param job_name_prefix: Readable prefix of the derived name. (templated)
    :param if_job_exists: What to do when a job with this name already exists under the same parent:
        ``"reuse"`` (default) waits on it if it is pending or running, returns it if ACTIVE, and
        raises with its ``failureReason`` if it failed (a retry must not silently start, and pay for,
        the same failing job again); ``"fail"`` raises in every case.
    :param tags: ``[{"tagKey": ..., "tagValue": ...}]`` applied on creation. (templated)

    Waiting and AWS parameters: see :class:`PersonalizeBaseOperator`.
    """

    template_fields_renderers: ClassVar[dict[str, str]] = {"tags": "json", "create_kwargs": "json"}
    default_job_name_prefix: ClassVar[str] = "job"

    def __init__(
        self,
        *,
        job_name: str | None = None,
        job_name_prefix: str | None = None,
        if_job_exists: IfJobExists = "reuse",
        tags: list[dict[str, str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.job_name_prefix = job_name_prefix
        self.if_job_exists = if_job_exists
        self.tags = tags

    def resolve_job_name(self, context: Context) -> str:
        """The explicit ``job_name``, or the deterministic name of this (run, task, map index)."""
        from personalize_logic.naming import job_name as build_job_name
        from personalize_logic.naming import validate_job_name

        if self.job_name:
            return validate_job_name(self.job_name)
        ti = context["ti"]
        return build_job_name(
            prefix=self.job_name_prefix or self.default_job_name_prefix,
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            map_index=getattr(ti, "map_index", -1),
        )

    def parent_arn(self) -> str:
        """The ARN the job is listed under (dataset, solution or solution version)."""
        raise NotImplementedError

    def build_request(self, name: str) -> dict[str, Any]:
        raise NotImplementedError

    def execute(self, context: Context) -> Any:
        if self.if_job_exists not in IF_JOB_EXISTS_CHOICES:
            raise ValueError(
                f"if_job_exists must be one of {IF_JOB_EXISTS_CHOICES}, got {self.if_job_exists!r}"
            )
        name = self.resolve_job_name(context)
        parent = self.parent_arn()
        request = self.with_create_kwargs(self.build_request(name))
        arn = self.hook.find_job_arn(self.resource.kind, name, parent)
        if arn is None:
            self.log.info("Creating Amazon Personalize %s %r", self.label, name)
            try:
                arn = self.create(request)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                    raise
                # Listed too early (eventual consistency) or created concurrently: find it again.
                arn = self.hook.find_job_arn(self.resource.kind, name, parent)
                if arn is None:
                    raise
                return self.reuse_job(context, name, arn, request)
            self.log.info("Created Amazon Personalize %s %s", self.label, arn)
            self.persist_link(context, arn)
            self.wait_or_defer(arn)
            return self.result(context, arn)
        return self.reuse_job(context, name, arn, request)

    #: Request fields an existing job of this (run, task) must match to be reused.
    reuse_compared_fields: ClassVar[tuple[str, ...]] = ()

    def reuse_job(self, context: Context, name: str, arn: str, request: dict[str, Any]) -> Any:
        """
        A job with this name exists: apply ``if_job_exists``.

        It is reused only if it was asked for the same thing. The name is fixed for a (run, task,
        map index), so a rerun whose inputs changed (a cleared upstream task wrote a new snapshot,
        the solution version changed) would otherwise silently reuse the old job and its old data.
        """
        if self.if_job_exists == "fail":
            raise AirflowFailException(
                f"Amazon Personalize {self.label} {name!r} already exists ({arn}) and if_job_exists='fail'."
            )
        status, reason, existing = self.hook.get_status(self.resource.kind, arn)
        for field in self.reuse_compared_fields:
            difference = first_difference(request.get(field), existing.get(field, _MISSING), field)
            if difference is not None:
                where, wanted, actual = difference
                raise PersonalizeDefinitionMismatchError(
                    f"Amazon Personalize {self.label} {name!r} ({arn}) was created by an earlier attempt of "
                    f"this run with a different {where}: requested {_short(wanted)}, existing "
                    f"{_short(actual)}. A job name is fixed for a (run, task); to run it with the new "
                    "input, start a new DAG run or pass another job_name."
                )
        if status in self.resource.failure_states:
            self.raise_failed(
                arn,
                status,
                reason,
                detail=f"The job {name!r} was created by an earlier attempt of this run; it is not started "
                "again. Start a new DAG run, or pass another job_name, to run it again.",
            )
        self.log.info("Reusing Amazon Personalize %s %s (%s), status %s", self.label, name, arn, status)
        self.persist_link(context, arn)
        if status not in self.resource.success_states:
            self.wait_or_defer(arn)
        return self.result(context, arn)


class PersonalizeCreateDatasetImportJobOperator(PersonalizeJobOperator):
    """
    Import bulk data from S3 into an Amazon Personalize dataset.

    :param dataset_arn: The dataset to import into. (templated)
    :param data_location: ``s3://bucket/prefix/`` (end a folder with ``/``) or a CSV object. (templated)
    :param role_arn: Role Personalize assumes to read the bucket. (templated)
    :param import_mode: ``FULL`` (replace all bulk data; the only choice for a first import) or
        ``INCREMENTAL`` (append; records with the same id are replaced). (templated)
    :param publish_attribution_metrics_to_s3: Publish metric-attribution metrics. (templated)

    Job name, ``if_job_exists``, tags: see :class:`PersonalizeJobOperator`; waiting: see
    :class:`PersonalizeBaseOperator` (defaults: ``waiter_delay=60``, ``waiter_max_attempts=720``).
    Returns the dataset import job ARN.
    """

    resource = facts.DATASET_IMPORT_JOB
    waiter_name = "dataset_import_job_active"
    trigger_class = PersonalizeDatasetImportJobCompleteTrigger
    reuse_compared_fields = ("dataSource", "importMode")
    link_class = PersonalizeDatasetImportJobLink
    operator_extra_links = (PersonalizeDatasetImportJobLink(),)
    default_job_name_prefix = "import"
    template_fields: Sequence[str] = aws_template_fields(
        "dataset_arn",
        "data_location",
        "role_arn",
        "import_mode",
        "publish_attribution_metrics_to_s3",
        "job_name",
        "job_name_prefix",
        "tags",
        "create_kwargs",
    )

    def __init__(
        self,
        *,
        dataset_arn: str,
        data_location: str,
        role_arn: str | None = None,
        import_mode: str = "FULL",
        publish_attribution_metrics_to_s3: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset_arn = dataset_arn
        self.data_location = data_location
        self.role_arn = role_arn
        self.import_mode = import_mode
        self.publish_attribution_metrics_to_s3 = publish_attribution_metrics_to_s3

    def parent_arn(self) -> str:
        return self.dataset_arn

    def build_request(self, name: str) -> dict[str, Any]:
        request: dict[str, Any] = {
            "jobName": name,
            "datasetArn": self.dataset_arn,
            "dataSource": {"dataLocation": self.data_location},
            "roleArn": self.role_arn,
            "importMode": self.import_mode,
            "publishAttributionMetricsToS3": self.publish_attribution_metrics_to_s3,
            "tags": self.tags,
        }
        return request

    def create(self, request: dict[str, Any]) -> str:
        return self.hook.conn.create_dataset_import_job(**request)["datasetImportJobArn"]


class PersonalizeCreateSolutionVersionOperator(PersonalizeJobOperator):
    """
    Train a new version of an Amazon Personalize solution and read its offline metrics.

    After the version is ACTIVE the operator calls ``GetSolutionMetrics`` and returns
    ``{"solution_version_arn": arn, "metrics": {name: value}}``; ``metrics`` is ``None`` when the operator
    does not wait (``wait_for_completion=False`` and not deferrable). The metric names depend on the
    recipe; do not assume a fixed key set.

    :param solution_arn: The solution to train. (templated)
    :param training_mode: ``FULL`` or ``UPDATE`` (User-Personalization only, after a FULL version).
        (templated)
    :param recipe_arn: The solution's recipe. When given, a ``training_mode`` the recipe does not take
        (:mod:`personalize_logic.facts.recipes`) fails the task before any AWS call, naming the recipe;
        the generated DAGs always give it, because ``training_mode`` is rendered from the run's Param.
        (templated)

    The version's ``name`` is the job name (see :class:`PersonalizeJobOperator`). Finding it on a
    retry describes the newest versions of the solution (list summaries carry no name).
    Waiting: see :class:`PersonalizeBaseOperator` (defaults: ``waiter_delay=60``,
    ``waiter_max_attempts=1440``, i.e. 24 hours).
    """

    resource = facts.SOLUTION_VERSION
    waiter_name = "solution_version_active"
    trigger_class = PersonalizeSolutionVersionCompleteTrigger
    reuse_compared_fields = ("trainingMode",)
    link_class = PersonalizeSolutionVersionLink
    operator_extra_links = (PersonalizeSolutionVersionLink(),)
    default_job_name_prefix = "train"
    template_fields: Sequence[str] = aws_template_fields(
        "solution_arn", "training_mode", "recipe_arn", "job_name", "job_name_prefix", "tags", "create_kwargs"
    )

    def __init__(
        self,
        *,
        solution_arn: str,
        training_mode: str = "FULL",
        recipe_arn: str | None = None,
        waiter_max_attempts: int = 1440,
        **kwargs: Any,
    ) -> None:
        super().__init__(waiter_max_attempts=waiter_max_attempts, **kwargs)
        self.solution_arn = solution_arn
        self.training_mode = training_mode
        self.recipe_arn = recipe_arn

    def parent_arn(self) -> str:
        return self.solution_arn

    def build_request(self, name: str) -> dict[str, Any]:
        if self.recipe_arn:
            from personalize_logic.facts.recipes import UnknownRecipeError, training_mode_error

            try:
                problem = training_mode_error(self.recipe_arn, self.training_mode)
            except UnknownRecipeError as exc:
                raise AirflowFailException(str(exc)) from None
            if problem:
                raise AirflowFailException(f"{self.solution_arn}: {problem}")
        request: dict[str, Any] = {
            "name": name,
            "solutionArn": self.solution_arn,
            "trainingMode": self.training_mode,
            "tags": self.tags,
        }
        return request

    def create(self, request: dict[str, Any]) -> str:
        return self.hook.conn.create_solution_version(**request)["solutionVersionArn"]

    def result(self, context: Context, arn: str) -> dict[str, Any]:
        if not (self.deferrable or self.wait_for_completion):
            return {"solution_version_arn": arn, "metrics": None}
        metrics = self.hook.conn.get_solution_metrics(solutionVersionArn=arn).get("metrics", {})
        self.log.info("Metrics of solution version %s: %s", arn, metrics)
        return {"solution_version_arn": arn, "metrics": dict(metrics)}


class PersonalizeBatchJobOperator(PersonalizeJobOperator):
    """
    Shared parts of batch inference and batch segment jobs (base class, not used directly).

    :param solution_version_arn: The trained solution version. (templated)
    :param job_input: Input S3 path (``s3://bucket/input/`` or an object), or a full ``jobInput`` dict
        (``{"s3DataSource": {"path": ..., "kmsKeyArn": ...}}``). (templated)
    :param job_output: Output S3 prefix, or a full ``jobOutput`` dict
        (``{"s3DataDestination": {"path": ..., "kmsKeyArn": ...}}``). (templated)
    :param role_arn: Role Personalize assumes to read the input and write the output. (templated)
    :param num_results: Number of recommendations (users, for segments) per input line. (templated)
    :param filter_arn: Filter applied to the results. (templated)
    :param append_job_name_to_output: Write to ``<job_output>/<job name>/`` (default True), so a run
        never overwrites another run's output.
    :param create_kwargs: Further request parameters passed through unchanged (e.g.
        ``batchInferenceJobMode``, ``themeGenerationConfig``); they must not repeat parameters the
        operator sets. (templated)

    Returns the job ARN and pushes the XCom keys ``job_name`` and ``output_path`` (the S3 prefix
    where Personalize writes ``<input file>.out``; read it with ``XComArg(task, key="output_path")``). Job name, ``if_job_exists``: see
    :class:`PersonalizeJobOperator`; waiting: see :class:`PersonalizeBaseOperator`.
    """

    reuse_compared_fields = ("solutionVersionArn", "jobInput", "numResults", "filterArn")

    def __init__(
        self,
        *,
        solution_version_arn: str,
        job_input: str | dict[str, Any],
        job_output: str | dict[str, Any],
        role_arn: str,
        num_results: int | None = None,
        filter_arn: str | None = None,
        append_job_name_to_output: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.solution_version_arn = solution_version_arn
        self.job_input = job_input
        self.job_output = job_output
        self.role_arn = role_arn
        self.num_results = num_results
        self.filter_arn = filter_arn
        self.append_job_name_to_output = append_job_name_to_output

    def parent_arn(self) -> str:
        return self.solution_version_arn

    @staticmethod
    def s3_config(value: str | dict[str, Any], key: str) -> dict[str, Any]:
        """``"s3://..."`` → ``{key: {"path": "s3://..."}}``; a dict is copied as given."""
        if isinstance(value, str):
            return {key: {"path": value}}
        return json.loads(json.dumps(value))

    def build_request(self, name: str) -> dict[str, Any]:
        job_output = self.s3_config(self.job_output, "s3DataDestination")
        if self.append_job_name_to_output:
            from personalize_logic.layout import batch_job_output_uri

            destination = job_output["s3DataDestination"]
            destination["path"] = batch_job_output_uri(destination["path"], name)
        request: dict[str, Any] = {
            "jobName": name,
            "solutionVersionArn": self.solution_version_arn,
            "jobInput": self.s3_config(self.job_input, "s3DataSource"),
            "jobOutput": job_output,
            "roleArn": self.role_arn,
            "numResults": _as_int(self.num_results),
            "filterArn": self.filter_arn or None,
            "tags": self.tags,
            **self.extra_request(),
        }
        return request

    def extra_request(self) -> dict[str, Any]:
        return {}

    def result(self, context: Context, arn: str) -> str:
        """Return the job ARN; push ``job_name`` and ``output_path`` as extra XCom keys."""
        job = self.hook.describe(self.resource.kind, arn)
        output_path = job.get("jobOutput", {}).get("s3DataDestination", {}).get("path")
        self.log.info("Amazon Personalize %s %s writes to %s", self.label, arn, output_path)
        if self.do_xcom_push:
            context["ti"].xcom_push(key="job_name", value=job.get("jobName"))
            context["ti"].xcom_push(key="output_path", value=output_path)
        return arn


class PersonalizeCreateBatchInferenceJobOperator(PersonalizeBatchJobOperator):
    """
    Get batch recommendations from an Amazon Personalize solution version.

    :param batch_inference_job_config: ``batchInferenceJobConfig`` dict
        (``itemExplorationConfig``, ``rankingInfluence``). (templated)

    Other parameters: see :class:`PersonalizeBatchJobOperator` (``create_kwargs`` takes e.g.
    ``batchInferenceJobMode`` and ``themeGenerationConfig``). Returns the job ARN; XCom keys
    ``job_name`` and ``output_path`` hold its name and output prefix.
    """

    resource = facts.BATCH_INFERENCE_JOB
    waiter_name = "batch_inference_job_active"
    trigger_class = PersonalizeBatchInferenceJobCompleteTrigger
    link_class = PersonalizeBatchInferenceJobLink
    operator_extra_links = (PersonalizeBatchInferenceJobLink(),)
    default_job_name_prefix = "batch-inference"
    template_fields: Sequence[str] = aws_template_fields(
        "solution_version_arn",
        "job_input",
        "job_output",
        "role_arn",
        "num_results",
        "filter_arn",
        "batch_inference_job_config",
        "create_kwargs",
        "job_name",
        "job_name_prefix",
        "tags",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "job_input": "json",
        "job_output": "json",
        "batch_inference_job_config": "json",
        "create_kwargs": "json",
        "tags": "json",
    }

    def __init__(self, *, batch_inference_job_config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch_inference_job_config = batch_inference_job_config

    def extra_request(self) -> dict[str, Any]:
        return {"batchInferenceJobConfig": self.batch_inference_job_config or None}

    def create(self, request: dict[str, Any]) -> str:
        return self.hook.conn.create_batch_inference_job(**request)["batchInferenceJobArn"]


class PersonalizeCreateBatchSegmentJobOperator(PersonalizeBatchJobOperator):
    """
    Get user segments from an Amazon Personalize solution version (USER_SEGMENTATION recipes).

    Parameters: see :class:`PersonalizeBatchJobOperator`. Returns the job ARN; XCom keys
    ``job_name`` and ``output_path`` hold its name and output prefix.
    """

    resource = facts.BATCH_SEGMENT_JOB
    waiter_name = "batch_segment_job_active"
    trigger_class = PersonalizeBatchSegmentJobCompleteTrigger
    link_class = PersonalizeBatchSegmentJobLink
    operator_extra_links = (PersonalizeBatchSegmentJobLink(),)
    default_job_name_prefix = "batch-segment"
    template_fields: Sequence[str] = aws_template_fields(
        "solution_version_arn",
        "job_input",
        "job_output",
        "role_arn",
        "num_results",
        "filter_arn",
        "create_kwargs",
        "job_name",
        "job_name_prefix",
        "tags",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "job_input": "json",
        "job_output": "json",
        "create_kwargs": "json",
        "tags": "json",
    }

    def create(self, request: dict[str, Any]) -> str:
        return self.hook.conn.create_batch_segment_job(**request)["batchSegmentJobArn"]
