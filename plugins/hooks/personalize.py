"""Amazon Personalize hook: a thin wrapper around ``boto3.client("personalize")`` plus find-by-name helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import jmespath
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from personalize_logic.facts.personalize import JOB_KINDS, RESOURCE_KINDS

WAITER_FILE = Path(__file__).resolve().parents[1] / "waiters" / "personalize.json"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class PersonalizeHook(AwsBaseHook):
    """
    Interact with Amazon Personalize.

    Provide thin wrapper around :external+boto3:py:class:`boto3.client("personalize") <Personalize.Client>`;
    operators call the client through :attr:`conn`. The extra methods exist only where one step needs
    several calls: finding a resource or a job by name (paginated ``list_*``, filtered by parent ARN).

    The hook ships its own waiters (``plugins/waiters/personalize.json``; botocore has none for
    Personalize): ``hook.get_waiter("batch_inference_job_active")`` etc. The generic helpers take a
    ``kind`` (a key of :data:`personalize_logic.facts.personalize.RESOURCE_KINDS`), whose record names
    the describe / list calls, keys and status query.

    Additional arguments (such as ``aws_conn_id``) may be specified and
    are passed down to the underlying AwsBaseHook.

    .. seealso::
        - :class:`airflow.providers.amazon.aws.hooks.base_aws.AwsBaseHook`
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "personalize"
        super().__init__(*args, **kwargs)

    @cached_property
    def waiter_path(self) -> os.PathLike[str] | None:
        """The project's custom waiter model (the provider looks inside its own package)."""
        return WAITER_FILE

    # ---------------------------------------------------------------- generic helpers

    def iter_list(self, list_method: str, list_key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """
        Yield every summary of a paginated ``list_*`` call (follows ``nextToken``).

        :param list_method: boto3 method name, e.g. ``"list_datasets"``.
        :param list_key: Key of the summaries in each page, e.g. ``"datasets"``.
        :param kwargs: Request parameters (e.g. the parent ARN filter).
        """
        request = {key: value for key, value in kwargs.items() if value is not None}
        while True:
            page = getattr(self.conn, list_method)(**request)
            yield from page.get(list_key, [])
            token = page.get("nextToken")
            if not token:
                return
            request["nextToken"] = token

    def describe_response(self, kind: str, arn: str) -> dict[str, Any]:
        """Call ``describe_*`` for one resource of ``kind`` (a key of ``RESOURCE_KINDS``)."""
        spec = RESOURCE_KINDS[kind]
        return getattr(self.conn, spec.describe_method)(**{spec.arn_param: arn})

    def describe(self, kind: str, arn: str) -> dict[str, Any]:
        """Describe one resource of ``kind`` and return the resource object (e.g. ``batchInferenceJob``)."""
        return self.describe_response(kind, arn)[RESOURCE_KINDS[kind].describe_key]

    def get_status(self, kind: str, arn: str) -> tuple[str | None, str | None, dict[str, Any]]:
        """
        Return ``(status, failureReason, resource)`` of one resource.

        The status is read with the same expression as the waiter (for a campaign: the status of its
        latest update, else its own status).
        """
        spec = RESOURCE_KINDS[kind]
        response = self.describe_response(kind, arn)
        status = jmespath.search(spec.status_query, response)
        reason = jmespath.search(spec.failure_reason_query, response)
        return status, reason, response.get(spec.describe_key, {})

    def find_arn(self, kind: str, name: str, parent_arn: str | None = None) -> str | None:
        """
        Return the ARN of the resource of ``kind`` called ``name`` under ``parent_arn``, or ``None``.

        :param kind: A key of ``RESOURCE_KINDS``.
        :param name: The resource name (``jobName`` for jobs, ``name`` otherwise).
        :param parent_arn: Parent filter of the list call (dataset group, dataset, solution or
            solution version ARN); ``None`` lists everything (only meaningful for dataset groups,
            and for campaigns when the solution is unknown).
        """
        if kind == "solution_version":
            if parent_arn is None:
                raise ValueError("Finding a solution version by name needs the solution ARN.")
            return self.find_solution_version_arn(parent_arn, name)
        spec = RESOURCE_KINDS[kind]
        kwargs = {spec.list_parent_param: parent_arn} if spec.list_parent_param else {}
        for summary in self.iter_list(spec.list_method, spec.list_key, **kwargs):
            if spec.name_key and summary.get(spec.name_key) == name:
                return summary[spec.arn_param]
        return None

    # ---------------------------------------------------------------- named resources

    def find_dataset_group_arn(self, name: str) -> str | None:
        """Return the ARN of the dataset group called ``name``, or ``None``."""
        return self.find_arn("dataset_group", name)

    def find_schema_arn(self, name: str) -> str | None:
        """Return the ARN of the schema called ``name``, or ``None``."""
        for summary in self.iter_list("list_schemas", "schemas"):
            if summary.get("name") == name:
                return summary["schemaArn"]
        return None

    def find_dataset_arn(self, dataset_group_arn: str, dataset_type: str) -> str | None:
        """
        Return the ARN of the dataset of ``dataset_type`` in the dataset group, or ``None``.

        A dataset group holds at most one dataset per type, so the type (case-insensitive:
        ``Interactions`` / ``INTERACTIONS``) identifies it.
        """
        wanted = dataset_type.upper()
        for summary in self.iter_list("list_datasets", "datasets", datasetGroupArn=dataset_group_arn):
            if str(summary.get("datasetType", "")).upper() == wanted:
                return summary["datasetArn"]
        return None

    def find_filter_arn(self, dataset_group_arn: str, name: str) -> str | None:
        """Return the ARN of the filter called ``name`` in the dataset group, or ``None``."""
        return self.find_arn("filter", name, dataset_group_arn)

    def find_solution_arn(self, dataset_group_arn: str, name: str) -> str | None:
        """Return the ARN of the solution called ``name`` in the dataset group, or ``None``."""
        return self.find_arn("solution", name, dataset_group_arn)

    def find_campaign_arn(self, name: str, solution_arn: str | None = None) -> str | None:
        """
        Return the ARN of the campaign called ``name``, or ``None``.

        Campaign names are unique per account and region, so the search lists every campaign
        (``solution_arn`` only narrows it when given).
        """
        return self.find_arn("campaign", name, solution_arn)

    # ---------------------------------------------------------------- jobs

    def find_job_arn(self, kind: str, name: str, parent_arn: str) -> str | None:
        """
        Return the ARN of the job of ``kind`` called ``name`` under ``parent_arn``, or ``None``.

        :param kind: ``"dataset_import_job"`` (parent: dataset ARN), ``"solution_version"`` (parent:
            solution ARN), ``"batch_inference_job"`` or ``"batch_segment_job"`` (parent: solution
            version ARN).
        :param name: The job name (the ``name`` of a solution version).
        :param parent_arn: The parent ARN the list call filters on.
        """
        if kind not in JOB_KINDS:
            raise ValueError(f"Unknown Personalize job kind {kind!r}; expected one of {JOB_KINDS}.")
        return self.find_arn(kind, name, parent_arn)

    def find_solution_version_arn(self, solution_arn: str, name: str, max_describe: int = 100) -> str | None:
        """
        Return the ARN of the solution version called ``name`` of the solution, or ``None``.

        ``ListSolutionVersions`` summaries carry no name, so the newest versions are described one by
        one (newest first: a task retry looks for a version its previous attempt created recently).

        :param solution_arn: The solution ARN.
        :param name: The solution version name.
        :param max_describe: Describe at most this many (newest) versions.
        """
        summaries = list(
            self.iter_list("list_solution_versions", "solutionVersions", solutionArn=solution_arn)
        )
        summaries.sort(key=lambda summary: _as_datetime(summary.get("creationDateTime")), reverse=True)
        for summary in summaries[:max_describe]:
            version = self.describe("solution_version", summary["solutionVersionArn"])
            if version.get("name") == name:
                return summary["solutionVersionArn"]
        return None


def _as_datetime(value: Any) -> datetime:
    """Sort key for ``creationDateTime`` (a datetime from boto3; tolerate missing values)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    return _EPOCH
