"""
Amazon Personalize facts: the status sets and the API names of each kind of resource.

Everything here is decided by AWS; the hook, the waiters (``plugins/waiters/personalize.json``),
sensors, triggers and operators take it from this module. Pure: no Airflow import.

**Source**: the botocore service model of Personalize, ``botocore/data/personalize/2018-05-22/
service-2.json`` (in the virtualenv as ``service-2.json.gz``). A fact cites the model as
``<Shape>.<member>``: e.g. ``BatchSegmentJob.status`` is the documentation of the ``status`` member
of the ``BatchSegmentJob`` shape. ``tests/unit/personalize/test_facts.py`` checks every API name
below against that model, and the waiter tests check every acceptor of the waiter JSON against the
status sets.

Status sets (the model's status documentation; decisions marked as such):

* Dataset group (``DatasetGroup.status``): ``CREATE PENDING > CREATE IN_PROGRESS > ACTIVE -or-
  CREATE FAILED``, ``DELETE PENDING``.
* Dataset, solution, campaign and campaign update (``Dataset.status``, ``Solution.status``,
  ``Campaign.status``, ``CampaignUpdateSummary.status``): the same, and ``DELETE PENDING >
  DELETE IN_PROGRESS``.
* Filter (``Filter.status``): the model only says "The status of the filter". **Assumption**: the
  same machine as the other named resources.
* Decision: ``DELETE PENDING`` / ``DELETE IN_PROGRESS`` are *failures* for every named resource (a
  resource being deleted never becomes ACTIVE). ``DELETE IN_PROGRESS`` is listed for dataset groups
  too although the model names only ``DELETE PENDING`` for them.
* Dataset import job (``DatasetImportJob.status``): ``CREATE PENDING > CREATE IN_PROGRESS > ACTIVE
  -or- CREATE FAILED``.
* Solution version (``SolutionVersion.status``): ``CREATE PENDING``, ``CREATE IN_PROGRESS``,
  ``ACTIVE``, ``CREATE FAILED``, ``CREATE STOPPING``, ``CREATE STOPPED``. Decision: both stop states
  are failures (``StopSolutionVersionCreation``; a stopped version never becomes ACTIVE, so waiting
  on would only burn the timeout).
* Batch inference and batch segment jobs (``BatchInferenceJob.status``, ``BatchSegmentJob.status``):
  ``PENDING``, ``IN PROGRESS`` (with a space), ``ACTIVE``, ``CREATE FAILED``. Other AWS sources spell
  the pending states ``CREATE PENDING`` / ``CREATE IN_PROGRESS``; both spellings are intermediate.
* A status outside all three sets is not a fact: the waiters retry on it (no acceptor matches) and
  the sensors log it and wait on, so a status AWS adds later does not break a pipeline.

``failureReason``: ``DatasetGroup``, ``Filter``, ``Campaign``, ``CampaignUpdateSummary``,
``DatasetImportJob``, ``SolutionVersion``, ``BatchInferenceJob`` and ``BatchSegmentJob`` have the
member; ``Dataset`` and ``Solution`` do not (their failure reason query finds nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

ACTIVE = "ACTIVE"
SUCCESS_STATES: tuple[str, ...] = (ACTIVE,)
CREATE_INTERMEDIATE_STATES: tuple[str, ...] = ("CREATE PENDING", "CREATE IN_PROGRESS")
NAMED_RESOURCE_FAILURE_STATES: tuple[str, ...] = ("CREATE FAILED", "DELETE PENDING", "DELETE IN_PROGRESS")
JOB_FAILURE_STATES: tuple[str, ...] = ("CREATE FAILED",)
SOLUTION_VERSION_STOPPING = "CREATE STOPPING"  # StopSolutionVersionCreation's transitional status
SOLUTION_VERSION_STOPPED = "CREATE STOPPED"
SOLUTION_VERSION_FAILURE_STATES: tuple[str, ...] = (
    "CREATE FAILED",
    SOLUTION_VERSION_STOPPING,
    SOLUTION_VERSION_STOPPED,
)
BATCH_JOB_INTERMEDIATE_STATES: tuple[str, ...] = ("PENDING", "IN PROGRESS", *CREATE_INTERMEDIATE_STATES)


@dataclass(frozen=True)
class PersonalizeResourceKind:
    """
    API facts about one kind of Personalize resource (the names are the real boto3 names).

    :param kind: Short key used across this package, e.g. ``"batch_inference_job"``.
    :param label: Human-readable name used in log and error messages.
    :param describe_method: boto3 method describing one resource.
    :param arn_param: Request / response key of the resource's ARN, e.g. ``"batchInferenceJobArn"``.
    :param describe_key: Key of the resource object in the describe response.
    :param list_method: boto3 method listing resources of this kind.
    :param list_key: Key of the summaries in the list response.
    :param list_parent_param: Request parameter of the list call that filters by parent ARN.
    :param name_key: Key holding the name in a list summary (``None``: not in the summary, describe).
    :param waiter_name: The waiter in ``plugins/waiters/personalize.json`` waiting for ``ACTIVE``.
    :param status_query: JMESPath to the status in the describe response (the waiter's argument).
    :param failure_reason_query: JMESPath to AWS's ``failureReason`` in the describe response.
    :param intermediate_states: Statuses on the way to ACTIVE (wait on).
    :param failure_states: Statuses that never become ACTIVE (fail).
    :param success_states: Statuses that are done (``ACTIVE``).
    """

    kind: str
    label: str
    describe_method: str
    arn_param: str
    describe_key: str
    list_method: str
    list_key: str
    list_parent_param: str | None
    name_key: str | None
    waiter_name: str
    status_query: str
    failure_reason_query: str
    intermediate_states: tuple[str, ...]
    failure_states: tuple[str, ...]
    success_states: tuple[str, ...] = SUCCESS_STATES


# ---------------------------------------------------------------------- named resources

DATASET_GROUP = PersonalizeResourceKind(
    kind="dataset_group",
    label="dataset group",
    describe_method="describe_dataset_group",
    arn_param="datasetGroupArn",
    describe_key="datasetGroup",
    list_method="list_dataset_groups",
    list_key="datasetGroups",
    list_parent_param=None,
    name_key="name",
    waiter_name="dataset_group_active",
    status_query="datasetGroup.status",
    failure_reason_query="datasetGroup.failureReason",
    intermediate_states=CREATE_INTERMEDIATE_STATES,
    failure_states=NAMED_RESOURCE_FAILURE_STATES,
)

DATASET = PersonalizeResourceKind(
    kind="dataset",
    label="dataset",
    describe_method="describe_dataset",
    arn_param="datasetArn",
    describe_key="dataset",
    list_method="list_datasets",
    list_key="datasets",
    list_parent_param="datasetGroupArn",
    name_key="name",
    waiter_name="dataset_active",
    status_query="dataset.status",
    failure_reason_query="dataset.failureReason",
    intermediate_states=CREATE_INTERMEDIATE_STATES,
    failure_states=NAMED_RESOURCE_FAILURE_STATES,
)

FILTER = PersonalizeResourceKind(
    kind="filter",
    label="filter",
    describe_method="describe_filter",
    arn_param="filterArn",
    describe_key="filter",
    list_method="list_filters",
    list_key="Filters",  # sic: ListFiltersResponse.Filters is capitalised
    list_parent_param="datasetGroupArn",
    name_key="name",
    waiter_name="filter_active",
    status_query="filter.status",
    failure_reason_query="filter.failureReason",
    intermediate_states=CREATE_INTERMEDIATE_STATES,
    failure_states=NAMED_RESOURCE_FAILURE_STATES,
)

SOLUTION = PersonalizeResourceKind(
    kind="solution",
    label="solution",
    describe_method="describe_solution",
    arn_param="solutionArn",
    describe_key="solution",
    list_method="list_solutions",
    list_key="solutions",
    list_parent_param="datasetGroupArn",
    name_key="name",
    waiter_name="solution_active",
    status_query="solution.status",
    failure_reason_query="solution.failureReason",
    intermediate_states=CREATE_INTERMEDIATE_STATES,
    failure_states=NAMED_RESOURCE_FAILURE_STATES,
)

CAMPAIGN = PersonalizeResourceKind(
    kind="campaign",
    label="campaign",
    describe_method="describe_campaign",
    arn_param="campaignArn",
    describe_key="campaign",
    list_method="list_campaigns",
    list_key="campaigns",
    list_parent_param="solutionArn",
    name_key="name",
    waiter_name="campaign_active",
    # A campaign being updated (UpdateCampaign) stays ACTIVE itself; the update carries the status
    # that matters (Campaign.latestCampaignUpdate, a CampaignUpdateSummary).
    status_query="campaign.latestCampaignUpdate.status || campaign.status",
    failure_reason_query="campaign.latestCampaignUpdate.failureReason || campaign.failureReason",
    intermediate_states=CREATE_INTERMEDIATE_STATES,
    failure_states=NAMED_RESOURCE_FAILURE_STATES,
)

# ---------------------------------------------------------------------- jobs

DATASET_IMPORT_JOB = PersonalizeResourceKind(
    kind="dataset_import_job",
    label="dataset import job",
    describe_method="describe_dataset_import_job",
    arn_param="datasetImportJobArn",
    describe_key="datasetImportJob",
    list_method="list_dataset_import_jobs",
    list_key="datasetImportJobs",
    list_parent_param="datasetArn",
    name_key="jobName",
    waiter_name="dataset_import_job_active",
    status_query="datasetImportJob.status",
    failure_reason_query="datasetImportJob.failureReason",
    intermediate_states=CREATE_INTERMEDIATE_STATES,
    failure_states=JOB_FAILURE_STATES,
)

SOLUTION_VERSION = PersonalizeResourceKind(
    kind="solution_version",
    label="solution version",
    describe_method="describe_solution_version",
    arn_param="solutionVersionArn",
    describe_key="solutionVersion",
    list_method="list_solution_versions",
    list_key="solutionVersions",
    list_parent_param="solutionArn",
    name_key=None,  # SolutionVersionSummary carries no name: find a version by describing it
    waiter_name="solution_version_active",
    status_query="solutionVersion.status",
    failure_reason_query="solutionVersion.failureReason",
    intermediate_states=CREATE_INTERMEDIATE_STATES,
    failure_states=SOLUTION_VERSION_FAILURE_STATES,
)

BATCH_INFERENCE_JOB = PersonalizeResourceKind(
    kind="batch_inference_job",
    label="batch inference job",
    describe_method="describe_batch_inference_job",
    arn_param="batchInferenceJobArn",
    describe_key="batchInferenceJob",
    list_method="list_batch_inference_jobs",
    list_key="batchInferenceJobs",
    list_parent_param="solutionVersionArn",
    name_key="jobName",
    waiter_name="batch_inference_job_active",
    status_query="batchInferenceJob.status",
    failure_reason_query="batchInferenceJob.failureReason",
    intermediate_states=BATCH_JOB_INTERMEDIATE_STATES,
    failure_states=JOB_FAILURE_STATES,
)

BATCH_SEGMENT_JOB = PersonalizeResourceKind(
    kind="batch_segment_job",
    label="batch segment job",
    describe_method="describe_batch_segment_job",
    arn_param="batchSegmentJobArn",
    describe_key="batchSegmentJob",
    list_method="list_batch_segment_jobs",
    list_key="batchSegmentJobs",
    list_parent_param="solutionVersionArn",
    name_key="jobName",
    waiter_name="batch_segment_job_active",
    status_query="batchSegmentJob.status",
    failure_reason_query="batchSegmentJob.failureReason",
    intermediate_states=BATCH_JOB_INTERMEDIATE_STATES,
    failure_states=JOB_FAILURE_STATES,
)

RESOURCE_KINDS: dict[str, PersonalizeResourceKind] = {
    resource.kind: resource
    for resource in (
        DATASET_GROUP,
        DATASET,
        FILTER,
        SOLUTION,
        CAMPAIGN,
        DATASET_IMPORT_JOB,
        SOLUTION_VERSION,
        BATCH_INFERENCE_JOB,
        BATCH_SEGMENT_JOB,
    )
}
"""Every kind with a status, by its ``kind`` key (schemas have no status and are not listed)."""

JOB_KINDS: tuple[str, ...] = (
    DATASET_IMPORT_JOB.kind,
    SOLUTION_VERSION.kind,
    BATCH_INFERENCE_JOB.kind,
    BATCH_SEGMENT_JOB.kind,
)
"""The kinds created under a deterministic job name (``jobName``; ``name`` for solution versions)."""
