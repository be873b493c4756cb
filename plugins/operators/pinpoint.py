"""
Amazon Pinpoint activation: Personalize batch segment output → endpoint CSVs → imported segments.

.. warning::
    AWS ended support for the Amazon Pinpoint engagement APIs on **2026-10-30**. These operators
    are the legacy path; they activate through
    :class:`operators.audience_destinations.AudienceDestination`, whose successor implementation is
    Amazon Connect Customer Profiles (``CustomerProfilesSegmentDestination``).

* :class:`ResolveSegmentEndpointsOperator` reads every line of every ``.out`` file, resolves each
  query's users to Pinpoint endpoint ids (an endpoint EXPORT joined in DuckDB for large segments,
  ``GetUserEndpoints`` per user for small ones), keeps every endpoint of a user, counts users without
  one, and writes one CSV folder per query (parts ≤ 1 GB) under a run-deterministic prefix.
* :class:`PinpointCreateImportedSegmentOperator` imports one folder as a segment: prepare → one
  ``CreateImportJob`` (reused on retry) → wait.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException, conf

from hooks.pinpoint import PinpointHook
from operators.audience_destinations import AudienceSegment, PinpointImportedSegmentDestination
from personalize_logic import layout
from triggers.connection import connection_kwargs
from triggers.pinpoint import PinpointImportJobCompleteTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

    from personalize_logic.segments import EndpointCsvWriter, EndpointIndex, ResolvedSegment, SegmentLine

END_OF_SUPPORT_WARNING = (
    "Amazon Pinpoint's engagement APIs (endpoints, segments, campaigns, journeys) reached AWS end of "
    "support on 2026-10-30. This task uses the legacy Pinpoint path; plan the move to Amazon Connect "
    "Customer Profiles via operators.audience_destinations.AudienceDestination "
    "(CustomerProfilesSegmentDestination)."
)
_warned = threading.Event()


def warn_end_of_support(log: Any) -> None:
    """Log the Pinpoint end-of-support warning once per process."""
    if not _warned.is_set():
        _warned.set()
        log.warning(END_OF_SUPPORT_WARNING)


class ResolveSegmentEndpointsOperator(AwsBaseOperator[PinpointHook]):
    """
    Turn a batch segment job's output into one Pinpoint segment CSV folder per query.

    Every line of every ``*.out`` object under ``segment_output_s3_uri`` is read (both output key
    spellings); lines with an ``error`` or bad JSON are counted, logged with file and line, and
    written to ``<output_s3_uri>/_errors.jsonl`` (or fail the task with ``fail_on_error_lines``).
    For each good line the users are resolved to endpoint ids:

    * ``csv_column="User.UserId"``: no resolution, the CSV lists the user ids (Pinpoint resolves them
      at import; no channel filter possible).
    * fewer than ``lookup_threshold`` distinct users in total: ``GetUserEndpoints`` per user
      (a user with no endpoint answers 404 and is counted, not fatal).
    * otherwise: one Pinpoint endpoint EXPORT job to ``export_s3_uri`` (reused on retry), joined with
      the users in DuckDB (hash semi-join, disk-backed).

    Every endpoint of a user is kept (optionally only ``channel_types``). The CSV of a query goes to
    ``<output_s3_uri>/<segment_name>/<segment_name>-<n>.csv`` in parts of at most ``max_csv_bytes``;
    the segment name is built from the query and ``segment_timestamp`` (default: the run's logical
    date), so a retry writes the same keys.

    :param application_id: The Pinpoint project id. (templated)
    :param segment_output_s3_uri: The batch segment job's output: a ``.out`` object or a prefix. (templated)
    :param output_s3_uri: Prefix for the segment CSVs; include the run's key, e.g.
        ``s3://bucket/pinpoint/{{ ds_nodash }}``. (templated)
    :param segment_timestamp: Timestamp in the segment names (datetime or ISO string); default the
        logical date (or ``run_after`` when the run has none). (templated)
    :param export_role_arn: Role Pinpoint assumes to write the endpoint export (export path). (templated)
    :param export_s3_uri: Where the endpoint export goes; default ``<output_s3_uri>/_endpoint_export``. (templated)
    :param channel_types: Keep only endpoints of these channels, e.g. ``["EMAIL"]``.
    :param csv_column: ``"Id"`` (default) or ``"User.UserId"``.
    :param lookup_threshold: Below this many distinct users, use ``GetUserEndpoints``. (default 1000)
    :param max_csv_bytes: Maximum size of one CSV part (Pinpoint: 1 GB per import job).
    :param always_hash_names: Always append the query hash to segment names.
    :param fail_on_error_lines: Fail when any output line carries an error. (default False)
    :param waiter_delay: Seconds between export-job status checks. (default 15)
    :param waiter_max_attempts: Maximum export-job status checks. (default 240)
    :return: (XCom) one dict per query: ``segment_name``, ``query``, ``query_kind``, ``users``,
        ``endpoints``, ``users_without_endpoint``, ``csv_uris``, ``s3_url`` (the segment folder),
        ``column``.
    """

    aws_hook_class = PinpointHook
    template_fields: Sequence[str] = aws_template_fields(
        "application_id",
        "segment_output_s3_uri",
        "output_s3_uri",
        "segment_timestamp",
        "export_role_arn",
        "export_s3_uri",
        "channel_types",
    )
    ui_color = "#f9c5d1"

    def __init__(
        self,
        *,
        application_id: str,
        segment_output_s3_uri: str,
        output_s3_uri: str,
        segment_timestamp: str | datetime | None = None,
        export_role_arn: str | None = None,
        export_s3_uri: str | None = None,
        channel_types: list[str] | None = None,
        csv_column: str = "Id",
        lookup_threshold: int = 1000,
        max_csv_bytes: int = 1_000_000_000,
        always_hash_names: bool = False,
        fail_on_error_lines: bool = False,
        waiter_delay: int = 15,
        waiter_max_attempts: int = 240,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.application_id = application_id
        self.segment_output_s3_uri = segment_output_s3_uri
        self.output_s3_uri = output_s3_uri
        self.segment_timestamp = segment_timestamp
        self.export_role_arn = export_role_arn
        self.export_s3_uri = export_s3_uri
        self.channel_types = channel_types
        self.csv_column = csv_column
        self.lookup_threshold = lookup_threshold
        self.max_csv_bytes = max_csv_bytes
        self.always_hash_names = always_hash_names
        self.fail_on_error_lines = fail_on_error_lines
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts

    # ------------------------------------------------------------------ helpers

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

    def _s3(self) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            config=self.botocore_config,
        ).conn

    def _list_keys(self, s3: Any, url: str, suffix: str | None = None) -> list[tuple[str, str]]:
        bucket, prefix = layout.split_s3(url)
        keys: list[tuple[str, str]] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if not key.endswith("/") and (suffix is None or key.endswith(suffix)):
                    keys.append((bucket, key))
        return sorted(keys)

    def _download_outputs(self, s3: Any, work: Path) -> list[tuple[str, Path]]:
        keys = self._list_keys(s3, self.segment_output_s3_uri, ".out")
        if not keys:
            raise AirflowException(f"No .out files under {self.segment_output_s3_uri}")
        files = []
        for index, (bucket, key) in enumerate(keys):
            local = work / "out" / f"{index:05d}.out"
            local.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(local))
            files.append((layout.s3_uri(bucket, key), local))
        return files

    def _export_endpoints(self, s3: Any, work: Path) -> list[Path]:
        export_prefix = layout.folder(self.export_s3_uri or layout.endpoint_export_uri(self.output_s3_uri))
        if not self.export_role_arn:
            raise AirflowException("export_role_arn is required to export endpoints for a large segment")
        job = self.hook.find_export_job(self.application_id, export_prefix)
        if job is None:
            job = self.hook.conn.create_export_job(
                ApplicationId=self.application_id,
                ExportJobRequest={"RoleArn": self.export_role_arn, "S3UrlPrefix": export_prefix},
            )["ExportJobResponse"]
            self.log.info("Started Pinpoint endpoint export job %s to %s", job["Id"], export_prefix)
        else:
            self.log.info("Reusing Pinpoint endpoint export job %s (%s)", job["Id"], job.get("JobStatus"))
        from botocore.exceptions import WaiterError

        try:
            self.hook.get_waiter("export_job_complete").wait(
                ApplicationId=self.application_id,
                JobId=job["Id"],
                WaiterConfig={"Delay": self.waiter_delay, "MaxAttempts": self.waiter_max_attempts},
            )
        except WaiterError as exc:
            from personalize_logic.facts.pinpoint import describe_failure

            failed = self.hook.conn.get_export_job(ApplicationId=self.application_id, JobId=job["Id"])
            raise AirflowException(
                f"Pinpoint export job {job['Id']} failed: {describe_failure(failed['ExportJobResponse'])}"
            ) from exc
        files = []
        for index, (bucket, key) in enumerate(self._list_keys(s3, export_prefix)):
            local = work / "export" / f"{index:05d}{'.gz' if key.endswith('.gz') else '.json'}"
            local.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(local))
            files.append(local)
        return files

    def _lookup(self, user_id: str) -> list[dict[str, Any]]:
        try:
            response = self.hook.conn.get_user_endpoints(ApplicationId=self.application_id, UserId=user_id)
        except self.hook.conn.exceptions.NotFoundException:
            return []
        return response["EndpointsResponse"].get("Item", [])

    def _upload(self, s3: Any, folder: str, parts: Sequence[Any]) -> list[str]:
        uris = [layout.segment_file_uri(folder, part.path.name) for part in parts]
        wanted = {layout.split_s3(uri)[1] for uri in uris}
        for bucket, stale in self._list_keys(s3, layout.folder(folder)):
            if stale not in wanted:  # a previous attempt wrote more parts
                s3.delete_object(Bucket=bucket, Key=stale)
        for part, uri in zip(parts, uris, strict=True):
            bucket, key = layout.split_s3(uri)
            s3.upload_file(str(part.path), bucket, key)
        return uris

    # ------------------------------------------------------------------ execute

    def execute(self, context: Context) -> list[dict[str, Any]]:
        warn_end_of_support(self.log)
        when = self._timestamp(context)
        s3 = self._s3()
        with tempfile.TemporaryDirectory(prefix="pinpoint-resolve-") as tmp:
            work = Path(tmp)
            outputs = self._download_outputs(s3, work)
            distinct_users = self._check_outputs(s3, outputs)  # pass 1
            index = self._endpoint_index(s3, work, distinct_users)
            try:
                return self._build_segments(s3, work, outputs, when, index)  # pass 2
            finally:
                if index is not None:
                    index.close()

    def _check_outputs(self, s3: Any, outputs: list[tuple[str, Path]]) -> int:
        """Validate every output line, report the bad ones; the distinct users (up to the lookup threshold)."""
        from personalize_logic.segments import SegmentOutputSummary, iter_segment_lines

        summary = SegmentOutputSummary()
        distinct_users: set[str] = set()
        for uri, local in outputs:
            with local.open("rb") as handle:
                for line in iter_segment_lines(handle, source=uri):
                    summary.add(line)
                    if line.ok and len(distinct_users) < self.lookup_threshold:
                        distinct_users.update(line.users)
        self._report_errors(s3, summary)
        return len(distinct_users)

    def _endpoint_index(self, s3: Any, work: Path, distinct_users: int) -> EndpointIndex | None:
        """The endpoint export joined in DuckDB, for large segments resolved to endpoint ids; else None."""
        from personalize_logic.segments import EndpointIndex

        if self.csv_column != "Id" or distinct_users < self.lookup_threshold:
            return None
        index = EndpointIndex(
            self._export_endpoints(s3, work), work / "duckdb", channel_types=self.channel_types
        )
        self.log.info("Endpoint export holds %s endpoints with a user id", index.size)
        return index

    def _build_segments(
        self,
        s3: Any,
        work: Path,
        outputs: list[tuple[str, Path]],
        when: datetime | str,
        index: EndpointIndex | None,
    ) -> list[dict[str, Any]]:
        """One segment CSV folder per good output line; a query that repeats is an error."""
        from personalize_logic.segments import iter_segment_lines, segment_name

        results: list[dict[str, Any]] = []
        names: dict[str, str] = {}
        for uri, local in outputs:
            with local.open("rb") as handle:
                for line in iter_segment_lines(handle, source=uri):
                    if not line.ok or line.query is None:
                        continue
                    name = segment_name(line.query, line.query_kind, when, always_hash=self.always_hash_names)
                    if name in names:
                        raise AirflowException(
                            f"{uri}, line {line.line_number}: query {line.query!r} repeats "
                            f"(segment {name!r} already built from {names[name]})"
                        )
                    names[name] = f"{uri}, line {line.line_number}"
                    results.append(self._build_segment(s3, work, name, line, index))
        return results

    def _build_segment(
        self, s3: Any, work: Path, name: str, line: SegmentLine, index: EndpointIndex | None
    ) -> dict[str, Any]:
        from personalize_logic.segments import EndpointCsvWriter

        writer = EndpointCsvWriter(
            work / "csv" / name, name, column=self.csv_column, max_bytes=self.max_csv_bytes
        )
        resolved = self._resolve_users(line, writer, index)
        folder = layout.segment_folder_uri(self.output_s3_uri, name)
        csv_uris = self._upload(s3, folder, resolved.parts)
        self.log.info(
            "Segment %s (%s): %s users, %s endpoints, %s users without endpoint, %s part(s)",
            name, line.query, resolved.users, resolved.endpoints, resolved.users_without_endpoint, len(csv_uris),
        )  # fmt: skip
        return {
            "segment_name": name,
            "query": line.query,
            "query_kind": line.query_kind,
            "users": resolved.users,
            "endpoints": resolved.endpoints,
            "users_without_endpoint": resolved.users_without_endpoint,
            "csv_uris": csv_uris,
            "s3_url": layout.folder(folder),
            "column": self.csv_column,
        }

    def _resolve_users(
        self, line: SegmentLine, writer: EndpointCsvWriter, index: EndpointIndex | None
    ) -> ResolvedSegment:
        """User ids as they are, or each user's endpoints (from the export, else looked up one by one)."""
        from personalize_logic.segments import resolve_with_lookup, write_user_ids

        if self.csv_column != "Id":
            return write_user_ids(line.users, writer)
        if index is not None:
            return index.resolve(line.users, writer)
        return resolve_with_lookup(line.users, self._lookup, writer, self.channel_types)

    def _report_errors(self, s3: Any, summary: Any) -> None:
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


