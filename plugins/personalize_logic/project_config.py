"""
Project configuration: one file per personalization project in ``include/config/``.

The format of the retired AWS Solution "Maintaining Personalized Experiences with Machine Learning"
(MPE) is accepted as it is: its keys (``tags``, ``datasetGroup``, ``datasets``, ``eventTracker``,
``filters``, ``recommenders``, ``solutions``) keep their meaning, ``serviceConfig`` blocks are passed
to the boto3 ``create_*`` calls, and unknown keys are errors, as in MPE's own validator.

This project's additions live apart from them, under one top-level key, ``pipeline`` (export source,
destinations, schedules, alerting, quality gate). They may sit in the same file or in a sidecar
``<name>.pipeline.json`` beside it, so an MPE file can be used byte for byte. A sidecar may also add
MPE-format blocks (for instance a solution with ``batchInferenceJobs``); solutions and filters are
appended by name, a name given twice is an error.

Reading a config is a local file read and a pydantic validation, nothing else: it is what the DAG
files do at parse time.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

RECIPE_PREFIX = "arn:aws:personalize:::recipe/"
USER_SEGMENTATION_RECIPES = ("aws-item-affinity", "aws-item-attribute-affinity")
SIDE_CAR_SUFFIX = ".pipeline.json"


class ConfigError(ValueError):
    """A config file is invalid; the message names the file and every offending key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Open(BaseModel):
    """A ``serviceConfig`` block: boto3 parameters, passed through (validated by the service)."""

    model_config = ConfigDict(extra="allow")


class Tag(_Strict):
    tagKey: str
    tagValue: str


class NamedServiceConfig(_Open):
    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*$")


class DatasetGroupWorkflow(_Strict):
    schedules: dict[Literal["import"], str] | None = None
    maxAge: str | None = None


class DatasetGroupConfig(_Strict):
    serviceConfig: NamedServiceConfig
    workflowConfig: DatasetGroupWorkflow | None = None


