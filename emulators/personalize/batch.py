"""Batch inference and batch segment jobs: JSON lines in S3 → ``<input file name>.out`` JSON lines.

Output format (reference §4), one output line per non-blank input line:

* success: ``{"input": <the input object>, "output": {...}, "error": null}`` where ``output`` is
  ``{"recommendedItems": [...], "scores": [...]}`` for USER_PERSONALIZATION and PERSONALIZED_RANKING,
  ``{"recommendedItems": [...]}`` for POPULAR_ITEMS and RELATED_ITEMS (the documented examples show no
  scores there), and ``{"usersList": [...]}`` for batch segment jobs. Batch segment lines echo the
  query under ``input`` (``input.itemId`` / ``input.itemAttributes``), which is what working AWS code
  reads (reference §4.2 / §7.7) — not the documentation's ``recommendedUsers`` / top-level echo.
* a bad line (not JSON, missing or wrong-typed key, unknown id the model cannot serve, bad
  ``filterValues``): ``{"input": <object, or the raw text when it is not JSON>, "output": null,
  "error": "<message>"}``. The job still completes (ACTIVE). AWS does not document the non-null error
  shape; this is the emulator's choice.

Scores are rounded to 7 decimals for USER_PERSONALIZATION (the documented example's precision) and 5
for PERSONALIZED_RANKING. A ``_CHECK`` object is written to the output prefix first (AWS's write
probe; readers must ignore it).

Job-level failures (raise :class:`BatchJobError`, the job becomes CREATE FAILED): no input file, more
than 500 ``itemId`` lines for Item-Affinity or more than 10 ``itemAttributes`` queries for
Item-Attribute-Affinity, an ``itemAttributes`` expression that does not parse.
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MAX_ITEM_AFFINITY_LINES = 500
MAX_ITEM_ATTRIBUTE_QUERIES = 10
MAX_RANKING_ITEMS = 500
SEGMENT_FAMILIES = ("ITEM_AFFINITY", "ITEM_ATTRIBUTE_AFFINITY")


class BatchJobError(RuntimeError):
    """The whole batch job fails; the message is its ``failureReason``."""


class _LineError(ValueError):
    pass


def parse_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise BatchJobError(f"{url} is not an s3:// location")
    bucket, _, key = url[5:].partition("/")
    if not bucket:
        raise BatchJobError(f"{url} names no bucket")
    return bucket, key


def list_input_keys(s3: Any, path: str) -> tuple[str, list[str]]:
    """Objects matched by ``path`` (S3 prefix semantics, as AWS: ``s3://b/x`` also matches ``x_test``)."""
    bucket, prefix = parse_s3_url(path)
    keys: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/") or key.rsplit("/", 1)[-1] == "_CHECK":
                    continue
                keys.append(key)
    except Exception as exc:
        raise BatchJobError(f"cannot list the input location {path}: {exc}") from exc
    if not keys:
        raise BatchJobError(f"no input file found at {path}")
    return bucket, sorted(keys)


def _lines(s3: Any, bucket: str, key: str) -> Iterator[tuple[int, str]]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    for number, raw in enumerate(body.iter_lines(), start=1):
        text = raw.decode("utf-8", errors="replace").strip()
        if text:
            yield number, text


def _round(scores: list[float], digits: int) -> list[float]:
    return [round(float(s), digits) for s in scores]


def _str_field(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise _LineError(f"Invalid input: '{key}' is required and must be a non-empty string")
    if len(value) > 256:
        raise _LineError(f"Invalid input: '{key}' is longer than 256 characters")
    return value


def _filter_values(obj: dict[str, Any]) -> dict[str, Any] | None:
    values = obj.get("filterValues")
    if values is None:
        return None
    if not isinstance(values, dict):
        raise _LineError("Invalid input: 'filterValues' must be an object")
    return values


def _inference_output(
    obj: dict[str, Any], family: str, model: Any, item_filter: Any, num_results: int
) -> dict[str, Any]:
    values = _filter_values(obj)
    if family in ("USER_PERSONALIZATION", "POPULAR_ITEMS"):
        user = _str_field(obj, "userId")
        items, scores = model.recommend(user, num_results, item_filter=item_filter, filter_values=values)
        out: dict[str, Any] = {"recommendedItems": list(items)}
        if family == "USER_PERSONALIZATION":
            out["scores"] = _round(scores, 7)
        return out
    if family == "RELATED_ITEMS":
        item = _str_field(obj, "itemId")
        items, _scores = model.similar_items(item, num_results, item_filter=item_filter, filter_values=values)
        return {"recommendedItems": list(items)}
    if family == "PERSONALIZED_RANKING":
        user = _str_field(obj, "userId")
        item_list = obj.get("itemList")
        if not isinstance(item_list, list) or not item_list or not all(isinstance(i, str) for i in item_list):
            raise _LineError("Invalid input: 'itemList' is required and must be a non-empty list of strings")
        if len(item_list) > MAX_RANKING_ITEMS:
            raise _LineError(f"Invalid input: 'itemList' has more than {MAX_RANKING_ITEMS} items")
        items, scores = model.rank(user, item_list, item_filter=item_filter, filter_values=values)
        return {"recommendedItems": list(items), "scores": _round(scores, 5)}
    raise BatchJobError(f"recipe family {family} cannot be used for batch inference")


def _segment_users(
    obj: dict[str, Any], family: str, model: Any, user_filter: Any, num_results: int, label: str
) -> dict[str, Any]:
    from emulators.personalize.filters import FilterExpressionError

    kwargs: dict[str, Any] = {}
    if user_filter is not None:
        kwargs = _user_filter_kwargs(model, family, user_filter, _filter_values(obj))
    if family == "ITEM_AFFINITY":
        item = _str_field(obj, "itemId")
        users = model.users_for_item(item, num_results, **kwargs)
    else:
        expression = obj.get("itemAttributes")
        if not isinstance(expression, str) or not expression.strip():
            raise _LineError("Invalid input: 'itemAttributes' is required and must be a non-empty string")
        try:
            users = model.users_for_item_attributes(expression, num_results, **kwargs)
        except FilterExpressionError as exc:
            raise BatchJobError(f"{label}: invalid itemAttributes expression {expression!r}: {exc}") from exc
    return {"usersList": [str(u) for u in users]}


def _user_filter_kwargs(
    model: Any, family: str, user_filter: Any, values: dict[str, Any] | None
) -> dict[str, Any]:
    method = model.users_for_item if family == "ITEM_AFFINITY" else model.users_for_item_attributes
    params = inspect.signature(method).parameters
    kwargs: dict[str, Any] = {}
    if "user_filter" in params:
        kwargs["user_filter"] = user_filter
    elif "item_filter" in params:
        kwargs["item_filter"] = user_filter
    if kwargs and "filter_values" in params:
        kwargs["filter_values"] = values
    return kwargs


def run_batch_job(
    *,
    s3: Any,
    segment: bool,
    family: str,
    model: Any,
    input_path: str,
    output_path: str,
    num_results: int,
    compiled_filter: Any | None,
    work_dir: Path,
) -> int:
    """Run one batch inference (``segment=False``) or batch segment job; returns the lines written."""
    in_bucket, keys = list_input_keys(s3, input_path)
    out_bucket, out_prefix = parse_s3_url(output_path)
    if out_prefix and not out_prefix.endswith("/"):
        out_prefix += "/"
    if segment:
        limit = MAX_ITEM_AFFINITY_LINES if family == "ITEM_AFFINITY" else MAX_ITEM_ATTRIBUTE_QUERIES
        what = "itemId lines" if family == "ITEM_AFFINITY" else "itemAttributes queries"
        total = sum(1 for key in keys for _ in _lines(s3, in_bucket, key))
        if total > limit:
            raise BatchJobError(
                f"the input at {input_path} has {total} {what}; a batch segment job with this recipe accepts "
                f"at most {limit}"
            )
    try:
        s3.put_object(Bucket=out_bucket, Key=f"{out_prefix}_CHECK", Body=b"")
    except Exception as exc:
        raise BatchJobError(f"cannot write to the output location {output_path}: {exc}") from exc
    written = 0
    work_dir.mkdir(parents=True, exist_ok=True)
    for key in keys:
        name = key.rsplit("/", 1)[-1]
        fd, tmp_name = tempfile.mkstemp(dir=work_dir, suffix=".out")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                for number, text in _lines(s3, in_bucket, key):
                    label = f"s3://{in_bucket}/{key} line {number}"
                    out.write(
                        json.dumps(
                            _one_line(text, segment, family, model, compiled_filter, num_results, label)
                        )
                    )
                    out.write("\n")
                    written += 1
            s3.upload_file(tmp_name, out_bucket, f"{out_prefix}{name}.out")
        finally:
            Path(tmp_name).unlink(missing_ok=True)
    return written


def _one_line(
    text: str, segment: bool, family: str, model: Any, compiled_filter: Any, num_results: int, label: str
) -> dict[str, Any]:
    from emulators.personalize.filters import FilterExpressionError

    try:
        obj = json.loads(text)
    except ValueError:
        return {
            "input": text,
            "output": None,
            "error": f"Invalid input: the line is not valid JSON ({label})",
        }
    if not isinstance(obj, dict):
        return {"input": obj, "output": None, "error": "Invalid input: each line must be a JSON object"}
    try:
        if segment:
            output = _segment_users(obj, family, model, compiled_filter, num_results, label)
        else:
            output = _inference_output(obj, family, model, compiled_filter, num_results)
    except BatchJobError:
        raise
    except (_LineError, FilterExpressionError) as exc:
        return {"input": obj, "output": None, "error": str(exc)}
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        return {"input": obj, "output": None, "error": f"Invalid input: {type(exc).__name__}: {exc}"}
    return {"input": obj, "output": output, "error": None}
