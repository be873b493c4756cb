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
import copy
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta, Struct, field

from personalize_logic.facts import recipes as recipe_facts
from personalize_logic.text import is_text

RECIPE_PREFIX = recipe_facts.RECIPE_ARN_PREFIX
SIDE_CAR_SUFFIX = ".pipeline.json"
# An IAM role ARN: botocore's RoleArn pattern (personalize, 2018-05-22), anchored.
ROLE_ARN = re.compile(r"^arn:([a-z\d-]+):iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
# An S3 bucket name: 3-63 characters, lower-case letters, digits, dots and hyphens, starting and ending
# with a letter or digit (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
MAX_BATCH_INFERENCE_RESULTS = recipe_facts.MAX_BATCH_INFERENCE_RESULTS
MAX_BATCH_SEGMENT_RESULTS = recipe_facts.MAX_BATCH_SEGMENT_RESULTS

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
        num_results = self.serviceConfig.get("numResults")
        if num_results is not None and (
            isinstance(num_results, bool) or not isinstance(num_results, int) or num_results < 1
        ):
            raise _invalid("serviceConfig.numResults", f"must be a positive integer, got {num_results!r}")

    def check_num_results(self, maximum: int, kind: str) -> None:
        """``numResults`` within the job kind's maximum (called by :class:`SolutionConfig`)."""
        num_results = self.serviceConfig.get("numResults")
        if num_results is not None and num_results > maximum:
            raise _invalid("serviceConfig.numResults", f"{kind} take at most {maximum}, got {num_results}")


class SolutionVersionConfig(_Strict, kw_only=True):
    trainingMode: Literal["FULL", "UPDATE"] = "FULL"
    tags: list[Tag] | None = None


class _SolutionKnown(_NamedKnown, kw_only=True):
    recipeArn: str
    solutionVersion: SolutionVersionConfig | None = None
    performAutoTraining: bool | None = None
    performIncrementalUpdate: bool | None = None

    def __post_init__(self) -> None:
        if not self.recipeArn.startswith(RECIPE_PREFIX):
            raise _invalid("recipeArn", f"must start with {RECIPE_PREFIX!r}")
        try:
            row = recipe_facts.recipe(self.recipeArn)
        except recipe_facts.UnknownRecipeError as exc:
            raise _invalid("recipeArn", str(exc)) from None
        mode = self.solutionVersion.trainingMode if self.solutionVersion else "FULL"
        problem = recipe_facts.training_mode_error(self.recipeArn, mode)
        if problem:
            raise _invalid("solutionVersion.trainingMode", problem)
        if self.performIncrementalUpdate and not row.incremental_update:
            raise _invalid(
                "performIncrementalUpdate",
                f"the recipe {row.name} does not support incremental updates (CreateSolution documents "
                "performIncrementalUpdate for the semantic-similarity recipe only); remove the key",
            )
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

    @property
    def recipe_facts(self) -> recipe_facts.Recipe:
        """The recipe's row of :mod:`personalize_logic.facts.recipes` (validated at load)."""
        return recipe_facts.recipe(self.recipeArn)


class SolutionConfig(_Strict, kw_only=True):
    serviceConfig: SolutionServiceConfig
    batchInferenceJobs: list[BatchJobConfig] = field(default_factory=list)
    batchSegmentJobs: list[BatchJobConfig] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.serviceConfig.name

    @property
    def recipe(self) -> recipe_facts.Recipe:
        return self.serviceConfig.recipe_facts

    def __post_init__(self) -> None:
        row = self.recipe
        if self.batchSegmentJobs and not row.batch_segment:
            segmenting = [r.name for r in recipe_facts.RECIPES.values() if r.batch_segment]
            raise _invalid(
                "batchSegmentJobs",
                f"batch segment jobs need a USER_SEGMENTATION recipe ({', '.join(segmenting)}), "
                f"not {row.name} ({row.recipe_type})",
            )
        if self.batchInferenceJobs and not row.batch_inference:
            raise _invalid(
                "batchInferenceJobs",
                f"the recipe {row.name} ({row.recipe_type}) has no batch inference jobs"
                + ("; use batchSegmentJobs" if row.batch_segment else ""),
            )
        for kind, jobs, maximum in (
            ("batch inference jobs", self.batchInferenceJobs, MAX_BATCH_INFERENCE_RESULTS),
            ("batch segment jobs", self.batchSegmentJobs, MAX_BATCH_SEGMENT_RESULTS),
        ):
            for index, job in enumerate(jobs):
                try:
                    job.check_num_results(maximum, kind)
                except ValueError as exc:
                    key = "batchInferenceJobs" if jobs is self.batchInferenceJobs else "batchSegmentJobs"
                    raise ValueError(str(exc).replace("@", f"@{key}.{index}.", 1)) from None
        for index, job in enumerate(self.batchInferenceJobs):
            mode = job.serviceConfig.get("batchInferenceJobMode")
            if mode == "THEME_GENERATION" and not row.theme_generation:
                raise _invalid(
                    f"batchInferenceJobs.{index}.serviceConfig.batchInferenceJobMode",
                    f"THEME_GENERATION is for the Similar-Items recipe, not {row.name}",
                )


# --- this project's additions ---------------------------------------------------------------------


class MParticleSource(_Strict, kw_only=True):
    """
    mParticle batch files in ``sourcePrefix``'s ``dt=YYYY-MM-DD/`` folders, which are *landing* days.

    ``latenessDays``: how many days after an interval's own folder its events may still land. The
    export of an interval reads its day's folder and the ``latenessDays`` following ones (default 1:
    the next day), keeps the events whose own time is in the interval and counts those found in the
    later folders as late; an event that lands later still is counted by the export of its landing
    day as ``events_beyond_lateness`` and is never exported. A larger window exports later events at
    the cost of reading more folders (and of an interval's partition being final later).
    """

    sourcePrefix: str  # s3://bucket/prefix/ holding dt=YYYY-MM-DD/ folders of batches
    actions: list[str] = field(
        default_factory=lambda: ["purchase", "view_detail", "add_to_cart", "add_to_wishlist"]
    )
    userIdSource: Literal["mpid", "customer_id"] = "mpid"
    quarantineThreshold: Fraction = 0.01
    latenessDays: Annotated[int, Meta(ge=0, le=30)] = 1


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


class GateSettings(_Strict, kw_only=True):
    """
    One solution's gate settings (``pipeline.training.qualityGate.solutions.<name>``); a key left out
    takes the value of ``pipeline.training.qualityGate``.
    """

    metric: str | None = None
    maxRegression: Fraction | None = None
    minValue: Fraction | None = None
    minBaselineRatio: Annotated[float, Meta(gt=0)] | None = None


class QualityGate(_Strict, kw_only=True):
    """
    The metrics gate, per solution (see :meth:`gate_for`).

    * ``metric``: the ``GetSolutionMetrics`` key compared; unset, each solution uses its recipe's
      default (:mod:`personalize_logic.facts.recipes`: NDCG@10 for item recipes, ``hit`` for
      USER_SEGMENTATION). A metric the recipe does not report is an error naming the ones it does.
    * ``maxRegression``: relative drop allowed against the last accepted version of the solution.
    * ``minValue``: absolute floor.
    * ``minBaselineRatio``: also require ``value >= ratio x`` the same metric of a Popularity-Count
      version trained in the same run on the same data (AWS's recommended baseline). It applies to
      every solution whose gate metric Popularity-Count reports; USER_SEGMENTATION solutions (``hit``,
      ``recall``) have no such baseline, and their verdicts say so. Set on one of them under
      ``solutions``, it is an error.
    * ``solutions``: per-solution settings, keyed by solution name.
    """

    metric: str | None = None
    maxRegression: Fraction = 0.10
    minValue: Fraction | None = None
    minBaselineRatio: Annotated[float, Meta(gt=0)] | None = None
    solutions: dict[str, GateSettings] = field(default_factory=dict)

    def gate_for(self, solution: "SolutionConfig") -> "SolutionGate":
        """The effective gate of ``solution`` (validated at load by :meth:`ProjectConfig.__post_init__`)."""
        own = self.solutions.get(solution.name) or GateSettings()
        row = solution.recipe
        metric = own.metric or self.metric or row.default_gate_metric
        baseline_metrics = recipe_facts.RECIPES[recipe_facts.BASELINE_RECIPE].metrics
        ratio = own.minBaselineRatio if own.minBaselineRatio is not None else self.minBaselineRatio
        if own.minBaselineRatio is None and metric not in baseline_metrics:
            ratio = None  # the global ratio applies where the baseline reports the metric
        return SolutionGate(
            metric=metric,
            max_regression=own.maxRegression if own.maxRegression is not None else self.maxRegression,
            min_value=own.minValue if own.minValue is not None else self.minValue,
            min_baseline_ratio=ratio,
        )


class SolutionGate(Struct, frozen=True, kw_only=True):
    """The gate one solution's versions pass (:meth:`QualityGate.gate_for`)."""

    metric: str
    max_regression: float
    min_value: float | None
    min_baseline_ratio: float | None


class TrainingConfig(_Strict, kw_only=True):
    schedule: str | None = None  # None: trained when a fresh export lands (Asset)
    qualityGate: QualityGate = field(default_factory=QualityGate)
    itemsSource: str | None = None  # s3:// CSV file or folder for the items dataset
    usersSource: str | None = None  # s3:// CSV file or folder for the users dataset


class ExcludeInteracted(_Strict, kw_only=True):
    """
    Keep items a user already interacted with out of their batch recommendations.

    Personalize does not do this by itself ("Filter expressions": only a filter excludes them); the
    batch DAG creates the filter ``EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (<eventTypes>)`` if
    it is missing and passes it as ``filterArn`` to every batch inference job without a ``filterArn``
    of its own. Personalize's filters consider the 100 most recent interactions per user and event
    type.

    :param eventTypes: the event types to exclude; unset: the mParticle export's ``actions`` (the
        EVENT_TYPE values it writes).
    :param filterName: the filter's name; unset: ``<dataset group>-exclude-interacted``.
    """

    eventTypes: (
        Annotated[list[Annotated[str, Meta(min_length=1, max_length=256)]], Meta(min_length=1)] | None
    ) = None
    filterName: ResourceName | None = None


class BatchInferenceSettings(_Strict, kw_only=True):
    numResults: Annotated[int, Meta(ge=1, le=MAX_BATCH_INFERENCE_RESULTS)] = 25
    excludeInteracted: ExcludeInteracted | None = None


class BatchSegmentSettings(_Strict, kw_only=True):
    jobInput: str | None = None  # s3:// JSON-lines query file; default: include data
    queries: list[dict[str, str]] = field(default_factory=list)


class MParticleDestination(_Strict, kw_only=True):
    enabled: bool = True
    connId: str = "mparticle_default"
    environment: Literal["production", "development"] = "development"
    identity: Literal["mpid", "customer_id"] = "mpid"
    eventName: str = "AWS Recs Update"


def _templated(value: str) -> bool:
    """A value Airflow renders at run time (``{{ var.value.x }}``): checked when it is rendered."""
    return "{{" in value or "{%" in value


class PinpointDestination(_Strict, kw_only=True):
    """
    Amazon Pinpoint imported segments: the **legacy** segment destination, off unless ``enabled``
    (Pinpoint's engagement APIs reached end of support on 2026-10-30; the tasks log AWS's notice).
    """

    enabled: bool = False
    applicationId: str
    importRoleArn: str
    exportRoleArn: str | None = None
    channel: str | None = "EMAIL"


class CustomerProfilesDestination(_Strict, kw_only=True):
    """
    Amazon Connect Customer Profiles: each batch segment becomes a segment definition over the
    profiles of its users (see ``operators/customer_profiles.py``).

    ``profileKey`` is the profile attribute that holds the Personalize user id (``AccountNumber`` or
    ``Attributes.<name>``): users are matched to profiles by it. ``dataExpiryDays`` is the upload
    job's ``DataExpiry`` (1-1098), required because AWS's default (14 days) silently expires the
    profiles an upload creates. A user with no profile is counted and left out, unless
    ``createMissingProfiles`` (then the upload creates a profile holding only the key).
    ``snapshotRoleArn`` is the role Customer Profiles assumes to write the profile-key snapshot the
    users are matched against (required unless ``createMissingProfiles``).
    ``segmentAttribute`` prefixes the custom attribute that marks a profile's membership.
    """

    enabled: bool = True
    domainName: str
    profileKey: str
    dataExpiryDays: Annotated[int, Meta(ge=1, le=1098)]
    createMissingProfiles: bool = False
    snapshotRoleArn: str | None = None
    segmentAttribute: Annotated[
        str, Meta(min_length=1, max_length=40, pattern=r"^[a-zA-Z][a-zA-Z0-9_]*$")
    ] = "ap_segment"

    def __post_init__(self) -> None:
        from personalize_logic.facts.customer_profiles import MAX_NAME_LENGTH, NAME_PATTERN, is_profile_key

        if not _templated(self.domainName) and (
            not NAME_PATTERN.match(self.domainName) or len(self.domainName) > MAX_NAME_LENGTH
        ):
            raise _invalid("domainName", "a Customer Profiles domain name is 1-64 of a-z A-Z 0-9 _ -")
        if not is_profile_key(self.profileKey):
            raise _invalid(
                "profileKey",
                "must name a string profile attribute (AccountNumber, EmailAddress, ...) or a custom "
                "one as Attributes.<name>",
            )
        if not self.createMissingProfiles and not self.snapshotRoleArn:
            raise _invalid(
                "snapshotRoleArn",
                "required when createMissingProfiles is false: users are matched against a snapshot "
                "of the domain's profile keys, written to S3 by this role",
            )


class ActivationConfig(_Strict, kw_only=True):
    mparticle: MParticleDestination | None = None
    customerProfiles: CustomerProfilesDestination | None = None
    pinpoint: PinpointDestination | None = None

    def segment_destinations(self) -> dict[str, Any]:
        """The enabled segment destinations, by config key, in the order the DAG builds them."""
        blocks = {"customerProfiles": self.customerProfiles, "pinpoint": self.pinpoint}
        return {key: block for key, block in blocks.items() if block is not None and block.enabled}


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

    def __post_init__(self) -> None:
        bucket = self.bucket
        if not bucket.strip():
            raise _invalid(
                "bucket", "is empty: give the bucket's name (or a template such as {{ var.value.x }})"
            )
        if "://" in bucket or "/" in bucket:
            raise _invalid(
                "bucket",
                f"{bucket!r} is not a bucket name: give the name alone, without a URL scheme or a path "
                "(put the path in pipeline.prefix)",
            )
        if not _templated(bucket) and not BUCKET_NAME.match(bucket):
            raise _invalid(
                "bucket",
                f"{bucket!r} is not a valid S3 bucket name (3-63 lower-case letters, digits, dots and hyphens)",
            )
        if not _templated(self.roleArn) and not ROLE_ARN.match(self.roleArn):
            raise _invalid(
                "roleArn",
                f"{self.roleArn!r} is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>), "
                "the form Personalize's roleArn parameters take",
            )

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
        self._check_gate()
        self._check_import_mode()
        self._check_exclusion_filter()
        for index, solution in enumerate(self.solutions):
            if (solution.batchInferenceJobs or solution.batchSegmentJobs) and len(solution.name) > 37:
                raise _invalid(
                    f"solutions.{index}.serviceConfig.name",
                    f"solution name {solution.name!r} is longer than 37 characters; batch job names "
                    "derived from it would pass Personalize's 63-character limit",
                )

    def _check_gate(self) -> None:
        gate = self.pipeline.training.qualityGate
        where = "pipeline.training.qualityGate"
        names = [s.name for s in self.solutions]
        for name in gate.solutions:
            if name not in names:
                raise _invalid(
                    f"{where}.solutions.{name}", f"no solution is named {name!r}; solutions: {names}"
                )
        baseline_metrics = recipe_facts.RECIPES[recipe_facts.BASELINE_RECIPE].metrics
        for solution in self.solutions:
            own = gate.solutions.get(solution.name) or GateSettings()
            key = f"{where}.solutions.{solution.name}.metric" if own.metric else f"{where}.metric"
            metric = own.metric or gate.metric or solution.recipe.default_gate_metric
            problem = recipe_facts.metric_error(solution.serviceConfig.recipeArn, metric)
            if problem:
                hint = (
                    "" if own.metric else f" (set {where}.solutions.{solution.name}.metric for this solution)"
                )
                raise _invalid(key, f"solution {solution.name!r}: {problem}{hint}")
            if own.minBaselineRatio is not None and metric not in baseline_metrics:
                raise _invalid(
                    f"{where}.solutions.{solution.name}.minBaselineRatio",
                    f"the baseline recipe {recipe_facts.BASELINE_RECIPE} does not report {metric!r}; "
                    "there is nothing to compare with: remove the key",
                )

    def _check_import_mode(self) -> None:
        settings = self.datasets.serviceConfig
        segmenting = [s.name for s in self.solutions if s.batchSegmentJobs]
        if settings is not None and settings.importMode == "INCREMENTAL" and segmenting:
            raise _invalid(
                "datasets.serviceConfig.importMode",
                f"the solutions {segmenting} run batch segment jobs, and those consider only bulk data "
                "imported with FULL (Personalize developer guide, 'Getting batch user segments'); "
                "INCREMENTAL imports would be left out of every segment: use FULL",
            )

    def _check_exclusion_filter(self) -> None:
        exclude = self.pipeline.batchInference.excludeInteracted
        if exclude is None:
            return
        key = "pipeline.batchInference.excludeInteracted"
        export = self.pipeline.export
        if exclude.eventTypes is None and (export.source != "mparticle" or export.mparticle is None):
            raise _invalid(
                f"{key}.eventTypes",
                "required unless export.source is 'mparticle' (whose actions are the event types)",
            )
        name = self.exclusion_filter_name()
        if name in [f.serviceConfig.name for f in self.filters]:
            raise _invalid(f"{key}.filterName", f"{name!r} is also the name of a filter under 'filters'")

    def exclusion_filter_name(self) -> str:
        exclude = self.pipeline.batchInference.excludeInteracted
        if exclude is not None and exclude.filterName:
            return exclude.filterName
        return f"{self.name[:45]}-exclude-interacted"

    def exclusion_filter_expression(self) -> str | None:
        """The filter expression of ``excludeInteracted`` (``None`` when it is not configured)."""
        exclude = self.pipeline.batchInference.excludeInteracted
        if exclude is None:
            return None
        mparticle = self.pipeline.export.mparticle
        types = exclude.eventTypes or (mparticle.actions if mparticle else [])
        values = ", ".join(json.dumps(t) for t in types)
        return f"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ({values})"

    def baseline_needed(self) -> bool:
        """Whether some solution's gate compares with a Popularity-Count baseline."""
        gate = self.pipeline.training.qualityGate
        return any(gate.gate_for(s).min_baseline_ratio is not None for s in self.solutions)

    def baseline_solution_name(self) -> str:
        """The Popularity-Count solution the gate's baseline is trained with."""
        return f"{self.name[:40]}-popularity-baseline"

    def solutions_with(self, kind: Literal["batchInferenceJobs", "batchSegmentJobs"]) -> list[SolutionConfig]:
        return [s for s in self.solutions if getattr(s, kind)]

    def project_id(self) -> str:
        """A DAG-id-safe name for this project."""
        return re.sub(r"[^a-zA-Z0-9_]", "_", self.name)


def _merge(
    base: dict[str, Any], extra: dict[str, Any], sidecar: Path, where: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``base`` with the sidecar's keys added: lists of solutions/filters appended, objects merged."""
    merged = dict(base)
    for key, value in extra.items():
        dotted = ".".join((*where, key))
        if key in ("solutions", "filters") and key in merged and not where:
            if not isinstance(value, list) or not isinstance(merged[key], list):
                raise ConfigError(f"{sidecar}: invalid key {dotted}: must be a list, as in the config")
            merged[key] = [*merged[key], *value]
        elif key in merged and isinstance(merged[key], dict) and isinstance(value, dict):
            merged[key] = _merge(merged[key], value, sidecar, (*where, key))
        elif key in merged:
            raise ConfigError(
                f"{sidecar}: invalid key {dotted}: key {key!r} is set in both the config and its sidecar"
            )
        else:
            merged[key] = value
    return merged


def _origin(key: str, main: Path, raw: Any, sidecar: Path | None, extra: Any) -> tuple[Path, str]:
    """
    The file a dotted key of the merged config comes from, and the key as that file spells it
    (solutions and filters of a sidecar are appended, so their indexes shift).
    """
    if sidecar is None or not key:
        return main, key
    parts = key.split(".")
    node_main, node_extra = raw, extra
    for depth, part in enumerate(parts):
        if isinstance(node_main, list) or isinstance(node_extra, list):
            count = len(node_main) if isinstance(node_main, list) else 0
            if part.isdigit() and int(part) >= count and isinstance(node_extra, list):
                return sidecar, ".".join((*parts[:depth], str(int(part) - count), *parts[depth + 1 :]))
            return main, key
        in_main = isinstance(node_main, dict) and part in node_main
        in_extra = isinstance(node_extra, dict) and part in node_extra
        if in_extra and not in_main:
            return sidecar, key
        if not in_extra:
            # in the main file, or a key missing from an object that only the sidecar opened
            return (sidecar if node_main is None and node_extra is not None else main), key
        node_main, node_extra = node_main[part], node_extra[part]
    return main, key


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


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's keys, refusing one given twice (JSON parsers silently keep the last)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _read_json(path: Path) -> Any:
    """A config file's JSON, or :class:`ConfigError` naming the file and where it is not JSON."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"{path}: not UTF-8 (line {line}, column {column}: byte {data[exc.start]:#04x} {exc.reason}); "
            "save the file as UTF-8"
        ) from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        where = _lone_surrogate(value)
    except _DuplicateKey as exc:
        raise ConfigError(
            f"{path}: invalid key {exc.args[0]}: given twice in one object (JSON would keep only the last)"
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from None
    except RecursionError:
        raise ConfigError(f"{path}: not a config: JSON nested deeper than the parser can follow") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    if where is not None:
        raise ConfigError(
            f"{path}: invalid key {where or '<root>'}: holds a lone UTF-16 surrogate escape (such as "
            "\\ud800), which is not text"
        )
    return value


def _lone_surrogate(value: Any, where: str = "") -> str | None:
    """The dotted key whose name or string value holds a lone surrogate, else None."""
    if isinstance(value, str):
        return None if is_text(value) else where
    if isinstance(value, dict):
        for key, child in value.items():
            dotted = f"{where}.{key}" if where else key
            if _lone_surrogate(key) is not None:
                return dotted.encode("utf-8", "backslashreplace").decode()
            found = _lone_surrogate(child, dotted)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found = _lone_surrogate(child, f"{where}.{index}" if where else str(index))
            if found is not None:
                return found
    return None


def _dataset_group_name(raw: dict[str, Any], default: str) -> str:
    group = raw.get("datasetGroup")
    service = group.get("serviceConfig") if isinstance(group, dict) else None
    name = service.get("name") if isinstance(service, dict) else None
    return name if isinstance(name, str) and name else default


def load_config(path: str | Path) -> ProjectConfig:
    """
    Read and validate one config file (plus its ``.pipeline.json`` sidecar when present).

    Whatever the files hold (not UTF-8, not JSON, a key twice, nesting too deep, wrong types), the
    only exception is :class:`ConfigError`, naming the file the problem is in (the sidecar when it is
    there) and the dotted key. The interactions schema is checked against what the export writes
    (:func:`schema_export_problems`).

    :raises ConfigError: with the file name and the dotted path of the invalid key.
    """
    path = Path(path)
    raw = _read_json(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    sidecar: Path | None = path.with_name(path.name.removesuffix(".json") + SIDE_CAR_SUFFIX)
    extra: Any = None
    if sidecar is not None and sidecar.exists() and sidecar != path:
        extra = _read_json(sidecar)
        if not isinstance(extra, dict):
            raise ConfigError(f"{sidecar}: the top level must be a JSON object")
        try:
            merged = _merge(raw, extra, sidecar)
        except RecursionError:
            raise ConfigError(f"{sidecar}: not a config: objects nested too deeply to merge") from None
        if "tags" in merged:  # _copy_root_tags writes into nested blocks; _origin reads the files as written
            merged = copy.deepcopy(merged)
    else:
        sidecar, merged = None, raw
    try:
        return _validated(path, raw, sidecar, extra, merged)
    except RecursionError:
        raise ConfigError(
            f"{path}: not a config: values nested deeper than the validator can follow"
        ) from None


def _validated(
    path: Path, raw: dict[str, Any], sidecar: Path | None, extra: Any, merged: dict[str, Any]
) -> ProjectConfig:
    """The merged config validated; every error names the file its key comes from."""

    def error(key: str, message: str) -> ConfigError:
        where, spelled = _origin(key, path, raw, sidecar, extra)
        return ConfigError(f"{where}: invalid key {spelled or '<root>'}: {message}")

    for key, reason in _keys_not_acted_on(merged):
        raise error(key, reason)
    if "pipeline" not in merged:
        merged["pipeline"] = default_pipeline(_dataset_group_name(merged, path.stem))
    _copy_root_tags(merged)
    try:
        cfg = msgspec.convert(merged, ProjectConfig, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise error(*_split_error(str(exc))) from None
    for key, message in schema_export_problems(cfg):
        raise error(key, message)
    return cfg


# What the mParticle export writes (operators.interactions_export.MParticleBatchesToInteractionsOperator):
# each column and the Avro types its values fit. USER_ID, ITEM_ID and TIMESTAMP are always written,
# EVENT_TYPE too (the product action); EVENT_VALUE and SESSION_ID when the schema has them.
MPARTICLE_EXPORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "USER_ID": ("string",),
    "ITEM_ID": ("string",),
    "EVENT_TYPE": ("string",),
    "TIMESTAMP": ("long", "int"),
    "EVENT_VALUE": ("float", "double"),
    "SESSION_ID": ("string",),
}
_ALWAYS_WRITTEN = ("USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP")
_INTERACTIONS_SCHEMA_KEY = "datasets.interactions.schema.serviceConfig.schema"


def _interactions_fields(cfg: ProjectConfig) -> list[dict[str, Any]]:
    fields = cfg.datasets.interactions.schema_.serviceConfig.schema_.get("fields")
    return [f for f in fields if isinstance(f, dict)] if isinstance(fields, list) else []


def _nullable(spec: dict[str, Any]) -> bool:
    kind = spec.get("type")
    return isinstance(kind, list) and "null" in kind


def _avro_type(spec: dict[str, Any]) -> Any:
    kind = spec.get("type")
    kinds = [k for k in kind if k != "null"] if isinstance(kind, list) else [kind]
    return kinds[0] if len(kinds) == 1 else kinds


def mparticle_export_options(cfg: ProjectConfig) -> dict[str, Any]:
    """
    The export operator's column options that follow the interactions schema: EVENT_VALUE (the
    product's ``price``) when the schema has the field, required (a price-less product is
    quarantined, not written with an empty value) when the field is not nullable; SESSION_ID when
    the schema has it.
    """
    by_name = {f.get("name"): f for f in _interactions_fields(cfg)}
    value = by_name.get("EVENT_VALUE")
    return {
        "event_value_field": "price" if value is not None else None,
        "event_value_required": value is not None and not _nullable(value),
        "include_session_id": "SESSION_ID" in by_name,
    }


def schema_export_problems(cfg: ProjectConfig) -> list[tuple[str, str]]:
    """
    ``(dotted key, message)`` for every way the interactions schema and the export disagree, so a
    config whose export could never be imported fails when it loads, not at the first training.

    Only the mParticle export's columns are known before it runs (a SQL export's columns are what
    its query selects, checked by the pre-import validation). Rules: every column the export writes
    is in the schema with a type its values fit; every other schema field is nullable (the export
    never fills it).
    """
    if cfg.pipeline.export.source != "mparticle":
        return []
    problems: list[tuple[str, str]] = []
    fields = _interactions_fields(cfg)
    names = [f.get("name") for f in fields]
    for column in _ALWAYS_WRITTEN:
        if column not in names:
            problems.append(
                (
                    _INTERACTIONS_SCHEMA_KEY,
                    f"field {column} is missing: the mParticle export writes it (pipeline.export.source is "
                    f'\'mparticle\'); add {{"name": "{column}", "type": '
                    f'"{MPARTICLE_EXPORT_COLUMNS[column][0]}"}}',
                )
            )
    for spec in fields:
        name, kind = spec.get("name"), _avro_type(spec)
        allowed = MPARTICLE_EXPORT_COLUMNS.get(name) if isinstance(name, str) else None
        if allowed is None:
            if not _nullable(spec):
                problems.append(
                    (
                        _INTERACTIONS_SCHEMA_KEY,
                        f"field {name} is required but the mParticle export never writes it (it writes "
                        f'{", ".join(MPARTICLE_EXPORT_COLUMNS)}); make it nullable ("type": ["null", '
                        f"{json.dumps(kind)}]) or remove it",
                    )
                )
        elif kind not in allowed:
            problems.append(
                (
                    _INTERACTIONS_SCHEMA_KEY,
                    f"field {name} is {json.dumps(kind)} but the mParticle export writes "
                    f"{' or '.join(allowed)} values into it",
                )
            )
    return problems


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


@dataclass(frozen=True)
class LoadedConfig:
    """One config file's outcome: its project's config, or the error that keeps its DAGs out."""

    path: Path
    config: ProjectConfig | None
    error: ConfigError | None = None


def load_configs(paths: Iterable[Path]) -> list[LoadedConfig]:
    """
    Load every config of ``paths`` on its own: an invalid file is an error of its project only.

    Two configs that would overwrite each other are both errors, each naming the other file:
    the same project id (the dataset group name made id-safe, so ``good-proj`` and ``good_proj``
    collide, as do two files for one dataset group: they would generate the same DAG ids), or the
    same ``pipeline.bucket`` and ``pipeline.prefix`` (they would write the same S3 folders).
    """
    loaded: list[LoadedConfig] = []
    for path in paths:
        try:
            loaded.append(LoadedConfig(path, load_config(path)))
        except ConfigError as exc:
            loaded.append(LoadedConfig(path, None, exc))
    ids: dict[str, list[Path]] = {}
    folders: dict[tuple[str, str], list[Path]] = {}
    for item in loaded:
        if item.config is not None:
            ids.setdefault(item.config.project_id(), []).append(item.path)
            pipeline = item.config.pipeline
            folders.setdefault((pipeline.bucket, pipeline.prefix.strip("/")), []).append(item.path)
    result = []
    for item in loaded:
        cfg = item.config
        if cfg is not None:
            same_id = [p for p in ids[cfg.project_id()] if p != item.path]
            pipeline = cfg.pipeline
            same_folder = [
                p for p in folders[(pipeline.bucket, pipeline.prefix.strip("/"))] if p != item.path
            ]
            if same_id:
                item = LoadedConfig(
                    item.path,
                    None,
                    ConfigError(
                        f"{item.path}: invalid key datasetGroup.serviceConfig.name: {cfg.name!r} makes project id "
                        f"{cfg.project_id()!r}, the project id of {', '.join(map(str, same_id))}: the two would "
                        "generate the same DAGs and silently replace each other; give each project its own "
                        "dataset group name"
                    ),
                )
            elif same_folder:
                item = LoadedConfig(
                    item.path,
                    None,
                    ConfigError(
                        f"{item.path}: invalid key pipeline.prefix: bucket {pipeline.bucket!r} and prefix "
                        f"{pipeline.prefix!r} are also those of {', '.join(map(str, same_folder))}: the two "
                        "projects would write the same S3 folders; give each its own prefix"
                    ),
                )
        result.append(item)
    return result