class SchemaServiceConfig(_Open):
    name: str
    schema_: dict[str, Any] = Field(alias="schema")
    domain: str | None = None

    @field_validator("schema_", mode="before")
    @classmethod
    def _schema_object(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value)
        return value

    @field_validator("schema_")
    @classmethod
    def _avro(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Structural check only: this runs at every DAG parse. The full Avro check (fastavro)
        # runs in check_avro_schemas(), called by the tests and by `python -m personalize_logic...`.
        fields = value.get("fields")
        if value.get("type") != "record" or not isinstance(fields, list) or not fields:
            raise ValueError("not a valid Avro schema: a Personalize schema is a record with fields")
        for index, item in enumerate(fields):
            if not isinstance(item, dict) or not item.get("name") or "type" not in item:
                raise ValueError(f"not a valid Avro schema: fields[{index}] needs a name and a type")
        return value

    def field_names(self) -> list[str]:
        return [f["name"] for f in self.schema_.get("fields", [])]


class _ServiceBlock(_Strict):
    serviceConfig: NamedServiceConfig


class _SchemaBlock(_Strict):
    serviceConfig: SchemaServiceConfig


class DatasetConfig(_Strict):
    dataset: _ServiceBlock
    schema_: _SchemaBlock = Field(alias="schema")


class DatasetsServiceConfig(_Strict):
    importMode: Literal["FULL", "INCREMENTAL"] = "FULL"
    publishAttributionMetricsToS3: bool | None = None
    tags: list[Tag] | None = None


class DatasetsConfig(_Strict):
    serviceConfig: DatasetsServiceConfig | None = None
    interactions: DatasetConfig
    items: DatasetConfig | None = None
    users: DatasetConfig | None = None

    def by_type(self) -> dict[str, DatasetConfig]:
        types = {"Interactions": self.interactions, "Items": self.items, "Users": self.users}
        return {k: v for k, v in types.items() if v is not None}


class FilterServiceConfig(NamedServiceConfig):
    filterExpression: str = Field(min_length=1, max_length=2500)


class FilterConfig(_Strict):
    serviceConfig: FilterServiceConfig


class BatchJobWorkflow(_Strict):
    schedule: str | None = None
    maxAge: str | None = None


class BatchJobConfig(_Strict):
    serviceConfig: dict[str, Any] = Field(default_factory=dict)
    workflowConfig: BatchJobWorkflow | None = None

    @field_validator("serviceConfig")
    @classmethod
    def _generated_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        generated = {"jobName", "solutionVersionArn", "jobInput", "jobOutput", "roleArn"} & set(value)
        if generated:
            raise ValueError(f"{sorted(generated)} are generated by the pipeline for every run; remove them")
        return value


class SolutionVersionConfig(_Strict):
    trainingMode: Literal["FULL", "UPDATE"] = "FULL"
    tags: list[Tag] | None = None


class SolutionServiceConfig(NamedServiceConfig):
    recipeArn: str
    solutionVersion: SolutionVersionConfig | None = None

    @field_validator("recipeArn")
    @classmethod
    def _recipe(cls, value: str) -> str:
        if not value.startswith(RECIPE_PREFIX):
            raise ValueError(f"recipeArn must start with {RECIPE_PREFIX!r}")
        return value

    @property
    def recipe(self) -> str:
        return self.recipeArn.removeprefix(RECIPE_PREFIX)


class SolutionSchedules(_Strict):
    full: str | None = None
    update: str | None = None
    maxAge: str | None = None


class SolutionWorkflow(_Strict):
    schedules: SolutionSchedules | None = None


class CampaignConfig(_Strict):
    serviceConfig: NamedServiceConfig


class SolutionConfig(_Strict):
    serviceConfig: SolutionServiceConfig
    workflowConfig: SolutionWorkflow | None = None
    campaigns: list[CampaignConfig] = Field(default_factory=list)
    batchInferenceJobs: list[BatchJobConfig] = Field(default_factory=list)
    batchSegmentJobs: list[BatchJobConfig] = Field(default_factory=list)

    @property
    def name(self) -> str:
        return self.serviceConfig.name

    @model_validator(mode="after")
    def _segment_jobs_need_segmentation_recipe(self) -> SolutionConfig:
        recipe = self.serviceConfig.recipe
        if self.batchSegmentJobs and recipe not in USER_SEGMENTATION_RECIPES:
            raise ValueError(
                f"batchSegmentJobs need a USER_SEGMENTATION recipe {USER_SEGMENTATION_RECIPES}, not {recipe}"
            )
        if self.batchInferenceJobs and recipe in USER_SEGMENTATION_RECIPES:
            raise ValueError(f"batchInferenceJobs cannot use the user-segmentation recipe {recipe}")
        return self


# --- this project's additions ---------------------------------------------------------------------


class MParticleSource(_Strict):
    sourcePrefix: str = Field(description="s3://bucket/prefix/ holding dt=YYYY-MM-DD/ folders of batches")
    actions: list[str] = Field(
        default_factory=lambda: ["purchase", "view_detail", "add_to_cart", "add_to_wishlist"]
    )
    userIdSource: Literal["mpid", "customer_id"] = "mpid"
    quarantineThreshold: float = Field(default=0.01, ge=0, le=1)


class SqlSource(_Strict):
    connId: str = "postgres_default"
    sqlFile: str = "sql/unload_interactions.sql"


class RedshiftSource(_Strict):
    connId: str = "redshift_default"
    sqlFile: str = "sql/unload_interactions.sql"
    iamRoleArn: str | None = None


class ExportConfig(_Strict):
    source: Literal["mparticle", "sql", "redshift", "none"] = "none"
    schedule: str = "@daily"
    startDate: date = date(2026, 1, 1)
    catchup: bool = False
    lookbackDays: int = Field(default=30, ge=1, le=3650)
    mparticle: MParticleSource | None = None
    sql: SqlSource | None = None
    redshift: RedshiftSource | None = None

    @model_validator(mode="after")
    def _source_settings(self) -> ExportConfig:
        if self.source in ("mparticle", "sql", "redshift") and getattr(self, self.source) is None:
            raise ValueError(f"export.source is {self.source!r} but export.{self.source} is missing")
        return self


class QualityGate(_Strict):
    metric: str = "normalized_discounted_cumulative_gain_at_10"
    maxRegression: float = Field(
        default=0.10, ge=0, le=1, description="relative drop allowed vs last accepted"
    )
    minValue: float | None = Field(default=None, ge=0, le=1)


class TrainingConfig(_Strict):
    schedule: str | None = Field(default=None, description="None: trained when a fresh export lands (Asset)")
    qualityGate: QualityGate = Field(default_factory=QualityGate)
    itemsSource: str | None = Field(
        default=None, description="s3:// CSV file or folder for the items dataset"
    )
    usersSource: str | None = Field(
        default=None, description="s3:// CSV file or folder for the users dataset"
    )


class BatchInferenceSettings(_Strict):
    numResults: int = Field(default=25, ge=1, le=500)
    usersFrom: Literal["interactions"] = "interactions"


class BatchSegmentSettings(_Strict):
    jobInput: str | None = Field(
        default=None, description="s3:// JSON-lines query file; default: include data"
    )
    queries: list[dict[str, str]] = Field(default_factory=list)


class MParticleDestination(_Strict):
    enabled: bool = True
    connId: str = "mparticle_default"
    environment: Literal["production", "development"] = "development"
    identity: Literal["mpid", "customer_id"] = "mpid"
    eventName: str = "AWS Recs Update"


class PinpointDestination(_Strict):
    enabled: bool = True
    applicationId: str
    importRoleArn: str
    exportRoleArn: str | None = None
    channel: str | None = "EMAIL"


class ActivationConfig(_Strict):
    mparticle: MParticleDestination | None = None
    pinpoint: PinpointDestination | None = None


class AlertingConfig(_Strict):
    snsTopicArn: str | None = None
    emails: list[str] = Field(default_factory=list)
    slackConnId: str | None = None


class PipelineConfig(_Strict):
    owner: str = "personalization"
    awsConnId: str = "aws_default"
    bucket: str = Field(description="S3 bucket for every stage's data (templated values allowed)")
    prefix: str = ""
    roleArn: str = Field(description="IAM role Personalize assumes to read/write S3")
    retries: int = Field(default=3, ge=2)
    export: ExportConfig = Field(default_factory=ExportConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    batchInference: BatchInferenceSettings = Field(default_factory=BatchInferenceSettings)
    batchSegment: BatchSegmentSettings = Field(default_factory=BatchSegmentSettings)
    activation: ActivationConfig = Field(default_factory=ActivationConfig)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)

    def s3(self, *parts: str) -> str:
        key = "/".join(p.strip("/") for p in (self.prefix, *parts) if p and p.strip("/"))
        return f"s3://{self.bucket}/{key}"


def default_pipeline(project: str) -> dict[str, Any]:
    """The settings a bare MPE file runs with: everything templated from Airflow Variables at run time."""
    return {
        "bucket": "{{ var.value.personalize_bucket }}",
        "prefix": project,
        "roleArn": "{{ var.value.personalize_role_arn }}",
    }


class ProjectConfig(_Strict):
    """A whole config file: MPE keys plus ``pipeline``."""

    tags: list[Tag] | None = None
    datasetGroup: DatasetGroupConfig
    datasets: DatasetsConfig
    eventTracker: _ServiceBlock | None = None
    filters: list[FilterConfig] = Field(default_factory=list)
    recommenders: list[dict[str, Any]] = Field(default_factory=list)
    solutions: list[SolutionConfig] = Field(default_factory=list)
    pipeline: PipelineConfig

    @property
    def name(self) -> str:
        return self.datasetGroup.serviceConfig.name

    @model_validator(mode="after")
    def _unique_names(self) -> ProjectConfig:
        for kind, names in (
            ("solution", [s.name for s in self.solutions]),
            ("filter", [f.serviceConfig.name for f in self.filters]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{kind} names must be unique; repeated: {dupes}")
        for solution in self.solutions:
            if (solution.batchInferenceJobs or solution.batchSegmentJobs) and len(solution.name) > 37:
                raise ValueError(
                    f"solution name {solution.name!r} is longer than 37 characters; batch job names "
                    "derived from it would pass Personalize's 63-character limit"
                )
        return self

    def solutions_with(self, kind: Literal["batchInferenceJobs", "batchSegmentJobs"]) -> list[SolutionConfig]:
        return [s for s in self.solutions if getattr(s, kind)]

    def project_id(self) -> str:
        """A DAG-id-safe name for this project."""
        return re.sub(r"[^a-zA-Z0-9_]", "_", self.name)


def _merge(base: dict[str, Any], extra: dict[str, Any], where: str) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if key in ("solutions", "filters", "recommenders") and key in merged:
            merged[key] = [*merged[key], *value]
        elif key in merged and isinstance(merged[key], dict) and isinstance(value, dict):
            merged[key] = _merge(merged[key], value, f"{where}.{key}")
        elif key in merged:
            raise ConfigError(f"{where}: key {key!r} is set in both the config and its sidecar")
        else:
            merged[key] = value
    return merged


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: {exc.error_count()} invalid key(s)"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        lines.append(f"  - {loc}: {err['msg']}")
    return "\n".join(lines)


def load_config(path: str | Path) -> ProjectConfig:
    """
    Read and validate one config file (plus its ``.pipeline.json`` sidecar when present).

    :raises ConfigError: with the file name and the dotted path of every invalid key.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    sidecar = path.with_name(path.name.removesuffix(".json") + SIDE_CAR_SUFFIX)
    if sidecar.exists() and sidecar != path:
        try:
            extra = json.loads(sidecar.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{sidecar}: not valid JSON (line {exc.lineno}): {exc.msg}") from exc
        raw = _merge(raw, extra, sidecar.name)
    if "pipeline" not in raw:
        name = raw.get("datasetGroup", {}).get("serviceConfig", {}).get("name", path.stem)
        raw["pipeline"] = default_pipeline(str(name))
    try:
        return ProjectConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(path, exc)) from None


def check_avro_schemas(cfg: ProjectConfig) -> list[str]:
    """
    Parse every dataset schema of ``cfg`` with fastavro (the full Avro rules); return the problems.

    Not part of :func:`load_config`, which runs at every DAG parse and keeps to a structural check.
    """
    import fastavro

    problems = []
    for dataset_type, dataset in cfg.datasets.by_type().items():
        try:
            fastavro.parse_schema(dataset.schema_.serviceConfig.schema_)
        except Exception as exc:  # fastavro raises several exception types
            problems.append(f"datasets.{dataset_type.lower()}.schema: not a valid Avro schema: {exc}")
    return problems


def discover_configs(folder: str | Path) -> list[Path]:
    """Config files in ``folder`` (sidecars excluded), sorted for a stable DAG order."""
    return sorted(p for p in Path(folder).glob("*.json") if not p.name.endswith(SIDE_CAR_SUFFIX))
