# mypy: disable-error-code="arg-type,index"
# (DAG wiring passes XComArg / template strings where operators declare the rendered type; a
# TaskFlow result returning a dict pushes one XCom per key, which indexing the XComArg selects.)
"""
Generate the DAGs of one personalization project from its config file.

Per project (``<p>`` is the dataset group name made id-safe) up to five DAGs, linked by Assets:

``<p>_export``            scheduled per data interval (backfillable): interactions of the interval
                          → ``.../interactions/dt=YYYY-MM-DD/`` → Asset ``<p>/interactions``
``<p>_train``             on a fresh export (or its own cron): dataset group, schemas, datasets →
                          training snapshot (look-back window) → validation → import jobs →
                          filters → per solution: solution → solution version → metrics gate →
                          Asset ``<p>/<solution>/solution-version`` (only when the gate accepts)
``<p>_batch``             on a new accepted solution version: batch inference and batch segment
                          jobs → Assets ``<p>/recommendations`` and ``<p>/segments``
``<p>_activate_mparticle``  on new recommendations: one mapped upload task per ``.out`` file
``<p>_activate_segments``   on new segments: one task group per segment destination of the config
                          (Customer Profiles by default; Pinpoint, legacy, when enabled), each
                          activating every query of every triggering output

Manual triggers take Params (force FULL training, ``num_results``, a segment query, …). Nothing
here touches the network or a Variable: Variables appear only inside templates.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, AssetAny, Param, chain
from airflow.sdk.definitions.xcom_arg import XComArg

from personalize_logic import layout
from personalize_logic.naming import sanitize
from personalize_logic.project_config import (
    MAX_BATCH_INFERENCE_RESULTS,
    ConfigError,
    PipelineConfig,
    ProjectConfig,
    SolutionConfig,
    discover_configs,
    load_config,
    load_configs,
    mparticle_export_options,
    tag_list,
)
from personalize_pipeline.compat import CronDataIntervalTimetable

log = logging.getLogger(__name__)

INCLUDE_DIR = Path(os.environ.get("AP_INCLUDE_DIR", Path(__file__).resolve().parents[2] / "include"))
ASSET_SCHEME = "x-personalize"
# The partition of a run is its data interval's start date. Not ``ds``: a manual run's logical
# date is the end of the interval Airflow infers for it, so ``ds`` would name the wrong day.
INTERVAL_DS = "{{ data_interval_start | ds }}"
# op.output["k"] would be the XCom *key* "k" in Airflow 3: read the dict's field in a template.
SNAPSHOT_URI = "{{ ti.xcom_pull(task_ids='training_snapshot')['snapshot_uri'] }}"
# What the interactions import reads, and how: the snapshot folder (FULL) or its increment (INCREMENTAL).
IMPORT_URI = "{{ ti.xcom_pull(task_ids='training_snapshot')['import_uri'] }}"
IMPORT_MODE = "{{ ti.xcom_pull(task_ids='training_snapshot')['import_mode'] }}"


def landing_day_ds(days_after: int) -> str:
    """The template of the landing day ``days_after`` days after the interval's own day."""
    return "{{ macros.ds_add(data_interval_start | ds, " + str(days_after) + ") }}"


def bucket_layout(pipeline: PipelineConfig) -> layout.BucketLayout:
    return layout.BucketLayout(pipeline.bucket, pipeline.prefix)


def _task_suffix(name: str) -> str:
    """A config name (solution, filter) as the id-safe suffix of its tasks."""
    return sanitize(name).replace("-", "_")


def assets(cfg: ProjectConfig) -> dict[str, Asset]:
    pid = cfg.project_id()
    found = {
        "interactions": Asset(f"{ASSET_SCHEME}://{pid}/interactions"),
        "recommendations": Asset(f"{ASSET_SCHEME}://{pid}/recommendations"),
        "segments": Asset(f"{ASSET_SCHEME}://{pid}/segments"),
    }
    for solution in cfg.solutions:
        found[f"solution:{solution.name}"] = Asset(f"{ASSET_SCHEME}://{pid}/{solution.name}/solution-version")
    return found


def _doc(cfg: ProjectConfig, stage: str, text: str, config_path: Path) -> str:
    return (
        f"### {cfg.name} — {stage}\n\n{text}\n\n"
        f"Generated from `include/config/{config_path.name}` by `plugins/personalize_pipeline/factory.py`.\n"
        f"Connections: `{cfg.pipeline.awsConnId}` (AWS or the embedded stack)"
        + (
            f", `{cfg.pipeline.activation.mparticle.connId}` (mParticle)"
            if cfg.pipeline.activation.mparticle
            else ""
        )
        + ".\nIAM: see `include/iam/` for the policy documents this DAG needs."
    )


def _notifiers(cfg: ProjectConfig) -> list[Any]:
    """on_failure_callback notifiers from the config's ``pipeline.alerting`` block."""
    alerting = cfg.pipeline.alerting
    notifiers: list[Any] = []
    message = (
        "airflow-personalize: task {{ ti.task_id }} of {{ dag.dag_id }} failed "
        "(run {{ run_id }}, try {{ ti.try_number }}). Log: {{ ti.log_url }}"
    )
    if alerting.snsTopicArn:
        from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

        notifiers.append(
            SnsNotifier(
                aws_conn_id=cfg.pipeline.awsConnId,
                target_arn=alerting.snsTopicArn,
                message=message,
                subject="airflow-personalize task failed",
            )
        )
    if alerting.emails:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        notifiers.append(
            SmtpNotifier(
                to=alerting.emails,
                subject="airflow-personalize: {{ dag.dag_id }}.{{ ti.task_id }} failed",
                html_content=message,
            )
        )
    if alerting.slackConnId:
        try:
            from airflow.providers.slack.notifications.slack import SlackNotifier
        except ImportError as exc:  # pragma: no cover - depends on the deployment
            raise ImportError(
                "pipeline.alerting.slackConnId is set: install apache-airflow-providers-slack"
            ) from exc
        notifiers.append(SlackNotifier(slack_conn_id=alerting.slackConnId, text=message))
    return notifiers


