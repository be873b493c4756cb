"""The Personalize emulator's backend: resources, their status machines, storage, S3 access and job work.

No HTTP and no botocore shapes here (that is :mod:`emulators.personalize.responses`): the backend
takes plain Python arguments, keeps every resource as a JSON document in SQLite
(:mod:`emulators.personalize.store`) and raises :class:`~emulators.errors.ServiceError` with AWS's
error codes. Documents use the service model's member names (timestamps as epoch seconds) plus
private keys starting with ``_`` that the responses never show.

Behaviour worth knowing:

* status machines: ``CREATE PENDING → CREATE IN_PROGRESS → ACTIVE | CREATE FAILED`` for dataset
  groups, datasets, import jobs, solutions, solution versions, filters and campaigns; batch jobs use the
  botocore model's spelling ``PENDING → IN PROGRESS → ACTIVE | CREATE FAILED``; a solution version
  being stopped goes ``CREATE STOPPING → CREATE STOPPED``. A status only becomes final once the work is
  done AND ``min_job_seconds`` have passed since creation (:mod:`emulators.personalize.jobs`). Schemas
  have no status (as on AWS).
* lists are newest first.
* deletes are immediate (AWS passes through ``DELETE PENDING``); deleting a dataset group that still
  has datasets, solutions or filters, a schema used by a dataset, or a solution with campaigns fails
  with ``ResourceInUseException``.
* creating a child of a resource that is not ACTIVE (import into a dataset, version of a solution,
  campaign / batch job on a solution version) fails with ``ResourceInUseException``.
* the import data rules are :mod:`emulators.personalize.data_rules` (over the project's one copy of
  the rules, :mod:`personalize_logic.facts.personalize_data_rules`); batch jobs are
  :mod:`emulators.personalize.batch`; training and inference :mod:`emulators.personalize.recommender`.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from emulators.errors import ServiceError
from emulators.personalize import batch as batch_jobs
from emulators.personalize import data_rules
from emulators.personalize.jobs import JobScheduler
from emulators.personalize.store import Store
from personalize_logic.facts import personalize as status_facts
from personalize_logic.facts import personalize_data_rules as rules
from personalize_logic.facts import recipes as recipe_facts

log = logging.getLogger(__name__)

RECIPES_CREATED = 1_546_300_800.0  # 2019-01-01, a fixed creation time for the built-in recipes
BATCH_INFERENCE_MAX_RESULTS = recipe_facts.MAX_BATCH_INFERENCE_RESULTS
BATCH_SEGMENT_MAX_RESULTS = recipe_facts.MAX_BATCH_SEGMENT_RESULTS
DEFAULT_NUM_RESULTS = 25
MODEL_CACHE_SIZE = 4

# kind → (status while pending, status while working): the first two intermediate states of the
# kind in personalize_logic.facts.personalize (the project's one copy of the status sets).
_PENDING: dict[str, tuple[str, str]] = {
    kind.replace("_", "-"): (resource.intermediate_states[0], resource.intermediate_states[1])
    for kind, resource in status_facts.RESOURCE_KINDS.items()
}
_UNFINISHED = frozenset(
    {state for pending, working in _PENDING.values() for state in (pending, working)}
    | {status_facts.SOLUTION_VERSION_STOPPING}
)
_STOPPING = status_facts.SOLUTION_VERSION_STOPPING
_STOPPED = status_facts.SOLUTION_VERSION_STOPPED
_ARN_KEY = {"batch-inference-job": "batchInferenceJobArn", "batch-segment-job": "batchSegmentJobArn"}
_SOLUTION_VERSION_SUMMARY = (
    "solutionVersionArn",
    "status",
    "trainingMode",
    "trainingType",
    "creationDateTime",
    "lastUpdatedDateTime",
    "failureReason",
)


class JobFailed(RuntimeError):
    """A job ends CREATE FAILED with this message as ``failureReason``."""


def _now() -> float:
    return time.time()


def _recipe(recipe_arn: str) -> recipe_facts.Recipe:
    """The recipe row of a solution's ``recipeArn`` (validated when the solution was created)."""
    return recipe_facts.recipe(recipe_arn)


def _family(recipe_arn: str) -> str:
    from emulators.personalize.recommender import recipe_family

    return recipe_family(recipe_arn)


def _label(kind: str) -> str:
    return kind.replace("-", " ")


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidInputException", message)


