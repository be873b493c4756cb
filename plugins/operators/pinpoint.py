"""
Amazon Pinpoint activation (legacy): Personalize batch segment output → endpoint CSVs → imported
segments.

.. warning::
    AWS ended support for the Amazon Pinpoint engagement APIs on **2026-10-30**. This destination
    is off unless ``pipeline.activation.pinpoint.enabled``; every task logs AWS's notice. The
    default segment destination is Amazon Connect Customer Profiles (``operators/customer_profiles.py``).

* :class:`ResolveSegmentEndpointsOperator` (a :class:`~operators.audience_destinations.BatchSegmentsOperator`)
  resolves each query's users to Pinpoint endpoint ids (an endpoint EXPORT joined in DuckDB for
  large segments, ``GetUserEndpoints`` per user for small ones), keeps every endpoint of a user,
  counts users without one, and writes one CSV folder per query (parts ≤ 1 GB).
* :class:`PinpointCreateImportedSegmentOperator` imports one folder as a segment: claim → one
  ``CreateImportJob`` (reused on retry) → wait.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException, conf
from botocore.exceptions import WaiterError

from hooks.pinpoint import PinpointHook
from operators.audience_destinations import (
    ActivationClaims,
    BatchSegmentsOperator,
    list_keys,
    s3_client,
    s3_fingerprint,
)
from personalize_logic import layout
from personalize_logic.facts.pinpoint import FAILURE_STATES, describe_failure
from triggers.connection import connection_kwargs
from triggers.pinpoint import PinpointImportJobCompleteTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

    from personalize_logic.segments import EndpointIndex, StagedSegment

END_OF_SUPPORT_WARNING = (
    "Amazon Pinpoint's engagement APIs (endpoints, segments, campaigns, journeys) reached AWS end of "
    "support on 2026-10-30 (https://docs.aws.amazon.com/pinpoint/latest/userguide/migrate.html). "
    "This task uses the legacy Pinpoint destination; Amazon Connect Customer Profiles is the "
    "default segment destination (pipeline.activation.customerProfiles)."
)


def warn_end_of_support(log: Any) -> None:
    """Log AWS's Pinpoint end-of-support notice (every Pinpoint task does, at its start)."""
    log.warning(END_OF_SUPPORT_WARNING)


