"""
Small JSON records the DAGs leave in S3 so that one stage can find what an earlier one produced.

The quality gate writes ``<solution state>/verdicts/<version id>.json`` for every verdict and, for
an accepted version, ``<solution state>/accepted/<version id>.json`` and ``.../accepted/latest.json``
(keys: :mod:`personalize_logic.layout`). Asset events carry the same facts in their ``extra``; the
records are the fallback for runs that were triggered by hand and the history the gate compares
against.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from personalize_logic.layout import split_s3

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook


def read_json(hook: S3Hook, uri: str) -> dict[str, Any] | None:
    bucket, key = split_s3(uri)
    if not hook.check_for_key(key, bucket_name=bucket):
        return None
    return json.loads(hook.read_key(key, bucket_name=bucket))


def write_json(hook: S3Hook, uri: str, payload: dict[str, Any]) -> str:
    bucket, key = split_s3(uri)
    hook.load_string(json.dumps(payload, indent=2, sort_keys=True), key, bucket_name=bucket, replace=True)
    return uri


def version_id(solution_version_arn: str) -> str:
    return solution_version_arn.rsplit("/", 1)[-1]