class PersonalizeBackend:
    """All Personalize state of one emulator (one region and account), persisted under ``state_dir``.

    :param state_dir: folder for the SQLite state, imported data (parquet) and trained models.
    :param s3_endpoint_url: the S3 endpoint holding import data and batch inputs/outputs (keys
        ``testing``/``testing``).
    :param min_job_seconds: minimum time from creation until an asynchronous resource is final.
    """

    def __init__(
        self,
        *,
        state_dir: Path,
        s3_endpoint_url: str,
        min_job_seconds: float = 2.0,
        region: str = "us-east-1",
        account_id: str = "123456789012",
    ) -> None:
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

    def settle(self) -> None:
        """Make every job outcome that is due visible (called before answering a request)."""
        self.jobs.settle()

    def _arn(self, path: str) -> str:
        return f"arn:aws:personalize:{self.region}:{self.account_id}:{path}"

    @property
    def s3(self) -> Any:
        """A boto3 S3 client of this thread, pointed at the stack's S3."""
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

    def describe(self, kind: str, arn: str) -> dict[str, Any]:
        """The stored document of the ``kind`` resource ``arn`` (``ResourceNotFoundException`` if none)."""
        data = self.store.get(arn, kind)
        if data is None:
            raise ServiceError(
                "ResourceNotFoundException", f"Could not find the {_label(kind)} with ARN {arn}"
            )
        return data

    def find(
        self, kind: str, *, parent: str | None = None, parent_kind: str | None = None
    ) -> list[dict[str, Any]]:
        """Documents of ``kind``, newest first; ``parent`` (of ``parent_kind``) must exist when given."""
        if parent and parent_kind:
            self.describe(parent_kind, parent)
        return self.store.find(kind, parent=parent)

    def delete(self, kind: str, arn: str) -> None:
        with self.store.transaction():
            self.describe(kind, arn)
            self.store.delete(arn)

    def _ensure_unique(self, kind: str, name: str, arn: str) -> None:
        if self.store.get(arn) is not None or self.store.find(kind, name=name):
            raise ServiceError(
                "ResourceAlreadyExistsException", f"A {_label(kind)} named {name} already exists ({arn})"
            )

    def _describe_active(self, kind: str, arn: str) -> dict[str, Any]:
        data = self.describe(kind, arn)
        if data.get("status") != "ACTIVE":
            raise ServiceError(
                "ResourceInUseException",
                f"The {_label(kind)} {arn} is not ACTIVE (status {data.get('status')})",
            )
        return data

    def _create_async(self, kind: str, arn: str, name: str, parent: str | None, data: dict[str, Any]) -> None:
        now = _now()
        data.update({"status": _PENDING[kind][0], "creationDateTime": now, "lastUpdatedDateTime": now})
        with self.store.transaction():
            self.store.insert(kind, arn, name, parent, data)
        self.jobs.schedule_run(arn, now + self.min_job_seconds / 4)

    # ----------------------------------------------------------------------------------------------
    # job lifecycle: run (work, store the outcome) → finish (the outcome becomes the status)
    # ----------------------------------------------------------------------------------------------
    def _resume(self) -> None:
        """Re-queue every job that was pending or in progress when the emulator stopped."""
        for kind, arn, data in self.store.all_rows():
            status = data.get("status")
            if status not in _UNFINISHED and not (kind == "campaign" and data.get("_update")):
                continue
            if "_outcome" in data or status == _STOPPING:
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
            return self._progress_campaign_update(arn, data)
        if data.get("status") not in _PENDING[kind]:
            return None  # stopped, or already finished
        data = self.store.update(arn, _start(kind)) or data
        outcome = self._work(kind, arn, data)
        outcome["readyAt"] = max(_now(), data["creationDateTime"] + self.min_job_seconds)

        def store_outcome(doc: dict[str, Any]) -> None:
            doc["_outcome"] = outcome

        self.store.update(arn, store_outcome)
        return float(outcome["readyAt"])

    def _work(self, kind: str, arn: str, data: dict[str, Any]) -> dict[str, Any]:
        """Do the job's work; return its outcome (``status``, ``failureReason``, ``updates``)."""
        work: Callable[[dict[str, Any]], dict[str, Any]] | None = {
            "dataset-import-job": self._import_data,
            "solution-version": self._train,
            "batch-inference-job": self._run_batch,
            "batch-segment-job": self._run_batch,
        }.get(kind)
        updates: dict[str, Any] = {}
        failure: str | None = None
        began = _now()
        try:
            if work is not None:
                updates = work(data)
        except (data_rules.DataRuleError, batch_jobs.BatchJobError, JobFailed) as exc:
            failure = str(exc)
        except Exception as exc:
            log.exception("personalize emulator: %s %s failed", kind, arn)
            failure = f"Internal error: {type(exc).__name__}: {exc}"
        if kind == "solution-version" and failure is None:
            updates["trainingHours"] = round((_now() - began) / 3600.0, 6)
        return {
            "status": "CREATE FAILED" if failure else "ACTIVE",
            "failureReason": failure,
            "updates": updates,
        }

    def _progress_campaign_update(self, arn: str, data: dict[str, Any]) -> float:
        def progress(doc: dict[str, Any]) -> None:
            if doc.get("_update"):
                doc["_update"]["status"] = "CREATE IN_PROGRESS"
                doc["_update"]["lastUpdatedDateTime"] = _now()
                doc["latestCampaignUpdate"] = dict(doc["_update"])

        self.store.update(arn, progress)
        return max(_now(), data["_update"]["creationDateTime"] + self.min_job_seconds)

    def _finish_job(self, arn: str) -> None:
        if self._closed:
            return
        kind = self.store.kind_of(arn)
        doc = self.store.update(arn, _apply_outcome)
        if doc is not None and kind == "dataset-import-job" and doc.get("status") == "ACTIVE":
            self._publish_import(arn, doc)
        if doc is not None and kind == "solution-version":
            self._refresh_solution(doc)

    # ----------------------------------------------------------------------------------------------
    # dataset groups, schemas, datasets
    # ----------------------------------------------------------------------------------------------
    def create_dataset_group(self, name: str, tags: list[dict[str, str]], **options: Any) -> str:
        """:param options: ``roleArn``, ``kmsKeyArn``, ``domain`` (kept when given)."""
        arn = self._arn(f"dataset-group/{name}")
        with self.store.transaction():
            self._ensure_unique("dataset-group", name, arn)
            data = {"name": name, "datasetGroupArn": arn, "_tags": tags}
            data.update({k: v for k, v in options.items() if v})
            self._create_async("dataset-group", arn, name, None, data)
        return arn

    def delete_dataset_group(self, arn: str) -> None:
        with self.store.transaction():
            self.describe("dataset-group", arn)
            for kind in ("dataset", "solution", "filter"):
                if self.store.find(kind, parent=arn):
                    raise ServiceError(
                        "ResourceInUseException", f"Dataset group {arn} still has {kind}s; delete them first"
                    )
            self.store.delete(arn)

    def create_schema(self, name: str, schema: str, domain: str | None) -> str:
        arn = self._arn(f"schema/{name}")
        try:
            data_rules.parse_schema(schema)
        except ValueError as exc:
            raise _invalid(str(exc)) from exc
        with self.store.transaction():
            self._ensure_unique("schema", name, arn)
            now = _now()
            data = {
                "name": name,
                "schemaArn": arn,
                "schema": schema,
                "creationDateTime": now,
                "lastUpdatedDateTime": now,
            }
            if domain:
                data["domain"] = domain
            self.store.insert("schema", arn, name, None, data)
        return arn

    def delete_schema(self, arn: str) -> None:
        with self.store.transaction():
            self.describe("schema", arn)
            if any(d.get("schemaArn") == arn for d in self.store.find("dataset")):
                raise ServiceError("ResourceInUseException", f"Schema {arn} is used by a dataset")
            self.store.delete(arn)

    def create_dataset(
        self,
        name: str,
        schema_arn: str,
        dataset_group_arn: str,
        dataset_type: str,
        tags: list[dict[str, str]],
    ) -> str:
        group = self.describe("dataset-group", dataset_group_arn)
        schema = self.describe("schema", schema_arn)
        kind = rules.normalize_dataset_type(dataset_type)
        if kind not in rules.DATASET_TYPES:
            raise _invalid(f"Unknown datasetType {dataset_type}")
        try:
            data_rules.check_schema_for_dataset_type(data_rules.parse_schema(schema["schema"]), dataset_type)
        except ValueError as exc:
            raise _invalid(str(exc)) from exc
        if group.get("domain") and schema.get("domain") and group["domain"] != schema["domain"]:
            raise _invalid(f"The schema's domain {schema['domain']} differs from the dataset group's")
        arn = self._arn(f"dataset/{group['name']}/{kind}")
        with self.store.transaction():
            if self.store.get(arn) is not None:
                raise ServiceError(
                    "ResourceAlreadyExistsException",
                    f"Dataset group {dataset_group_arn} already has a {kind} dataset",
                )
            if any(d["name"] == name for d in self.store.find("dataset", parent=dataset_group_arn)):
                raise ServiceError("ResourceAlreadyExistsException", f"A dataset named {name} already exists")
            data = {
                "name": name,
                "datasetArn": arn,
                "datasetGroupArn": dataset_group_arn,
                "datasetType": dataset_type,
                "schemaArn": schema_arn,
                "_tags": tags,
            }
            self._create_async("dataset", arn, name, dataset_group_arn, data)
        return arn

    def delete_dataset(self, arn: str) -> None:
        self.delete("dataset", arn)
        shutil.rmtree(self.dataset_dir(arn), ignore_errors=True)

    def dataset_dir(self, dataset_arn: str) -> Path:
        """Where a dataset's imported data lives (``data.parquet``) and its imports are staged."""
        return self.state_dir / "datasets" / uuid.uuid5(uuid.NAMESPACE_URL, dataset_arn).hex

    # ----------------------------------------------------------------------------------------------
    # dataset import jobs
    # ----------------------------------------------------------------------------------------------
    def create_dataset_import_job(
        self,
        job_name: str,
        dataset_arn: str,
        data_location: str | None,
        *,
        import_mode: str,
        publish_attribution_metrics_to_s3: bool,
        role_arn: str | None,
        tags: list[dict[str, str]],
    ) -> str:
        self._describe_active("dataset", dataset_arn)
        if not role_arn:
            # The botocore model marks roleArn optional; the operation's documentation says "you must
            # specify an IAM service role that has permission to read from the data source" and the
            # API reference lists it as required.
            raise _invalid("roleArn is required: the IAM service role Personalize reads the data source with")
        if not data_location:
            raise _invalid("dataSource.dataLocation is required")
        if not data_location.startswith("s3://"):
            raise _invalid(f"dataLocation {data_location} must be an s3:// location")
        arn = self._arn(f"dataset-import-job/{job_name}")
        with self.store.transaction():
            self._ensure_unique("dataset-import-job", job_name, arn)
            if import_mode == "INCREMENTAL" and not any(
                j.get("importMode") == "FULL" and j.get("status") == "ACTIVE"
                for j in self.store.find("dataset-import-job", parent=dataset_arn)
            ):
                raise _invalid(
                    "importMode INCREMENTAL requires bulk records imported previously; the first bulk import "
                    "into a dataset must use FULL"
                )
            data = {
                "jobName": job_name,
                "datasetImportJobArn": arn,
                "datasetArn": dataset_arn,
                "dataSource": {"dataLocation": data_location},
                "importMode": import_mode,
                "publishAttributionMetricsToS3": publish_attribution_metrics_to_s3,
                "_tags": tags,
            }
            if role_arn:
                data["roleArn"] = role_arn
            self._create_async("dataset-import-job", arn, job_name, dataset_arn, data)
        return arn

    def _dataset_schema(self, dataset_arn: str) -> tuple[dict[str, Any], list[rules.SchemaField]]:
        dataset = self.store.get(dataset_arn, "dataset")
        if dataset is None:
            raise JobFailed(f"The dataset {dataset_arn} no longer exists")
        schema = self.store.get(dataset["schemaArn"], "schema")
        if schema is None:
            raise JobFailed(f"The schema {dataset['schemaArn']} no longer exists")
        return dataset, data_rules.parse_schema(schema["schema"])

    def _import_keys(self, location: str) -> tuple[str, list[str]]:
        """The bucket and sorted object keys an import's ``dataLocation`` (a file or a folder/) names."""
        bucket, key = batch_jobs.parse_s3_url(location)
        if key and not key.endswith("/"):
            return bucket, [key]
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            keys += [o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/")]
        if not keys:
            raise JobFailed(f"No CSV file found in the folder {location}")
        return bucket, sorted(keys)

    def _import_data(self, job: dict[str, Any]) -> dict[str, Any]:
        """Download the job's CSV files, check them against the data rules, stage them as parquet."""
        dataset, fields = self._dataset_schema(job["datasetArn"])
        location = job["dataSource"]["dataLocation"]
        bucket, keys = self._import_keys(location)
        if job["importMode"] == "INCREMENTAL":
            size = sum(int(self.s3.head_object(Bucket=bucket, Key=key)["ContentLength"]) for key in keys)
            if size > rules.MAX_INCREMENTAL_IMPORT_BYTES:
                raise JobFailed(
                    f"The data at {location} is {size} bytes; an INCREMENTAL import job takes at most "
                    f"{rules.MAX_INCREMENTAL_IMPORT_BYTES} bytes ({rules.QUOTAS_URL})"
                )
        work = self.dataset_dir(job["datasetArn"])
        work.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=work, prefix="import-"))
        staged = work / f"staged-{uuid.uuid4().hex}.parquet"
        try:
            files = [
                (self._download(bucket, key, tmp / f"{i}.csv"), f"s3://{bucket}/{key}")
                for i, key in enumerate(keys)
            ]
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

    def _download(self, bucket: str, key: str, local: Path) -> Path:
        try:
            self.s3.download_file(bucket, key, str(local))
        except Exception as exc:
            raise JobFailed(f"Cannot read s3://{bucket}/{key}: {exc}") from exc
        return local

    def _publish_import(self, arn: str, job: dict[str, Any]) -> None:
        """An ACTIVE import's staged data becomes the dataset's data (FULL replaces, INCREMENTAL appends)."""
        staged = job.get("_staged")
        if not staged or not Path(staged).exists():
            return
        try:
            dataset, fields = self._dataset_schema(job["datasetArn"])
        except JobFailed:
            return
        target = self.dataset_dir(job["datasetArn"]) / "data.parquet"
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
                path = self.dataset_dir(dataset["datasetArn"]) / "data.parquet"
                if path.exists():
                    with self._data_lock:
                        return pd.read_parquet(path)
        return None

    # ----------------------------------------------------------------------------------------------
    # solutions and solution versions
    # ----------------------------------------------------------------------------------------------
    def create_solution(
        self,
        name: str,
        dataset_group_arn: str,
        recipe_arn: str | None,
        tags: list[dict[str, str]],
        *,
        perform_hpo: bool,
        perform_auto_ml: bool,
        perform_auto_training: bool,
        **options: Any,
    ) -> str:
        """:param options: ``performIncrementalUpdate``, ``eventType``, ``solutionConfig`` (kept when given)."""
        self.describe("dataset-group", dataset_group_arn)
        if perform_auto_ml:
            raise _invalid("performAutoML is not supported by this emulator")
        if not recipe_arn:
            raise _invalid("recipeArn is required when performAutoML is false")
        try:
            row = recipe_facts.recipe(recipe_arn)
        except recipe_facts.UnknownRecipeError as exc:
            raise _invalid(str(exc)) from exc
        if options.get("performIncrementalUpdate") and not row.incremental_update:
            raise _invalid(
                f"performIncrementalUpdate is supported only for solutions that use the semantic-similarity "
                f"recipe, not {row.name}"
            )
        try:
            _family(recipe_arn)
        except ValueError as exc:
            raise _invalid(str(exc)) from exc
        arn = self._arn(f"solution/{name}")
        with self.store.transaction():
            self._ensure_unique("solution", name, arn)
            data: dict[str, Any] = {
                "name": name,
                "solutionArn": arn,
                "datasetGroupArn": dataset_group_arn,
                "recipeArn": recipe_arn,
                "performHPO": perform_hpo,
                "performAutoML": False,
                "performAutoTraining": perform_auto_training,
                "_tags": tags,
            }
            data.update({k: v for k, v in options.items() if v is not None})
            self._create_async("solution", arn, name, dataset_group_arn, data)
        return arn

    def delete_solution(self, arn: str) -> None:
        with self.store.transaction():
            self.describe("solution", arn)
            versions = self.store.find("solution-version", parent=arn)
            version_arns = {v["solutionVersionArn"] for v in versions}
            if any(c.get("solutionVersionArn") in version_arns for c in self.store.find("campaign")):
                raise ServiceError(
                    "ResourceInUseException", f"Solution {arn} has campaigns; delete them first"
                )
            for v in versions:
                self.store.delete(v["solutionVersionArn"])
            self.store.delete(arn)

    def create_solution_version(
        self, solution_arn: str, name: str | None, training_mode: str, tags: list[dict[str, str]]
    ) -> str:
        solution = self._describe_active("solution", solution_arn)
        versions = self.store.find("solution-version", parent=solution_arn)
        if training_mode == "UPDATE":
            _check_update_training(solution, versions)
        if any(v.get("status") in _UNFINISHED for v in versions):
            raise ServiceError(
                "ResourceInUseException",
                f"Solution {solution_arn} already has a solution version being created",
            )
        version_id = uuid.uuid4().hex[:8]
        arn = f"{solution_arn}/{version_id}"
        with self.store.transaction():
            if name and any(
                v.get("name") == name for v in self.store.find("solution-version", parent=solution_arn)
            ):
                raise ServiceError(
                    "ResourceAlreadyExistsException", f"A solution version named {name} already exists"
                )
            data: dict[str, Any] = {
                "name": name or version_id,
                "solutionVersionArn": arn,
                "solutionArn": solution_arn,
                "datasetGroupArn": solution["datasetGroupArn"],
                "recipeArn": solution["recipeArn"],
                "performHPO": solution.get("performHPO", False),
                "performAutoML": False,
                "trainingMode": training_mode,
                "trainingType": "MANUAL",
                "_versionId": version_id,
                "_tags": tags,
            }
            for key in ("eventType", "solutionConfig", "performIncrementalUpdate"):
                if key in solution:
                    data[key] = solution[key]
            self._create_async("solution-version", arn, data["name"], solution_arn, data)
        self._refresh_solution(data)
        return arn

    def _refresh_solution(self, version: dict[str, Any]) -> None:
        """Keep the solution's ``latestSolutionVersion`` summary in step with its newest version."""

        def change(doc: dict[str, Any]) -> None:
            latest = {k: version[k] for k in _SOLUTION_VERSION_SUMMARY if k in version}
            current = doc.get("latestSolutionVersion")
            if current is None or current.get("creationDateTime", 0) <= version.get("creationDateTime", 0):
                doc["latestSolutionVersion"] = latest

        self.store.update(version["solutionArn"], change)

    def stop_solution_version_creation(self, arn: str) -> None:
        with self.store.transaction():
            data = self.describe("solution-version", arn)
            if data.get("status") not in _PENDING["solution-version"]:
                raise _invalid(
                    f"Only a solution version in CREATE PENDING or CREATE IN_PROGRESS can be stopped "
                    f"(status {data.get('status')})"
                )
            data["status"] = _STOPPING
            data["lastUpdatedDateTime"] = _now()
            data.pop("_outcome", None)
            self.store.put(arn, data)
        self._refresh_solution(data)
        self.jobs.schedule_finish(arn, _now() + self.min_job_seconds / 4)

    def solution_metrics(self, arn: str) -> dict[str, float]:
        data = self._describe_active("solution-version", arn)
        return {k: float(v) for k, v in (data.get("_metrics") or {}).items()}

    def _model_dir(self, version: dict[str, Any]) -> Path:
        return self.state_dir / "models" / version["_versionId"]

    def _training_interactions(self, version: dict[str, Any]) -> Any:
        """The dataset group's interactions after the solution's event type and event value filters."""
        group_arn = version["datasetGroupArn"]
        interactions = self._load_dataset_frame(group_arn, "INTERACTIONS")
        if interactions is None or interactions.empty:
            raise JobFailed(f"The dataset group {group_arn} has no imported interactions data")
        event_type = version.get("eventType")
        if event_type and "EVENT_TYPE" in interactions.columns:
            interactions = interactions[interactions["EVENT_TYPE"] == event_type]
        threshold = (version.get("solutionConfig") or {}).get("eventValueThreshold")
        if threshold is not None and "EVENT_VALUE" in interactions.columns:
            try:
                interactions = interactions[interactions["EVENT_VALUE"] >= float(threshold)]
            except ValueError as exc:
                raise JobFailed(f"eventValueThreshold {threshold!r} is not a number") from exc
        if len(interactions) < rules.MIN_INTERACTIONS_FOR_TRAINING:
            raise JobFailed(
                f"Training needs at least {rules.MIN_INTERACTIONS_FOR_TRAINING} interactions after event type "
                f"and event value filtering; found {len(interactions)}"
            )
        problem = rules.user_minimums_problem(
            Counter(interactions["USER_ID"].astype(str).value_counts().to_dict())
        )
        if problem:
            raise JobFailed(f"Training data: {problem}")
        return interactions.reset_index(drop=True)

    def _train(self, version: dict[str, Any]) -> dict[str, Any]:
        from emulators.personalize import recommender

        recipe_arn = version["recipeArn"]
        group_arn = version["datasetGroupArn"]
        interactions = self._training_interactions(version)
        items = self._load_dataset_frame(group_arn, "ITEMS")
        users = self._load_dataset_frame(group_arn, "USERS")
        row = _recipe(recipe_arn)
        if "ITEMS" in row.required_datasets and (items is None or items.empty):
            raise JobFailed(
                f"The recipe {row.name} needs an Items dataset with imported data in {group_arn} ({row.source})"
            )
        if "USERS" in row.required_datasets and (users is None or users.empty):
            raise JobFailed(f"The recipe {row.name} needs a Users dataset with imported data in {group_arn}")
        hyper = dict((version.get("solutionConfig") or {}).get("algorithmHyperParameters") or {})
        try:
            model, metrics = recommender.train(recipe_arn, interactions, items, users, seed=42, params=hyper)
        except ValueError as exc:
            raise JobFailed(f"Training failed: {exc}") from exc
        # GetSolutionMetrics answers the keys AWS documents for the recipe, no others
        metrics = {key: metrics[key] for key in row.metrics if key in metrics}
        directory = self._model_dir(version)
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        model.save(directory)
        return {"_metrics": {k: float(v) for k, v in metrics.items()}}

    def _model(self, version: dict[str, Any]) -> Any:
        """The trained model of a solution version (a small LRU cache over the saved models)."""
        from emulators.personalize import recommender

        arn = version["solutionVersionArn"]
        with self._models_lock:
            if arn in self._models:
                self._models.move_to_end(arn)
                return self._models[arn]
        model = recommender.Model.load(self._model_dir(version))
        with self._models_lock:
            self._models[arn] = model
            while len(self._models) > MODEL_CACHE_SIZE:
                self._models.popitem(last=False)
        return model

    # ----------------------------------------------------------------------------------------------
    # filters and campaigns
    # ----------------------------------------------------------------------------------------------
    def create_filter(
        self, name: str, dataset_group_arn: str, filter_expression: str, tags: list[dict[str, str]]
    ) -> str:
        from emulators.personalize.filters import FilterExpressionError, compile_filter

        self.describe("dataset-group", dataset_group_arn)
        try:
            compile_filter(filter_expression)
        except FilterExpressionError as exc:
            raise _invalid(f"Invalid filter expression: {exc}") from exc
        arn = self._arn(f"filter/{name}")
        with self.store.transaction():
            self._ensure_unique("filter", name, arn)
            data = {
                "name": name,
                "filterArn": arn,
                "datasetGroupArn": dataset_group_arn,
                "filterExpression": filter_expression,
                "_tags": tags,
            }
            self._create_async("filter", arn, name, dataset_group_arn, data)
        return arn

    def create_campaign(
        self,
        name: str,
        solution_version_arn: str,
        min_provisioned_tps: int,
        campaign_config: dict[str, Any] | None,
        tags: list[dict[str, str]],
    ) -> str:
        version = self._describe_active("solution-version", solution_version_arn)
        arn = self._arn(f"campaign/{name}")
        with self.store.transaction():
            self._ensure_unique("campaign", name, arn)
            data: dict[str, Any] = {
                "name": name,
                "campaignArn": arn,
                "solutionVersionArn": version["solutionVersionArn"],
                "minProvisionedTPS": min_provisioned_tps,
                "_tags": tags,
            }
            if campaign_config:
                data["campaignConfig"] = campaign_config
            self._create_async("campaign", arn, name, version["solutionArn"], data)
        return arn

    def update_campaign(
        self,
        arn: str,
        solution_version_arn: str | None,
        min_provisioned_tps: int | None,
        campaign_config: dict[str, Any] | None,
    ) -> None:
        """Start an update: ``latestCampaignUpdate`` walks the status machine, then the campaign takes it."""
        if solution_version_arn:
            self._describe_active("solution-version", solution_version_arn)
        with self.store.transaction():
            data = self.describe("campaign", arn)
            if data.get("status") != "ACTIVE" or data.get("_update"):
                raise ServiceError("ResourceInUseException", f"Campaign {arn} is being created or updated")
            now = _now()
            update = {
                "solutionVersionArn": solution_version_arn or data["solutionVersionArn"],
                "minProvisionedTPS": int(min_provisioned_tps or data.get("minProvisionedTPS", 1)),
                "status": "CREATE PENDING",
                "creationDateTime": now,
                "lastUpdatedDateTime": now,
            }
            config = campaign_config or data.get("campaignConfig")
            if config:
                update["campaignConfig"] = config
            data["_update"] = update
            data["latestCampaignUpdate"] = dict(update)
            data["lastUpdatedDateTime"] = now
            self.store.put(arn, data)
        self.jobs.schedule_run(arn, now + self.min_job_seconds / 4)

    # ----------------------------------------------------------------------------------------------
    # batch jobs
    # ----------------------------------------------------------------------------------------------
    def create_batch_job(
        self,
        *,
        segment: bool,
        job_name: str,
        solution_version_arn: str,
        job_input: dict[str, Any],
        job_output: dict[str, Any],
        role_arn: str,
        num_results: int | None,
        filter_arn: str | None,
        tags: list[dict[str, str]],
        mode: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> str:
        """A batch segment job (``segment``) or a batch inference job (``mode``, ``config``)."""
        kind = "batch-segment-job" if segment else "batch-inference-job"
        version = self._describe_active("solution-version", solution_version_arn)
        _check_batch_request(version, segment, mode, num_results, job_input, job_output)
        if filter_arn:
            filt = self._describe_active("filter", filter_arn)
            if filt["datasetGroupArn"] != version["datasetGroupArn"]:
                raise _invalid("The filter belongs to another dataset group than the solution version")
            _check_batch_filter(version, segment, filt["filterExpression"])
        arn = self._arn(f"{kind}/{job_name}")
        with self.store.transaction():
            self._ensure_unique(kind, job_name, arn)
            data: dict[str, Any] = {
                "jobName": job_name,
                _ARN_KEY[kind]: arn,
                "solutionVersionArn": version["solutionVersionArn"],
                "numResults": num_results if num_results is not None else DEFAULT_NUM_RESULTS,
                "jobInput": job_input,
                "jobOutput": job_output,
                "roleArn": role_arn,
                "_tags": tags,
            }
            if filter_arn:
                data["filterArn"] = filter_arn
            if not segment:
                data["batchInferenceJobMode"] = mode or "BATCH_INFERENCE"
                if config:
                    data["batchInferenceJobConfig"] = config
            self._create_async(kind, arn, job_name, version["solutionVersionArn"], data)
        return arn

    def _run_batch(self, job: dict[str, Any]) -> dict[str, Any]:
        from emulators.personalize.filters import FilterExpressionError, compile_filter

        version = self.store.get(job["solutionVersionArn"], "solution-version")
        if version is None or version.get("status") != "ACTIVE":
            raise JobFailed(f"The solution version {job['solutionVersionArn']} is not available")
        compiled = None
        if job.get("filterArn"):
            filt = self.store.get(job["filterArn"], "filter")
            if filt is None:
                raise JobFailed(f"The filter {job['filterArn']} no longer exists")
            try:
                compiled = compile_filter(filt["filterExpression"])
            except FilterExpressionError as exc:
                raise JobFailed(f"Invalid filter expression: {exc}") from exc
        lines = batch_jobs.run_batch_job(
            s3=self.s3,
            segment="batchSegmentJobArn" in job,
            family=_family(version["recipeArn"]),
            model=self._model(version),
            input_path=job["jobInput"]["s3DataSource"]["path"],
            output_path=job["jobOutput"]["s3DataDestination"]["path"],
            num_results=int(job.get("numResults") or DEFAULT_NUM_RESULTS),
            compiled_filter=compiled,
            work_dir=self.state_dir / "tmp",
        )
        return {"_lines": lines}

    # ----------------------------------------------------------------------------------------------
    # recipes and tags
    # ----------------------------------------------------------------------------------------------
    def recipes(self, domain: str | None = None) -> list[dict[str, Any]]:
        """The built-in custom recipes (none for a domain: no domain recipes)."""
        return [] if domain else [self.recipe(row.arn) for row in recipe_facts.RECIPES.values()]

    def recipe(self, recipe_arn: str) -> dict[str, Any]:
        try:
            row = recipe_facts.recipe(recipe_arn)
        except recipe_facts.UnknownRecipeError as exc:
            raise ServiceError(
                "ResourceNotFoundException", f"Could not find the recipe {recipe_arn}"
            ) from exc
        transformation = (
            "sims" if row.recipe_type == recipe_facts.RELATED_ITEMS else "JSON-percentile-filtering"
        )
        return {
            "name": row.name,
            "recipeArn": row.arn,
            "algorithmArn": f"arn:aws:personalize:::algorithm/{row.name}",
            "featureTransformationArn": f"arn:aws:personalize:::feature-transformation/{transformation}",
            "status": "ACTIVE",
            "description": f"{row.name} ({row.recipe_type}), emulated; see {row.source}",
            "recipeType": row.recipe_type,
            "creationDateTime": RECIPES_CREATED,
            "lastUpdatedDateTime": RECIPES_CREATED,
        }

    def tags(self, arn: str) -> list[dict[str, str]]:
        data = self.store.get(arn)
        if data is None:
            raise ServiceError("ResourceNotFoundException", f"Could not find the resource {arn}")
        return list(data.get("_tags") or [])

    def tag_resource(self, arn: str, tags: list[dict[str, str]]) -> None:
        merged = {t["tagKey"]: t["tagValue"] for t in self.tags(arn)}
        merged.update({t["tagKey"]: t["tagValue"] for t in tags})
        self._set_tags(arn, [{"tagKey": k, "tagValue": v} for k, v in merged.items()])

    def untag_resource(self, arn: str, tag_keys: list[str]) -> None:
        self._set_tags(arn, [t for t in self.tags(arn) if t["tagKey"] not in tag_keys])

    def _set_tags(self, arn: str, tags: list[dict[str, str]]) -> None:
        def change(doc: dict[str, Any]) -> None:
            doc["_tags"] = tags

        self.store.update(arn, change)


# --------------------------------------------------------------------------------------------------
# status-machine steps and request checks (plain functions over documents)
# --------------------------------------------------------------------------------------------------
def _start(kind: str) -> Callable[[dict[str, Any]], None]:
    """The change that moves a pending resource to its in-progress status."""

    def start(doc: dict[str, Any]) -> None:
        if doc.get("status") == _PENDING[kind][0]:
            doc["status"] = _PENDING[kind][1]
            doc["lastUpdatedDateTime"] = _now()

    return start


def _apply_outcome(doc: dict[str, Any]) -> None:
    """Make a finished job's stored outcome (or a campaign update, or a stop) the visible status."""
    now = _now()
    if doc.get("_update"):  # a campaign update
        update = doc.pop("_update")
        for key in ("solutionVersionArn", "minProvisionedTPS", "campaignConfig"):
            if update.get(key) is not None:
                doc[key] = update[key]
        update["status"] = "ACTIVE"
        update["lastUpdatedDateTime"] = now
        doc["latestCampaignUpdate"] = update
        doc["lastUpdatedDateTime"] = now
        return
    if doc.get("status") == _STOPPING:
        doc["status"] = _STOPPED
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


def _check_update_training(solution: dict[str, Any], versions: list[dict[str, Any]]) -> None:
    """``trainingMode=UPDATE`` is for User-Personalization solutions with an ACTIVE FULL version."""
    problem = recipe_facts.training_mode_error(solution["recipeArn"], "UPDATE")
    if problem:
        raise _invalid(problem)
    if not any(v.get("status") == "ACTIVE" and v.get("trainingMode") == "FULL" for v in versions):
        raise _invalid("trainingMode UPDATE needs an ACTIVE solution version trained with FULL")


def _check_batch_request(
    version: dict[str, Any],
    segment: bool,
    mode: str | None,
    num_results: int | None,
    job_input: dict[str, Any],
    job_output: dict[str, Any],
) -> None:
    """The job kind must fit the recipe (:mod:`personalize_logic.facts.recipes`); ``numResults`` and
    the S3 paths must be valid."""
    row = _recipe(version["recipeArn"])
    if segment and not row.batch_segment:
        raise _invalid(
            f"Batch segment jobs need a solution version trained with a USER_SEGMENTATION recipe, not "
            f"{row.name} ({row.recipe_type})"
        )
    if not segment and not row.batch_inference:
        raise _invalid(
            f"The recipe {row.name} ({row.recipe_type}) has no batch inference jobs"
            + ("; create a batch segment job" if row.batch_segment else "")
        )
    if not segment and mode == "THEME_GENERATION":
        if not row.theme_generation:
            raise _invalid(f"THEME_GENERATION is for the Similar-Items recipe, not {row.name}")
        raise _invalid("THEME_GENERATION is not supported by this emulator")
    limit = BATCH_SEGMENT_MAX_RESULTS if segment else BATCH_INFERENCE_MAX_RESULTS
    if num_results is not None and not 1 <= num_results <= limit:
        raise _invalid(f"numResults must be between 1 and {limit}")
    for path in (job_input["s3DataSource"]["path"], job_output["s3DataDestination"]["path"]):
        if not path.startswith("s3://"):
            raise _invalid(f"{path} must be an s3:// location")


def _check_batch_filter(version: dict[str, Any], segment: bool, expression: str) -> None:
    """The filter's kind must fit the job ("Filter expressions": ItemID filters for item
    recommendations, UserID filters for user segments; no Interactions filters with
    Item-Attribute-Affinity)."""
    from emulators.personalize.filters import FilterExpressionError, compile_filter

    row = _recipe(version["recipeArn"])
    try:
        compiled = compile_filter(expression)
    except FilterExpressionError as exc:
        raise _invalid(f"Invalid filter expression: {exc}") from exc
    wanted = "USER" if segment else "ITEM"
    if compiled.target != wanted:
        kind = "UserID" if segment else "ItemID"
        raise _invalid(f"A {'batch segment' if segment else 'batch inference'} job takes {kind} filters")
    if compiled.uses_interactions() and not row.interaction_filters:
        raise _invalid(f"Interactions filters can't be used with the {row.name} recipe")
