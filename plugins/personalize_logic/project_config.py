"""
Project configuration: one file per personalization project in ``include/config/``.

The format of the retired AWS Solution "Maintaining Personalized Experiences with Machine Learning"
(MPE) is accepted where this pipeline acts on it: ``tags``, ``datasetGroup``, ``datasets``,
``filters`` and ``solutions`` (with ``batchInferenceJobs`` / ``batchSegmentJobs``) keep their meaning,
``serviceConfig`` blocks are passed to the boto3 ``create_*`` calls, and unknown keys are errors, as
in MPE's own validator. Every key either works or is rejected with an error that names it and says
why (:data:`NOT_ACTED_ON`); none is accepted and then ignored:

* works: root ``tags`` (MPE's rule: copied to every resource without tags of its own; schemas take
  none); every ``serviceConfig`` key of the dataset group, filters, solutions and batch jobs (passed
  to the create call, the service validates the ones not checked here); a dataset's ``name`` and
  ``tags``; a schema's ``name``, ``schema`` and ``domain`` (all ``CreateSchema`` takes: another key is
  an error here, not at run time); ``datasets.serviceConfig`` (``importMode`` is the default of the
  train DAG's Param ``import_mode``; ``publishAttributionMetricsToS3`` and ``tags`` go to every
  dataset import job); ``solutionVersion.trainingMode`` (the default of Param ``training_mode``) and
  ``solutionVersion.tags``.
* rejected, because this pipeline has no such step: ``eventTracker``, ``recommenders`` and
  ``solutions[].campaigns`` (it imports in bulk and runs batch jobs only); every ``workflowConfig``
  (MPE's cron ``schedules`` and ``maxAge``: here imports and training run on a fresh export or on
  ``pipeline.training.schedule``, and batch jobs when the metrics gate accepts a version);
  ``performAutoTraining: true`` (solutions are created with it off, ``false`` is accepted).
* rejected keys of this project's own block: ``pipeline.export.redshift.connId`` (source
  ``redshift`` UNLOADs through the Redshift Data API on ``pipeline.awsConnId``; ``source: sql`` is
  the connection path) and ``pipeline.batchInference.usersFrom`` (the users are always the training
  snapshot's).

The shipped MPE sample (``include/config/bingewatch.json``) uses none of the rejected keys, so it
loads byte for byte; no MPE key had to be kept as "accepted but not used".

This project's additions live apart from them, under one top-level key, ``pipeline`` (export source,
destinations, schedules, alerting, quality gate). They may sit in the same file or in a sidecar
``<name>.pipeline.json`` beside it, so an MPE file can be used byte for byte. A sidecar may also add
MPE-format blocks (for instance a solution with ``batchInferenceJobs``); solutions and filters are
appended by name, a name given twice is an error.

Reading a config is a local file read and a validation, nothing else: it is what the DAG files do
at parse time, on every parse.

Why msgspec and not pydantic: the models are declared with ``msgspec.Struct``. Declaring the same
36 models with pydantic cost 15 ms per parse (pydantic builds a validator per class when the module is
imported, and the dag-processor imports it afresh in every parsing process); msgspec's structs cost
well under a millisecond, and Airflow already imports msgspec. Both name the offending key; msgspec
stops at the first invalid key, so a config with several mistakes is fixed one error at a time.
``serviceConfig`` blocks are open (every key is kept for the boto3 call, the known ones are checked):
they are plain classes decoded through :func:`_dec_hook`.
"""

# No `from __future__ import annotations`: msgspec resolves real annotations faster than strings
# (0.8 ms instead of 1.8 ms on the first validation in a parsing process).
import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta, Struct, field

RECIPE_PREFIX = "arn:aws:personalize:::recipe/"
USER_SEGMENTATION_RECIPES = ("aws-item-affinity", "aws-item-attribute-affinity")
SIDE_CAR_SUFFIX = ".pipeline.json"

