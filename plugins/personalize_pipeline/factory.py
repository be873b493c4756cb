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
``<p>_activate_pinpoint``   on new segments: endpoints resolved at scale → one imported segment
                          per segment query

Manual triggers take Params (force FULL training, ``num_results``, a segment query, …). Nothing
here touches the network or a Variable: Variables appear only inside templates.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, AssetAny, Param, chain
from airflow.sdk.definitions.xcom_arg import XComArg

from personalize_logic.naming import sanitize, stable_hash
from personalize_logic.project_config import (
    ProjectConfig,
    SolutionConfig,
    discover_configs,
    load_config,
)
from personalize_pipeline.compat import CronDataIntervalTimetable
from personalize_pipeline.records import split_s3

INCLUDE_DIR = Path(os.environ.get("AP_INCLUDE_DIR", Path(__file__).resolve().parents[2] / "include"))
ASSET_SCHEME = "x-personalize"
# The partition of a run is its data interval's start date. Not ``ds``: a manual run's logical
# date is the end of the interval Airflow infers for it, so ``ds`` would name the wrong day.
INTERVAL_DS = "{{ data_interval_start | ds }}"


def run_key(run_id: str) -> str:
    """A short S3-key-safe token, unique and stable for one DAG run (used in every output path)."""
    return f"{sanitize(run_id)[:40]}-{stable_hash(run_id, length=8)}"


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
        user_defined_macros={"run_key": run_key},
        render_template_as_native_obj=False,
        **kwargs,
    )


# ------------------------------------------------------------------------------------------- export
def build_export_dag(cfg: ProjectConfig, config_path: Path) -> DAG | None:
    export = cfg.pipeline.export
    if export.source == "none":
        return None
    from operators.interactions_export import (
        MParticleBatchesToInteractionsOperator,
        SqlToInteractionsOperator,
    )

    pipeline = cfg.pipeline
    asset = assets(cfg)["interactions"]
    start = datetime.combine(export.startDate, datetime.min.time(), tzinfo=UTC)
    with _dag(
        cfg,
        "export",
        config_path,
        f"Exports the interactions of each data interval from **{export.source}** into "
        f"`{pipeline.s3('interactions')}/dt=YYYY-MM-DD/` (one atomic partition per interval; a rerun "
        "or a backfill replaces exactly that partition). Backfill with "
        f"`airflow backfill create --dag-id {cfg.project_id()}_export --from-date … --to-date …`.",
        # Airflow 3 turns a cron string into a CronTriggerTimetable, whose runs have an empty data
        # interval (start == end). An export needs the real interval [start, end): ask for it.
        schedule=CronDataIntervalTimetable(export.schedule, timezone="UTC"),
        start_date=start,
        catchup=export.catchup,
        max_active_runs=4,
    ) as dag:
        if export.source == "mparticle" and export.mparticle:
            source_bucket, source_key = split_s3(export.mparticle.sourcePrefix)
            MParticleBatchesToInteractionsOperator(
                task_id="export_interactions",
                bucket=pipeline.bucket,
                prefix=pipeline.prefix,
                source_bucket=source_bucket,
                # mParticle lands files by arrival time: read the interval's folder and the next
                # one, keep the events whose own time is inside the interval.
                source_prefixes=[
                    f"{source_key.rstrip('/')}/dt={INTERVAL_DS}/",
                    f"{source_key.rstrip('/')}/dt={{{{ macros.ds_add(data_interval_start | ds, 1) }}}}/",
                ],
                partition_date=INTERVAL_DS,
                actions=export.mparticle.actions,
                user_id_source=export.mparticle.userIdSource,
                max_quarantine_share=export.mparticle.quarantineThreshold,
                outlets=[asset],
            )
        else:
            source = export.sql or export.redshift
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
    return dag


# -------------------------------------------------------------------------------------------- train
def _solution_create_kwargs(solution: SolutionConfig) -> dict[str, Any]:
    extra = solution.serviceConfig.dump(exclude={"name", "recipeArn", "solutionVersion"})
    extra.pop("performAutoTraining", None)
    return extra


