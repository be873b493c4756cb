"""Amazon Personalize emulator: botocore's ``personalize`` JSON protocol over :class:`PersonalizeBackend`.

Public entry point: :func:`create_app`. Request parsing, validation and AWS-shaped errors come from
:mod:`emulators.aws_service`; each handler here only reads the request's members, calls the backend
(:mod:`emulators.personalize.models`) and shapes the answer: stored documents are projected onto the
operation's output shape (private keys dropped, epoch seconds → timestamps), and list operations
page newest first with ``maxResults`` (default 100) and an opaque ``nextToken``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

from botocore.model import Shape

from emulators.aws_service import AwsService
from emulators.errors import ServiceError
from emulators.personalize.models import PersonalizeBackend

Params = dict[str, Any]
DEFAULT_MAX_RESULTS = 100


def _view(data: Any, shape: Shape) -> Any:
    """Project a stored document onto an output shape (drop private/unknown keys, epoch → datetime)."""
    if data is None:
        return None
    if shape.type_name == "structure":
        members = shape.members
        return {k: _view(v, members[k]) for k, v in data.items() if k in members and v is not None}
    if shape.type_name == "list":
        return [_view(v, shape.member) for v in data]
    if shape.type_name == "map":
        return {k: _view(v, shape.value) for k, v in data.items()}
    if shape.type_name == "timestamp" and isinstance(data, int | float):
        return dt.datetime.fromtimestamp(data, tz=dt.UTC)
    return data


def _tags(params: Params) -> list[dict[str, str]]:
    return list(params.get("tags") or [])


class PersonalizeEmulator(AwsService):
    """The Personalize service: one thin handler per supported operation over ``self.backend``."""

    backend: PersonalizeBackend

    def __init__(self, backend: PersonalizeBackend) -> None:
        super().__init__("personalize", validation_error_code="ValidationException", backend=backend)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.backend.settle()
        return super().__call__(environ, start_response)

    # -- answer shaping ---------------------------------------------------------------------------
    def _output(self, operation: str, member: str, data: Any) -> dict[str, Any]:
        shape = self.model.operation_model(operation).output_shape
        assert shape is not None
        return {member: _view(data, shape.members[member])}

    def _describe(self, operation: str, member: str, kind: str, arn: str) -> dict[str, Any]:
        return self._output(operation, member, self.backend.describe(kind, arn))

    def _page(
        self, operation: str, member: str, rows: list[dict[str, Any]], params: Params
    ) -> dict[str, Any]:
        start = 0
        if params.get("nextToken"):
            try:
                token = json.loads(base64.b64decode(params["nextToken"]))
                start = int(token["offset"])
                if token.get("op") != operation:
                    raise ValueError("token of another operation")
            except (ValueError, KeyError, TypeError) as exc:
                raise ServiceError("InvalidNextTokenException", "The token is not valid") from exc
        size = int(params.get("maxResults") or DEFAULT_MAX_RESULTS)
        out = self._output(operation, member, rows[start : start + size])
        if start + size < len(rows):
            token_doc = {"op": operation, "offset": start + size}
            out["nextToken"] = base64.b64encode(json.dumps(token_doc).encode()).decode()
        return out

    def _list(
        self,
        operation: str,
        member: str,
        kind: str,
        params: Params,
        parent_key: str | None = None,
        parent_kind: str | None = None,
    ) -> dict[str, Any]:
        parent = params.get(parent_key) if parent_key else None
        rows = self.backend.find(kind, parent=parent, parent_kind=parent_kind)
        return self._page(operation, member, rows, params)

    # -- dataset groups ---------------------------------------------------------------------------
    def CreateDatasetGroup(self, params: Params) -> dict[str, Any]:
        arn = self.backend.create_dataset_group(
            params["name"],
            _tags(params),
            roleArn=params.get("roleArn"),
            kmsKeyArn=params.get("kmsKeyArn"),
            domain=params.get("domain"),
        )
        out = {"datasetGroupArn": arn}
        if params.get("domain"):
            out["domain"] = params["domain"]
        return out

    def DescribeDatasetGroup(self, params: Params) -> dict[str, Any]:
        return self._describe(
            "DescribeDatasetGroup", "datasetGroup", "dataset-group", params["datasetGroupArn"]
        )

    def ListDatasetGroups(self, params: Params) -> dict[str, Any]:
        return self._list("ListDatasetGroups", "datasetGroups", "dataset-group", params)

    def DeleteDatasetGroup(self, params: Params) -> dict[str, Any]:
        self.backend.delete_dataset_group(params["datasetGroupArn"])
        return {}

    # -- schemas ----------------------------------------------------------------------------------
    def CreateSchema(self, params: Params) -> dict[str, Any]:
        return {
            "schemaArn": self.backend.create_schema(params["name"], params["schema"], params.get("domain"))
        }

    def DescribeSchema(self, params: Params) -> dict[str, Any]:
        return self._describe("DescribeSchema", "schema", "schema", params["schemaArn"])

    def ListSchemas(self, params: Params) -> dict[str, Any]:
        return self._list("ListSchemas", "schemas", "schema", params)

    def DeleteSchema(self, params: Params) -> dict[str, Any]:
        self.backend.delete_schema(params["schemaArn"])
        return {}

    # -- datasets and import jobs -----------------------------------------------------------------
    def CreateDataset(self, params: Params) -> dict[str, Any]:
        arn = self.backend.create_dataset(
            params["name"],
            params["schemaArn"],
            params["datasetGroupArn"],
            params["datasetType"],
            _tags(params),
        )
        return {"datasetArn": arn}

    def DescribeDataset(self, params: Params) -> dict[str, Any]:
        return self._describe("DescribeDataset", "dataset", "dataset", params["datasetArn"])

    def ListDatasets(self, params: Params) -> dict[str, Any]:
        return self._list("ListDatasets", "datasets", "dataset", params, "datasetGroupArn", "dataset-group")

    def DeleteDataset(self, params: Params) -> dict[str, Any]:
        self.backend.delete_dataset(params["datasetArn"])
        return {}

    def CreateDatasetImportJob(self, params: Params) -> dict[str, Any]:
        arn = self.backend.create_dataset_import_job(
            params["jobName"],
            params["datasetArn"],
            (params.get("dataSource") or {}).get("dataLocation"),
            import_mode=params.get("importMode") or "FULL",
            publish_attribution_metrics_to_s3=bool(params.get("publishAttributionMetricsToS3", False)),
            role_arn=params.get("roleArn"),
            tags=_tags(params),
        )
        return {"datasetImportJobArn": arn}

    def DescribeDatasetImportJob(self, params: Params) -> dict[str, Any]:
        arn = params["datasetImportJobArn"]
        return self._describe("DescribeDatasetImportJob", "datasetImportJob", "dataset-import-job", arn)

    def ListDatasetImportJobs(self, params: Params) -> dict[str, Any]:
        return self._list(
            "ListDatasetImportJobs",
            "datasetImportJobs",
            "dataset-import-job",
            params,
            "datasetArn",
            "dataset",
        )

    # -- solutions and solution versions ----------------------------------------------------------
    def CreateSolution(self, params: Params) -> dict[str, Any]:
        arn = self.backend.create_solution(
            params["name"],
            params["datasetGroupArn"],
            params.get("recipeArn"),
            _tags(params),
            perform_hpo=bool(params.get("performHPO", False)),
            perform_auto_ml=bool(params.get("performAutoML", False)),
            perform_auto_training=bool(params.get("performAutoTraining", True)),
            performIncrementalUpdate=params.get("performIncrementalUpdate"),
            eventType=params.get("eventType") or None,
            solutionConfig=params.get("solutionConfig") or None,
        )
        return {"solutionArn": arn}

    def DescribeSolution(self, params: Params) -> dict[str, Any]:
        return self._describe("DescribeSolution", "solution", "solution", params["solutionArn"])

    def ListSolutions(self, params: Params) -> dict[str, Any]:
        return self._list(
            "ListSolutions", "solutions", "solution", params, "datasetGroupArn", "dataset-group"
        )

    def DeleteSolution(self, params: Params) -> dict[str, Any]:
        self.backend.delete_solution(params["solutionArn"])
        return {}

    def CreateSolutionVersion(self, params: Params) -> dict[str, Any]:
        arn = self.backend.create_solution_version(
            params["solutionArn"], params.get("name"), params.get("trainingMode") or "FULL", _tags(params)
        )
        return {"solutionVersionArn": arn}

    def DescribeSolutionVersion(self, params: Params) -> dict[str, Any]:
        arn = params["solutionVersionArn"]
        return self._describe("DescribeSolutionVersion", "solutionVersion", "solution-version", arn)

    def ListSolutionVersions(self, params: Params) -> dict[str, Any]:
        return self._list(
            "ListSolutionVersions", "solutionVersions", "solution-version", params, "solutionArn", "solution"
        )

    def StopSolutionVersionCreation(self, params: Params) -> dict[str, Any]:
        self.backend.stop_solution_version_creation(params["solutionVersionArn"])
        return {}

    def GetSolutionMetrics(self, params: Params) -> dict[str, Any]:
        arn = params["solutionVersionArn"]
        return {"solutionVersionArn": arn, "metrics": self.backend.solution_metrics(arn)}

    # -- filters and campaigns --------------------------------------------------------------------
    def CreateFilter(self, params: Params) -> dict[str, Any]:
        arn = self.backend.create_filter(
            params["name"], params["datasetGroupArn"], params["filterExpression"], _tags(params)
        )
        return {"filterArn": arn}

    def DescribeFilter(self, params: Params) -> dict[str, Any]:
        return self._describe("DescribeFilter", "filter", "filter", params["filterArn"])

    def ListFilters(self, params: Params) -> dict[str, Any]:
        return self._list("ListFilters", "Filters", "filter", params, "datasetGroupArn", "dataset-group")

    def DeleteFilter(self, params: Params) -> dict[str, Any]:
        self.backend.delete("filter", params["filterArn"])
        return {}

    def CreateCampaign(self, params: Params) -> dict[str, Any]:
        arn = self.backend.create_campaign(
            params["name"],
            params["solutionVersionArn"],
            int(params.get("minProvisionedTPS") or 1),
            params.get("campaignConfig") or None,
            _tags(params),
        )
        return {"campaignArn": arn}

    def DescribeCampaign(self, params: Params) -> dict[str, Any]:
        return self._describe("DescribeCampaign", "campaign", "campaign", params["campaignArn"])

    def ListCampaigns(self, params: Params) -> dict[str, Any]:
        return self._list("ListCampaigns", "campaigns", "campaign", params, "solutionArn", "solution")

    def UpdateCampaign(self, params: Params) -> dict[str, Any]:
        arn = params["campaignArn"]
        self.backend.update_campaign(
            arn,
            params.get("solutionVersionArn"),
            params.get("minProvisionedTPS"),
            params.get("campaignConfig") or None,
        )
        return {"campaignArn": arn}

    def DeleteCampaign(self, params: Params) -> dict[str, Any]:
        self.backend.delete("campaign", params["campaignArn"])
        return {}

    # -- batch jobs -------------------------------------------------------------------------------
    def _create_batch(self, params: Params, *, segment: bool) -> str:
        num_results = params.get("numResults")
        return self.backend.create_batch_job(
            segment=segment,
            job_name=params["jobName"],
            solution_version_arn=params["solutionVersionArn"],
            job_input=params["jobInput"],
            job_output=params["jobOutput"],
            role_arn=params["roleArn"],
            num_results=int(num_results) if num_results is not None else None,
            filter_arn=params.get("filterArn") or None,
            tags=_tags(params),
            mode=params.get("batchInferenceJobMode"),
            config=params.get("batchInferenceJobConfig") or None,
        )

    def CreateBatchInferenceJob(self, params: Params) -> dict[str, Any]:
        return {"batchInferenceJobArn": self._create_batch(params, segment=False)}

    def DescribeBatchInferenceJob(self, params: Params) -> dict[str, Any]:
        arn = params["batchInferenceJobArn"]
        return self._describe("DescribeBatchInferenceJob", "batchInferenceJob", "batch-inference-job", arn)

    def ListBatchInferenceJobs(self, params: Params) -> dict[str, Any]:
        return self._list(
            "ListBatchInferenceJobs",
            "batchInferenceJobs",
            "batch-inference-job",
            params,
            "solutionVersionArn",
        )

    def CreateBatchSegmentJob(self, params: Params) -> dict[str, Any]:
        return {"batchSegmentJobArn": self._create_batch(params, segment=True)}

    def DescribeBatchSegmentJob(self, params: Params) -> dict[str, Any]:
        arn = params["batchSegmentJobArn"]
        return self._describe("DescribeBatchSegmentJob", "batchSegmentJob", "batch-segment-job", arn)

    def ListBatchSegmentJobs(self, params: Params) -> dict[str, Any]:
        return self._list(
            "ListBatchSegmentJobs", "batchSegmentJobs", "batch-segment-job", params, "solutionVersionArn"
        )

    # -- recipes and tags -------------------------------------------------------------------------
    def ListRecipes(self, params: Params) -> dict[str, Any]:
        return self._page("ListRecipes", "recipes", self.backend.recipes(params.get("domain")), params)

    def DescribeRecipe(self, params: Params) -> dict[str, Any]:
        return self._output("DescribeRecipe", "recipe", self.backend.recipe(params["recipeArn"]))

    def TagResource(self, params: Params) -> dict[str, Any]:
        self.backend.tag_resource(params["resourceArn"], params["tags"])
        return {}

    def UntagResource(self, params: Params) -> dict[str, Any]:
        self.backend.untag_resource(params["resourceArn"], params["tagKeys"])
        return {}

    def ListTagsForResource(self, params: Params) -> dict[str, Any]:
        return {"tags": self.backend.tags(params["resourceArn"])}


def create_app(
    *,
    state_dir: Path,
    s3_endpoint_url: str,
    min_job_seconds: float = 2.0,
    region: str = "us-east-1",
    account_id: str = "123456789012",
) -> PersonalizeEmulator:
    """Build the Personalize emulator WSGI app (call ``.close()`` to stop its worker and database).

    :param state_dir: folder for the SQLite state, imported data (parquet) and trained models.
    :param s3_endpoint_url: the S3 endpoint holding import data and batch inputs/outputs (keys
        ``testing``/``testing``).
    :param min_job_seconds: minimum time from creation until an asynchronous resource is final.
    """
    backend = PersonalizeBackend(
        state_dir=Path(state_dir),
        s3_endpoint_url=s3_endpoint_url,
        min_job_seconds=min_job_seconds,
        region=region,
        account_id=account_id,
    )
    return PersonalizeEmulator(backend)