def _dag(
    cfg: ProjectConfig, suffix: str, config_path: Path, doc: str, *, schedule: Any, **kwargs: Any
) -> DAG:
    pipeline = cfg.pipeline
    tags = ["personalize", cfg.project_id(), suffix.split("_")[0]]
    default_args: dict[str, Any] = {
        "owner": pipeline.owner,
        "retries": pipeline.retries,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        "aws_conn_id": pipeline.awsConnId,
    }
    notifiers = _notifiers(cfg)
    if notifiers:
        default_args["on_failure_callback"] = notifiers
    kwargs.setdefault("start_date", datetime(2026, 1, 1, tzinfo=UTC))
    kwargs.setdefault("catchup", False)
    return DAG(
        dag_id=f"{cfg.project_id()}_{suffix}",
        schedule=schedule,
        doc_md=_doc(cfg, suffix, doc, config_path),
        tags=tags,
        default_args=default_args,
        template_searchpath=[str(INCLUDE_DIR)],
        user_defined_macros=layout.dag_run_key_macros(),
        render_template_as_native_obj=False,
        **kwargs,
    )


# ------------------------------------------------------------------------------------------- export
def build_export_dag(cfg: ProjectConfig, config_path: Path) -> DAG | None:
    export = cfg.pipeline.export
    if export.source == "none":
        return None
    pipeline = cfg.pipeline
    asset = assets(cfg)["interactions"]
    start = datetime.combine(export.startDate, datetime.min.time(), tzinfo=UTC)
    with _dag(
        cfg,
        "export",
        config_path,
        f"Exports the interactions of each data interval from **{export.source}** into "
        f"`{bucket_layout(pipeline).partitions_pattern()}` (one atomic partition per "
        "interval; a rerun or a backfill replaces exactly that partition). Backfill with "
        f"`airflow backfill create --dag-id {cfg.project_id()}_export --from-date … --to-date …`.",
        # Airflow 3 turns a cron string into a CronTriggerTimetable, whose runs have an empty data
        # interval (start == end). An export needs the real interval [start, end): ask for it.
        schedule=CronDataIntervalTimetable(export.schedule, timezone="UTC"),
        start_date=start,
        catchup=export.catchup,
        max_active_runs=4,
    ) as dag:
        if export.source == "mparticle" and export.engine == "athena":
            _mparticle_athena_export(cfg, asset)
        elif export.source == "mparticle" and export.mparticle:
            _mparticle_export(cfg, asset)
        elif export.source == "redshift":
            _redshift_export(cfg, asset)
        else:
            _sql_export(cfg, asset)
    return dag


def _mparticle_export(cfg: ProjectConfig, asset: Asset) -> None:
    from operators.interactions_export import MParticleBatchesToInteractionsOperator

    pipeline = cfg.pipeline
    mparticle = pipeline.export.mparticle
    assert mparticle is not None  # guaranteed by ExportConfig validation
    source_bucket, source_key = layout.split_s3(mparticle.sourcePrefix)
    MParticleBatchesToInteractionsOperator(
        task_id="export_interactions",
        bucket=pipeline.bucket,
        prefix=pipeline.prefix,
        source_bucket=source_bucket,
        # mParticle lands files by arrival time: read the interval's folder and the latenessDays
        # following ones, keep the events whose own time is inside the interval.
        source_prefixes=layout.mparticle_source_day_prefix(source_key, INTERVAL_DS),
        late_source_prefixes=[
            layout.mparticle_source_day_prefix(source_key, landing_day_ds(days))
            for days in range(1, mparticle.latenessDays + 1)
        ],
        lateness_days=mparticle.latenessDays,
        partition_date=INTERVAL_DS,
        actions=mparticle.actions,
        user_id_source=mparticle.userIdSource,
        max_quarantine_share=mparticle.quarantineThreshold,
        # the columns follow the interactions schema (checked against it when the config loads)
        **mparticle_export_options(cfg),
        outlets=[asset],
    )


def _mparticle_athena_export(cfg: ProjectConfig, asset: Asset) -> None:
    """mParticle on Athena: database and table (idempotent DDL) → the interval's query → publish."""
    from airflow.providers.amazon.aws.operators.athena import AthenaOperator

    from operators.interactions_export import (
        AthenaQueryToPartitionOperator,
        AthenaTableOperator,
        PublishAthenaResultOperator,
    )
    from personalize_logic.partitions import INTERACTIONS_HEADER

    pipeline = cfg.pipeline
    mparticle, athena = pipeline.export.mparticle, pipeline.export.athena
    assert mparticle is not None  # guaranteed by ExportConfig validation
    database = athena.database if athena and athena.database else cfg.project_id().lower()
    table = athena.table if athena else "mparticle_batches"
    workgroup = athena.workgroup if athena else "primary"
    params = {
        "database": database,
        "table": table,
        "actions": list(mparticle.actions),
        "user_id_source": mparticle.userIdSource,
    }
    ddl_results = bucket_layout(pipeline).athena_ddl_results_uri()
    common = {"database": "default", "output_location": ddl_results, "workgroup": workgroup, "params": params,
              "deferrable": True, "sleep_time": 5}  # fmt: skip
    athena_database = AthenaOperator(
        task_id="athena_database", query="sql/athena/mparticle_database.sql", **common
    )
    athena_table = AthenaTableOperator(
        task_id="athena_table", query="sql/athena/mparticle_batches_table.sql",
        location=layout.folder(mparticle.sourcePrefix), **common,
    )  # fmt: skip
    query = AthenaQueryToPartitionOperator(
        task_id="export_interactions_query", query="sql/athena/mparticle_interactions.sql", database=database,
        workgroup=workgroup, bucket=pipeline.bucket, prefix=pipeline.prefix, partition_date=INTERVAL_DS,
        params=params, deferrable=True, sleep_time=10,
    )  # fmt: skip
    publish = PublishAthenaResultOperator(
        task_id="export_interactions", bucket=pipeline.bucket, prefix=pipeline.prefix, query=query.output,
        expected_header=list(INTERACTIONS_HEADER), outlets=[asset],
    )  # fmt: skip
    chain(athena_database, athena_table, query, publish)