def build_train_dag(cfg: ProjectConfig, config_path: Path) -> DAG:
    from operators.interactions_export import BuildTrainingSnapshotOperator, ValidateInteractionsOperator
    from operators.personalize import (
        PersonalizeCreateDatasetGroupOperator,
        PersonalizeCreateDatasetImportJobOperator,
        PersonalizeCreateDatasetOperator,
        PersonalizeCreateFilterOperator,
        PersonalizeCreateSchemaOperator,
        PersonalizeCreateSolutionOperator,
        PersonalizeCreateSolutionVersionOperator,
    )
    from personalize_pipeline import tasks

    pipeline = cfg.pipeline
    found = assets(cfg)
    training = pipeline.training
    schedule: Any = training.schedule or (
        [found["interactions"]] if pipeline.export.source != "none" else None
    )
    default_mode = cfg.datasets.serviceConfig.importMode if cfg.datasets.serviceConfig else "FULL"
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
        params={
            "import_mode": Param(
                default_mode, enum=["FULL", "INCREMENTAL"], description="dataset import mode"
            ),
            "training_mode": Param(
                "CONFIG", enum=["CONFIG", "FULL", "UPDATE"], description="CONFIG: as in the config file"
            ),
            "snapshot_date": Param(
                "",
                type="string",
                description="last day of the training window, YYYY-MM-DD (empty: the day before the run)",
            ),
        },
    ) as dag:
        group = cfg.datasetGroup.serviceConfig
        dataset_group = PersonalizeCreateDatasetGroupOperator(
            task_id="dataset_group",
            name=group.name,
            domain=group.dump().get("domain"),
            create_kwargs=group.dump(exclude={"name", "domain"}),
        )
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
            )

        snapshot = BuildTrainingSnapshotOperator(
            task_id="training_snapshot",
            bucket=pipeline.bucket,
            prefix=pipeline.prefix,
            snapshot_date=(
                "{{ params.snapshot_date or (dag_run.run_after - macros.timedelta(days=1)).strftime('%Y-%m-%d') }}"
            ),
            lookback_days=pipeline.export.lookbackDays,
        )
        # op.output["k"] would be the XCom *key* "k" in Airflow 3: read the dict's field in a template.
        snapshot_uri = "{{ ti.xcom_pull(task_ids='training_snapshot')['snapshot_uri'] }}"
        validate = ValidateInteractionsOperator(
            task_id="validate_interactions",
            s3_uri=snapshot_uri,
            schema=cfg.datasets.interactions.schema_.serviceConfig.schema_,
        )
        import_interactions = PersonalizeCreateDatasetImportJobOperator(
            task_id="import_interactions",
            job_name_prefix="import-interactions",
            dataset_arn=datasets["Interactions"].output,
            data_location=snapshot_uri,
            role_arn=pipeline.roleArn,
            import_mode="{{ params.import_mode }}",
        )
        chain(datasets["Interactions"], snapshot, validate, import_interactions)
        imports = [import_interactions]
        for dataset_type, source in (("Items", training.itemsSource), ("Users", training.usersSource)):
            if dataset_type not in datasets:
                continue
            location = source or pipeline.s3("datasets", dataset_type.lower()) + "/"
            present = tasks.has_s3_data.override(task_id=f"has_{dataset_type.lower()}_data")(
                location, aws_conn_id=pipeline.awsConnId
            )
            job = PersonalizeCreateDatasetImportJobOperator(
                task_id=f"import_{dataset_type.lower()}",
                job_name_prefix=f"import-{dataset_type.lower()}",
                dataset_arn=datasets[dataset_type].output,
                data_location=location,
                role_arn=pipeline.roleArn,
                import_mode="{{ params.import_mode }}",
            )
            chain(datasets[dataset_type], present, job)
            imports.append(job)

        filters = [
            PersonalizeCreateFilterOperator(
                task_id=f"filter_{sanitize(f.serviceConfig.name).replace('-', '_')}",
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

        gate = pipeline.training.qualityGate
        for solution in cfg.solutions:
            sid = sanitize(solution.name).replace("-", "_")
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
                training_mode=(
                    "{{ '"
                    + configured_mode
                    + "' if params.training_mode == 'CONFIG' else params.training_mode }}"
                ),
            )
            # Accepted: the gate succeeds and its outlet, the solution's Asset, starts the batch DAG.
            # Rejected: the gate ends skipped with the reason, and no Asset event is emitted.
            solution_asset = found[f"solution:{solution.name}"]
            verdict = tasks.quality_gate.override(task_id=f"quality_gate_{sid}", outlets=[solution_asset])(
                solution_version_arn=(
                    "{{ ti.xcom_pull(task_ids='" + version.task_id + "')['solution_version_arn'] }}"
                ),
                state_prefix=pipeline.s3("state", solution.name),
                snapshot_uri=snapshot_uri,
                metric=gate.metric,
                max_regression=gate.maxRegression,
                asset_uri=solution_asset.uri,
                min_value=gate.minValue,
                aws_conn_id=pipeline.awsConnId,
            )
            chain(imports, create_solution, version, verdict)
            for each in filters:
                each >> create_solution
    return dag


# -------------------------------------------------------------------------------------------- batch
def build_batch_dag(cfg: ProjectConfig, config_path: Path) -> DAG | None:
    inference = cfg.solutions_with("batchInferenceJobs")
    segmentation = cfg.solutions_with("batchSegmentJobs")
    if not inference and not segmentation:
        return None
    from operators.personalize import (
        PersonalizeCreateBatchInferenceJobOperator,
        PersonalizeCreateBatchSegmentJobOperator,
    )
    from personalize_pipeline import tasks

    pipeline = cfg.pipeline
    conn = pipeline.awsConnId
    found = assets(cfg)
    schedule = AssetAny(*(found[f"solution:{s.name}"] for s in (*inference, *segmentation)))
    default_queries = pipeline.batchSegment.queries
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
        params={
            "num_results": Param(
                pipeline.batchInference.numResults,
                type="integer",
                minimum=1,
                maximum=500,
                description="recommendations per user (batch inference)",
            ),
            "segment_queries": Param(
                default_queries,
                type="array",
                description='batch segment queries, e.g. [{"itemAttributes": "ITEMS.genres = \\"Action\\""}]',
            ),
        },
    ) as dag:
        for solution in inference:
            sid = sanitize(solution.name).replace("-", "_")
            asset = found[f"solution:{solution.name}"]
            resolved = tasks.resolve_solution_version.override(task_id=f"resolve_version_{sid}")(
                asset_uri=asset.uri, state_prefix=pipeline.s3("state", solution.name), aws_conn_id=conn
            )
            for index, job_cfg in enumerate(solution.batchInferenceJobs):
                suffix = f"{sid}_{index}" if len(solution.batchInferenceJobs) > 1 else sid
                input_uri = tasks.prepare_inference_input.override(task_id=f"inference_input_{suffix}")(
                    resolved,
                    input_uri=pipeline.s3(
                        "batch", solution.name, "input", "{{ run_key(run_id) }}", "users.json"
                    ),
                    aws_conn_id=conn,
                )
                service = dict(job_cfg.serviceConfig)
                job = PersonalizeCreateBatchInferenceJobOperator(
                    task_id=f"batch_inference_{suffix}",
                    job_name_prefix=f"recs-{solution.name}"[:28],
                    solution_version_arn=resolved["solution_version_arn"],
                    job_input=input_uri,
                    job_output=pipeline.s3("batch", solution.name, "inference"),
                    role_arn=pipeline.roleArn,
                    num_results=service.pop("numResults", None) or "{{ params.num_results }}",
                    filter_arn=service.pop("filterArn", None),
                    create_kwargs=service,
                )
                tasks.publish_batch_output.override(
                    task_id=f"publish_recommendations_{suffix}", outlets=[found["recommendations"]]
                )(
                    kind="recommendations",
                    job_arn=job.output,
                    output_path=XComArg(job, key="output_path"),
                    asset_uri=found["recommendations"].uri,
                )
        for solution in segmentation:
            sid = sanitize(solution.name).replace("-", "_")
            asset = found[f"solution:{solution.name}"]
            resolved = tasks.resolve_solution_version.override(task_id=f"resolve_version_{sid}")(
                asset_uri=asset.uri, state_prefix=pipeline.s3("state", solution.name), aws_conn_id=conn
            )
            for index, job_cfg in enumerate(solution.batchSegmentJobs):
                suffix = f"{sid}_{index}" if len(solution.batchSegmentJobs) > 1 else sid
                input_uri = tasks.prepare_segment_input.override(task_id=f"segment_input_{suffix}")(
                    queries="{{ params.segment_queries | tojson }}",
                    default_source=pipeline.batchSegment.jobInput
                    or pipeline.s3("batch", solution.name, "job_config.json"),
                    input_uri=pipeline.s3(
                        "batch", solution.name, "input", "{{ run_key(run_id) }}", "queries.json"
                    ),
                    aws_conn_id=conn,
                )
                service = dict(job_cfg.serviceConfig)
                segment_job = PersonalizeCreateBatchSegmentJobOperator(
                    task_id=f"batch_segment_{suffix}",
                    job_name_prefix=f"segments-{solution.name}"[:28],
                    solution_version_arn=resolved["solution_version_arn"],
                    job_input=input_uri,
                    job_output=pipeline.s3("batch", solution.name, "segments"),
                    role_arn=pipeline.roleArn,
                    num_results=service.pop("numResults", None),
                    filter_arn=service.pop("filterArn", None),
                    create_kwargs=service,
                )
                resolved >> segment_job
                tasks.publish_batch_output.override(
                    task_id=f"publish_segments_{suffix}", outlets=[found["segments"]]
                )(
                    kind="segments",
                    job_arn=segment_job.output,
                    output_path=XComArg(segment_job, key="output_path"),
                    asset_uri=found["segments"].uri,
                )
    return dag


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
            state_prefix=pipeline.s3("state", "mparticle"),
            environment=mparticle.environment,
            identity_type=mparticle.identity,
            event_name=mparticle.eventName,
            mparticle_conn_id=mparticle.connId,
            aws_conn_id=pipeline.awsConnId,
            # one uploader at a time per run: the client-side rate limit is per task
            max_active_tis_per_dagrun=1,
        ).expand(output_uri=files)
    return dag


