"""
What every segment destination shares: reading the batch segment outputs, and activating a segment
once per DAG run.

A segment destination (Customer Profiles, Pinpoint, ...) is a family in the provider's shape (hook,
waiter JSON, trigger, sensor, operators) plus one config block. Its operators build on two pieces
here, so a new destination writes only what is its own:

* :class:`BatchSegmentsOperator` — the base of a destination's *prepare* operator. It reads every
  line of every ``.out`` file of every batch segment output the run activates (the outputs of all
  the Asset events that triggered it), stages each good line's users in a local file with
  :func:`personalize_logic.segments.stage_segment_users` (streamed: memory does not grow with the
  segment), names the segment (:func:`~personalize_logic.segments.segment_name`), reports the lines
  with errors (``_errors.jsonl``, counted, or a failure with ``fail_on_error_lines``) and hands each
  ``(segment name, query, users file)`` to :meth:`BatchSegmentsOperator.prepare_segment`, the
  destination's own step (join, write its file to S3).
* :class:`ActivationClaims` — the per-run record that makes activation idempotent: the first
  attempt that activates a segment writes ``<state>/activation/<destination>/<dag run key>/<segment>
  .json`` with a conditional PUT (``If-None-Match: *``): the *fingerprint* of its input (the files'
  sizes and ETags, or their SHA-256, and the request's settings) and, once created, the ids of the
  AWS resources. A retry finds the record and reuses the resources; a rerun whose input differs
  fails, naming each key that differs (:func:`~personalize_logic.segments.fingerprint_differences`);
  a concurrent attempt that loses the conditional PUT waits for the winner's resource ids instead of
  creating a second segment.
"""

from __future__ import annotations

import abc
import json
import socket
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.common.compat.sdk import AirflowException

from personalize_logic import layout

if TYPE_CHECKING:
    from airflow.sdk import Context

    from personalize_logic.segments import SegmentOutputSummary, StagedSegment


def s3_client(task: Any) -> Any:
    """An S3 client with the task's AWS connection settings."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(
        aws_conn_id=task.aws_conn_id,
        region_name=task.region_name,
        verify=task.verify,
        config=task.botocore_config,
    ).conn


def list_keys(s3: Any, url: str, suffixes: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """``(bucket, key)`` of every object under ``url`` (a key or a prefix), sorted; optionally only
    the keys ending with one of ``suffixes``."""
    bucket, prefix = layout.split_s3(url)
    keys: list[tuple[str, str]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if not key.endswith("/") and (suffixes is None or key.endswith(suffixes)):
                keys.append((bucket, key))
    return sorted(keys)


def s3_fingerprint(s3: Any, url: str) -> list[list[Any]]:
    """``[name, size, ETag]`` of every object under ``url`` (names relative to it), sorted: what a
    service reading ``url`` would import, without downloading it."""
    bucket, prefix = layout.split_s3(url)
    found: list[list[Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith("/"):
                found.append([obj["Key"][len(prefix) :].lstrip("/"), obj["Size"], obj["ETag"].strip('"')])
    return sorted(found)


def as_uri_list(value: str | Sequence[str] | None) -> list[str]:
    """A templated list of URIs: a list, a JSON list rendered as text, or one URI."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return [str(item) for item in json.loads(text)]
        return [text] if text else []
    return [str(item) for item in value]


# --------------------------------------------------------------------------------------------------
# the prepare step every destination shares
# --------------------------------------------------------------------------------------------------


