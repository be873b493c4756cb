"""Operator extra links from Personalize tasks to the AWS console page of what they created."""

from __future__ import annotations

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink


class PersonalizeBaseLink(BaseAwsLink):
    """
    Link to a Personalize resource in the AWS console (base class, not used directly).

    The console addresses a resource by its ARN after ``#``; operators persist ``arn`` with
    :meth:`BaseAwsLink.persist` in ``execute`` (before waiting, so the link works while the job runs).
    """

    format_str = BASE_AWS_CONSOLE_LINK + "/personalize/home?region={region_name}#{arn}"


class PersonalizeDatasetGroupLink(PersonalizeBaseLink):
    """Console link to an Amazon Personalize dataset group."""

    name = "Personalize Dataset Group"
    key = "personalize_dataset_group"


class PersonalizeSchemaLink(PersonalizeBaseLink):
    """Console link to an Amazon Personalize schema."""

    name = "Personalize Schema"
    key = "personalize_schema"


class PersonalizeDatasetLink(PersonalizeBaseLink):
    """Console link to an Amazon Personalize dataset."""

    name = "Personalize Dataset"
    key = "personalize_dataset"


class PersonalizeFilterLink(PersonalizeBaseLink):
    """Console link to an Amazon Personalize filter."""

    name = "Personalize Filter"
    key = "personalize_filter"


class PersonalizeSolutionLink(PersonalizeBaseLink):
    """Console link to an Amazon Personalize solution."""

    name = "Personalize Solution"
    key = "personalize_solution"


class PersonalizeCampaignLink(PersonalizeBaseLink):
    """Console link to an Amazon Personalize campaign."""

    name = "Personalize Campaign"
    key = "personalize_campaign"


class PersonalizeDatasetImportJobLink(PersonalizeBaseLink):
    """Console link to an Amazon Personalize dataset import job."""

    name = "Personalize Dataset Import Job"
    key = "personalize_dataset_import_job"


class PersonalizeSolutionVersionLink(PersonalizeBaseLink):
    """Console link to an Amazon Personalize solution version."""

    name = "Personalize Solution Version"
    key = "personalize_solution_version"


class PersonalizeBatchInferenceJobLink(PersonalizeBaseLink):
    """Console link to an Amazon Personalize batch inference job."""

    name = "Personalize Batch Inference Job"
    key = "personalize_batch_inference_job"


class PersonalizeBatchSegmentJobLink(PersonalizeBaseLink):
    """Console link to an Amazon Personalize batch segment job."""

    name = "Personalize Batch Segment Job"
    key = "personalize_batch_segment_job"
