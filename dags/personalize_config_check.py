"""
### airflow-personalize: the project configs' check (defines no DAG)

The stage files (``personalize_<stage>.py``) generate the DAGs of every project configured in
``include/config/*.json`` and leave out a project whose config is invalid, so one broken file never
removes the other projects' DAGs. This file reports those projects: when a config is invalid (not
UTF-8 or not JSON, a key that is wrong or unknown, in the file or its sidecar, a project id or S3
folder that another file also claims, a schedule that is not a cron) it raises one ``ConfigError``
naming every file and key, which Airflow shows in its DAG Import Errors view. When every config is
valid it defines nothing. At parse time it reads local config files and nothing else.
"""

from __future__ import annotations

from personalize_pipeline.factory import CONFIG_DIR, raise_config_problems

raise_config_problems(CONFIG_DIR)
