"""
### airflow-personalize: the export DAG (scheduled per data interval, backfillable)

Generates the ``<project>_export`` DAGs of every personalization project configured in
``include/config/*.json``: see the README and ``plugins/personalize_pipeline/factory.py``. At parse
time this file reads local config files and nothing else.
"""

from __future__ import annotations

# The Airflow modules this stage's operators build on. Importing them here lets the dag-processor
# import them once in its parent process ([dag_processor] parsing_pre_import_modules) instead of in
# every parse of this file (benchmarks/bench_parse.py measures a parse the same way).
import airflow.providers.amazon.aws.hooks.s3
import airflow.providers.amazon.aws.notifications.sns
import airflow.providers.amazon.aws.operators.athena
import airflow.providers.amazon.aws.operators.base_aws
import airflow.providers.amazon.aws.operators.redshift_data
import airflow.providers.amazon.aws.utils.mixins
import airflow.providers.common.compat.sdk

try:  # the export DAG's timetable: the Task SDK's from Airflow 3.2, core's on 3.1 (personalize_pipeline/compat.py)
    import airflow.sdk.definitions.timetables.interval
except ImportError:
    import airflow.timetables.interval  # noqa: F401
from personalize_pipeline.factory import CONFIG_DIR, build_all_dags

for _dag in build_all_dags(CONFIG_DIR, stages=("export",)):
    globals()[_dag.dag_id] = _dag