class BatchSegmentsOperator(AwsBaseOperator, abc.ABC):
    """
    Base of a segment destination's prepare operator (see the module docstring).

    :param segment_output_s3_uris: The batch segment outputs to activate: a list of ``.out``
        objects or prefixes (the outputs of every Asset event that triggered the run). (templated)
    :param output_s3_uri: This destination's folder for the run, e.g.
        ``s3://bucket/<prefix>/customer_profiles/{{ run_key(run_id) }}``. (templated)
    :param segment_timestamp: Timestamp in the segment names (datetime or ISO string); default the
        logical date (or ``run_after`` when the run has none). (templated)
    :param always_hash_names: Always append the query hash to segment names.
    :param fail_on_error_lines: Fail when any output line carries an error. (default False)
    """

    template_fields: Sequence[str] = ("segment_output_s3_uris", "output_s3_uri", "segment_timestamp")

    def __init__(
        self,
        *,
        segment_output_s3_uris: str | list[str],
        output_s3_uri: str,
        segment_timestamp: str | datetime | None = None,
        always_hash_names: bool = False,
        fail_on_error_lines: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.segment_output_s3_uris = segment_output_s3_uris
        self.output_s3_uri = output_s3_uri
        self.segment_timestamp = segment_timestamp
        self.always_hash_names = always_hash_names
        self.fail_on_error_lines = fail_on_error_lines

    # -- what a destination implements ------------------------------------------------------------
    def start(self, context: Context, s3: Any, work: Path, distinct_users: int) -> None:
        """Once, before the first segment: e.g. export what the users are joined with."""

    @abc.abstractmethod
    def prepare_segment(self, s3: Any, work: Path, name: str, staged: StagedSegment) -> dict[str, Any]:
        """Build this destination's file for one segment; return its XCom entry."""

    def finish(self) -> None:
        """Once, after the last segment (also on failure): release what :meth:`start` opened."""

    # -- the shared part --------------------------------------------------------------------------
    def _timestamp(self, context: Context) -> datetime | str:
        if self.segment_timestamp:
            return self.segment_timestamp
        when = context.get("logical_date")
        if when is None:
            dag_run = context.get("dag_run")
            when = getattr(dag_run, "run_after", None) or getattr(dag_run, "logical_date", None)
        if when is None:
            raise AirflowException("No segment_timestamp and the run has no logical date / run_after")
        return when

    def _download_outputs(self, s3: Any, work: Path) -> list[tuple[str, Path]]:
        uris = as_uri_list(self.segment_output_s3_uris)
        if not uris:
            raise AirflowException("No batch segment output to activate")
        files: list[tuple[str, Path]] = []
        for uri in uris:
            keys = list_keys(s3, uri, (".out",))
            if not keys:
                raise AirflowException(f"No .out files under {uri}")
            for bucket, key in keys:
                local = work / "out" / f"{len(files):05d}.out"
                local.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, key, str(local))
                files.append((layout.s3_uri(bucket, key), local))
        return files

    def _stage(
        self, outputs: list[tuple[str, Path]], work: Path
    ) -> tuple[list[StagedSegment], SegmentOutputSummary]:
        from personalize_logic.segments import SegmentOutputSummary, stage_segment_users

        summary = SegmentOutputSummary()
        staged: list[StagedSegment] = []
        for index, (uri, local) in enumerate(outputs):
            with local.open("rb") as handle:
                for item in stage_segment_users(handle, uri, work / "users", source_index=index):
                    summary.add(item.line)
                    if item.line.ok:
                        staged.append(item)
        return staged, summary

    def _names(self, staged: list[StagedSegment], when: datetime | str) -> list[tuple[str, StagedSegment]]:
        """Each staged line with its segment name; a query that repeats (in any output) is an error."""
        from personalize_logic.segments import segment_name

        named: list[tuple[str, StagedSegment]] = []
        seen: dict[str, str] = {}
        for item in staged:
            line = item.line
            assert line.query is not None  # a good line has a query
            name = segment_name(line.query, line.query_kind, when, always_hash=self.always_hash_names)
            where = f"{line.source}, line {line.line_number}"
            if name in seen:
                raise AirflowException(
                    f"{where}: query {line.query!r} repeats (segment {name!r} already built from {seen[name]})"
                )
            seen[name] = where
            named.append((name, item))
        return named

    def _report_errors(self, s3: Any, summary: SegmentOutputSummary) -> None:
        self.log.info(
            "Batch segment output: %s lines, %s good, %s with errors",
            summary.lines, summary.good_lines, len(summary.error_lines),
        )  # fmt: skip
        if not summary.error_lines:
            return
        for line in summary.error_lines[:20]:
            self.log.warning("%s, line %s: %s", line.source, line.line_number, line.error)
        errors_uri = layout.segment_errors_uri(self.output_s3_uri)
        bucket, key = layout.split_s3(errors_uri)
        body = "".join(
            json.dumps({"source": e.source, "line": e.line_number, "query": e.query, "error": e.error}) + "\n"
            for e in summary.error_lines
        )
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"))
        if self.fail_on_error_lines:
            raise AirflowException(
                f"{len(summary.error_lines)} batch segment output line(s) carry errors; see {errors_uri}"
            )

    def execute(self, context: Context) -> list[dict[str, Any]]:
        when = self._timestamp(context)
        s3 = s3_client(self)
        with tempfile.TemporaryDirectory(prefix=f"{self.task_id}-") as tmp:
            work = Path(tmp)
            staged, summary = self._stage(self._download_outputs(s3, work), work)
            self._report_errors(s3, summary)
            named = self._names(staged, when)
            try:
                self.start(context, s3, work, sum(item.users for item in staged))
                return [self.prepare_segment(s3, work, name, item) for name, item in named]
            finally:
                self.finish()


# --------------------------------------------------------------------------------------------------
# once per DAG run: the activation claim
# --------------------------------------------------------------------------------------------------