ResourceName = Annotated[str, Meta(min_length=1, max_length=63, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*$")]
Fraction = Annotated[float, Meta(ge=0, le=1)]


class ConfigError(ValueError):
    """A config file is invalid; the message names the file and the offending key."""


class _Strict(Struct, kw_only=True, forbid_unknown_fields=True):
    """A block whose keys are all known: an unknown key is an error."""


def _invalid(key: str, message: str) -> ValueError:
    """An error raised inside a block that names one of its keys (see :func:`_split_error`)."""
    return ValueError(f"@{key}: {message}")


_ERROR = re.compile(r"^(?:@(?P<sub>[^:]+): )?(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


def _split_error(message: str) -> tuple[str, str]:
    """msgspec's ``"<msg> - at `$.a[0].b`"`` (plus our ``@key:`` prefix) -> ``("a.0.b.key", msg)``."""
    match = _ERROR.match(message)
    assert match is not None  # the pattern matches any string
    path = re.sub(r"\[(\d+)\]", r".\1", match["path"] or "").lstrip(".")
    msg = match["msg"]
    keyed = re.match(r"Object (contains unknown|missing required) field `([^`]+)`$", msg)
    if keyed:
        path = f"{path}.{keyed[2]}" if path else keyed[2]
        msg = "unknown key" if keyed[1] == "contains unknown" else "required key is missing"
    if match["sub"]:
        path = f"{path}.{match['sub']}" if path else match["sub"]
    return path, msg


class _OpenBlock:
    """
    A ``serviceConfig`` block: boto3 parameters, every key kept and passed through.

    The keys this project reads are checked by the ``_Known`` struct; the others are left for the
    service to validate. :meth:`dump` returns the block as written (minus the keys the caller sets).
    """

    _Known: ClassVar[type[Struct]]
    # When set: the only keys the block's create call takes (the botocore model's input members
    # less those the pipeline sets); any other key is an error here rather than at run time.
    _only: ClassVar[tuple[str, str, frozenset[str]] | None] = None  # (API call, keys, key set)
    # Parameters of the create call that the pipeline sets itself: an error here, not at run time.
    _set_by_pipeline: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, raw: dict[str, Any]) -> None:
        for key in sorted(self._set_by_pipeline & set(raw)):
            raise _invalid(key, "set by the pipeline (the dataset group it creates); remove it")
        if self._only is not None:
            call, listed, allowed = self._only
            extra = sorted(set(raw) - allowed)
            if extra:
                raise _invalid(extra[0], f"unknown key: {call} takes only {listed}")
        known_names = set(self._Known.__struct_encode_fields__)
        try:
            known = msgspec.convert({k: v for k, v in raw.items() if k in known_names}, self._Known)
        except msgspec.ValidationError as exc:
            path, msg = _split_error(str(exc))
            raise _invalid(path, msg) if path else ValueError(msg) from None
        for name in known.__struct_fields__:
            setattr(self, name, getattr(known, name))
        self._raw = raw

    def dump(self, *, exclude: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
        """The block's keys as written, without ``exclude`` and without null values."""
        return {k: v for k, v in self._raw.items() if k not in exclude and v is not None}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._raw == self._raw

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._raw!r})"


def _dec_hook(kind: type, obj: Any) -> Any:
    if isinstance(kind, type) and issubclass(kind, _OpenBlock):
        if not isinstance(obj, dict):
            raise TypeError(f"Expected `object`, got `{type(obj).__name__}`")
        return kind(obj)
    raise NotImplementedError(f"no decoder for {kind!r}")


class Tag(_Strict, kw_only=True):
    tagKey: str
    tagValue: str


def tag_list(tags: list[Tag] | None) -> list[dict[str, str]] | None:
    """Tags as the ``tags`` parameter of a Personalize create call."""
    return None if tags is None else [{"tagKey": t.tagKey, "tagValue": t.tagValue} for t in tags]


class _NamedKnown(Struct, kw_only=True):
    name: ResourceName


class NamedServiceConfig(_OpenBlock):
    _Known = _NamedKnown
    name: str


class DatasetGroupConfig(_Strict, kw_only=True):
    serviceConfig: NamedServiceConfig


class _SchemaKnown(Struct, kw_only=True):
    name: str
    schema_: dict[str, Any] | str = field(name="schema")
    domain: str | None = None

    def __post_init__(self) -> None:
        value = self.schema_
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise _invalid("schema", f"not valid JSON: {exc.msg}") from None
            if not isinstance(value, dict):
                raise _invalid("schema", "not a valid Avro schema: a Personalize schema is a record")
            self.schema_ = value
        # Structural check only: this runs at every DAG parse. The full Avro check (fastavro)
        # runs in check_avro_schemas(), called by the tests.
        fields = value.get("fields")
        if value.get("type") != "record" or not isinstance(fields, list) or not fields:
            raise _invalid("schema", "not a valid Avro schema: a Personalize schema is a record with fields")
        for index, item in enumerate(fields):
            if not isinstance(item, dict) or not item.get("name") or "type" not in item:
                raise _invalid("schema", f"not a valid Avro schema: fields[{index}] needs a name and a type")


class SchemaServiceConfig(_OpenBlock):
    _Known = _SchemaKnown
    _only = ("CreateSchema", "name, schema and domain", frozenset({"name", "schema", "domain"}))
    name: str
    schema_: dict[str, Any]
    domain: str | None

    def field_names(self) -> list[str]:
        return [f["name"] for f in self.schema_.get("fields", [])]


class DatasetServiceConfig(_OpenBlock):
    _Known = _NamedKnown
    # CreateDataset's other members (datasetGroupArn, datasetType, schemaArn) are set by the pipeline
    _only = ("CreateDataset", "name and tags here", frozenset({"name", "tags"}))
    name: str


class _DatasetBlock(_Strict, kw_only=True):
    serviceConfig: DatasetServiceConfig


class _SchemaBlock(_Strict, kw_only=True):
    serviceConfig: SchemaServiceConfig


class DatasetConfig(_Strict, kw_only=True):
    dataset: _DatasetBlock
    schema_: _SchemaBlock = field(name="schema")


class DatasetsServiceConfig(_Strict, kw_only=True):
    """Settings of every dataset import job (``CreateDatasetImportJob``)."""

    importMode: Literal["FULL", "INCREMENTAL"] = "FULL"  # the train DAG's default for Param import_mode
    publishAttributionMetricsToS3: bool | None = None
    tags: list[Tag] | None = None


class DatasetsConfig(_Strict, kw_only=True):
    serviceConfig: DatasetsServiceConfig | None = None
    interactions: DatasetConfig
    items: DatasetConfig | None = None
    users: DatasetConfig | None = None

    def by_type(self) -> dict[str, DatasetConfig]:
        types = {"Interactions": self.interactions, "Items": self.items, "Users": self.users}
        return {k: v for k, v in types.items() if v is not None}

    @property
    def import_settings(self) -> DatasetsServiceConfig:
        return self.serviceConfig or DatasetsServiceConfig()


class _FilterKnown(_NamedKnown, kw_only=True):
    filterExpression: Annotated[str, Meta(min_length=1, max_length=2500)]


class FilterServiceConfig(_OpenBlock):
    _Known = _FilterKnown
    _set_by_pipeline = frozenset({"datasetGroupArn"})
    name: str
    filterExpression: str


class FilterConfig(_Strict, kw_only=True):
    serviceConfig: FilterServiceConfig


class BatchJobConfig(_Strict, kw_only=True):
    serviceConfig: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        generated = {"jobName", "solutionVersionArn", "jobInput", "jobOutput", "roleArn"} & set(
            self.serviceConfig
        )
        if generated:
            raise _invalid(
                "serviceConfig",
                f"{sorted(generated)} are generated by the pipeline for every run; remove them",
            )


class SolutionVersionConfig(_Strict, kw_only=True):
    trainingMode: Literal["FULL", "UPDATE"] = "FULL"
    tags: list[Tag] | None = None


class _SolutionKnown(_NamedKnown, kw_only=True):
    recipeArn: str
    solutionVersion: SolutionVersionConfig | None = None
    performAutoTraining: bool | None = None

    def __post_init__(self) -> None:
        if not self.recipeArn.startswith(RECIPE_PREFIX):
            raise _invalid("recipeArn", f"must start with {RECIPE_PREFIX!r}")
        if self.performAutoTraining:
            raise _invalid(
                "performAutoTraining",
                "solutions are created with performAutoTraining=false: the train DAG trains on its own "
                "schedule, and automatic training would train (and bill) a second time; remove the key",
            )


class SolutionServiceConfig(_OpenBlock):
    _Known = _SolutionKnown
    _set_by_pipeline = frozenset({"datasetGroupArn"})
    name: str
    recipeArn: str
    solutionVersion: SolutionVersionConfig | None

    @property
    def recipe(self) -> str:
        return self.recipeArn.removeprefix(RECIPE_PREFIX)


class SolutionConfig(_Strict, kw_only=True):
    serviceConfig: SolutionServiceConfig
    batchInferenceJobs: list[BatchJobConfig] = field(default_factory=list)
    batchSegmentJobs: list[BatchJobConfig] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.serviceConfig.name

    def __post_init__(self) -> None:
        recipe = self.serviceConfig.recipe
        if self.batchSegmentJobs and recipe not in USER_SEGMENTATION_RECIPES:
            raise _invalid(
                "batchSegmentJobs",
                f"batchSegmentJobs need a USER_SEGMENTATION recipe {USER_SEGMENTATION_RECIPES}, not {recipe}",
            )
        if self.batchInferenceJobs and recipe in USER_SEGMENTATION_RECIPES:
            raise _invalid(
                "batchInferenceJobs", f"batchInferenceJobs cannot use the user-segmentation recipe {recipe}"
            )


# --- this project's additions ---------------------------------------------------------------------


class MParticleSource(_Strict, kw_only=True):
    sourcePrefix: str  # s3://bucket/prefix/ holding dt=YYYY-MM-DD/ folders of batches
    actions: list[str] = field(
        default_factory=lambda: ["purchase", "view_detail", "add_to_cart", "add_to_wishlist"]
    )
    userIdSource: Literal["mpid", "customer_id"] = "mpid"
    quarantineThreshold: Fraction = 0.01


class SqlSource(_Strict, kw_only=True):
    connId: str = "postgres_default"
    sqlFile: str = "sql/unload_interactions.sql"


class RedshiftSource(_Strict, kw_only=True):
    """
    ``UNLOAD`` of ``sqlFile`` through the Redshift Data API on ``pipeline.awsConnId`` (the cluster
    writes the CSV files to S3; no row passes through the worker). ``iamRoleArn`` is the role the
    cluster assumes to write (associated with the cluster, or ``default``); ``clusterIdentifier``
    (provisioned) or ``workgroupName`` (Serverless), one of them; ``dbUser`` (temporary credentials,
    provisioned only) or ``secretArn`` (Secrets Manager) authenticate, as the Data API's
    ``ExecuteStatement`` takes them.
    """

    sqlFile: str = "sql/unload_interactions.sql"
    iamRoleArn: str
    database: str
    clusterIdentifier: str | None = None
    workgroupName: str | None = None
    dbUser: str | None = None
    secretArn: str | None = None

    def __post_init__(self) -> None:
        if (self.clusterIdentifier is None) == (self.workgroupName is None):
            raise _invalid("clusterIdentifier", "set exactly one of clusterIdentifier and workgroupName")
        if self.dbUser is not None and self.workgroupName is not None:
            raise _invalid("dbUser", "dbUser (temporary credentials) works with clusterIdentifier only")


class AthenaEngine(_Strict, kw_only=True):
    """
    Where the Athena engine keeps its table (``export.engine: athena``): the Glue ``database``
    (default: the project id in lower case) and ``table`` over ``export.mparticle.sourcePrefix``, and
    the Athena ``workgroup`` its queries run in.
    """

    database: Annotated[str, Meta(pattern=r"^[a-z0-9_]{1,255}$")] | None = None
    table: Annotated[str, Meta(pattern=r"^[a-z0-9_]{1,255}$")] = "mparticle_batches"
    workgroup: Annotated[str, Meta(pattern=r"^[a-zA-Z0-9._-]{1,128}$")] = "primary"


class ExportConfig(_Strict, kw_only=True):
    """
    Where each interval's interactions come from: ``mparticle`` (batch files in S3), ``sql`` (a SQL
    file run by ``SqlToInteractionsOperator`` on a common-sql connection, the rows streamed through
    the worker), ``redshift`` (the SQL file UNLOADed by Redshift straight to S3), ``none`` (no export
    DAG).
    """

    source: Literal["mparticle", "sql", "redshift", "none"] = "none"
    schedule: str = "@daily"
    startDate: date = date(2026, 1, 1)
    catchup: bool = False
    lookbackDays: Annotated[int, Meta(ge=1, le=3650)] = 30
    mparticle: MParticleSource | None = None
    sql: SqlSource | None = None
    redshift: RedshiftSource | None = None
    # mParticle only: "python" parses the batches on the worker, "athena" queries them where they lie
    engine: Literal["python", "athena"] = "python"
    athena: AthenaEngine | None = None

    def __post_init__(self) -> None:
        if self.source in ("mparticle", "sql", "redshift") and getattr(self, self.source) is None:
            raise _invalid(
                self.source, f"export.source is {self.source!r} but export.{self.source} is missing"
            )
        if self.engine == "athena" and self.source != "mparticle":
            raise _invalid("engine", "engine 'athena' exports mParticle batches: it needs source 'mparticle'")
        if self.athena is not None and self.engine != "athena":
            raise _invalid(
                "athena", "export.athena configures export.engine 'athena'; set engine or remove it"
            )


class QualityGate(_Strict, kw_only=True):
    metric: str = "normalized_discounted_cumulative_gain_at_10"
    maxRegression: Fraction = 0.10  # relative drop allowed vs the last accepted version
    minValue: Fraction | None = None


class TrainingConfig(_Strict, kw_only=True):
    schedule: str | None = None  # None: trained when a fresh export lands (Asset)
    qualityGate: QualityGate = field(default_factory=QualityGate)
    itemsSource: str | None = None  # s3:// CSV file or folder for the items dataset
    usersSource: str | None = None  # s3:// CSV file or folder for the users dataset


class BatchInferenceSettings(_Strict, kw_only=True):
    numResults: Annotated[int, Meta(ge=1, le=500)] = 25


class BatchSegmentSettings(_Strict, kw_only=True):
    jobInput: str | None = None  # s3:// JSON-lines query file; default: include data
    queries: list[dict[str, str]] = field(default_factory=list)


class MParticleDestination(_Strict, kw_only=True):
    enabled: bool = True
    connId: str = "mparticle_default"
    environment: Literal["production", "development"] = "development"
    identity: Literal["mpid", "customer_id"] = "mpid"
    eventName: str = "AWS Recs Update"


class PinpointDestination(_Strict, kw_only=True):
    enabled: bool = True
    applicationId: str
    importRoleArn: str
    exportRoleArn: str | None = None
    channel: str | None = "EMAIL"


class ActivationConfig(_Strict, kw_only=True):
    mparticle: MParticleDestination | None = None
    pinpoint: PinpointDestination | None = None


class AlertingConfig(_Strict, kw_only=True):
    snsTopicArn: str | None = None
    emails: list[str] = field(default_factory=list)
    slackConnId: str | None = None


class PipelineConfig(_Strict, kw_only=True):
    owner: str = "personalization"
    awsConnId: str = "aws_default"
    bucket: str  # S3 bucket for every stage's data (templated values allowed)
    prefix: str = ""
    roleArn: str  # IAM role Personalize assumes to read/write S3
    retries: Annotated[int, Meta(ge=2)] = 3
    export: ExportConfig = field(default_factory=ExportConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    batchInference: BatchInferenceSettings = field(default_factory=BatchInferenceSettings)
    batchSegment: BatchSegmentSettings = field(default_factory=BatchSegmentSettings)
    activation: ActivationConfig = field(default_factory=ActivationConfig)
    alerting: AlertingConfig = field(default_factory=AlertingConfig)

    def s3(self, *parts: str) -> str:
        from personalize_logic.layout import BucketLayout

        return BucketLayout(self.bucket, self.prefix).uri(*parts)


def default_pipeline(project: str) -> dict[str, Any]:
    """The settings a bare MPE file runs with: everything templated from Airflow Variables at run time."""
    return {
        "bucket": "{{ var.value.personalize_bucket }}",
        "prefix": project,
        "roleArn": "{{ var.value.personalize_role_arn }}",
    }


class ProjectConfig(_Strict, kw_only=True):
    """A whole config file: MPE keys plus ``pipeline``."""

    tags: list[Tag] | None = None  # copied into every block without tags of its own (load_config)
    datasetGroup: DatasetGroupConfig
    datasets: DatasetsConfig
    filters: list[FilterConfig] = field(default_factory=list)
    solutions: list[SolutionConfig] = field(default_factory=list)
    pipeline: PipelineConfig

    @property
    def name(self) -> str:
        return self.datasetGroup.serviceConfig.name

    def __post_init__(self) -> None:
        for kind, key, names in (
            ("solution", "solutions", [s.name for s in self.solutions]),
            ("filter", "filters", [f.serviceConfig.name for f in self.filters]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise _invalid(key, f"{kind} names must be unique; repeated: {dupes}")
        for index, solution in enumerate(self.solutions):
            if (solution.batchInferenceJobs or solution.batchSegmentJobs) and len(solution.name) > 37:
                raise _invalid(
                    f"solutions.{index}.serviceConfig.name",
                    f"solution name {solution.name!r} is longer than 37 characters; batch job names "
                    "derived from it would pass Personalize's 63-character limit",
                )

    def solutions_with(self, kind: Literal["batchInferenceJobs", "batchSegmentJobs"]) -> list[SolutionConfig]:
        return [s for s in self.solutions if getattr(s, kind)]

    def project_id(self) -> str:
        """A DAG-id-safe name for this project."""
        return re.sub(r"[^a-zA-Z0-9_]", "_", self.name)


def _merge(base: dict[str, Any], extra: dict[str, Any], where: str) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if key in ("solutions", "filters") and key in merged:
            merged[key] = [*merged[key], *value]
        elif key in merged and isinstance(merged[key], dict) and isinstance(value, dict):
            merged[key] = _merge(merged[key], value, f"{where}.{key}")
        elif key in merged:
            raise ConfigError(f"{where}: key {key!r} is set in both the config and its sidecar")
        else:
            merged[key] = value
    return merged


# Keys that MPE (or an earlier version of this project) accepts but this pipeline would not act on.
# Accepting them would let a config look as if it did something it does not: each is an error that
# names the key and says why. ``*`` stands for every entry of a list.
NOT_ACTED_ON: dict[tuple[str, ...], str] = {
    ("eventTracker",): (
        "event trackers are not created by this pipeline: it imports interactions in bulk, once per "
        "data interval, and never calls PutEvents; remove the block, or create the tracker outside Airflow"
    ),
    ("recommenders",): (
        "recommenders are not created by this pipeline: it trains solutions and runs batch jobs; "
        "remove the block, or create the recommenders outside Airflow"
    ),
    ("solutions", "*", "campaigns"): (
        "campaigns are not deployed by this pipeline: it runs batch inference and batch segment jobs "
        "only; remove the block, or deploy the campaign outside Airflow"
    ),
    ("datasetGroup", "workflowConfig"): (
        "imports run in the train DAG, which runs on a fresh export (or on pipeline.training.schedule), "
        "and every run imports; remove workflowConfig, and set pipeline.training.schedule for a cron"
    ),
    ("solutions", "*", "workflowConfig"): (
        "every train DAG run trains each solution, on a fresh export or on pipeline.training.schedule; "
        "the training mode is serviceConfig.solutionVersion.trainingMode (or the run's Param "
        "training_mode); remove workflowConfig"
    ),
    ("solutions", "*", "batchInferenceJobs", "*", "workflowConfig"): (
        "batch jobs run when the metrics gate accepts a new solution version (the batch DAG is "
        "scheduled on it), not on a cron; remove workflowConfig"
    ),
    ("solutions", "*", "batchSegmentJobs", "*", "workflowConfig"): (
        "batch jobs run when the metrics gate accepts a new solution version (the batch DAG is "
        "scheduled on it), not on a cron; remove workflowConfig"
    ),
    ("pipeline", "export", "redshift", "connId"): (
        "source 'redshift' UNLOADs through the Redshift Data API on pipeline.awsConnId (set database, "
        "clusterIdentifier or workgroupName, iamRoleArn); to run the SQL over a database connection "
        "and stream the rows through the worker, use source 'sql' with export.sql.connId"
    ),
    ("pipeline", "batchInference", "usersFrom"): (
        "the users of a batch inference job are always those of the training snapshot's "
        "interactions; there is nothing to choose: remove the key"
    ),
}


def _keys_not_acted_on(raw: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The dotted keys of ``raw`` listed in :data:`NOT_ACTED_ON`, each with its reason."""

    def walk(node: Any, pattern: tuple[str, ...], where: tuple[str, ...]) -> Iterator[str]:
        head, rest = pattern[0], pattern[1:]
        if head == "*":
            items = enumerate(node) if isinstance(node, list) else iter(())
            for index, item in items:
                yield from walk(item, rest, (*where, str(index)))
        elif isinstance(node, dict) and head in node:
            if rest:
                yield from walk(node[head], rest, (*where, head))
            else:
                yield ".".join((*where, head))

    for pattern, reason in NOT_ACTED_ON.items():
        for key in walk(raw, pattern, ()):
            yield key, reason


def _copy_root_tags(raw: dict[str, Any]) -> None:
    """
    MPE's root ``tags`` apply to every resource that has no ``tags`` of its own: copy them into
    each create call's block (dataset group, datasets, dataset import jobs, filters, solutions,
    solution versions, batch jobs; schemas take no tags). Left alone when they are not a valid tag
    list: validation then reports them at ``tags``.
    """
    try:
        tags = tag_list(msgspec.convert(raw.get("tags"), list[Tag]))
    except msgspec.ValidationError:
        return
    if not tags:
        return

    def give(block: Any) -> None:
        if isinstance(block, dict) and "tags" not in block:
            block["tags"] = [dict(tag) for tag in tags]

    def at(node: Any, key: str, *, create: bool = False) -> Any:
        """``node[key]`` if ``node`` is a dict; an optional block missing is created empty."""
        if not isinstance(node, dict):
            return None
        return node.setdefault(key, {}) if create else node.get(key)

    def each(node: Any) -> list[Any]:
        return node if isinstance(node, list) else []

    give(at(at(raw, "datasetGroup"), "serviceConfig"))
    datasets = at(raw, "datasets")
    give(at(datasets, "serviceConfig", create=True))
    for kind in ("interactions", "items", "users"):
        give(at(at(at(datasets, kind), "dataset"), "serviceConfig"))
    for block in each(raw.get("filters")):
        give(at(block, "serviceConfig"))
    for solution in each(raw.get("solutions")):
        service = at(solution, "serviceConfig")
        give(service)
        give(at(service, "solutionVersion", create=True))
        for job in each(at(solution, "batchInferenceJobs")) + each(at(solution, "batchSegmentJobs")):
            give(at(job, "serviceConfig", create=True))


def _format_error(path: Path, exc: msgspec.ValidationError) -> str:
    key, message = _split_error(str(exc))
    return f"{path}: invalid key {key or '<root>'}: {message}"


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
    for key, reason in _keys_not_acted_on(raw):
        raise ConfigError(f"{path}: invalid key {key}: {reason}")
    if "pipeline" not in raw:
        name = raw.get("datasetGroup", {}).get("serviceConfig", {}).get("name", path.stem)
        raw["pipeline"] = default_pipeline(str(name))
    _copy_root_tags(raw)
    try:
        return msgspec.convert(raw, ProjectConfig, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise ConfigError(_format_error(path, exc)) from None


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