def _redshift_export(cfg: ProjectConfig, asset: Asset) -> None:
    """Redshift: UNLOAD (Data API, deferrable) into the run folder, then publish by manifest."""
    from operators.interactions_export import redshift_partition_export

    pipeline = cfg.pipeline
    source = pipeline.export.redshift
    assert source is not None  # guaranteed by ExportConfig validation
    redshift_partition_export(
        task_id="export_interactions",
        bucket=pipeline.bucket,
        prefix=pipeline.prefix,
        select_query=source.sqlFile,
        iam_role_arn=source.iamRoleArn,
        partition_date=INTERVAL_DS,
        database=source.database,
        cluster_identifier=source.clusterIdentifier,
        workgroup_name=source.workgroupName,
        db_user=source.dbUser,
        secret_arn=source.secretArn,
        aws_conn_id=pipeline.awsConnId,
        deferrable=True,
        outlets=[asset],
    )


def _sql_export(cfg: ProjectConfig, asset: Asset) -> None:
    """SQL: the query runs on the source's connection, rows stream into the partition."""
    from operators.interactions_export import SqlToInteractionsOperator

    pipeline = cfg.pipeline
    source = pipeline.export.sql
    assert source is not None  # guaranteed by ExportConfig validation
    SqlToInteractionsOperator(
        task_id="export_interactions",
        conn_id=source.connId,
        sql=source.sqlFile,
        bucket=pipeline.bucket,
        prefix=pipeline.prefix,
        partition_date=INTERVAL_DS,
        outlets=[asset],
    )


# -------------------------------------------------------------------------------------------- train
def _solution_create_kwargs(solution: SolutionConfig) -> dict[str, Any]:
    extra = solution.serviceConfig.dump(exclude={"name", "recipeArn", "solutionVersion"})
    extra.pop("performAutoTraining", None)
    return extra


def _train_params(cfg: ProjectConfig) -> dict[str, Param]:
    default_mode = cfg.datasets.import_settings.importMode
    segmenting = bool(cfg.solutions_with("batchSegmentJobs"))
    # Batch segment jobs consider only bulk data imported with FULL (config validation says why).
    import_modes = ["FULL"] if segmenting else ["FULL", "INCREMENTAL"]
    updatable = [s.name for s in cfg.solutions if s.recipe.accepts_training_mode("UPDATE")]
    return {
        "import_mode": Param(
            default_mode,
            enum=import_modes,
            description="FULL: replace the dataset's bulk data with the look-back window; INCREMENTAL: add "
            "the window's partitions not imported before"
            + (
                ""
                if not segmenting
                else " (not offered: this project runs batch segment jobs, which use FULL imports only)"
            ),
        ),
        "training_mode": Param(
            "CONFIG",
            enum=["CONFIG", "FULL", "UPDATE"] if updatable else ["CONFIG", "FULL"],
            description="CONFIG: as in the config file; UPDATE is for User-Personalization solutions "
            f"({', '.join(updatable) or 'none here'}), any other solution's version fails before training",
        ),
        "snapshot_date": Param(
            "",
            type="string",
            description="last day of the training window, YYYY-MM-DD (empty: the day before the run)",
        ),
    }


def build_train_dag(cfg: ProjectConfig, config_path: Path) -> DAG:
    pipeline = cfg.pipeline
    found = assets(cfg)
    schedule: Any = pipeline.training.schedule or (
        [found["interactions"]] if pipeline.export.source != "none" else None
    )
    with _dag(
        cfg,
        "train",
        config_path,
        "Creates what is missing (dataset group, schemas, datasets, filters, solutions; a rerun reuses, "
        "never duplicates), assembles the training snapshot of the look-back window, validates it "
        "against Personalize's rules, imports it, trains a solution version per solution and passes "
        "each through the metrics gate. Only an accepted version updates its Asset and so feeds the "
        "batch jobs; a rejected one is logged with the reason.",
        schedule=schedule,
        max_active_runs=1,
        params=_train_params(cfg),
    ) as dag:
        dataset_group = _dataset_group(cfg)
        datasets = _schemas_and_datasets(cfg, dataset_group)
        imports = [_interactions_import(cfg, datasets["Interactions"]), *_optional_imports(cfg, datasets)]
        filters = _filters(cfg, dataset_group, imports)
        baseline = _popularity_baseline(cfg, dataset_group, imports) if cfg.baseline_needed() else None
        for solution in cfg.solutions:
            _train_and_gate(
                cfg, solution, dataset_group, imports, filters, found[f"solution:{solution.name}"], baseline
            )
    return dag


def _dataset_group(cfg: ProjectConfig) -> Any:
    from operators.personalize import PersonalizeCreateDatasetGroupOperator

    group = cfg.datasetGroup.serviceConfig
    return PersonalizeCreateDatasetGroupOperator(
        task_id="dataset_group",
        name=group.name,
        domain=group.dump().get("domain"),
        create_kwargs=group.dump(exclude={"name", "domain"}),
    )