def build_pinpoint_activation_dag(cfg: ProjectConfig, config_path: Path) -> DAG | None:
    pinpoint = cfg.pipeline.activation.pinpoint
    if pinpoint is None or not pinpoint.enabled or not cfg.solutions_with("batchSegmentJobs"):
        return None
    from operators.pinpoint import PinpointCreateImportedSegmentOperator, ResolveSegmentEndpointsOperator
    from personalize_pipeline import tasks

    pipeline = cfg.pipeline
    segments_asset = assets(cfg)["segments"]
    with _dag(
        cfg,
        "activate_pinpoint",
        config_path,
        "Turns every line of the batch segment output into an Amazon Pinpoint imported segment: "
        "user ids → endpoint ids (one endpoint export joined with the segment; every endpoint of a "
        "user kept, users without one counted) → CSV in S3 → `CreateImportJob` with `DefineSegment`, "
        "waited on. Segment names are deterministic for the run, so a retry creates no second "
        "segment.\n\n**Amazon Pinpoint reached end of support on 2026-10-30.** Pinpoint sits behind "
        "`operators/audience_destinations.py`; Amazon Connect Customer Profiles is its successor.",
        schedule=[segments_asset],
        max_active_runs=1,
        params={
            "output_path": Param(
                "", type="string", description="batch segment output to activate (empty: the triggering one)"
            )
        },
    ) as dag:
        output = tasks.resolve_batch_output(
            asset_uri=segments_asset.uri, param_output="{{ params.output_path }}"
        )
        resolved = ResolveSegmentEndpointsOperator(
            task_id="resolve_endpoints",
            application_id=pinpoint.applicationId,
            segment_output_s3_uri=output,
            output_s3_uri=pipeline.s3("pinpoint", "{{ run_key(run_id) }}"),
            export_role_arn=pinpoint.exportRoleArn,
            channel_types=[pinpoint.channel] if pinpoint.channel else None,
        )
        requests = tasks.segment_import_requests(resolved.output)
        PinpointCreateImportedSegmentOperator.partial(
            task_id="import_segment",
            application_id=pinpoint.applicationId,
            role_arn=pinpoint.importRoleArn,
        ).expand_kwargs(requests)
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
    "activate": (build_mparticle_activation_dag, build_pinpoint_activation_dag),
}


def build_project_dags(config_path: Path, stages: tuple[str, ...] = tuple(STAGES)) -> list[DAG]:
    """The DAGs of ``stages`` for the project configured in ``config_path`` (a local file read, nothing else)."""
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stage(s) {sorted(unknown)}; known: {list(STAGES)}")
    cfg = load_config(config_path)
    builders = [builder for stage in stages for builder in STAGES[stage]]
    return [dag for builder in builders if (dag := builder(cfg, config_path)) is not None]


def build_all_dags(config_dir: Path = CONFIG_DIR, stages: tuple[str, ...] = tuple(STAGES)) -> list[DAG]:
    """The DAGs of ``stages`` for every config file in ``config_dir``."""
    dags: list[DAG] = []
    for path in discover_configs(config_dir):
        dags.extend(build_project_dags(path, stages))
    return dags