class PinpointCreateImportedSegmentOperator(AwsBaseOperator[PinpointHook]):
    """
    Import one S3 file / folder as a Pinpoint segment: prepare → one ``CreateImportJob`` → wait.

    Idempotent: before creating, the operator looks for an import job that already defines
    ``segment_name`` (``GetImportJobs``) and reuses it (``if_exists="reuse"``) or fails
    (``"fail"``); a retry therefore never creates a second segment. A FAILED job raises with its
    ``Failures``. Goes through :class:`~operators.audience_destinations.PinpointImportedSegmentDestination`.

    :param application_id: The Pinpoint project id. (templated)
    :param segment_name: The segment name (from ``ResolveSegmentEndpointsOperator``). (templated)
    :param s3_url: The segment file or folder. (templated)
    :param role_arn: IAM role Pinpoint assumes to read ``s3_url``. (templated)
    :param import_format: ``"CSV"`` (default) or ``"JSON"``.
    :param register_endpoints: Pass ``RegisterEndpoints`` (None: leave it out).
    :param if_exists: ``"reuse"`` (default) or ``"fail"``.
    :param wait_for_completion: Wait for the job (default True).
    :param deferrable: Defer to ``PinpointImportJobCompleteTrigger`` while waiting.
        (default: ``[operators] default_deferrable``)
    :param waiter_delay: Seconds between status checks. (default 15)
    :param waiter_max_attempts: Maximum status checks. (default 240)
    :return: (XCom) ``{segment_id, segment_name, import_job_id, size, status, destination}``
        (``size`` is None when not waiting).
    """

    aws_hook_class = PinpointHook
    template_fields: Sequence[str] = aws_template_fields(
        "application_id", "segment_name", "s3_url", "role_arn"
    )
    ui_color = "#f9c5d1"
    destination_class: ClassVar[type[PinpointImportedSegmentDestination]] = PinpointImportedSegmentDestination

    def __init__(
        self,
        *,
        application_id: str,
        segment_name: str,
        s3_url: str,
        role_arn: str,
        import_format: str = "CSV",
        register_endpoints: bool | None = None,
        if_exists: str = "reuse",
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        waiter_delay: int = 15,
        waiter_max_attempts: int = 240,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.application_id = application_id
        self.segment_name = segment_name
        self.s3_url = s3_url
        self.role_arn = role_arn
        self.import_format = import_format
        self.register_endpoints = register_endpoints
        self.if_exists = if_exists
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts

    def destination(self) -> PinpointImportedSegmentDestination:
        return self.destination_class(
            self.hook,
            self.application_id,
            self.role_arn,
            import_format=self.import_format,
            register_endpoints=self.register_endpoints,
            if_exists=self.if_exists,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        warn_end_of_support(self.log)
        destination = self.destination()
        staged = destination.prepare(AudienceSegment(name=self.segment_name, s3_url=self.s3_url))
        job_id = destination.activate(staged)
        self.log.info(
            "Pinpoint import job %s defines segment %s from %s", job_id, self.segment_name, self.s3_url
        )
        if self.deferrable:
            self.log.info("Deferring Pinpoint import job %s", job_id)
            self.defer(
                trigger=PinpointImportJobCompleteTrigger(
                    application_id=self.application_id,
                    job_id=job_id,
                    waiter_delay=self.waiter_delay,
                    waiter_max_attempts=self.waiter_max_attempts,
                    **connection_kwargs(self),
                ),
                method_name="execute_complete",
            )
        elif self.wait_for_completion:
            self.log.info("Waiting for Pinpoint import job %s", job_id)
            destination.wait(job_id, delay=self.waiter_delay, max_attempts=self.waiter_max_attempts)
        return destination.describe_result(job_id)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        validated = validate_execute_complete_event(event)
        destination = self.destination()
        job_id = validated["job_id"]
        if validated.get("status") != "success":
            raise AirflowException(
                destination.failure_message(job_id, f"; waiter: {validated.get('message')}")
            )
        return destination.describe_result(job_id)