def _schemas_and_datasets(cfg: ProjectConfig, dataset_group: Any) -> dict[str, Any]:
    """One schema and one dataset task per configured dataset type, keyed by the type."""
    from operators.personalize import PersonalizeCreateDatasetOperator, PersonalizeCreateSchemaOperator

    datasets: dict[str, Any] = {}
    for dataset_type, dataset_cfg in cfg.datasets.by_type().items():
        schema_cfg = dataset_cfg.schema_.serviceConfig
        schema = PersonalizeCreateSchemaOperator(
            task_id=f"schema_{dataset_type.lower()}",
            name=schema_cfg.name,
            schema=schema_cfg.schema_,
            domain=schema_cfg.domain,
        )
        datasets[dataset_type] = PersonalizeCreateDatasetOperator(
            task_id=f"dataset_{dataset_type.lower()}",
            name=dataset_cfg.dataset.serviceConfig.name,
            dataset_group_arn=dataset_group.output,
            dataset_type=dataset_type,
            schema_arn=schema.output,
            create_kwargs=dataset_cfg.dataset.serviceConfig.dump(exclude={"name"}),
        )
    return datasets


def _interactions_import(cfg: ProjectConfig, dataset: Any) -> Any:
    """Training snapshot of the look-back window → validation → the interactions import job."""
    from operators.interactions_export import BuildTrainingSnapshotOperator, ValidateInteractionsOperator
    from operators.personalize import PersonalizeCreateDatasetImportJobOperator
    from personalize_pipeline import tasks

    pipeline = cfg.pipeline
    snapshot = BuildTrainingSnapshotOperator(
        task_id="training_snapshot",
        bucket=pipeline.bucket,
        prefix=pipeline.prefix,
        snapshot_date=(
            "{{ params.snapshot_date or (dag_run.run_after - macros.timedelta(days=1)).strftime('%Y-%m-%d') }}"
        ),
        lookback_days=pipeline.export.lookbackDays,
        import_mode="{{ params.import_mode }}",
    )
    validate = ValidateInteractionsOperator(
        task_id="validate_interactions",
        s3_uri=SNAPSHOT_URI,
        schema=cfg.datasets.interactions.schema_.serviceConfig.schema_,
    )
    needed = tasks.import_needed(snapshot.output)
    import_interactions = PersonalizeCreateDatasetImportJobOperator(
        task_id="import_interactions",
        job_name_prefix="import-interactions",
        dataset_arn=dataset.output,
        data_location=IMPORT_URI,
        role_arn=pipeline.roleArn,
        import_mode=IMPORT_MODE,
        publish_attribution_metrics_to_s3=cfg.datasets.import_settings.publishAttributionMetricsToS3,
        tags=tag_list(cfg.datasets.import_settings.tags),
    )
    record = tasks.record_import(
        snapshot.output,
        state_uri=bucket_layout(pipeline).imported_partitions_uri(),
        aws_conn_id=pipeline.awsConnId,
    )
    chain(dataset, snapshot, validate, needed, import_interactions, record)
    return import_interactions


def _optional_imports(cfg: ProjectConfig, datasets: dict[str, Any]) -> list[Any]:
    """Items and users imports, each skipped when its S3 location holds no CSV."""
    from operators.personalize import PersonalizeCreateDatasetImportJobOperator
    from personalize_pipeline import tasks

    pipeline = cfg.pipeline
    training = pipeline.training
    imports = []
    for dataset_type, source in (("Items", training.itemsSource), ("Users", training.usersSource)):
        if dataset_type not in datasets:
            continue
        kind = dataset_type.lower()
        location = source or bucket_layout(pipeline).dataset_source_uri(kind)
        present = tasks.has_s3_data.override(task_id=f"has_{kind}_data")(
            location, aws_conn_id=pipeline.awsConnId
        )
        job = PersonalizeCreateDatasetImportJobOperator(
            task_id=f"import_{kind}",
            job_name_prefix=f"import-{kind}",
            dataset_arn=datasets[dataset_type].output,
            data_location=location,
            role_arn=pipeline.roleArn,
            import_mode="{{ params.import_mode }}",
            publish_attribution_metrics_to_s3=cfg.datasets.import_settings.publishAttributionMetricsToS3,
            tags=tag_list(cfg.datasets.import_settings.tags),
        )
        chain(datasets[dataset_type], present, job)
        imports.append(job)
    return imports


def _filters(cfg: ProjectConfig, dataset_group: Any, imports: list[Any]) -> list[Any]:
    """The config's filters, created once every import has run (or been skipped)."""
    from operators.personalize import PersonalizeCreateFilterOperator

    filters = [
        PersonalizeCreateFilterOperator(
            task_id=f"filter_{_task_suffix(f.serviceConfig.name)}",
            name=f.serviceConfig.name,
            dataset_group_arn=dataset_group.output,
            filter_expression=f.serviceConfig.filterExpression,
            create_kwargs=f.serviceConfig.dump(exclude={"name", "filterExpression"}),
            trigger_rule="none_failed",
        )
        for f in cfg.filters
    ]
    for each in filters:
        imports >> each
    return filters


def _popularity_baseline(cfg: ProjectConfig, dataset_group: Any, imports: list[Any]) -> Any:
    """
    The Popularity-Count version the gates compare with (AWS's recommended baseline): a solution
    created if missing, and a FULL version trained in every run on the data the run imported.
    """
    from operators.personalize import (
        PersonalizeCreateSolutionOperator,
        PersonalizeCreateSolutionVersionOperator,
    )
    from personalize_logic.facts import recipes

    name = cfg.baseline_solution_name()
    create_solution = PersonalizeCreateSolutionOperator(
        task_id="solution_popularity_baseline",
        name=name,
        dataset_group_arn=dataset_group.output,
        recipe_arn=recipes.RECIPES[recipes.BASELINE_RECIPE].arn,
        perform_auto_training=False,
        create_kwargs={"tags": tag_list(cfg.tags)} if cfg.tags else None,
        trigger_rule="none_failed",
    )
    version = PersonalizeCreateSolutionVersionOperator(
        task_id="solution_version_popularity_baseline",
        job_name_prefix="train-popularity-baseline",
        solution_arn=create_solution.output,
        recipe_arn=recipes.RECIPES[recipes.BASELINE_RECIPE].arn,
        training_mode="FULL",
    )
    chain(imports, create_solution, version)
    return version


