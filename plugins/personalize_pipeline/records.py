"""
Small JSON records the DAGs leave in S3 so that one stage can find what an earlier one produced.

``<pipeline prefix>/state/<solution>/accepted/<version id>.json`` holds every version the quality
gate accepted (never overwritten: one object per version) and ``.../accepted/latest.json`` points
at the newest one. ``<prefix>/state/batch/<kind>/<run key>.json`` records what a batch run wrote.
Asset events carry the same facts in their ``extra``; the records are the fallback for runs that
were triggered by hand and the history the gate compares against.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook


def split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


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
