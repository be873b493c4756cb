from __future__ import annotations

import pendulum

from operators.mparticle import PersonalizeRecsToMParticleOperator


def test_template_fields_and_constructor_only_assigns():
    op = PersonalizeRecsToMParticleOperator(
        task_id="t",
        output_uri="s3://b/{{ ds }}/a.out",
        state_prefix="s3://b/state",
        environment="development",
    )
    assert set(op.template_fields) >= {"output_uri", "state_prefix", "run_key", "environment"}
    assert op.output_uri == "s3://b/{{ ds }}/a.out"
    assert "hook" not in op.__dict__  # created lazily
    assert "s3_hook" not in op.__dict__


def test_maps_over_output_files():
    from airflow.sdk import DAG

    with DAG("mparticle_mapping", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
        PersonalizeRecsToMParticleOperator.partial(
            task_id="recs_to_mparticle", state_prefix="s3://b/state", max_active_tis_per_dagrun=1
        ).expand(output_uri=["s3://b/out/a.out", "s3://b/out/b.out"])
    assert "recs_to_mparticle" in dag.task_dict


def test_state_paths_are_per_run_and_per_file():
    op = PersonalizeRecsToMParticleOperator(
        task_id="t", output_uri="s3://b/out/users part.json.out", state_prefix="s3://b/state/"
    )
    checkpoint, dead = op._paths("dag/manual__2026-01-01T00:00:00+00:00/t")
    assert checkpoint.startswith("s3://b/state/checkpoints/dag-manual_2026-01-01T00-00-00-00-00-t-")
    assert checkpoint.endswith(".json")
    assert dead.startswith("s3://b/state/dead_letter/")
    other = PersonalizeRecsToMParticleOperator(
        task_id="t", output_uri="s3://b/out/x.out", state_prefix="s3://b/state"
    )
    assert other._paths("dag/run/t")[0] != op._paths("dag/run/t")[0]