def _train_and_gate(
    cfg: ProjectConfig,
    solution: SolutionConfig,
    dataset_group: Any,
    imports: list[Any],
    filters: list[Any],
    solution_asset: Asset,
    baseline: Any | None,
) -> None:
    """Solution → solution version → quality gate, after every import and filter."""
    from operators.personalize import (
        PersonalizeCreateSolutionOperator,
        PersonalizeCreateSolutionVersionOperator,
    )
    from personalize_pipeline import tasks

    pipeline = cfg.pipeline
    gate = pipeline.training.qualityGate.gate_for(solution)
    sid = _task_suffix(solution.name)
    version_cfg = solution.serviceConfig.solutionVersion
    configured_mode = version_cfg.trainingMode if version_cfg else "FULL"
    create_solution = PersonalizeCreateSolutionOperator(
        task_id=f"solution_{sid}",
        name=solution.name,
        dataset_group_arn=dataset_group.output,
        recipe_arn=solution.serviceConfig.recipeArn,
        perform_auto_training=False,
        create_kwargs=_solution_create_kwargs(solution),
        trigger_rule="none_failed",
    )
    version = PersonalizeCreateSolutionVersionOperator(
        task_id=f"solution_version_{sid}",
        job_name_prefix=f"train-{solution.name}"[:30],
        solution_arn=create_solution.output,
        recipe_arn=solution.serviceConfig.recipeArn,
        training_mode=(
            "{{ '" + configured_mode + "' if params.training_mode == 'CONFIG' else params.training_mode }}"
        ),
        tags=tag_list(version_cfg.tags) if version_cfg else None,
    )
    compared = baseline if gate.min_baseline_ratio is not None else None
    # Accepted: the gate succeeds and its outlet, the solution's Asset, starts the batch DAG.
    # Rejected: the gate ends skipped with the reason, and no Asset event is emitted.
    verdict = tasks.quality_gate.override(task_id=f"quality_gate_{sid}", outlets=[solution_asset])(
        solution_version_arn="{{ ti.xcom_pull(task_ids='" + version.task_id + "')['solution_version_arn'] }}",
        state_prefix=bucket_layout(pipeline).solution_state_uri(solution.name),
        snapshot_uri=SNAPSHOT_URI,
        metric=gate.metric,
        max_regression=gate.max_regression,
        asset_uri=solution_asset.uri,
        min_value=gate.min_value,
        popularity_version_arn=(
            "{{ ti.xcom_pull(task_ids='" + compared.task_id + "')['solution_version_arn'] }}"
            if compared is not None
            else None
        ),
        min_baseline_ratio=gate.min_baseline_ratio if compared is not None else None,
        aws_conn_id=pipeline.awsConnId,
    )
    chain(imports, create_solution, version, verdict)
    if compared is not None:
        compared >> verdict
    for each in filters:
        each >> create_solution


# -------------------------------------------------------------------------------------------- batch
def _batch_params(cfg: ProjectConfig) -> dict[str, Param]:
    return {
        "num_results": Param(
            cfg.pipeline.batchInference.numResults,
            type="integer",
            minimum=1,
            maximum=MAX_BATCH_INFERENCE_RESULTS,
            description="recommendations per user (batch inference)",
        ),
        "segment_queries": Param(
            cfg.pipeline.batchSegment.queries,
            type="array",
            description='batch segment queries, e.g. [{"itemAttributes": "ITEMS.genres = \\"Action\\""}]',
        ),
    }


def build_batch_dag(cfg: ProjectConfig, config_path: Path) -> DAG | None:
    inference = cfg.solutions_with("batchInferenceJobs")
    segmentation = cfg.solutions_with("batchSegmentJobs")
    if not inference and not segmentation:
        return None
    found = assets(cfg)
    schedule = AssetAny(*(found[f"solution:{s.name}"] for s in (*inference, *segmentation)))
    with _dag(
        cfg,
        "batch",
        config_path,
        "Runs the batch inference and batch segment jobs of every solution that has them, on the "
        "solution version that triggered the run (or, for a manual run, the last version the metrics "
        "gate accepted). Each job writes into a folder of its own, named after the job, so no run "
        "overwrites another's output.",
        schedule=schedule,
        max_active_runs=1,
        params=_batch_params(cfg),
    ) as dag:
        exclusion = _exclusion_filter(cfg) if inference else None
        for solution in inference:
            _batch_inference_jobs(cfg, solution, found, exclusion)
        for solution in segmentation:
            _batch_segment_jobs(cfg, solution, found)
    return dag


def _resolve_version(cfg: ProjectConfig, solution: SolutionConfig, found: dict[str, Asset]) -> Any:
    """The task that picks the solution version a batch run uses."""
    from personalize_pipeline import tasks

    return tasks.resolve_solution_version.override(task_id=f"resolve_version_{_task_suffix(solution.name)}")(
        asset_uri=found[f"solution:{solution.name}"].uri,
        state_prefix=bucket_layout(cfg.pipeline).solution_state_uri(solution.name),
        aws_conn_id=cfg.pipeline.awsConnId,
    )


def _job_suffix(solution: SolutionConfig, index: int, jobs: list[Any]) -> str:
    sid = _task_suffix(solution.name)
    return f"{sid}_{index}" if len(jobs) > 1 else sid


