"""
Every config key either works or is rejected with an error naming it: one test per key decision.

A key "works" when the generated DAGs carry it to the call it configures; the DAG-building tests
below check that at the operators. A key the pipeline would not act on fails to load, naming the
file, the key and what to do instead.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from personalize_pipeline.factory import build_project_dags

from personalize_logic import project_config
from personalize_logic.project_config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[3]
BINGEWATCH = REPO / "include" / "config" / "bingewatch.json"
SIDECAR = REPO / "include" / "config" / "bingewatch.pipeline.json"
TAG = [{"tagKey": "team", "tagValue": "ml"}]


def _project(tmp_path: Path, mutate: Any = None) -> Path:
    """The shipped Bingewatch config and its sidecar, merged into one file and changed by ``mutate``."""
    data = json.loads(BINGEWATCH.read_text())
    sidecar = json.loads(SIDECAR.read_text())
    data["solutions"] += sidecar.pop("solutions")
    data.update(sidecar)
    data["filters"] = [
        {
            "serviceConfig": {
                "name": "unwatched",
                "filterExpression": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")',
            }
        }
    ]
    if mutate is not None:
        mutate(data)
    path = tmp_path / "project.json"
    path.write_text(json.dumps(data))
    return path


def _solution(data: dict, name: str) -> dict:
    return next(s for s in data["solutions"] if s["serviceConfig"]["name"] == name)


REDSHIFT = {
    "iamRoleArn": "arn:aws:iam::123456789012:role/unload",
    "database": "analytics",
    "clusterIdentifier": "warehouse",
}
SEGMENTS = "bw_aws-item-attribute-affinity"
RECS = "bw_user-personalization"


def _tasks(path: Path) -> dict[str, Any]:
    return {task.task_id: task for dag in build_project_dags(path) for task in dag.tasks}


# --------------------------------------------------------------------------- rejected with a reason
@pytest.mark.parametrize(
    ("mutate", "key", "reason"),
    [
        pytest.param(
            lambda d: d.update(eventTracker={"serviceConfig": {"name": "tracker"}}),
            "eventTracker",
            "event trackers are not created by this pipeline",
            id="eventTracker",
        ),
        pytest.param(
            lambda d: d.update(recommenders=[]),
            "recommenders",
            "recommenders are not created by this pipeline",
            id="recommenders-even-empty",
        ),
        pytest.param(
            lambda d: _solution(d, RECS).update(campaigns=[{"serviceConfig": {"name": "c"}}]),
            "solutions.1.campaigns",
            "campaigns are not deployed by this pipeline",
            id="campaigns",
        ),
        pytest.param(
            lambda d: d["datasetGroup"].update(workflowConfig={"schedules": {"import": "cron(0 * * * ? *)"}}),
            "datasetGroup.workflowConfig",
            "set pipeline.training.schedule for a cron",
            id="datasetGroup.workflowConfig",
        ),
        pytest.param(
            lambda d: _solution(d, SEGMENTS).update(
                workflowConfig={"schedules": {"full": "cron(0 0 ? * 1 *)", "maxAge": "7 days"}}
            ),
            "solutions.0.workflowConfig",
            "every train DAG run trains each solution",
            id="solutions.workflowConfig",
        ),
        pytest.param(
            lambda d: _solution(d, RECS)["batchInferenceJobs"][0].update(workflowConfig={"schedule": "x"}),
            "solutions.1.batchInferenceJobs.0.workflowConfig",
            "batch jobs run when the metrics gate accepts",
            id="batchInferenceJobs.workflowConfig",
        ),
        pytest.param(
            lambda d: _solution(d, SEGMENTS)["batchSegmentJobs"][0].update(
                workflowConfig={"maxAge": "1 day"}
            ),
            "solutions.0.batchSegmentJobs.0.workflowConfig",
            "batch jobs run when the metrics gate accepts",
            id="batchSegmentJobs.workflowConfig",
        ),
        pytest.param(
            lambda d: d["pipeline"]["export"].update(
                source="redshift", redshift={**REDSHIFT, "connId": "redshift_default"}
            ),
            "pipeline.export.redshift.connId",
            "use source 'sql' with export.sql.connId",
            id="redshift.connId",
        ),
        pytest.param(
            lambda d: d["pipeline"]["batchInference"].update(usersFrom="interactions"),
            "pipeline.batchInference.usersFrom",
            "always those of the training snapshot",
            id="batchInference.usersFrom",
        ),
    ],
)
def test_a_key_the_pipeline_would_not_act_on_is_rejected_with_the_reason(
    tmp_path: Path, mutate: Any, key: str, reason: str
) -> None:
    path = _project(tmp_path, mutate)  # solutions: 0 = the MPE file's (segments), 1 = the sidecar's
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: invalid key {key}: ")
    assert reason in str(err.value)


def test_every_rejected_key_has_a_test_above() -> None:
    tested = {
        ("eventTracker",),
        ("recommenders",),
        ("solutions", "*", "campaigns"),
        ("datasetGroup", "workflowConfig"),
        ("solutions", "*", "workflowConfig"),
        ("solutions", "*", "batchInferenceJobs", "*", "workflowConfig"),
        ("solutions", "*", "batchSegmentJobs", "*", "workflowConfig"),
        ("pipeline", "export", "redshift", "connId"),
        ("pipeline", "batchInference", "usersFrom"),
    }
    assert set(project_config.NOT_ACTED_ON) == tested


def test_perform_auto_training_true_is_rejected_and_false_is_what_the_pipeline_does(tmp_path: Path) -> None:
    path = _project(tmp_path, lambda d: _solution(d, RECS)["serviceConfig"].update(performAutoTraining=True))
    with pytest.raises(ConfigError, match=r"invalid key solutions\.\d\.serviceConfig\.performAutoTraining: "):
        load_config(path)
    path = _project(tmp_path, lambda d: _solution(d, RECS)["serviceConfig"].update(performAutoTraining=False))
    task = _tasks(path)["solution_bw_user_personalization"]
    assert task.perform_auto_training is False
    assert "performAutoTraining" not in task.create_kwargs


def test_a_schema_block_takes_only_the_keys_of_create_schema(tmp_path: Path) -> None:
    path = _project(tmp_path, lambda d: d["datasets"]["users"]["schema"]["serviceConfig"].update(tags=TAG))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: invalid key datasets.users.schema.serviceConfig.tags: ")
    assert "CreateSchema takes only name, schema and domain" in str(err.value)


def test_a_dataset_block_takes_name_and_tags(tmp_path: Path) -> None:
    path = _project(
        tmp_path, lambda d: d["datasets"]["items"]["dataset"]["serviceConfig"].update(datasetType="Items")
    )
    with pytest.raises(
        ConfigError, match=r"invalid key datasets\.items\.dataset\.serviceConfig\.datasetType: "
    ):
        load_config(path)


@pytest.mark.parametrize(
    ("block", "key"),
    [
        pytest.param(lambda d: d["filters"][0]["serviceConfig"], "filters.0.serviceConfig", id="filter"),
        pytest.param(
            lambda d: _solution(d, RECS)["serviceConfig"], "solutions.1.serviceConfig", id="solution"
        ),
    ],
)
def test_the_dataset_group_arn_is_set_by_the_pipeline(tmp_path: Path, block: Any, key: str) -> None:
    arn = "arn:aws:personalize:us-east-1:123456789012:dataset-group/other"
    path = _project(tmp_path, lambda d: block(d).update(datasetGroupArn=arn))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: invalid key {key}.datasetGroupArn: set by the pipeline")


# ------------------------------------------------------------------------------------- made to work
def test_dataset_tags_reach_create_dataset(tmp_path: Path) -> None:
    path = _project(tmp_path, lambda d: d["datasets"]["items"]["dataset"]["serviceConfig"].update(tags=TAG))
    tasks = _tasks(path)
    assert tasks["dataset_items"].create_kwargs == {"tags": TAG}
    assert tasks["dataset_users"].create_kwargs == {}


def test_import_job_settings_reach_every_dataset_import_job(tmp_path: Path) -> None:
    settings = {"importMode": "FULL", "publishAttributionMetricsToS3": True, "tags": TAG}
    tasks = _tasks(_project(tmp_path, lambda d: d["datasets"].update(serviceConfig=settings)))
    for task_id in ("import_interactions", "import_items", "import_users"):
        assert tasks[task_id].publish_attribution_metrics_to_s3 is True
        assert tasks[task_id].tags == TAG


def test_without_import_job_settings_the_request_leaves_them_out(tmp_path: Path) -> None:
    tasks = _tasks(_project(tmp_path))
    assert tasks["import_interactions"].publish_attribution_metrics_to_s3 is None
    assert tasks["import_interactions"].tags is None


def test_solution_version_tags_reach_create_solution_version(tmp_path: Path) -> None:
    path = _project(
        tmp_path,
        lambda d: _solution(d, RECS)["serviceConfig"].update(
            solutionVersion={"trainingMode": "FULL", "tags": TAG}
        ),
    )
    tasks = _tasks(path)
    assert tasks["solution_version_bw_user_personalization"].tags == TAG
    assert tasks["solution_version_bw_aws_item_attribute_affinity"].tags is None


def test_root_tags_apply_to_every_resource_without_tags_of_its_own(tmp_path: Path) -> None:
    own = [{"tagKey": "owner", "tagValue": "recs-team"}]

    def mutate(d: dict) -> None:
        d["tags"] = TAG
        _solution(d, RECS)["batchInferenceJobs"][0]["serviceConfig"]["tags"] = own

    tasks = _tasks(_project(tmp_path, mutate))
    assert tasks["dataset_group"].create_kwargs["tags"] == TAG
    for kind in ("interactions", "items", "users"):
        assert tasks[f"dataset_{kind}"].create_kwargs == {"tags": TAG}
        assert tasks[f"import_{kind}"].tags == TAG
        assert tasks[f"schema_{kind}"].create_kwargs == {}  # CreateSchema takes no tags
    assert tasks["filter_unwatched"].create_kwargs == {"tags": TAG}
    for sid in ("bw_aws_item_attribute_affinity", "bw_user_personalization"):
        assert tasks[f"solution_{sid}"].create_kwargs["tags"] == TAG
        assert tasks[f"solution_version_{sid}"].tags == TAG
    assert tasks["batch_segment_bw_aws_item_attribute_affinity"].create_kwargs == {"tags": TAG}
    assert tasks["batch_inference_bw_user_personalization"].create_kwargs == {"tags": own}


def test_invalid_root_tags_are_reported_at_the_root(tmp_path: Path) -> None:
    path = _project(tmp_path, lambda d: d.update(tags=[{"tagKey": "team"}]))
    with pytest.raises(ConfigError, match=r"invalid key tags\.0\.tagValue: required key is missing"):
        load_config(path)


def _redshift_source(d: dict, redshift: dict) -> None:
    """Export from Redshift; the exclusion filter then needs its event types spelled out."""
    d["pipeline"]["export"].update(source="redshift", redshift=redshift)
    exclude = d["pipeline"].get("batchInference", {}).get("excludeInteracted")
    if exclude is not None:
        exclude["eventTypes"] = ["purchase"]


def test_redshift_keys_reach_the_unload_and_the_data_api(tmp_path: Path) -> None:
    redshift = {**REDSHIFT, "sqlFile": "sql/my_interactions.sql", "dbUser": "airflow"}
    tasks = _tasks(_project(tmp_path, lambda d: _redshift_source(d, redshift)))
    unload = tasks["export_interactions_unload"]
    assert unload.sql == "sql/my_interactions.sql"  # rendered from include/ at run time
    assert unload.iam_role_arn == redshift["iamRoleArn"]
    assert (unload.database, unload.cluster_identifier, unload.workgroup_name) == (
        "analytics",
        "warehouse",
        None,
    )
    assert (unload.db_user, unload.secret_arn) == ("airflow", None)
    assert unload.deferrable is True
    assert unload.downstream_task_ids == {"export_interactions"}
    serverless = {
        **REDSHIFT,
        "clusterIdentifier": None,
        "workgroupName": "wg",
        "secretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rs",
    }
    tasks = _tasks(_project(tmp_path, lambda d: _redshift_source(d, serverless)))
    unload = tasks["export_interactions_unload"]
    assert (unload.cluster_identifier, unload.workgroup_name, unload.secret_arn) == (
        None,
        "wg",
        serverless["secretArn"],
    )


@pytest.mark.parametrize(
    ("redshift", "key", "message"),
    [
        pytest.param({**REDSHIFT, "workgroupName": "wg"}, "clusterIdentifier", "exactly one of", id="both"),
        pytest.param(
            {k: v for k, v in REDSHIFT.items() if k != "clusterIdentifier"},
            "clusterIdentifier",
            "exactly one of",
            id="neither",
        ),
        pytest.param(
            {**REDSHIFT, "clusterIdentifier": None, "workgroupName": "wg", "dbUser": "u"},
            "dbUser",
            "clusterIdentifier only",
            id="dbUser-serverless",
        ),
        pytest.param(
            {k: v for k, v in REDSHIFT.items() if k != "iamRoleArn"},
            "iamRoleArn",
            "required key is missing",
            id="no-role",
        ),
    ],
)
def test_redshift_source_is_checked_when_loaded(
    tmp_path: Path, redshift: dict, key: str, message: str
) -> None:
    path = _project(tmp_path, lambda d: d["pipeline"]["export"].update(source="redshift", redshift=redshift))
    with pytest.raises(ConfigError, match=rf"invalid key pipeline\.export\.redshift\.{key}: .*{message}"):
        load_config(path)


def _athena(d: dict, **athena: str) -> None:
    d["pipeline"]["export"].update(engine="athena", **({"athena": athena} if athena else {}))


def test_the_athena_engine_keys_reach_the_ddl_the_query_and_the_workgroup(tmp_path: Path) -> None:
    tasks = _tasks(_project(tmp_path, lambda d: _athena(d, database="shop", table="landed", workgroup="etl")))
    query = tasks["export_interactions_query"]
    assert (query.database, query.workgroup, query.deferrable) == ("shop", "etl", True)
    assert query.query == "sql/athena/mparticle_interactions.sql"
    assert (query.params["database"], query.params["table"]) == ("shop", "landed")
    assert query.params["actions"] == ["purchase", "view_detail", "add_to_cart", "add_to_wishlist"]
    assert tasks["athena_table"].location == "s3://{{ var.value.personalize_bucket }}/mparticle/events/"
    assert {t.workgroup for t in (tasks["athena_database"], tasks["athena_table"])} == {"etl"}
    assert tasks["athena_table"].downstream_task_ids == {"export_interactions_query"}
    assert query.downstream_task_ids == {"export_interactions"}
    assert [o.uri for o in tasks["export_interactions"].outlets] == [
        "x-personalize://bingewatch/interactions"
    ]
    defaults = _tasks(_project(tmp_path, _athena))["export_interactions_query"]
    assert (defaults.database, defaults.params["table"], defaults.workgroup) == (
        "bingewatch",
        "mparticle_batches",
        "primary",
    )


def test_the_python_engine_is_the_default(tmp_path: Path) -> None:
    tasks = _tasks(_project(tmp_path))
    assert "export_interactions_query" not in tasks
    assert type(tasks["export_interactions"]).__name__ == "MParticleBatchesToInteractionsOperator"


@pytest.mark.parametrize(
    ("mutate", "key", "message"),
    [
        pytest.param(
            lambda d: d["pipeline"]["export"].update(athena={"table": "t"}),
            "athena",
            "set engine or remove it",
            id="athena-block-without-engine",
        ),
        pytest.param(
            lambda d: d["pipeline"]["export"].update(engine="athena", source="redshift", redshift=REDSHIFT),
            "engine",
            "needs source 'mparticle'",
            id="athena-engine-other-source",
        ),
        pytest.param(
            lambda d: _athena(d, database="Bad-Name"), "athena.database", "matching regex", id="glue-name"
        ),
    ],
)
def test_athena_engine_keys_are_checked(tmp_path: Path, mutate: Any, key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"invalid key pipeline\.export\.{key}: .*{message}"):
        load_config(_project(tmp_path, mutate))


def test_the_shipped_mpe_file_uses_no_rejected_key() -> None:
    data = json.loads(BINGEWATCH.read_text())
    assert list(project_config._keys_not_acted_on(data)) == []
    assert "tags" not in data  # nothing is copied into the MPE file's blocks


# ------------------------------------------------------------------------------------------- audit
def _struct_fields() -> dict[str, tuple[str, ...]]:
    found = {}
    for name, obj in vars(project_config).items():
        if (
            isinstance(obj, type)
            and issubclass(obj, msgspec.Struct)
            and obj.__module__ == project_config.__name__
        ):
            found[name] = obj.__struct_fields__
    return found


def test_every_field_of_the_config_model_is_read_by_the_code() -> None:
    """A field no code reads would be a key accepted and then ignored: add it to NOT_ACTED_ON instead."""
    code = "\n".join(p.read_text() for p in (REPO / "plugins").rglob("*.py"))
    unread = sorted(
        f"{struct}.{name}"
        for struct, names in _struct_fields().items()
        for name in names
        if not re.search(rf"\.{name}\b", code)
    )
    assert unread == []


@pytest.mark.parametrize("days", [0, 1, 3])
def test_lateness_days_is_the_number_of_later_landing_folders_the_export_reads(
    tmp_path: Path, days: int
) -> None:
    def lateness(d: dict) -> None:
        d["pipeline"]["export"]["mparticle"]["latenessDays"] = days

    task = _tasks(_project(tmp_path, lateness))["export_interactions"]
    assert task.source_prefixes.endswith("/dt={{ data_interval_start | ds }}/")
    assert [p.rsplit("dt=", 1)[1] for p in task.late_source_prefixes] == [
        "{{ macros.ds_add(data_interval_start | ds, " + str(n) + ") }}/" for n in range(1, days + 1)
    ]
    assert task.lateness_days == days


def test_lateness_days_defaults_to_one_and_is_bounded(tmp_path: Path) -> None:
    assert load_config(_project(tmp_path)).pipeline.export.mparticle.latenessDays == 1  # type: ignore[union-attr]

    def too_late(d: dict) -> None:
        d["pipeline"]["export"]["mparticle"]["latenessDays"] = 31

    with pytest.raises(
        ConfigError, match=r"invalid key pipeline.export.mparticle.latenessDays: Expected `int` <= 30"
    ):
        load_config(_project(tmp_path, too_late))


def test_the_export_columns_follow_the_interactions_schema(tmp_path: Path) -> None:
    """EVENT_VALUE required in the shipped schema: a price-less product is quarantined, not written empty."""
    task = _tasks(_project(tmp_path))["export_interactions"]
    assert (task.event_value_field, task.event_value_required, task.include_session_id) == (
        "price",
        True,
        False,
    )

    def nullable_with_session(d: dict) -> None:
        fields = d["datasets"]["interactions"]["schema"]["serviceConfig"]["schema"]["fields"]
        fields[3]["type"] = ["null", "float"]
        fields.append({"name": "SESSION_ID", "type": ["null", "string"], "categorical": True})

    task = _tasks(_project(tmp_path, nullable_with_session))["export_interactions"]
    assert (task.event_value_field, task.event_value_required, task.include_session_id) == (
        "price",
        False,
        True,
    )

    def extra_required(d: dict) -> None:
        d["datasets"]["interactions"]["schema"]["serviceConfig"]["schema"]["fields"].append(
            {"name": "DEVICE", "type": "string", "categorical": True}
        )

    with pytest.raises(
        ConfigError, match="field DEVICE is required but the mParticle export never writes it"
    ):
        load_config(_project(tmp_path, extra_required))
