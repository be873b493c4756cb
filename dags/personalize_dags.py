"""
### airflow-personalize

Generates the DAGs of every personalization project configured in `include/config/*.json`
(export → train → batch → activate, linked by Assets). See the README and
`plugins/personalize_pipeline/factory.py`. This file only reads local config files at parse time.
"""

from __future__ import annotations

# The provider modules the generated operators build on. Importing them here lets the
# dag-processor pre-import them once in its parent process ([dag_processor]
# parsing_pre_import_modules) instead of in every parse of this file.
import airflow.providers.amazon.aws.hooks.s3
import airflow.providers.amazon.aws.notifications.sns
import airflow.providers.amazon.aws.operators.base_aws
import airflow.providers.amazon.aws.sensors.base_aws
import airflow.providers.amazon.aws.transfers.redshift_to_s3
import airflow.providers.amazon.aws.triggers.base
import airflow.providers.http.hooks.http
import airflow.providers.standard.decorators.python
import airflow.sdk.definitions.timetables.interval  # noqa: F401  (the export's CronDataIntervalTimetable)
from personalize_pipeline.factory import CONFIG_DIR, build_all_dags

for _dag in build_all_dags(CONFIG_DIR):
    globals()[_dag.dag_id] = _dag