def _exclusion_filter(cfg: ProjectConfig) -> Any | None:
    """
    ``pipeline.batchInference.excludeInteracted``: the filter that keeps items a user interacted with
    out of their recommendations, created if missing (a rerun reuses it; another definition under its
    name fails, naming the field). Its dataset group is looked up by name, created if missing too.
    """
    expression = cfg.exclusion_filter_expression()
    if expression is None:
        return None
    from operators.personalize import PersonalizeCreateFilterOperator

    group = _dataset_group(cfg)
    return PersonalizeCreateFilterOperator(
        task_id="filter_exclude_interacted",
        name=cfg.exclusion_filter_name(),
        dataset_group_arn=group.output,
        filter_expression=expression,
        create_kwargs={"tags": tag_list(cfg.tags)} if cfg.tags else None,
    )


def _batch_inference_jobs(
    cfg: ProjectConfig, solution: SolutionConfig, found: dict[str, Asset], exclusion: Any | None
) -> None:
    """Per batch inference job: input of every snapshot user → the job → the recommendations Asset."""
    from operators.personalize import PersonalizeCreateBatchInferenceJobOperator
    from personalize_pipeline import tasks

    pipeline = cfg.pipeline
    where = bucket_layout(pipeline)
    resolved = _resolve_version(cfg, solution, found)
    for index, job_cfg in enumerate(solution.batchInferenceJobs):
        suffix = _job_suffix(solution, index, solution.batchInferenceJobs)
        input_uri = tasks.prepare_inference_input.override(task_id=f"inference_input_{suffix}")(
            resolved,
            input_uri=where.batch_inference_input_uri(solution.name, layout.DAG_RUN_KEY_TEMPLATE),
            aws_conn_id=pipeline.awsConnId,
        )
        job = _batch_job(
            PersonalizeCreateBatchInferenceJobOperator,
            job_cfg,
            task_id=f"batch_inference_{suffix}",
            job_name_prefix=f"recs-{solution.name}",
            solution_version_arn=resolved["solution_version_arn"],
            job_input=input_uri,
            job_output=where.batch_inference_output_uri(solution.name),
            role_arn=pipeline.roleArn,
            default_num_results="{{ params.num_results }}",
            default_filter=exclusion,
        )
        _publish_batch_output(job, f"publish_recommendations_{suffix}", "recommendations", found)


def _batch_segment_jobs(cfg: ProjectConfig, solution: SolutionConfig, found: dict[str, Asset]) -> None:
    """Per batch segment job: the run's queries → the job → the segments Asset."""
    from operators.personalize import PersonalizeCreateBatchSegmentJobOperator
    from personalize_pipeline import tasks

    pipeline = cfg.pipeline
    where = bucket_layout(pipeline)
    resolved = _resolve_version(cfg, solution, found)
    for index, job_cfg in enumerate(solution.batchSegmentJobs):
        suffix = _job_suffix(solution, index, solution.batchSegmentJobs)
        input_uri = tasks.prepare_segment_input.override(task_id=f"segment_input_{suffix}")(
            queries="{{ params.segment_queries | tojson }}",
            default_source=pipeline.batchSegment.jobInput or where.batch_job_config_uri(solution.name),
            input_uri=where.batch_segment_input_uri(solution.name, layout.DAG_RUN_KEY_TEMPLATE),
            aws_conn_id=pipeline.awsConnId,
        )
        segment_job = _batch_job(
            PersonalizeCreateBatchSegmentJobOperator,
            job_cfg,
            task_id=f"batch_segment_{suffix}",
            job_name_prefix=f"segments-{solution.name}",
            solution_version_arn=resolved["solution_version_arn"],
            job_input=input_uri,
            job_output=where.batch_segment_output_uri(solution.name),
            role_arn=pipeline.roleArn,
        )
        resolved >> segment_job
        _publish_batch_output(segment_job, f"publish_segments_{suffix}", "segments", found)


def _batch_job(
    operator: type,
    job_cfg: Any,
    *,
    job_name_prefix: str,
    default_num_results: str | None = None,
    default_filter: Any | None = None,
    **kwargs: Any,
) -> Any:
    """
    A batch job task: the config's ``numResults`` and ``filterArn`` as parameters, the rest passed as
    given. A job without a ``filterArn`` of its own takes ``default_filter``'s (the exclusion filter).
    """
    service = dict(job_cfg.serviceConfig)
    num_results = service.pop("numResults", None)
    if default_num_results is not None:
        num_results = num_results or default_num_results
    filter_arn = service.pop("filterArn", None)
    job = operator(
        job_name_prefix=job_name_prefix[:28],
        num_results=num_results,
        filter_arn=filter_arn or (default_filter.output if default_filter is not None else None),
        create_kwargs=service,
        **kwargs,
    )
    if default_filter is not None and not filter_arn:
        default_filter >> job
    return job


def _publish_batch_output(job: Any, task_id: str, kind: str, found: dict[str, Asset]) -> None:
    """Update the ``recommendations`` / ``segments`` Asset with where ``job`` wrote its output."""
    from personalize_pipeline import tasks

    asset = found[kind]
    tasks.publish_batch_output.override(task_id=task_id, outlets=[asset])(
        kind=kind,
        job_arn=job.output,
        output_path=XComArg(job, key="output_path"),
        asset_uri=asset.uri,
    )