class ActivationClaims:
    """
    The activation records of one destination in one DAG run (see the module docstring).

    :param s3: An S3 client.
    :param state_uri: ``<state>/activation/<destination>`` (from ``BucketLayout.activation_state_uri``).
    :param run_key: The DAG run key.
    :param holder: Who claims (task id, try number, host): logged and kept in the record.
    :param wait_seconds: How long a concurrent attempt waits for the winner's resource ids.
    :param stale_seconds: A claim that names no resource this long after it was written belongs to
        an attempt that died between the claim and the create call: it is taken over (conditional
        on its ETag, so by one attempt only).
    """

    def __init__(
        self,
        s3: Any,
        state_uri: str,
        run_key: str,
        *,
        holder: str,
        wait_seconds: float = 600,
        stale_seconds: float = 900,
        poll_seconds: float = 2,
    ) -> None:
        self.s3 = s3
        self.state_uri = state_uri
        self.run_key = run_key
        self.holder = holder
        self.wait_seconds = wait_seconds
        self.stale_seconds = stale_seconds
        self.poll_seconds = poll_seconds

    @staticmethod
    def holder_of(context: Context) -> str:
        ti = context.get("ti")
        return f"{getattr(ti, 'task_id', '?')}[{getattr(ti, 'map_index', -1)}] try {getattr(ti, 'try_number', '?')} on {socket.gethostname()}"

    def uri(self, segment: str) -> str:
        return layout.activation_claim_uri(self.state_uri, self.run_key, segment)

    def _read(self, segment: str) -> tuple[dict[str, Any], str] | None:
        bucket, key = layout.split_s3(self.uri(segment))
        try:
            response = self.s3.get_object(Bucket=bucket, Key=key)
        except self.s3.exceptions.NoSuchKey:
            return None
        return json.loads(response["Body"].read()), response["ETag"]

    def _put(self, segment: str, record: dict[str, Any], **condition: str) -> bool:
        from botocore.exceptions import ClientError

        bucket, key = layout.split_s3(self.uri(segment))
        try:
            self.s3.put_object(
                Bucket=bucket, Key=key, Body=json.dumps(record, sort_keys=True).encode(), **condition
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in (
                "PreconditionFailed",
                "ConditionalRequestConflict",
            ):
                return False
            raise
        return True

    def _check(self, segment: str, record: dict[str, Any], fingerprint: dict[str, Any]) -> None:
        from personalize_logic.segments import fingerprint_differences

        differences = fingerprint_differences(record.get("fingerprint") or {}, fingerprint)
        if differences:
            raise AirflowException(
                f"Segment {segment!r} of this DAG run was already activated from a different input "
                f"({record.get('holder')}, {record.get('claimed_at')}); it differs in: "
                + "; ".join(differences)
                + f". Start a new DAG run to activate the new input (or delete {self.uri(segment)})."
            )

    def claim(self, segment: str, fingerprint: dict[str, Any]) -> dict[str, Any]:
        """
        Claim ``segment`` for this attempt, or join the attempt that did.

        :return: The record's ``resources`` (empty when this attempt must create them).
        :raises AirflowException: when the segment was activated from a different input.
        """
        record: dict[str, Any] = {
            "fingerprint": fingerprint,
            "holder": self.holder,
            "claimed_at": datetime.now(UTC).isoformat(),
            "resources": {},
        }
        deadline = time.monotonic() + self.wait_seconds
        while True:
            if self._put(segment, record, IfNoneMatch="*"):
                return {}
            found = self._read(segment)
            if found is None:  # deleted in between: try again
                continue
            existing, etag = found
            self._check(segment, existing, fingerprint)
            if existing.get("resources"):
                return dict(existing["resources"])
            claimed_at = datetime.fromisoformat(str(existing.get("claimed_at") or record["claimed_at"]))
            if (datetime.now(UTC) - claimed_at).total_seconds() > self.stale_seconds:
                if self._put(segment, record, IfMatch=etag):
                    return {}
                continue
            if time.monotonic() > deadline:
                raise AirflowException(
                    f"Segment {segment!r} is being activated by {existing.get('holder')} since "
                    f"{existing.get('claimed_at')}; no resource recorded after {self.wait_seconds:.0f}s"
                )
            time.sleep(self.poll_seconds)

    def record(self, segment: str, **resources: Any) -> None:
        """Add ``resources`` (ids of what this attempt created or reused) to the segment's record."""
        found = self._read(segment)
        if found is None:
            raise AirflowException(f"The activation record {self.uri(segment)} disappeared")
        existing, etag = found
        existing["resources"] = {**(existing.get("resources") or {}), **resources}
        if not self._put(segment, existing, IfMatch=etag):
            self.record(segment, **resources)  # changed in between: merge again
