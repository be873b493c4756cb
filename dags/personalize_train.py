"""
### airflow-personalize: the training DAG (import, solution versions, metrics gate)

Generates the ``<project>_train`` DAGs of every personalization project configured in
``include/config/*.json``: see the README and ``plugins/personalize_pipeline/factory.py``. At parse
time this file reads local config files and nothing else.
"""

from __future__ import annotations

# The Airflow modules this stage's operators build on. Importing them here lets the dag-processor
# import them once in its parent process ([dag_processor] parsing_pre_import_modules) instead of in
# every parse of this file (benchmarks/bench_parse.py measures a parse the same way).
import airflow.providers.amazon.aws.hooks.s3
import airflow.providers.amazon.aws.links.base_aws
import airflow.providers.amazon.aws.notifications.sns
import airflow.providers.amazon.aws.operators.athena
import airflow.providers.amazon.aws.operators.base_aws
import airflow.providers.amazon.aws.operators.redshift_data
import airflow.providers.amazon.aws.sensors.base_aws
import airflow.providers.amazon.aws.triggers.base
import airflow.providers.amazon.aws.utils
import airflow.providers.amazon.aws.utils.mixins
import airflow.providers.common.compat.sdk
import airflow.providers.standard.decorators.python
import airflow.providers.standard.decorators.short_circuit
import airflow.sdk.definitions.decorators  # noqa: F401
from personalize_pipeline.factory import CONFIG_DIR, build_all_dags

for _dag in build_all_dags(CONFIG_DIR, stages=("train",)):
    globals()[_dag.dag_id] = _dag