# --------------------------------------------------------------------------------------- activation
def build_mparticle_activation_dag(cfg: ProjectConfig, config_path: Path) -> DAG | None:
    mparticle = cfg.pipeline.activation.mparticle
    if mparticle is None or not mparticle.enabled or not cfg.solutions_with("batchInferenceJobs"):
        return None
    from operators.mparticle import PersonalizeRecsToMParticleOperator
    from personalize_pipeline import tasks

    pipeline = cfg.pipeline
    recs_asset = assets(cfg)["recommendations"]
    with _dag(
        cfg,
        "activate_mparticle",
        config_path,
        "Uploads every user's batch recommendations to mParticle as the user attribute "
        f"`product_recs` plus a custom event ({mparticle.eventName!r}) through the bulk Events API, "
        "one mapped task per output file. Uploads are rate limited, retried with backoff and "
        "resumed from a checkpoint: a retried or cleared task sends no user twice and loses none. "
        "Output lines with an error and batches the API rejects go to a dead-letter file.",
        schedule=[recs_asset],
        max_active_runs=1,
        params={
            "output_path": Param(
                "", type="string", description="batch inference output to upload (empty: the triggering one)"
            )
        },
    ) as dag:
        output = tasks.resolve_batch_output(asset_uri=recs_asset.uri, param_output="{{ params.output_path }}")
        files = tasks.list_output_files(output, aws_conn_id=pipeline.awsConnId)
        PersonalizeRecsToMParticleOperator.partial(
            task_id="upload_recommendations",
            state_prefix=bucket_layout(pipeline).mparticle_state_uri(),
            environment=mparticle.environment,
            identity_type=mparticle.identity,
            event_name=mparticle.eventName,
            mparticle_conn_id=mparticle.connId,
            aws_conn_id=pipeline.awsConnId,
            # one uploader at a time per run: the client-side rate limit is per task
            max_active_tis_per_dagrun=1,
        ).expand(output_uri=files)
    return dag


def _customer_profiles_tasks(cfg: ProjectConfig, block: Any, outputs: Any) -> None:
    """Customer Profiles: profile-key snapshot + upload CSVs → per segment: upload job → segment definition."""
    from operators.customer_profiles import (
        CustomerProfilesCreateSegmentOperator,
        CustomerProfilesPrepareUploadsOperator,
        CustomerProfilesUploadOperator,
    )
    from personalize_pipeline import tasks

    where = bucket_layout(cfg.pipeline)
    prepared = CustomerProfilesPrepareUploadsOperator(
        task_id="prepare_uploads",
        domain_name=block.domainName,
        profile_key=block.profileKey,
        segment_attribute=block.segmentAttribute,
        create_missing_profiles=block.createMissingProfiles,
        snapshot_role_arn=block.snapshotRoleArn,
        segment_output_s3_uris=outputs,
        output_s3_uri=where.segment_csvs_uri(layout.DAG_RUN_KEY_TEMPLATE, layout.CUSTOMER_PROFILES),
    )
    uploads = CustomerProfilesUploadOperator.partial(
        task_id="upload_segment",
        domain_name=block.domainName,
        profile_key=block.profileKey,
        data_expiry_days=block.dataExpiryDays,
        state_uri=where.activation_state_uri(layout.CUSTOMER_PROFILES),
    ).expand_kwargs(
        tasks.segment_requests.override(task_id="upload_requests")(
            prepared.output, keys=["segment_name", "csv_s3_uri", "marker_attribute"]
        )
    )
    segments = CustomerProfilesCreateSegmentOperator.partial(
        task_id="create_segment", domain_name=block.domainName
    ).expand_kwargs(
        tasks.segment_requests.override(task_id="segment_requests")(
            prepared.output, keys=["segment_name", "segment_definition_name", "marker_attribute", "query"]
        )
    )
    uploads >> segments


def _pinpoint_tasks(cfg: ProjectConfig, block: Any, outputs: Any) -> None:
    """Pinpoint (legacy): endpoints resolved at scale → per segment: an imported segment."""
    from operators.pinpoint import PinpointCreateImportedSegmentOperator, ResolveSegmentEndpointsOperator
    from personalize_pipeline import tasks

    where = bucket_layout(cfg.pipeline)
    resolved = ResolveSegmentEndpointsOperator(
        task_id="resolve_endpoints",
        application_id=block.applicationId,
        segment_output_s3_uris=outputs,
        output_s3_uri=where.segment_csvs_uri(layout.DAG_RUN_KEY_TEMPLATE),
        export_role_arn=block.exportRoleArn,
        channel_types=[block.channel] if block.channel else None,
    )
    PinpointCreateImportedSegmentOperator.partial(
        task_id="import_segment",
        application_id=block.applicationId,
        role_arn=block.importRoleArn,
        state_uri=where.activation_state_uri(layout.PINPOINT),
    ).expand_kwargs(
        tasks.segment_requests.override(task_id="import_requests")(
            resolved.output, keys=["segment_name", "s3_url"]
        )
    )


# One entry per segment destination: config key of its block → (task group id, what the group
# holds, its builder). Adding a destination adds its family, its config block and one line here.
SEGMENT_DESTINATIONS: dict[str, tuple[str, str, Any]] = {
    "customerProfiles": (
        "customer_profiles",
        "Amazon Connect Customer Profiles: the users of each segment are matched to profiles by "
        "`profileKey` (a snapshot of the domain's profile keys joined with the segment; users without "
        "a profile are counted and, unless `createMissingProfiles`, left out), uploaded "
        "(`CreateUploadJob` → pre-signed PUT with SSE-C → `StartUploadJob`, waited on) with "
        "`DataExpiry` = `dataExpiryDays`, and grouped by a segment definition whose size is reported. "
        "Amazon Connect outbound campaigns target the segment by its ARN.",
        _customer_profiles_tasks,
    ),
    "pinpoint": (
        "pinpoint",
        "Amazon Pinpoint (**legacy: Pinpoint's engagement APIs reached AWS end of support on "
        "2026-10-30**; every task logs the notice): user ids → endpoint ids (one endpoint export "
        "joined with the segment) → CSV in S3 → `CreateImportJob` with `DefineSegment`, waited on.",
        _pinpoint_tasks,
    ),
}


