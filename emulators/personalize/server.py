"""Amazon Personalize emulator: botocore's ``personalize`` JSON protocol, state in SQLite, jobs on a worker.

Public entry point: :func:`create_app`. Request parsing, validation and AWS-shaped errors come from
:mod:`emulators.aws_service`; resources live in :mod:`emulators.personalize.store`; the import data
rules are in :mod:`emulators.personalize.data_rules`; batch jobs in :mod:`emulators.personalize.batch`;
training and inference in :mod:`emulators.personalize.recommender` (another module's contract).

Behaviour worth knowing (see also the module docstrings):

* status machines: ``CREATE PENDING → CREATE IN_PROGRESS → ACTIVE | CREATE FAILED`` for dataset
  groups, datasets, import jobs, solutions, solution versions, filters and campaigns; batch jobs use the
  botocore model's spelling ``PENDING → IN PROGRESS → ACTIVE | CREATE FAILED``; a solution version
  being stopped goes ``CREATE STOPPING → CREATE STOPPED``. A status only becomes final once the work is
  done AND ``min_job_seconds`` have passed since creation. Schemas have no status (as on AWS).
* list operations return newest first, ``maxResults`` default 100, opaque ``nextToken``.
* deletes are immediate (AWS passes through ``DELETE PENDING``); deleting a dataset group that still
  has datasets, solutions or filters, a schema used by a dataset, or a solution with campaigns fails
  with ``ResourceInUseException``.
* creating a child of a resource that is not ACTIVE (import into a dataset, version of a solution,
  campaign / batch job on a solution version) fails with ``ResourceInUseException``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.model import Shape

from emulators.aws_service import AwsService, ServiceError
from emulators.personalize import batch as batch_jobs
from emulators.personalize import data_rules
from emulators.personalize.jobs import JobScheduler
from emulators.personalize.store import Store
from personalize_logic.facts import personalize_data_rules as rules

log = logging.getLogger(__name__)

# recipe name → (recommender family, Personalize recipeType)
RECIPES: dict[str, tuple[str, str]] = {
    "aws-user-personalization": ("USER_PERSONALIZATION", "USER_PERSONALIZATION"),
    "aws-user-personalization-v2": ("USER_PERSONALIZATION", "USER_PERSONALIZATION"),
    "aws-popularity-count": ("POPULAR_ITEMS", "USER_PERSONALIZATION"),
    "aws-sims": ("RELATED_ITEMS", "RELATED_ITEMS"),
    "aws-similar-items": ("RELATED_ITEMS", "RELATED_ITEMS"),
    "aws-personalized-ranking": ("PERSONALIZED_RANKING", "PERSONALIZED_RANKING"),
    "aws-personalized-ranking-v2": ("PERSONALIZED_RANKING", "PERSONALIZED_RANKING"),
    "aws-item-affinity": ("ITEM_AFFINITY", "USER_SEGMENTATION"),
    "aws-item-attribute-affinity": ("ITEM_ATTRIBUTE_AFFINITY", "USER_SEGMENTATION"),
}
RECIPE_PREFIX = "arn:aws:personalize:::recipe/"
RECIPES_CREATED = 1_546_300_800.0  # 2019-01-01, a fixed creation time for the built-in recipes
UPDATE_RECIPES = ("aws-user-personalization", "aws-user-personalization-v2")
BATCH_INFERENCE_MAX_RESULTS = 500
BATCH_SEGMENT_MAX_RESULTS = 5_000_000
DEFAULT_NUM_RESULTS = 25

# kind → (status while pending, status while working)
_PENDING = {
    "dataset-group": ("CREATE PENDING", "CREATE IN_PROGRESS"),
    "dataset": ("CREATE PENDING", "CREATE IN_PROGRESS"),
    "dataset-import-job": ("CREATE PENDING", "CREATE IN_PROGRESS"),
    "solution": ("CREATE PENDING", "CREATE IN_PROGRESS"),
    "solution-version": ("CREATE PENDING", "CREATE IN_PROGRESS"),
    "filter": ("CREATE PENDING", "CREATE IN_PROGRESS"),
    "campaign": ("CREATE PENDING", "CREATE IN_PROGRESS"),
    "batch-inference-job": ("PENDING", "IN PROGRESS"),
    "batch-segment-job": ("PENDING", "IN PROGRESS"),
}
_UNFINISHED = {"CREATE PENDING", "CREATE IN_PROGRESS", "PENDING", "IN PROGRESS", "CREATE STOPPING"}


def _now() -> float:
    return time.time()


def _recipe_name(recipe_arn: str) -> str | None:
    if recipe_arn.startswith(RECIPE_PREFIX):
        name = recipe_arn[len(RECIPE_PREFIX) :]
        if name in RECIPES:
            return name
    return None


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


class PersonalizeEmulator(AwsService):
    """The Personalize service: one method per supported operation."""

    def __init__(
        self,
        *,
        state_dir: Path,
        s3_endpoint_url: str,
        min_job_seconds: float = 2.0,
        region: str = "us-east-1",
        account_id: str = "123456789012",
    ) -> None:
        super().__init__("personalize", validation_error_code="ValidationException")
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.s3_endpoint_url = s3_endpoint_url
        self.min_job_seconds = float(min_job_seconds)
        self.region = region
        self.account_id = account_id
        self.store = Store(self.state_dir / "personalize.sqlite3")
        self._s3_local = threading.local()
        self._models: OrderedDict[str, Any] = OrderedDict()
        self._models_lock = threading.Lock()
        self._data_lock = threading.Lock()
        self._closed = False
        self.jobs = JobScheduler(self._run_job, self._finish_job, name="personalize")
        self._resume()
        self.jobs.start()

    # ----------------------------------------------------------------------------------------------
    # plumbing
    # ----------------------------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.jobs.stop()
        self.store.close()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.jobs.settle()
        return super().__call__(environ, start_response)

    def _arn(self, path: str) -> str:
        return f"arn:aws:personalize:{self.region}:{self.account_id}:{path}"

    @property
    def s3(self) -> Any:
        client = getattr(self._s3_local, "client", None)
        if client is None:
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.s3_endpoint_url,
                region_name=self.region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(retries={"max_attempts": 3}),
            )
            self._s3_local.client = client
        return client

    def _get(self, arn: str, kind: str, label: str) -> dict[str, Any]:
        data = self.store.get(arn, kind)
        if data is None:
            raise ServiceError("ResourceNotFoundException", f"Could not find the {label} with ARN {arn}")
        return data

    def _output(self, operation: str, member: str, data: dict[str, Any]) -> dict[str, Any]:
        shape = self.model.operation_model(operation).output_shape
        assert shape is not None
        return {member: _view(data, shape.members[member])}

    def _ensure_unique(self, kind: str, name: str, arn: str, label: str) -> None:
        if self.store.get(arn) is not None or self.store.find(kind, name=name):
            raise ServiceError(
                "ResourceAlreadyExistsException", f"A {label} named {name} already exists ({arn})"
            )

    def _require_active(self, data: dict[str, Any], label: str, arn: str) -> None:
        if data.get("status") != "ACTIVE":
            raise ServiceError(
                "ResourceInUseException", f"The {label} {arn} is not ACTIVE (status {data.get('status')})"
            )

    def _create_async(self, kind: str, arn: str, name: str, parent: str | None, data: dict[str, Any]) -> None:
        now = _now()
        data.update({"status": _PENDING[kind][0], "creationDateTime": now, "lastUpdatedDateTime": now})
        with self.store.transaction():
            self.store.insert(kind, arn, name, parent, data)
        self.jobs.schedule_run(arn, now + self.min_job_seconds / 4)

    def _list(
        self,
        operation: str,
        member: str,
        kind: str,
        params: dict[str, Any],
        parent: str | None = None,
        rows: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        if rows is None:
            rows = self.store.find(kind, parent=parent)
        start = 0
        if params.get("nextToken"):
            try:
                token = json.loads(base64.b64decode(params["nextToken"]))
                start = int(token["offset"])
                if token.get("op") != operation:
                    raise ValueError("token of another operation")
            except (ValueError, KeyError, TypeError) as exc:
                raise ServiceError("InvalidNextTokenException", "The token is not valid") from exc
        size = int(params.get("maxResults") or 100)
        page = rows[start : start + size]
        shape = self.model.operation_model(operation).output_shape
        assert shape is not None
        out: dict[str, Any] = {member: _view(page, shape.members[member])}
        if start + size < len(rows):
            out["nextToken"] = base64.b64encode(
                json.dumps({"op": operation, "offset": start + size}).encode()
            ).decode()
        return out

    def _parent_exists(self, arn: str, kind: str, label: str) -> None:
        if self.store.get(arn, kind) is None:
            raise ServiceError("ResourceNotFoundException", f"Could not find the {label} with ARN {arn}")

    def _tags(self, params: dict[str, Any]) -> list[dict[str, str]]:
        return list(params.get("tags") or [])

    # ----------------------------------------------------------------------------------------------
    # job lifecycle
    # ----------------------------------------------------------------------------------------------
    def _resume(self) -> None:
        """Re-queue every job that was pending or in progress when the emulator stopped."""
        for kind, arn, data in self.store.all_rows():
            status = data.get("status")
            if status not in _UNFINISHED and not (kind == "campaign" and data.get("_update")):
                continue
            if "_outcome" in data or status == "CREATE STOPPING":
                self.jobs.schedule_finish(arn, data.get("_outcome", {}).get("readyAt", _now()))
            else:
                self.jobs.schedule_run(arn, _now())

    def _run_job(self, arn: str) -> float | None:
        if self._closed:
            return None
        kind = self.store.kind_of(arn)
        data = self.store.get(arn)
        if kind is None or data is None:
            return None
        if kind == "campaign" and data.get("_update"):

            def progress(doc: dict[str, Any]) -> None:
                if doc.get("_update"):
                    doc["_update"]["status"] = "CREATE IN_PROGRESS"
                    doc["_update"]["lastUpdatedDateTime"] = _now()
                    doc["latestCampaignUpdate"] = dict(doc["_update"])

            self.store.update(arn, progress)
            return max(_now(), data["_update"]["creationDateTime"] + self.min_job_seconds)
        if data.get("status") not in (_PENDING[kind][0], _PENDING[kind][1]):
            return None  # stopped, or already finished
        in_progress = _PENDING[kind][1]

        def start(doc: dict[str, Any]) -> None:
            if doc.get("status") == _PENDING[kind][0]:
                doc["status"] = in_progress
                doc["lastUpdatedDateTime"] = _now()

        data = self.store.update(arn, start) or data
        updates: dict[str, Any] = {}
        failure: str | None = None
        began = _now()
        try:
            work = getattr(self, f"_work_{kind.replace('-', '_')}", None)
            if work is not None:
                updates = work(arn, data) or {}
        except (data_rules.DataRuleError, batch_jobs.BatchJobError, _JobFailed) as exc:
            failure = str(exc)
        except Exception as exc:
            log.exception("personalize emulator: %s %s failed", kind, arn)
            failure = f"Internal error: {type(exc).__name__}: {exc}"
        if kind == "solution-version" and failure is None:
            updates["trainingHours"] = round((_now() - began) / 3600.0, 6)
        ready = max(_now(), data["creationDateTime"] + self.min_job_seconds)
        outcome = {
            "status": "CREATE FAILED" if failure else "ACTIVE",
            "failureReason": failure,
            "updates": updates,
            "readyAt": ready,
        }

        def store_outcome(doc: dict[str, Any]) -> None:
            doc["_outcome"] = outcome

        self.store.update(arn, store_outcome)
        return ready

    def _finish_job(self, arn: str) -> None:
        if self._closed:
            return
        kind = self.store.kind_of(arn)

        def apply(doc: dict[str, Any]) -> None:
            now = _now()
            if kind == "campaign" and doc.get("_update"):
                update = doc.pop("_update")
                for key in ("solutionVersionArn", "minProvisionedTPS", "campaignConfig"):
                    if update.get(key) is not None:
                        doc[key] = update[key]
                update["status"] = "ACTIVE"
                update["lastUpdatedDateTime"] = now
                doc["latestCampaignUpdate"] = update
                doc["lastUpdatedDateTime"] = now
                return
            if doc.get("status") == "CREATE STOPPING":
                doc["status"] = "CREATE STOPPED"
                doc.pop("_outcome", None)
                doc["lastUpdatedDateTime"] = now
                return
            outcome = doc.pop("_outcome", None)
            if outcome is None or doc.get("status") not in _UNFINISHED:
                return
            doc["status"] = outcome["status"]
            if outcome.get("failureReason"):
                doc["failureReason"] = outcome["failureReason"]
            doc.update(outcome.get("updates") or {})
            doc["lastUpdatedDateTime"] = now

        doc = self.store.update(arn, apply)
        if doc is not None and kind == "dataset-import-job" and doc.get("status") == "ACTIVE":
            self._publish_import(arn, doc)
        if doc is not None and kind == "solution-version":
            self._refresh_solution(doc)

    # ----------------------------------------------------------------------------------------------
    # dataset groups
    # ----------------------------------------------------------------------------------------------
    def CreateDatasetGroup(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["name"]
        arn = self._arn(f"dataset-group/{name}")
        with self.store.transaction():
            self._ensure_unique("dataset-group", name, arn, "dataset group")
            data = {"name": name, "datasetGroupArn": arn, "_tags": self._tags(params)}
            for key in ("roleArn", "kmsKeyArn", "domain"):
                if params.get(key):
                    data[key] = params[key]
            self._create_async("dataset-group", arn, name, None, data)
        out = {"datasetGroupArn": arn}
        if params.get("domain"):
            out["domain"] = params["domain"]
        return out

    def DescribeDatasetGroup(self, params: dict[str, Any]) -> dict[str, Any]:
        data = self._get(params["datasetGroupArn"], "dataset-group", "dataset group")
        return self._output("DescribeDatasetGroup", "datasetGroup", data)

    def ListDatasetGroups(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._list("ListDatasetGroups", "datasetGroups", "dataset-group", params)

    def DeleteDatasetGroup(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["datasetGroupArn"]
        with self.store.transaction():
            self._get(arn, "dataset-group", "dataset group")
            for kind in ("dataset", "solution", "filter"):
                if self.store.find(kind, parent=arn):
                    raise ServiceError(
                        "ResourceInUseException", f"Dataset group {arn} still has {kind}s; delete them first"
                    )
            self.store.delete(arn)
        return {}

    # ----------------------------------------------------------------------------------------------
    # schemas
    # ----------------------------------------------------------------------------------------------
    def CreateSchema(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["name"]
        arn = self._arn(f"schema/{name}")
        try:
            data_rules.parse_schema(params["schema"])
        except ValueError as exc:
            raise ServiceError("InvalidInputException", str(exc)) from exc
        with self.store.transaction():
            self._ensure_unique("schema", name, arn, "schema")
            now = _now()
            data = {
                "name": name,
                "schemaArn": arn,
                "schema": params["schema"],
                "creationDateTime": now,
                "lastUpdatedDateTime": now,
            }
            if params.get("domain"):
                data["domain"] = params["domain"]
            self.store.insert("schema", arn, name, None, data)
        return {"schemaArn": arn}

    def DescribeSchema(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._output("DescribeSchema", "schema", self._get(params["schemaArn"], "schema", "schema"))

    def ListSchemas(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._list("ListSchemas", "schemas", "schema", params)

    def DeleteSchema(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["schemaArn"]
        with self.store.transaction():
            self._get(arn, "schema", "schema")
            if any(d.get("schemaArn") == arn for d in self.store.find("dataset")):
                raise ServiceError("ResourceInUseException", f"Schema {arn} is used by a dataset")
            self.store.delete(arn)
        return {}

    # ----------------------------------------------------------------------------------------------
    # datasets
    # ----------------------------------------------------------------------------------------------
    def CreateDataset(self, params: dict[str, Any]) -> dict[str, Any]:
        group_arn = params["datasetGroupArn"]
        group = self._get(group_arn, "dataset-group", "dataset group")
        schema = self._get(params["schemaArn"], "schema", "schema")
        dataset_type = params["datasetType"]
        kind = rules.normalize_dataset_type(dataset_type)
        if kind not in ("INTERACTIONS", "ITEMS", "USERS", "ACTIONS", "ACTION_INTERACTIONS"):
            raise ServiceError("InvalidInputException", f"Unknown datasetType {dataset_type}")
        try:
            data_rules.check_schema_for_dataset_type(data_rules.parse_schema(schema["schema"]), dataset_type)
        except ValueError as exc:
            raise ServiceError("InvalidInputException", str(exc)) from exc
        if group.get("domain") and schema.get("domain") and group["domain"] != schema["domain"]:
            raise ServiceError(
                "InvalidInputException",
                f"The schema's domain {schema['domain']} differs from the dataset group's",
            )
        arn = self._arn(f"dataset/{group['name']}/{kind}")
        with self.store.transaction():
            if self.store.get(arn) is not None:
                raise ServiceError(
                    "ResourceAlreadyExistsException",
                    f"Dataset group {group_arn} already has a {kind} dataset",
                )
            if any(d["name"] == params["name"] for d in self.store.find("dataset", parent=group_arn)):
                raise ServiceError(
                    "ResourceAlreadyExistsException", f"A dataset named {params['name']} already exists"
                )
            data = {
                "name": params["name"],
                "datasetArn": arn,
                "datasetGroupArn": group_arn,
                "datasetType": dataset_type,
                "schemaArn": params["schemaArn"],
                "_tags": self._tags(params),
            }
            self._create_async("dataset", arn, params["name"], group_arn, data)
        return {"datasetArn": arn}

    def DescribeDataset(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._output(
            "DescribeDataset", "dataset", self._get(params["datasetArn"], "dataset", "dataset")
        )

    def ListDatasets(self, params: dict[str, Any]) -> dict[str, Any]:
        parent = params.get("datasetGroupArn")
        if parent:
            self._parent_exists(parent, "dataset-group", "dataset group")
        return self._list("ListDatasets", "datasets", "dataset", params, parent=parent)

    def DeleteDataset(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["datasetArn"]
        with self.store.transaction():
            self._get(arn, "dataset", "dataset")
            self.store.delete(arn)
        shutil.rmtree(self._dataset_dir(arn), ignore_errors=True)
        return {}

    def _dataset_dir(self, dataset_arn: str) -> Path:
        return self.state_dir / "datasets" / uuid.uuid5(uuid.NAMESPACE_URL, dataset_arn).hex

    # ----------------------------------------------------------------------------------------------
    # dataset import jobs
    # ----------------------------------------------------------------------------------------------
    def CreateDatasetImportJob(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["jobName"]
        dataset_arn = params["datasetArn"]
        dataset = self._get(dataset_arn, "dataset", "dataset")
        self._require_active(dataset, "dataset", dataset_arn)
        location = (params.get("dataSource") or {}).get("dataLocation")
        if not location:
            raise ServiceError("InvalidInputException", "dataSource.dataLocation is required")
        if not location.startswith("s3://"):
            raise ServiceError("InvalidInputException", f"dataLocation {location} must be an s3:// location")
        mode = params.get("importMode") or "FULL"
        arn = self._arn(f"dataset-import-job/{name}")
        with self.store.transaction():
            self._ensure_unique("dataset-import-job", name, arn, "dataset import job")
            if mode == "INCREMENTAL" and not any(
                j.get("importMode") == "FULL" and j.get("status") == "ACTIVE"
                for j in self.store.find("dataset-import-job", parent=dataset_arn)
            ):
                raise ServiceError(
                    "InvalidInputException",
                    "importMode INCREMENTAL requires bulk records imported previously; the first bulk import "
                    "into a dataset must use FULL",
                )
            data = {
                "jobName": name,
                "datasetImportJobArn": arn,
                "datasetArn": dataset_arn,
                "dataSource": {"dataLocation": location},
                "importMode": mode,
                "publishAttributionMetricsToS3": bool(params.get("publishAttributionMetricsToS3", False)),
                "_tags": self._tags(params),
            }
            if params.get("roleArn"):
                data["roleArn"] = params["roleArn"]
            self._create_async("dataset-import-job", arn, name, dataset_arn, data)
        return {"datasetImportJobArn": arn}

    def DescribeDatasetImportJob(self, params: dict[str, Any]) -> dict[str, Any]:
        data = self._get(params["datasetImportJobArn"], "dataset-import-job", "dataset import job")
        return self._output("DescribeDatasetImportJob", "datasetImportJob", data)

    def ListDatasetImportJobs(self, params: dict[str, Any]) -> dict[str, Any]:
        parent = params.get("datasetArn")
        if parent:
            self._parent_exists(parent, "dataset", "dataset")
        return self._list(
            "ListDatasetImportJobs", "datasetImportJobs", "dataset-import-job", params, parent=parent
        )

    def _work_dataset_import_job(self, arn: str, job: dict[str, Any]) -> dict[str, Any]:
        dataset = self.store.get(job["datasetArn"], "dataset")
        if dataset is None:
            raise _JobFailed(f"The dataset {job['datasetArn']} no longer exists")
        schema = self.store.get(dataset["schemaArn"], "schema")
        if schema is None:
            raise _JobFailed(f"The schema {dataset['schemaArn']} no longer exists")
        fields = data_rules.parse_schema(schema["schema"])
        location = job["dataSource"]["dataLocation"]
        bucket, key = batch_jobs.parse_s3_url(location)
        if key.endswith("/") or not key:
            keys = []
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
                keys += [o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/")]
            if not keys:
                raise _JobFailed(f"No CSV file found in the folder {location}")
        else:
            keys = [key]
        work = self._dataset_dir(job["datasetArn"])
        work.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=work, prefix="import-"))
        try:
            files = []
            for i, k in enumerate(sorted(keys)):
                local = tmp / f"{i}.csv"
                try:
                    self.s3.download_file(bucket, k, str(local))
                except Exception as exc:
                    raise _JobFailed(f"Cannot read s3://{bucket}/{k}: {exc}") from exc
                files.append((local, f"s3://{bucket}/{k}"))
            staged = work / f"staged-{uuid.uuid4().hex}.parquet"
            rows = data_rules.import_files(
                files,
                fields,
                dataset["datasetType"],
                staged,
                import_mode=job["importMode"],
                location=location,
            )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return {"_staged": str(staged), "_rows": rows}

    def _publish_import(self, arn: str, job: dict[str, Any]) -> None:
        staged = job.get("_staged")
        if not staged or not Path(staged).exists():
            return
        dataset = self.store.get(job["datasetArn"], "dataset")
        if dataset is None:
            return
        schema = self.store.get(dataset["schemaArn"], "schema")
        assert schema is not None
        fields = data_rules.parse_schema(schema["schema"])
        target = self._dataset_dir(job["datasetArn"]) / "data.parquet"
        with self._data_lock:
            rows = data_rules.merge_into(
                target, Path(staged), dataset["datasetType"], job["importMode"], fields
            )
        Path(staged).unlink(missing_ok=True)

        def done(doc: dict[str, Any]) -> None:
            doc.pop("_staged", None)

        self.store.update(arn, done)

        def mark(doc: dict[str, Any]) -> None:
            doc["_rows"] = rows
            doc["lastUpdatedDateTime"] = _now()

        self.store.update(job["datasetArn"], mark)

    def _load_dataset_frame(self, group_arn: str, kind: str) -> Any | None:
        import pandas as pd

        for dataset in self.store.find("dataset", parent=group_arn):
            if rules.normalize_dataset_type(dataset["datasetType"]) == kind:
                path = self._dataset_dir(dataset["datasetArn"]) / "data.parquet"
                if path.exists():
                    with self._data_lock:
                        return pd.read_parquet(path)
        return None

    # ----------------------------------------------------------------------------------------------
    # solutions and solution versions
    # ----------------------------------------------------------------------------------------------
    def CreateSolution(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["name"]
        group_arn = params["datasetGroupArn"]
        self._get(group_arn, "dataset-group", "dataset group")
        if params.get("performAutoML"):
            raise ServiceError("InvalidInputException", "performAutoML is not supported by this emulator")
        recipe_arn = params.get("recipeArn")
        if not recipe_arn or _recipe_name(recipe_arn) is None:
            raise ServiceError(
                "InvalidInputException",
                f"Unsupported recipeArn {recipe_arn!r}; supported: "
                + ", ".join(RECIPE_PREFIX + r for r in RECIPES),
            )
        arn = self._arn(f"solution/{name}")
        with self.store.transaction():
            self._ensure_unique("solution", name, arn, "solution")
            data: dict[str, Any] = {
                "name": name,
                "solutionArn": arn,
                "datasetGroupArn": group_arn,
                "recipeArn": recipe_arn,
                "performHPO": bool(params.get("performHPO", False)),
                "performAutoML": False,
                "performAutoTraining": bool(params.get("performAutoTraining", True)),
                "_tags": self._tags(params),
            }
            if "performIncrementalUpdate" in params:
                data["performIncrementalUpdate"] = bool(params["performIncrementalUpdate"])
            if params.get("eventType"):
                data["eventType"] = params["eventType"]
            if params.get("solutionConfig"):
                data["solutionConfig"] = params["solutionConfig"]
            self._create_async("solution", arn, name, group_arn, data)
        return {"solutionArn": arn}

    def DescribeSolution(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._output(
            "DescribeSolution", "solution", self._get(params["solutionArn"], "solution", "solution")
        )

    def ListSolutions(self, params: dict[str, Any]) -> dict[str, Any]:
        parent = params.get("datasetGroupArn")
        if parent:
            self._parent_exists(parent, "dataset-group", "dataset group")
        return self._list("ListSolutions", "solutions", "solution", params, parent=parent)

    def DeleteSolution(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["solutionArn"]
        with self.store.transaction():
            self._get(arn, "solution", "solution")
            versions = self.store.find("solution-version", parent=arn)
            version_arns = {v["solutionVersionArn"] for v in versions}
            if any(c.get("solutionVersionArn") in version_arns for c in self.store.find("campaign")):
                raise ServiceError(
                    "ResourceInUseException", f"Solution {arn} has campaigns; delete them first"
                )
            for v in versions:
                self.store.delete(v["solutionVersionArn"])
            self.store.delete(arn)
        return {}

    def CreateSolutionVersion(self, params: dict[str, Any]) -> dict[str, Any]:
        solution_arn = params["solutionArn"]
        solution = self._get(solution_arn, "solution", "solution")
        self._require_active(solution, "solution", solution_arn)
        mode = params.get("trainingMode") or "FULL"
        if mode == "UPDATE":
            if _recipe_name(solution["recipeArn"]) not in UPDATE_RECIPES:
                raise ServiceError(
                    "InvalidInputException",
                    "trainingMode UPDATE is only for the User-Personalization recipes",
                )
            if not any(
                v.get("status") == "ACTIVE" and v.get("trainingMode") == "FULL"
                for v in self.store.find("solution-version", parent=solution_arn)
            ):
                raise ServiceError(
                    "InvalidInputException",
                    "trainingMode UPDATE needs an ACTIVE solution version trained with FULL",
                )
        if any(
            v.get("status") in _UNFINISHED for v in self.store.find("solution-version", parent=solution_arn)
        ):
            raise ServiceError(
                "ResourceInUseException",
                f"Solution {solution_arn} already has a solution version being created",
            )
        version_id = uuid.uuid4().hex[:8]
        arn = f"{solution_arn}/{version_id}"
        name = params.get("name") or version_id
        with self.store.transaction():
            if params.get("name") and any(
                v.get("name") == name for v in self.store.find("solution-version", parent=solution_arn)
            ):
                raise ServiceError(
                    "ResourceAlreadyExistsException", f"A solution version named {name} already exists"
                )
            data: dict[str, Any] = {
                "name": name,
                "solutionVersionArn": arn,
                "solutionArn": solution_arn,
                "datasetGroupArn": solution["datasetGroupArn"],
                "recipeArn": solution["recipeArn"],
                "performHPO": solution.get("performHPO", False),
                "performAutoML": False,
                "trainingMode": mode,
                "trainingType": "MANUAL",
                "_versionId": version_id,
                "_tags": self._tags(params),
            }
            for key in ("eventType", "solutionConfig", "performIncrementalUpdate"):
                if key in solution:
                    data[key] = solution[key]
            self._create_async("solution-version", arn, name, solution_arn, data)
        self._refresh_solution(data)
        return {"solutionVersionArn": arn}

    def _refresh_solution(self, version: dict[str, Any]) -> None:
        def change(doc: dict[str, Any]) -> None:
            latest = {
                k: version[k]
                for k in (
                    "solutionVersionArn",
                    "status",
                    "trainingMode",
                    "trainingType",
                    "creationDateTime",
                    "lastUpdatedDateTime",
                    "failureReason",
                )
                if k in version
            }
            current = doc.get("latestSolutionVersion")
            if current is None or current.get("creationDateTime", 0) <= version.get("creationDateTime", 0):
                doc["latestSolutionVersion"] = latest

        self.store.update(version["solutionArn"], change)

    def DescribeSolutionVersion(self, params: dict[str, Any]) -> dict[str, Any]:
        data = self._get(params["solutionVersionArn"], "solution-version", "solution version")
        return self._output("DescribeSolutionVersion", "solutionVersion", data)

    def ListSolutionVersions(self, params: dict[str, Any]) -> dict[str, Any]:
        parent = params.get("solutionArn")
        if parent:
            self._parent_exists(parent, "solution", "solution")
        return self._list(
            "ListSolutionVersions", "solutionVersions", "solution-version", params, parent=parent
        )

    def StopSolutionVersionCreation(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["solutionVersionArn"]
        with self.store.transaction():
            data = self._get(arn, "solution-version", "solution version")
            if data.get("status") not in ("CREATE PENDING", "CREATE IN_PROGRESS"):
                raise ServiceError(
                    "InvalidInputException",
                    f"Only a solution version in CREATE PENDING or CREATE IN_PROGRESS can be stopped "
                    f"(status {data.get('status')})",
                )
            data["status"] = "CREATE STOPPING"
            data["lastUpdatedDateTime"] = _now()
            data.pop("_outcome", None)
            self.store.put(arn, data)
        self._refresh_solution(data)
        self.jobs.schedule_finish(arn, _now() + self.min_job_seconds / 4)
        return {}

    def GetSolutionMetrics(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["solutionVersionArn"]
        data = self._get(arn, "solution-version", "solution version")
        if data.get("status") != "ACTIVE":
            raise ServiceError(
                "ResourceInUseException",
                f"Solution version {arn} is not ACTIVE (status {data.get('status')})",
            )
        return {
            "solutionVersionArn": arn,
            "metrics": {k: float(v) for k, v in (data.get("_metrics") or {}).items()},
        }

    def _model_dir(self, version: dict[str, Any]) -> Path:
        return self.state_dir / "models" / version["_versionId"]

    def _work_solution_version(self, arn: str, version: dict[str, Any]) -> dict[str, Any]:
        from emulators.personalize import recommender

        recipe_arn = version["recipeArn"]
        family = RECIPES[_recipe_name(recipe_arn) or ""][0]
        group_arn = version["datasetGroupArn"]
        interactions = self._load_dataset_frame(group_arn, "INTERACTIONS")
        if interactions is None or interactions.empty:
            raise _JobFailed(f"The dataset group {group_arn} has no imported interactions data")
        items = self._load_dataset_frame(group_arn, "ITEMS")
        users = self._load_dataset_frame(group_arn, "USERS")
        if family in ("ITEM_AFFINITY", "ITEM_ATTRIBUTE_AFFINITY") and (items is None or items.empty):
            raise _JobFailed(
                f"The recipe {recipe_arn} needs an items dataset with imported data in {group_arn}"
            )
        event_type = version.get("eventType")
        if event_type and "EVENT_TYPE" in interactions.columns:
            interactions = interactions[interactions["EVENT_TYPE"] == event_type]
        threshold = (version.get("solutionConfig") or {}).get("eventValueThreshold")
        if threshold is not None and "EVENT_VALUE" in interactions.columns:
            try:
                interactions = interactions[interactions["EVENT_VALUE"] >= float(threshold)]
            except ValueError as exc:
                raise _JobFailed(f"eventValueThreshold {threshold!r} is not a number") from exc
        if len(interactions) < rules.MIN_INTERACTIONS_FOR_TRAINING:
            raise _JobFailed(
                f"Training needs at least {rules.MIN_INTERACTIONS_FOR_TRAINING} interactions after event type and "
                f"event value filtering; found {len(interactions)}"
            )
        counts = Counter(interactions["USER_ID"].astype(str).value_counts().to_dict())
        try:
            data_rules.check_min_users(counts, "Training data")
        except data_rules.DataRuleError as exc:
            raise _JobFailed(str(exc)) from exc
        hyper = dict((version.get("solutionConfig") or {}).get("algorithmHyperParameters") or {})
        try:
            model, metrics = recommender.train(
                recipe_arn, interactions.reset_index(drop=True), items, users, seed=42, params=hyper
            )
        except ValueError as exc:
            raise _JobFailed(f"Training failed: {exc}") from exc
        directory = self._model_dir(version)
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        model.save(directory)
        return {"_metrics": {k: float(v) for k, v in metrics.items()}}

    def _model(self, version: dict[str, Any]) -> Any:
        from emulators.personalize import recommender

        arn = version["solutionVersionArn"]
        with self._models_lock:
            if arn in self._models:
                self._models.move_to_end(arn)
                return self._models[arn]
        model = recommender.Model.load(self._model_dir(version))
        with self._models_lock:
            self._models[arn] = model
            while len(self._models) > 4:
                self._models.popitem(last=False)
        return model

    # ----------------------------------------------------------------------------------------------
    # filters
    # ----------------------------------------------------------------------------------------------
    def CreateFilter(self, params: dict[str, Any]) -> dict[str, Any]:
        from emulators.personalize.filters import FilterExpressionError, compile_filter

        name = params["name"]
        group_arn = params["datasetGroupArn"]
        self._get(group_arn, "dataset-group", "dataset group")
        try:
            compile_filter(params["filterExpression"])
        except FilterExpressionError as exc:
            raise ServiceError("InvalidInputException", f"Invalid filter expression: {exc}") from exc
        arn = self._arn(f"filter/{name}")
        with self.store.transaction():
            self._ensure_unique("filter", name, arn, "filter")
            data = {
                "name": name,
                "filterArn": arn,
                "datasetGroupArn": group_arn,
                "filterExpression": params["filterExpression"],
                "_tags": self._tags(params),
            }
            self._create_async("filter", arn, name, group_arn, data)
        return {"filterArn": arn}

    def DescribeFilter(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._output("DescribeFilter", "filter", self._get(params["filterArn"], "filter", "filter"))

    def ListFilters(self, params: dict[str, Any]) -> dict[str, Any]:
        parent = params.get("datasetGroupArn")
        if parent:
            self._parent_exists(parent, "dataset-group", "dataset group")
        return self._list("ListFilters", "Filters", "filter", params, parent=parent)

    def DeleteFilter(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["filterArn"]
        with self.store.transaction():
            self._get(arn, "filter", "filter")
            self.store.delete(arn)
        return {}

    # ----------------------------------------------------------------------------------------------
    # campaigns
    # ----------------------------------------------------------------------------------------------
    def _active_version(self, arn: str) -> dict[str, Any]:
        version = self._get(arn, "solution-version", "solution version")
        self._require_active(version, "solution version", arn)
        return version

    def CreateCampaign(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["name"]
        version = self._active_version(params["solutionVersionArn"])
        arn = self._arn(f"campaign/{name}")
        with self.store.transaction():
            self._ensure_unique("campaign", name, arn, "campaign")
            data: dict[str, Any] = {
                "name": name,
                "campaignArn": arn,
                "solutionVersionArn": version["solutionVersionArn"],
                "minProvisionedTPS": int(params.get("minProvisionedTPS") or 1),
                "_tags": self._tags(params),
            }
            if params.get("campaignConfig"):
                data["campaignConfig"] = params["campaignConfig"]
            self._create_async("campaign", arn, name, version["solutionArn"], data)
        return {"campaignArn": arn}

    def DescribeCampaign(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._output(
            "DescribeCampaign", "campaign", self._get(params["campaignArn"], "campaign", "campaign")
        )

    def ListCampaigns(self, params: dict[str, Any]) -> dict[str, Any]:
        parent = params.get("solutionArn")
        if parent:
            self._parent_exists(parent, "solution", "solution")
        return self._list("ListCampaigns", "campaigns", "campaign", params, parent=parent)

    def UpdateCampaign(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["campaignArn"]
        if params.get("solutionVersionArn"):
            self._active_version(params["solutionVersionArn"])
        with self.store.transaction():
            data = self._get(arn, "campaign", "campaign")
            if data.get("status") != "ACTIVE" or data.get("_update"):
                raise ServiceError("ResourceInUseException", f"Campaign {arn} is being created or updated")
            now = _now()
            update = {
                "solutionVersionArn": params.get("solutionVersionArn") or data["solutionVersionArn"],
                "minProvisionedTPS": int(params.get("minProvisionedTPS") or data.get("minProvisionedTPS", 1)),
                "status": "CREATE PENDING",
                "creationDateTime": now,
                "lastUpdatedDateTime": now,
            }
            config = params.get("campaignConfig") or data.get("campaignConfig")
            if config:
                update["campaignConfig"] = config
            data["_update"] = update
            data["latestCampaignUpdate"] = {k: v for k, v in update.items()}
            data["lastUpdatedDateTime"] = now
            self.store.put(arn, data)
        self.jobs.schedule_run(arn, now + self.min_job_seconds / 4)
        return {"campaignArn": arn}

    def DeleteCampaign(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["campaignArn"]
        with self.store.transaction():
            self._get(arn, "campaign", "campaign")
            self.store.delete(arn)
        return {}

    # ----------------------------------------------------------------------------------------------
    # batch jobs
    # ----------------------------------------------------------------------------------------------
    def _create_batch(self, params: dict[str, Any], kind: str, segment: bool) -> str:
        name = params["jobName"]
        version = self._active_version(params["solutionVersionArn"])
        family = RECIPES[_recipe_name(version["recipeArn"]) or ""][0]
        if segment and family not in batch_jobs.SEGMENT_FAMILIES:
            raise ServiceError(
                "InvalidInputException",
                "Batch segment jobs need a solution version trained with a USER_SEGMENTATION recipe "
                "(aws-item-affinity or aws-item-attribute-affinity)",
            )
        if not segment and family in batch_jobs.SEGMENT_FAMILIES:
            raise ServiceError(
                "InvalidInputException",
                "USER_SEGMENTATION solution versions need a batch segment job, not a batch inference job",
            )
        if not segment and params.get("batchInferenceJobMode") == "THEME_GENERATION":
            raise ServiceError("InvalidInputException", "THEME_GENERATION is not supported by this emulator")
        limit = BATCH_SEGMENT_MAX_RESULTS if segment else BATCH_INFERENCE_MAX_RESULTS
        num_results = params.get("numResults")
        if num_results is not None and not 1 <= int(num_results) <= limit:
            raise ServiceError("InvalidInputException", f"numResults must be between 1 and {limit}")
        in_path = params["jobInput"]["s3DataSource"]["path"]
        out_path = params["jobOutput"]["s3DataDestination"]["path"]
        for path in (in_path, out_path):
            if not path.startswith("s3://"):
                raise ServiceError("InvalidInputException", f"{path} must be an s3:// location")
        if params.get("filterArn"):
            filt = self._get(params["filterArn"], "filter", "filter")
            self._require_active(filt, "filter", params["filterArn"])
            if filt["datasetGroupArn"] != version["datasetGroupArn"]:
                raise ServiceError(
                    "InvalidInputException",
                    "The filter belongs to another dataset group than the solution version",
                )
        path = "batch-segment-job" if segment else "batch-inference-job"
        arn = self._arn(f"{path}/{name}")
        with self.store.transaction():
            self._ensure_unique(kind, name, arn, kind.replace("-", " "))
            data: dict[str, Any] = {
                "jobName": name,
                path_key(kind): arn,
                "solutionVersionArn": version["solutionVersionArn"],
                "numResults": int(num_results) if num_results is not None else DEFAULT_NUM_RESULTS,
                "jobInput": params["jobInput"],
                "jobOutput": params["jobOutput"],
                "roleArn": params["roleArn"],
                "_tags": self._tags(params),
            }
            if params.get("filterArn"):
                data["filterArn"] = params["filterArn"]
            if not segment:
                data["batchInferenceJobMode"] = params.get("batchInferenceJobMode") or "BATCH_INFERENCE"
                if params.get("batchInferenceJobConfig"):
                    data["batchInferenceJobConfig"] = params["batchInferenceJobConfig"]
            self._create_async(kind, arn, name, version["solutionVersionArn"], data)
        return arn

    def _run_batch(self, arn: str, job: dict[str, Any], segment: bool) -> dict[str, Any]:
        from emulators.personalize.filters import FilterExpressionError, compile_filter

        version = self.store.get(job["solutionVersionArn"], "solution-version")
        if version is None or version.get("status") != "ACTIVE":
            raise _JobFailed(f"The solution version {job['solutionVersionArn']} is not available")
        family = RECIPES[_recipe_name(version["recipeArn"]) or ""][0]
        compiled = None
        if job.get("filterArn"):
            filt = self.store.get(job["filterArn"], "filter")
            if filt is None:
                raise _JobFailed(f"The filter {job['filterArn']} no longer exists")
            try:
                compiled = compile_filter(filt["filterExpression"])
            except FilterExpressionError as exc:
                raise _JobFailed(f"Invalid filter expression: {exc}") from exc
        lines = batch_jobs.run_batch_job(
            s3=self.s3,
            segment=segment,
            family=family,
            model=self._model(version),
            input_path=job["jobInput"]["s3DataSource"]["path"],
            output_path=job["jobOutput"]["s3DataDestination"]["path"],
            num_results=int(job.get("numResults") or DEFAULT_NUM_RESULTS),
            compiled_filter=compiled,
            work_dir=self.state_dir / "tmp",
        )
        return {"_lines": lines}

    def _work_batch_inference_job(self, arn: str, job: dict[str, Any]) -> dict[str, Any]:
        return self._run_batch(arn, job, segment=False)

    def _work_batch_segment_job(self, arn: str, job: dict[str, Any]) -> dict[str, Any]:
        return self._run_batch(arn, job, segment=True)

    def CreateBatchInferenceJob(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"batchInferenceJobArn": self._create_batch(params, "batch-inference-job", segment=False)}

    def DescribeBatchInferenceJob(self, params: dict[str, Any]) -> dict[str, Any]:
        data = self._get(params["batchInferenceJobArn"], "batch-inference-job", "batch inference job")
        return self._output("DescribeBatchInferenceJob", "batchInferenceJob", data)

    def ListBatchInferenceJobs(self, params: dict[str, Any]) -> dict[str, Any]:
        parent = params.get("solutionVersionArn")
        return self._list(
            "ListBatchInferenceJobs", "batchInferenceJobs", "batch-inference-job", params, parent=parent
        )

    def CreateBatchSegmentJob(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"batchSegmentJobArn": self._create_batch(params, "batch-segment-job", segment=True)}

    def DescribeBatchSegmentJob(self, params: dict[str, Any]) -> dict[str, Any]:
        data = self._get(params["batchSegmentJobArn"], "batch-segment-job", "batch segment job")
        return self._output("DescribeBatchSegmentJob", "batchSegmentJob", data)

    def ListBatchSegmentJobs(self, params: dict[str, Any]) -> dict[str, Any]:
        parent = params.get("solutionVersionArn")
        return self._list(
            "ListBatchSegmentJobs", "batchSegmentJobs", "batch-segment-job", params, parent=parent
        )

    # ----------------------------------------------------------------------------------------------
    # recipes and tags
    # ----------------------------------------------------------------------------------------------
    def _recipe(self, name: str) -> dict[str, Any]:
        family, recipe_type = RECIPES[name]
        return {
            "name": name,
            "recipeArn": RECIPE_PREFIX + name,
            "algorithmArn": f"arn:aws:personalize:::algorithm/{name}",
            "featureTransformationArn": "arn:aws:personalize:::feature-transformation/sims"
            if family == "RELATED_ITEMS"
            else "arn:aws:personalize:::feature-transformation/JSON-percentile-filtering",
            "status": "ACTIVE",
            "description": f"{name} ({family}), emulated",
            "recipeType": recipe_type,
            "creationDateTime": RECIPES_CREATED,
            "lastUpdatedDateTime": RECIPES_CREATED,
        }

    def ListRecipes(self, params: dict[str, Any]) -> dict[str, Any]:
        rows = [] if params.get("domain") else [self._recipe(name) for name in RECIPES]
        return self._list("ListRecipes", "recipes", "recipe", params, rows=rows)

    def DescribeRecipe(self, params: dict[str, Any]) -> dict[str, Any]:
        name = _recipe_name(params["recipeArn"])
        if name is None:
            raise ServiceError(
                "ResourceNotFoundException", f"Could not find the recipe {params['recipeArn']}"
            )
        return self._output("DescribeRecipe", "recipe", self._recipe(name))

    def _tagged(self, arn: str) -> dict[str, Any]:
        data = self.store.get(arn)
        if data is None:
            raise ServiceError("ResourceNotFoundException", f"Could not find the resource {arn}")
        return data

    def TagResource(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["resourceArn"]
        self._tagged(arn)

        def change(doc: dict[str, Any]) -> None:
            tags = {t["tagKey"]: t["tagValue"] for t in doc.get("_tags") or []}
            tags.update({t["tagKey"]: t["tagValue"] for t in params["tags"]})
            doc["_tags"] = [{"tagKey": k, "tagValue": v} for k, v in tags.items()]

        self.store.update(arn, change)
        return {}

    def UntagResource(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["resourceArn"]
        self._tagged(arn)

        def change(doc: dict[str, Any]) -> None:
            doc["_tags"] = [t for t in doc.get("_tags") or [] if t["tagKey"] not in params["tagKeys"]]

        self.store.update(arn, change)
        return {}

    def ListTagsForResource(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"tags": list(self._tagged(params["resourceArn"]).get("_tags") or [])}


class _JobFailed(RuntimeError):
    """A job ends CREATE FAILED with this message as ``failureReason``."""


def path_key(kind: str) -> str:
    return {"batch-inference-job": "batchInferenceJobArn", "batch-segment-job": "batchSegmentJobArn"}[kind]


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
    return PersonalizeEmulator(
        state_dir=Path(state_dir),
        s3_endpoint_url=s3_endpoint_url,
        min_job_seconds=min_job_seconds,
        region=region,
        account_id=account_id,
    )