class ResolveSegmentEndpointsOperator(BatchSegmentsOperator):
    """
    Turn the run's batch segment outputs into one Pinpoint segment CSV folder per query.

    The shared part (every line of every ``.out`` file of every output, errors reported, users
    staged to disk) is :class:`~operators.audience_destinations.BatchSegmentsOperator`'s. For each
    good line the users are resolved to endpoint ids:

    * ``csv_column="User.UserId"``: no resolution, the CSV lists the distinct user ids (Pinpoint
      resolves them at import; no channel filter possible).
    * fewer than ``lookup_threshold`` users in total: ``GetUserEndpoints`` per user (a user with no
      endpoint answers 404 and is counted, not fatal).
    * otherwise: one Pinpoint endpoint EXPORT job to ``export_s3_uri`` (reused on retry), its
      ``.gz`` parts joined with the users in DuckDB (hash semi-join, disk-backed).

    Every endpoint of a user is kept (optionally only ``channel_types``). The CSV of a query goes to
    ``<output_s3_uri>/<segment_name>/<segment_name>-<n>.csv`` in parts of at most ``max_csv_bytes``.

    :param application_id: The Pinpoint project id. (templated)
    :param export_role_arn: Role Pinpoint assumes to write the endpoint export (export path). (templated)
    :param export_s3_uri: Where the endpoint export goes; default ``<output_s3_uri>/_endpoint_export``. (templated)
    :param channel_types: Keep only endpoints of these channels, e.g. ``["EMAIL"]``.
    :param csv_column: ``"Id"`` (default) or ``"User.UserId"``.
    :param lookup_threshold: Below this many users, use ``GetUserEndpoints``. (default 1000)
    :param max_csv_bytes: Maximum size of one CSV part (Pinpoint: 1 GB per import job).
    :param waiter_delay: Seconds between export-job status checks. (default 15)
    :param waiter_max_attempts: Maximum export-job status checks. (default 240)
    :return: (XCom) one dict per query: ``segment_name``, ``query``, ``query_kind``, ``users``,
        ``endpoints``, ``users_without_endpoint``, ``csv_uris``, ``s3_url`` (the segment folder),
        ``column``, ``rows`` (CSV rows: endpoints, or users in the ``User.UserId`` layout).
    """

    aws_hook_class = PinpointHook
    template_fields: Sequence[str] = aws_template_fields(
        *BatchSegmentsOperator.template_fields,
        "application_id",
        "export_role_arn",
        "export_s3_uri",
        "channel_types",
    )
    ui_color = "#f9c5d1"
    export_waiter_name = "export_job_complete"

    def __init__(
        self,
        *,
        application_id: str,
        export_role_arn: str | None = None,
        export_s3_uri: str | None = None,
        channel_types: list[str] | None = None,
        csv_column: str = "Id",
        lookup_threshold: int = 1000,
        max_csv_bytes: int = 1_000_000_000,
        waiter_delay: int = 15,
        waiter_max_attempts: int = 240,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.application_id = application_id
        self.export_role_arn = export_role_arn
        self.export_s3_uri = export_s3_uri
        self.channel_types = channel_types
        self.csv_column = csv_column
        self.lookup_threshold = lookup_threshold
        self.max_csv_bytes = max_csv_bytes
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        self._index: EndpointIndex | None = None

    # ------------------------------------------------------------------ the endpoint export

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
            self.hook.get_waiter(self.export_waiter_name).wait(
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
        files: list[Path] = []
        # only the export's gzipped parts: the folder may hold other objects (a manifest, a marker)
        for bucket, key in list_keys(s3, export_prefix, (".gz",)):
            local = work / "export" / f"{len(files):05d}.gz"
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
        for bucket, stale in list_keys(s3, layout.folder(folder)):
            if stale not in wanted:  # a previous attempt wrote more parts
                s3.delete_object(Bucket=bucket, Key=stale)
        for part, uri in zip(parts, uris, strict=True):
            bucket, key = layout.split_s3(uri)
            s3.upload_file(str(part.path), bucket, key)
        return uris

    # ------------------------------------------------------------------ per segment

    def start(self, context: Context, s3: Any, work: Path, distinct_users: int) -> None:
        """The endpoint export joined in DuckDB, for large segments resolved to endpoint ids (and the
        DuckDB session that lists distinct user ids in the ``User.UserId`` layout)."""
        from personalize_logic.segments import EndpointIndex

        warn_end_of_support(self.log)
        large = self.csv_column == "Id" and distinct_users >= self.lookup_threshold
        files = self._export_endpoints(s3, work) if large else []
        if large or self.csv_column != "Id":
            self._index = EndpointIndex(files, work / "duckdb", channel_types=self.channel_types)
        if large:
            self.log.info("Endpoint export holds %s endpoints with a user id", self._index.size)  # type: ignore[union-attr]

    def finish(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    def prepare_segment(self, s3: Any, work: Path, name: str, staged: StagedSegment) -> dict[str, Any]:
        from personalize_logic.segments import EndpointCsvWriter, read_users, resolve_with_lookup

        assert staged.users_file is not None
        writer = EndpointCsvWriter(
            work / "csv" / name, name, column=self.csv_column, max_bytes=self.max_csv_bytes
        )
        if self.csv_column != "Id":
            assert self._index is not None
            resolved = self._index.distinct_users(staged.users_file, writer)
        elif self._index is not None:
            resolved = self._index.resolve(staged.users_file, writer)
        else:
            resolved = resolve_with_lookup(
                read_users(staged.users_file), self._lookup, writer, self.channel_types
            )
        folder = layout.segment_folder_uri(self.output_s3_uri, name)
        csv_uris = self._upload(s3, folder, resolved.parts)
        line = staged.line
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
            # what the import reads: endpoint ids, or (User.UserId layout) the users themselves
            "rows": resolved.endpoints if self.csv_column == "Id" else resolved.users,
        }


class PinpointCreateImportedSegmentOperator(AwsBaseOperator[PinpointHook]):
    """
    Import one S3 folder as a Pinpoint segment: claim → one ``CreateImportJob`` → wait.

    Idempotent per DAG run (:class:`~operators.audience_destinations.ActivationClaims`): the first
    attempt claims the segment with the folder's fingerprint (every object's name, size and ETag)
    and the request's settings, and records the import job it creates. A retry reuses that job (a
    job that FAILED is replaced); a rerun whose files or settings differ fails, naming what differs;
    a concurrent attempt waits for the winner's job instead of creating a second segment. A FAILED
    job raises with its ``Failures``.

    :param application_id: The Pinpoint project id. (templated)
    :param segment_name: The segment name (from ``ResolveSegmentEndpointsOperator``). (templated)
    :param s3_url: The segment folder (or file). (templated)
    :param role_arn: IAM role Pinpoint assumes to read ``s3_url``. (templated)
    :param state_uri: ``BucketLayout.activation_state_uri("pinpoint")``: the claims. (templated)
    :param import_format: ``"CSV"`` (default) or ``"JSON"``.
    :param register_endpoints: Pass ``RegisterEndpoints`` (None: leave it out).
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
        "application_id", "segment_name", "s3_url", "role_arn", "state_uri"
    )
    ui_color = "#f9c5d1"
    create_call = "create_import_job"
    waiter_name = "import_job_complete"
    trigger_class = PinpointImportJobCompleteTrigger

    def __init__(
        self,
        *,
        application_id: str,
        segment_name: str,
        s3_url: str,
        role_arn: str,
        state_uri: str,
        import_format: str = "CSV",
        register_endpoints: bool | None = None,
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
        self.state_uri = state_uri
        self.import_format = import_format
        self.register_endpoints = register_endpoints
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts

    def _request(self) -> dict[str, Any]:
        if not layout.is_s3_uri(self.s3_url):
            raise AirflowException(f"Pinpoint imports from S3 only; got {self.s3_url!r}")
        if not self.segment_name:
            raise AirflowException("The segment needs a name")
        request: dict[str, Any] = {
            "DefineSegment": True,
            "Format": self.import_format,
            "RoleArn": self.role_arn,
            "S3Url": self.s3_url,
            "SegmentName": self.segment_name,
        }
        if self.register_endpoints is not None:
            request["RegisterEndpoints"] = self.register_endpoints
        return request

    def _get_job(self, job_id: str) -> dict[str, Any]:
        return self.hook.conn.get_import_job(ApplicationId=self.application_id, JobId=job_id)[
            "ImportJobResponse"
        ]

    def _job_id(self, context: Context, request: dict[str, Any]) -> str:
        claims = ActivationClaims(
            s3_client(self),
            self.state_uri,
            layout.dag_run_key(context["run_id"]),
            holder=ActivationClaims.holder_of(context),
        )
        fingerprint = {
            "application_id": self.application_id,
            "files": s3_fingerprint(s3_client(self), self.s3_url),
            **{key: value for key, value in request.items() if key not in ("S3Url", "SegmentName")},
        }
        resources = claims.claim(self.segment_name, fingerprint)
        job_id = resources.get("import_job_id")
        if job_id:
            job = self._get_job(job_id)
            if job.get("JobStatus") not in FAILURE_STATES:
                self.log.info(
                    "Reusing import job %s (%s) recorded for %s",
                    job_id,
                    job.get("JobStatus"),
                    self.segment_name,
                )
                return job_id
            self.log.warning("Import job %s failed (%s): starting a new one", job_id, describe_failure(job))
        job_id = getattr(self.hook.conn, self.create_call)(
            ApplicationId=self.application_id, ImportJobRequest=request
        )["ImportJobResponse"]["Id"]
        claims.record(self.segment_name, import_job_id=job_id)
        return job_id

    def execute(self, context: Context) -> dict[str, Any]:
        warn_end_of_support(self.log)
        job_id = self._job_id(context, self._request())
        self.log.info(
            "Pinpoint import job %s defines segment %s from %s", job_id, self.segment_name, self.s3_url
        )
        if self.deferrable:
            self.log.info("Deferring Pinpoint import job %s", job_id)
            self.defer(
                trigger=self.trigger_class(
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
            try:
                self.hook.get_waiter(self.waiter_name).wait(
                    ApplicationId=self.application_id,
                    JobId=job_id,
                    WaiterConfig={"Delay": self.waiter_delay, "MaxAttempts": self.waiter_max_attempts},
                )
            except WaiterError as exc:
                raise AirflowException(self._failure(job_id, f"; waiter: {exc}")) from exc
        return self._result(job_id)

    def _failure(self, job_id: str, extra: str = "") -> str:
        return (
            f"Pinpoint import job {job_id} did not complete: {describe_failure(self._get_job(job_id))}{extra}"
        )

    def _result(self, job_id: str) -> dict[str, Any]:
        job = self._get_job(job_id)
        definition = job.get("Definition", {})
        segment_id = definition.get("SegmentId")
        size = None
        if segment_id and job.get("JobStatus") == "COMPLETED":
            segment = self.hook.conn.get_segment(ApplicationId=self.application_id, SegmentId=segment_id)
            size = segment["SegmentResponse"].get("ImportDefinition", {}).get("Size")
        return {
            "destination": "pinpoint",
            "segment_id": segment_id,
            "segment_name": definition.get("SegmentName"),
            "import_job_id": job_id,
            "status": job.get("JobStatus"),
            "size": size,
        }

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        validated = validate_execute_complete_event(event)
        job_id = validated["job_id"]
        if validated.get("status") != "success":
            raise AirflowException(self._failure(job_id, f"; waiter: {validated.get('message')}"))
        return self._result(job_id)