def build_segment_activation_dag(cfg: ProjectConfig, config_path: Path) -> DAG | None:
    """``<p>_activate_segments``: one task group per segment destination enabled in the config."""
    from airflow.sdk import TaskGroup

    destinations = cfg.pipeline.activation.segment_destinations()
    if not destinations or not cfg.solutions_with("batchSegmentJobs"):
        return None
    from personalize_pipeline import tasks

    segments_asset = assets(cfg)["segments"]
    groups = "\n".join(
        f"* `{SEGMENT_DESTINATIONS[key][0]}`: {SEGMENT_DESTINATIONS[key][1]}" for key in destinations
    )
    with _dag(
        cfg,
        "activate_segments",
        config_path,
        "Activates every line of every batch segment output that triggered the run (or the Param "
        "`output_path`) in each segment destination of the config, one task group each:\n\n"
        f"{groups}\n\nSegment names are deterministic for the run; each activation is recorded under "
        "`state/activation/`, so a retry reuses its AWS resources, a rerun whose input changed fails "
        "naming what differs, and two concurrent attempts create one segment.",
        schedule=[segments_asset],
        max_active_runs=1,
        params={
            "output_path": Param(
                "", type="string", description="batch segment output to activate (empty: the triggering ones)"
            )
        },
    ) as dag:
        outputs = tasks.resolve_batch_outputs(
            asset_uri=segments_asset.uri, param_output="{{ params.output_path }}"
        )
        for key, block in destinations.items():
            group_id, _, build = SEGMENT_DESTINATIONS[key]
            with TaskGroup(group_id=group_id):
                build(cfg, block, outputs)
    return dag


# ------------------------------------------------------------------------------------------- entry
CONFIG_DIR = Path(os.environ.get("AP_CONFIG_DIR", INCLUDE_DIR / "config"))


# One DAG file per stage (dags/personalize_<stage>.py): the dag-processor parses the files in
# parallel, a file pays only for its own stage's operators, and the Airflow UI's import error for
# a broken stage names that stage's file.
STAGES: dict[str, tuple[Any, ...]] = {
    "export": (build_export_dag,),
    "train": (build_train_dag,),
    "batch": (build_batch_dag,),
    "activate": (build_mparticle_activation_dag, build_segment_activation_dag),
}


def _check_stages(stages: tuple[str, ...]) -> list[Any]:
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stage(s) {sorted(unknown)}; known: {list(STAGES)}")
    return [builder for stage in stages for builder in STAGES[stage]]


def _project_dags(cfg: ProjectConfig, config_path: Path, builders: list[Any]) -> list[DAG]:
    return [dag for builder in builders if (dag := builder(cfg, config_path)) is not None]


def build_project_dags(config_path: Path, stages: tuple[str, ...] = tuple(STAGES)) -> list[DAG]:
    """The DAGs of ``stages`` for the project configured in ``config_path`` (a local file read, nothing else)."""
    builders = _check_stages(stages)
    return _project_dags(load_config(config_path), config_path, builders)


def _build_problems(cfg: ProjectConfig) -> list[str]:
    """
    What would make building this valid config's DAGs fail, found without building them (cheap
    enough for every parse): the schedules (cron expressions or presets) and the alerting notifiers.
    """
    problems = []
    export = cfg.pipeline.export
    if export.source != "none":
        try:
            CronDataIntervalTimetable(export.schedule, timezone="UTC")
        except Exception as exc:
            problems.append(f"invalid key pipeline.export.schedule: {exc}")
    if cfg.pipeline.training.schedule:
        try:
            DAG(dag_id="schedule_check", schedule=cfg.pipeline.training.schedule)
        except Exception as exc:
            problems.append(f"invalid key pipeline.training.schedule: {exc}")
    try:
        _notifiers(cfg)
    except Exception as exc:
        problems.append(f"invalid key pipeline.alerting: {exc}")
    return problems


def config_problems(config_dir: Path = CONFIG_DIR) -> list[str]:
    """
    Every problem that keeps a project's DAGs out, one line each, naming the file and the key: an
    invalid config (:func:`~personalize_logic.project_config.load_configs`: the file, its sidecar,
    a project id or S3 folder another file also claims) or one whose DAGs cannot be built.
    """
    problems: list[str] = []
    for loaded in load_configs(discover_configs(config_dir)):
        if loaded.config is None:
            problems.append(str(loaded.error))
        else:
            problems.extend(f"{loaded.path}: {problem}" for problem in _build_problems(loaded.config))
    return problems


def raise_config_problems(config_dir: Path = CONFIG_DIR) -> None:
    """
    Raise one :class:`ConfigError` listing :func:`config_problems`, if there are any.

    Called by ``dags/personalize_config_check.py``: the raise is that file's import error, which the
    Airflow UI shows in its "DAG Import Errors" view, naming every invalid config and key. The stage
    files leave those projects out and keep every other project's DAGs: an import error in a stage
    file would mark all of that file's DAGs stale (Airflow records import errors per DAG file and
    deactivates the DAGs of a file that has one), so the error lives in a file of its own.
    """
    problems = config_problems(config_dir)
    if problems:
        count = len(problems)
        raise ConfigError(
            f"{count} problem{'s' if count > 1 else ''} in the project configs of {config_dir}; the DAGs of "
            "these projects are not generated, every other project's DAGs are:\n" + "\n".join(problems)
        )


def build_all_dags(config_dir: Path = CONFIG_DIR, stages: tuple[str, ...] = tuple(STAGES)) -> list[DAG]:
    """
    The DAGs of ``stages`` for every valid config file in ``config_dir``.

    A project whose config is invalid (:func:`config_problems`) is left out, and so is one whose DAGs
    fail to build (logged): every other project's DAGs are built. The problems are reported by
    ``dags/personalize_config_check.py`` (:func:`raise_config_problems`).
    """
    builders = _check_stages(stages)
    dags: list[DAG] = []
    for loaded in load_configs(discover_configs(config_dir)):
        if loaded.config is None:
            log.warning("Project config left out (see dags/personalize_config_check.py): %s", loaded.error)
            continue
        try:
            dags.extend(_project_dags(loaded.config, loaded.path, builders))
        except Exception:  # one project's DAGs failing to build must not take the others down
            log.exception("The DAGs of %s cannot be built; the project is left out", loaded.path)
    return dags
