"""
Amazon Connect Customer Profiles: Personalize batch segments → profiles → segment definitions.

The default segment destination (the AWS successor of Pinpoint imported segments). Per DAG run:

1. :class:`CustomerProfilesPrepareUploadsOperator` (once): a snapshot of the domain's profiles
   (``CreateSegmentSnapshot`` of an "every profile" segment definition, waited on with
   ``segment_snapshot_complete``) gives the profile keys; every batch segment line is joined with
   them in DuckDB and written as one upload CSV per segment (``user_id,segment``) to S3.
2. :class:`CustomerProfilesUploadOperator` (per segment): ``CreateUploadJob`` → ``GetUploadJobPath``
   → PUT the CSV with the SSE-C headers → ``StartUploadJob`` → wait (``upload_job_complete``, or
   deferred to :class:`~triggers.customer_profiles.CustomerProfilesUploadJobCompleteTrigger``).
3. :class:`CustomerProfilesCreateSegmentOperator` (per segment): ``CreateSegmentDefinition``
   selecting the profiles this upload marked → ``CreateSegmentEstimate`` (waiter
   ``segment_estimate_complete``) → the segment's size.

**Which profiles.** Users are matched to profiles by ``profile_key`` (the profile attribute that
holds the Personalize user id, e.g. ``Attributes.personalize_user_id`` or ``AccountNumber``); the
upload job's ``UniqueKey`` is that column, so a row updates the profile with the same key. A user
with no profile is counted (``users_without_profile``) and left out of the upload; with
``create_missing_profiles`` it is uploaded and Customer Profiles creates a profile holding only the
key. No API field links an upload job to a segment definition: the upload writes the segment
definition's name into the custom attribute ``<segment_attribute>_<query hash>`` of every profile
of the segment, and the segment definition selects the profiles whose attribute holds that name
(one attribute per query, so a profile in two segments of a run keeps both marks).

**Idempotent per DAG run** (:class:`~operators.audience_destinations.ActivationClaims`): the upload
operator claims the segment with the CSV's SHA-256 and the job settings, records the upload job it
creates and reuses it on retry (a job that FAILED or STOPPED is replaced); a rerun with a different
CSV or settings fails, naming what differs. Segment definitions are unique by name in a domain: a
retry or a concurrent attempt finds the definition and reuses it when it selects the same profiles,
and fails naming the difference when it does not.

Amazon Connect outbound campaigns target a segment by ARN (``connectcampaignsv2`` ``Source.
customerProfilesSegmentArn``): the segment operator returns ``segment_definition_arn``.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException, conf
from botocore.exceptions import WaiterError

from hooks.customer_profiles import CustomerProfilesHook
from operators.audience_destinations import ActivationClaims, BatchSegmentsOperator, list_keys, s3_client
from personalize_logic import layout
from personalize_logic.facts import customer_profiles as facts
from triggers.connection import connection_kwargs
from triggers.customer_profiles import CustomerProfilesUploadJobCompleteTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

    from personalize_logic.segments import ProfileKeyIndex, StagedSegment

ALL_PROFILES_SUFFIX = "all-profiles"


# --------------------------------------------------------------------------------------------------
# the requests (pure)
# --------------------------------------------------------------------------------------------------


def segment_definition_name(segment_name: str) -> str:
    """The ``SegmentDefinitionName`` of a segment (``[a-zA-Z0-9_-]``, at most 64 characters)."""
    from personalize_logic.segments import fit_name

    return fit_name(segment_name, facts.MAX_NAME_LENGTH)


def marker_attribute(segment_attribute: str, query: str) -> str:
    """The custom attribute that marks the profiles of one query's segments."""
    from personalize_logic.segments import query_hash

    return f"{segment_attribute}_{query_hash(query)}"


def upload_fields(profile_key: str, marker: str) -> dict[str, dict[str, str]]:
    """``CreateUploadJob.Fields`` for the CSV ``user_id,segment``."""
    from personalize_logic.segments import UPLOAD_KEY_COLUMN, UPLOAD_SEGMENT_COLUMN

    return {
        UPLOAD_KEY_COLUMN: {
            "Source": f"{facts.SOURCE_PREFIX}{UPLOAD_KEY_COLUMN}",
            "Target": f"{facts.PROFILE_TARGET_PREFIX}{profile_key}",
            "ContentType": "STRING",
        },
        UPLOAD_SEGMENT_COLUMN: {
            "Source": f"{facts.SOURCE_PREFIX}{UPLOAD_SEGMENT_COLUMN}",
            "Target": f"{facts.PROFILE_TARGET_PREFIX}{facts.CUSTOM_ATTRIBUTES_PREFIX}{marker}",
            "ContentType": "STRING",
        },
    }


def membership_segment_groups(marker: str, value: str) -> dict[str, Any]:
    """The ``SegmentGroups`` selecting the profiles whose attribute ``marker`` holds ``value``."""
    dimension = {
        "ProfileAttributes": {"Attributes": {marker: {"DimensionType": "INCLUSIVE", "Values": [value]}}}
    }
    return {"Include": "ALL", "Groups": [{"Type": "ALL", "Dimensions": [dimension]}]}


def all_profiles_segment_groups() -> dict[str, Any]:
    """The ``SegmentGroups`` selecting every profile of the domain: one group per profile type,
    ``Include: ANY`` (``ProfileTypeDimension.Values`` holds one value)."""
    groups = [
        {
            "Type": "ALL",
            "Dimensions": [
                {"ProfileAttributes": {"ProfileType": {"DimensionType": "INCLUSIVE", "Values": [kind]}}}
            ],
        }
        for kind in facts.PROFILE_TYPES
    ]
    return {"Include": "ANY", "Groups": groups}


def _estimate_size(estimate: str | None) -> int | None:
    """``GetSegmentEstimate.Estimate`` is a string; AWS does not document its format."""
    digits = "".join(ch for ch in str(estimate or "") if ch.isdigit())
    return int(digits) if digits else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _holds(found: Any, wanted: Any) -> bool:
    """Whether ``found`` (a definition AWS returns) says what ``wanted`` says: every key of
    ``wanted`` with the same value, list items pairwise. **Assumption**: AWS may return members the
    request left out (defaults); the comparison ignores those."""
    if isinstance(wanted, dict):
        return isinstance(found, dict) and all(_holds(found.get(key), value) for key, value in wanted.items())
    if isinstance(wanted, list):
        return isinstance(found, list) and len(found) == len(wanted) and all(map(_holds, found, wanted))
    return bool(found == wanted)


def _ensure_segment_definition(
    hook: CustomerProfilesHook,
    domain_name: str,
    name: str,
    display_name: str,
    groups: dict[str, Any],
    description: str | None,
) -> dict[str, Any]:
    """Create the segment definition, or reuse the one of that name when it selects the same profiles."""
    existing = hook.get_segment_definition(domain_name, name)
    if existing is None:
        request: dict[str, Any] = {
            "DomainName": domain_name,
            "SegmentDefinitionName": name,
            "DisplayName": display_name,
            "SegmentGroups": groups,
        }
        if description:
            request["Description"] = description[: facts.MAX_DESCRIPTION_LENGTH]
        try:
            return hook.conn.create_segment_definition(**request)
        except hook.conn.exceptions.BadRequestException:
            existing = hook.get_segment_definition(domain_name, name)  # a concurrent attempt won
            if existing is None:
                raise
    if not _holds(existing.get("SegmentGroups"), groups):
        raise AirflowException(
            f"Customer Profiles segment definition {name!r} exists in domain {domain_name!r} and selects "
            f"other profiles: SegmentGroups {json.dumps(existing.get('SegmentGroups'), sort_keys=True)} "
            f"≠ {json.dumps(groups, sort_keys=True)}"
        )
    return existing


# --------------------------------------------------------------------------------------------------
# 1. prepare: profile keys snapshot + one upload CSV per segment
# --------------------------------------------------------------------------------------------------


class CustomerProfilesPrepareUploadsOperator(BatchSegmentsOperator):
    """
    Turn the run's batch segment outputs into one Customer Profiles upload CSV per query.

    The users of each query are joined (DuckDB, memory bounded) with the profile keys of the domain,
    read from a segment snapshot (``CreateSegmentSnapshot`` of the segment definition
    ``<segment_attribute>-all-profiles``, created if missing; JSON lines written by Customer Profiles
    under ``<output_s3_uri>/_profile_snapshot/`` with ``snapshot_role_arn``). With
    ``create_missing_profiles`` no snapshot is taken and every user is uploaded. The CSV of a query
    goes to ``<output_s3_uri>/<segment name>/upload.csv``.

    See :class:`~operators.audience_destinations.BatchSegmentsOperator` for the shared parameters.

    :param domain_name: The Customer Profiles domain. (templated)
    :param profile_key: The profile attribute holding the Personalize user id
        (``AccountNumber`` or ``Attributes.<name>``).
    :param segment_attribute: Prefix of the custom attribute that marks segment membership.
    :param create_missing_profiles: Upload users with no profile too (Customer Profiles creates one).
    :param snapshot_role_arn: Role Customer Profiles assumes to write the snapshot. (templated)
    :param memory_limit: DuckDB memory limit of the join (spills to disk beyond it).
    :param waiter_delay: Seconds between snapshot status checks. (default 15)
    :param waiter_max_attempts: Maximum snapshot status checks. (default 240)
    :return: (XCom) one dict per query: ``segment_name``, ``segment_definition_name``, ``query``,
        ``marker_attribute``, ``users``, ``rows``, ``users_without_profile``, ``csv_s3_uri``, ``bytes``,
        ``sha256``.
    """

    aws_hook_class = CustomerProfilesHook
    template_fields: Sequence[str] = aws_template_fields(
        *BatchSegmentsOperator.template_fields, "domain_name", "snapshot_role_arn"
    )
    ui_color = "#c5e3f9"
    snapshot_waiter_name = "segment_snapshot_complete"

    def __init__(
        self,
        *,
        domain_name: str,
        profile_key: str,
        segment_attribute: str = "ap_segment",
        create_missing_profiles: bool = False,
        snapshot_role_arn: str | None = None,
        memory_limit: str = "64MB",
        waiter_delay: int = 15,
        waiter_max_attempts: int = 240,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.domain_name = domain_name
        self.profile_key = profile_key
        self.segment_attribute = segment_attribute
        self.create_missing_profiles = create_missing_profiles
        self.snapshot_role_arn = snapshot_role_arn
        self.memory_limit = memory_limit
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        self._index: ProfileKeyIndex | None = None

    def _snapshot(self, s3: Any, work: Path) -> list[Path]:
        """Export the profiles of the domain to S3 and download the files."""
        if not self.snapshot_role_arn:
            raise AirflowException("snapshot_role_arn is required unless create_missing_profiles")
        name = f"{self.segment_attribute}-{ALL_PROFILES_SUFFIX}"
        _ensure_segment_definition(
            self.hook,
            self.domain_name,
            name,
            "airflow-personalize: every profile",
            all_profiles_segment_groups(),
            "Every profile of the domain: the profile keys Personalize segments are matched against",
        )
        destination = layout.profile_snapshot_uri(self.output_s3_uri)
        for bucket, key in list_keys(s3, destination):  # an earlier attempt's files
            s3.delete_object(Bucket=bucket, Key=key)
        snapshot_id = self.hook.conn.create_segment_snapshot(
            DomainName=self.domain_name,
            SegmentDefinitionName=name,
            DataFormat="JSONL",
            RoleArn=self.snapshot_role_arn,
            DestinationUri=destination,
        )["SnapshotId"]
        self.log.info("Customer Profiles snapshot %s of %s → %s", snapshot_id, name, destination)
        try:
            self.hook.get_waiter(self.snapshot_waiter_name).wait(
                DomainName=self.domain_name,
                SegmentDefinitionName=name,
                SnapshotId=snapshot_id,
                WaiterConfig={"Delay": self.waiter_delay, "MaxAttempts": self.waiter_max_attempts},
            )
        except WaiterError as exc:
            failed = self.hook.conn.get_segment_snapshot(
                DomainName=self.domain_name, SegmentDefinitionName=name, SnapshotId=snapshot_id
            )
            raise AirflowException(
                f"Customer Profiles snapshot {snapshot_id} did not complete: status {failed.get('Status')!r}, "
                f"{failed.get('StatusMessage')}"
            ) from exc
        files: list[Path] = []
        for bucket, key in list_keys(s3, destination, (".jsonl", ".jsonl.gz", ".json", ".json.gz")):
            local = work / "snapshot" / f"{len(files):05d}{'.jsonl.gz' if key.endswith('.gz') else '.jsonl'}"
            local.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(local))
            files.append(local)
        return files

    def start(self, context: Context, s3: Any, work: Path, distinct_users: int) -> None:
        from personalize_logic.segments import ProfileKeyIndex

        files = None if self.create_missing_profiles else self._snapshot(s3, work)
        self._index = ProfileKeyIndex(
            files, work / "duckdb", profile_key=self.profile_key, memory_limit=self.memory_limit
        )
        if files is not None:
            self.log.info(
                "The domain %s holds %s profile keys (%s)",
                self.domain_name,
                self._index.size,
                self.profile_key,
            )

    def finish(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    def prepare_segment(self, s3: Any, work: Path, name: str, staged: StagedSegment) -> dict[str, Any]:
        assert self._index is not None
        assert staged.users_file is not None
        assert staged.line.query is not None
        definition = segment_definition_name(name)
        upload = self._index.write_upload(
            staged.users_file, definition, work / "upload" / f"{definition}.csv"
        )
        if upload.bytes >= facts.MAX_UPLOAD_BYTES:
            raise AirflowException(
                f"Segment {name}: the upload CSV is {upload.bytes:,} bytes; Customer Profiles takes files "
                f"under {facts.MAX_UPLOAD_BYTES:,} bytes per upload job"
            )
        uri = layout.upload_csv_uri(layout.segment_folder_uri(self.output_s3_uri, name))
        bucket, key = layout.split_s3(uri)
        s3.upload_file(str(upload.path), bucket, key)
        self.log.info(
            "Segment %s (%s): %s users, %s with a profile, %s without → %s",
            name, staged.line.query, upload.users, upload.rows,
            "not checked" if upload.users_without_profile is None else upload.users_without_profile, uri,
        )  # fmt: skip
        return {
            "segment_name": name,
            "segment_definition_name": definition,
            "query": staged.line.query,
            "query_kind": staged.line.query_kind,
            "marker_attribute": marker_attribute(self.segment_attribute, staged.line.query),
            "users": upload.users,
            "rows": upload.rows,
            "users_without_profile": upload.users_without_profile,
            "csv_s3_uri": uri,
            "bytes": upload.bytes,
            "sha256": upload.sha256,
        }


# --------------------------------------------------------------------------------------------------
# 2. the upload job
# --------------------------------------------------------------------------------------------------


class CustomerProfilesUploadOperator(AwsBaseOperator[CustomerProfilesHook]):
    """
    Upload one segment's CSV to Customer Profiles: ``CreateUploadJob`` → ``GetUploadJobPath`` → PUT
    (SSE-C) → ``StartUploadJob`` → wait for ``GetUploadJob``.

    Idempotent per DAG run (see the module docstring). ``PARTIALLY_SUCCEEDED`` succeeds with a
    warning and the ``ResultsSummary`` counts (``fail_on_failed_records`` makes it fail); ``FAILED``
    and ``STOPPED`` fail with ``StatusReason`` and the counts.

    :param domain_name: The Customer Profiles domain. (templated)
    :param segment_name: The segment (from the prepare task). (templated)
    :param csv_s3_uri: The upload CSV. (templated)
    :param marker_attribute: The custom attribute the CSV's ``segment`` column goes to. (templated)
    :param profile_key: The profile attribute the ``user_id`` column goes to (the unique key).
    :param data_expiry_days: ``DataExpiry`` of the upload (1-1098). Required: AWS's default (14 days)
        expires the profiles an upload creates.
    :param state_uri: ``BucketLayout.activation_state_uri("customer_profiles")``: the claims. (templated)
    :param fail_on_failed_records: Fail when ``ResultsSummary.FailedRecords`` > 0.
    :param wait_for_completion: Wait for the job (default True).
    :param deferrable: Defer to ``CustomerProfilesUploadJobCompleteTrigger`` while waiting.
        (default: ``[operators] default_deferrable``)
    :param waiter_delay: Seconds between status checks. (default 15)
    :param waiter_max_attempts: Maximum status checks. (default 240)
    :return: (XCom) ``{segment_name, domain_name, upload_job_id, status, status_reason,
        CreatedRecords, UpdatedRecords, FailedRecords}``.
    """

    aws_hook_class = CustomerProfilesHook
    template_fields: Sequence[str] = aws_template_fields(
        "domain_name", "segment_name", "csv_s3_uri", "marker_attribute", "state_uri"
    )
    ui_color = "#c5e3f9"
    create_call = "create_upload_job"
    waiter_name = "upload_job_complete"
    trigger_class = CustomerProfilesUploadJobCompleteTrigger

    def __init__(
        self,
        *,
        domain_name: str,
        segment_name: str,
        csv_s3_uri: str,
        marker_attribute: str,
        profile_key: str,
        data_expiry_days: int,
        state_uri: str,
        fail_on_failed_records: bool = False,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        waiter_delay: int = 15,
        waiter_max_attempts: int = 240,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.domain_name = domain_name
        self.segment_name = segment_name
        self.csv_s3_uri = csv_s3_uri
        self.marker_attribute = marker_attribute
        self.profile_key = profile_key
        self.data_expiry_days = data_expiry_days
        self.state_uri = state_uri
        self.fail_on_failed_records = fail_on_failed_records
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts

    def _request(self, sha256: str) -> dict[str, Any]:
        if not facts.MIN_DATA_EXPIRY_DAYS <= int(self.data_expiry_days) <= facts.MAX_DATA_EXPIRY_DAYS:
            raise AirflowException(
                f"data_expiry_days must be {facts.MIN_DATA_EXPIRY_DAYS}-{facts.MAX_DATA_EXPIRY_DAYS}, "
                f"not {self.data_expiry_days}"
            )
        from personalize_logic.segments import UPLOAD_KEY_COLUMN, fit_name

        return {
            "DomainName": self.domain_name,
            "DisplayName": fit_name(f"{self.segment_name}-{sha256[:12]}", facts.MAX_DISPLAY_NAME_LENGTH),
            "Fields": upload_fields(self.profile_key, self.marker_attribute),
            "UniqueKey": UPLOAD_KEY_COLUMN,
            "DataExpiry": int(self.data_expiry_days),
        }

    def _claims(self, context: Context) -> ActivationClaims:
        return ActivationClaims(
            s3_client(self),
            self.state_uri,
            layout.dag_run_key(context["run_id"]),
            holder=ActivationClaims.holder_of(context),
        )

    def _job_id(self, claims: ActivationClaims, request: dict[str, Any], fingerprint: dict[str, Any]) -> str:
        """The upload job of this segment: recorded by an earlier attempt, found by name, or created."""
        resources = claims.claim(self.segment_name, fingerprint)
        job_id = resources.get("upload_job_id")
        if job_id:
            job = self.hook.conn.get_upload_job(DomainName=self.domain_name, JobId=job_id)
            if job.get("Status") not in facts.UPLOAD_FAILURE_STATES:
                self.log.info(
                    "Reusing upload job %s (%s) recorded for %s", job_id, job.get("Status"), self.segment_name
                )
                return job_id
            self.log.warning(
                "Upload job %s ended %s: starting a new one", job_id, facts.describe_failure(job)
            )
        else:
            found = self.hook.find_upload_job(self.domain_name, request["DisplayName"])
            if found is not None:
                claims.record(self.segment_name, upload_job_id=found["JobId"])
                self.log.info("Reusing upload job %s (%s) found by name", found["JobId"], found.get("Status"))
                return found["JobId"]
        job_id = getattr(self.hook.conn, self.create_call)(**request)["JobId"]
        claims.record(self.segment_name, upload_job_id=job_id)
        self.log.info("Created Customer Profiles upload job %s (%s)", job_id, request["DisplayName"])
        return job_id

    def _upload_and_start(self, job_id: str, local: Path) -> None:
        path = self.hook.conn.get_upload_job_path(DomainName=self.domain_name, JobId=job_id)
        self.hook.put_upload_file(path["Url"], path["ClientToken"], local)
        self.hook.conn.start_upload_job(DomainName=self.domain_name, JobId=job_id)
        self.log.info(
            "Uploaded %s (%s bytes) and started upload job %s", self.csv_s3_uri, local.stat().st_size, job_id
        )

    def execute(self, context: Context) -> dict[str, Any]:
        s3 = s3_client(self)
        with tempfile.TemporaryDirectory(prefix="customer-profiles-upload-") as tmp:
            local = Path(tmp) / "upload.csv"
            bucket, key = layout.split_s3(self.csv_s3_uri)
            s3.download_file(bucket, key, str(local))
            sha256 = _sha256(local)
            request = self._request(sha256)
            fingerprint = {
                "domain": self.domain_name,
                "csv_sha256": sha256,
                "csv_bytes": local.stat().st_size,
                "fields": request["Fields"],
                "unique_key": request["UniqueKey"],
                "data_expiry_days": request["DataExpiry"],
            }
            job_id = self._job_id(self._claims(context), request, fingerprint)
            job = self.hook.conn.get_upload_job(DomainName=self.domain_name, JobId=job_id)
            if (
                job.get("Status") == "CREATED"
            ):  # not started yet (also: an attempt that died before starting it)
                self._upload_and_start(job_id, local)
        if self.deferrable:
            self.defer(
                trigger=self.trigger_class(
                    domain_name=self.domain_name,
                    job_id=job_id,
                    waiter_delay=self.waiter_delay,
                    waiter_max_attempts=self.waiter_max_attempts,
                    **connection_kwargs(self),
                ),
                method_name="execute_complete",
            )
        elif self.wait_for_completion:
            try:
                self.hook.get_waiter(self.waiter_name).wait(
                    DomainName=self.domain_name,
                    JobId=job_id,
                    WaiterConfig={"Delay": self.waiter_delay, "MaxAttempts": self.waiter_max_attempts},
                )
            except WaiterError as exc:
                raise AirflowException(self._failure(job_id, f"waiter: {exc}")) from exc
        return self._result(job_id)

    def _failure(self, job_id: str, detail: str) -> str:
        job = self.hook.conn.get_upload_job(DomainName=self.domain_name, JobId=job_id)
        return f"Customer Profiles upload job {job_id} ({self.segment_name}) did not succeed: {facts.describe_failure(job)}; {detail}"

    def _result(self, job_id: str) -> dict[str, Any]:
        job = self.hook.conn.get_upload_job(DomainName=self.domain_name, JobId=job_id)
        counts = facts.results_summary(job)
        status = job.get("Status")
        if status == "PARTIALLY_SUCCEEDED":
            self.log.warning("Upload job %s partially succeeded: %s", job_id, counts)
            if self.fail_on_failed_records and counts["FailedRecords"]:
                raise AirflowException(self._failure(job_id, "fail_on_failed_records is set"))
        elif status in facts.UPLOAD_SUCCESS_STATES:
            self.log.info("Upload job %s succeeded: %s", job_id, counts)
        return {
            "segment_name": self.segment_name,
            "domain_name": self.domain_name,
            "upload_job_id": job_id,
            "status": status,
            "status_reason": job.get("StatusReason"),
            **counts,
        }

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        validated = validate_execute_complete_event(event)
        job_id = validated["job_id"]
        if validated.get("status") != "success":
            raise AirflowException(self._failure(job_id, f"waiter: {validated.get('message')}"))
        return self._result(job_id)


# --------------------------------------------------------------------------------------------------
# 3. the segment definition
# --------------------------------------------------------------------------------------------------


class CustomerProfilesCreateSegmentOperator(AwsBaseOperator[CustomerProfilesHook]):
    """
    Define one segment over the profiles its upload marked: ``CreateSegmentDefinition`` (reused when
    a definition of that name selects the same profiles) → ``CreateSegmentEstimate`` → wait
    (``segment_estimate_complete``) → the segment's size.

    :param domain_name: The Customer Profiles domain. (templated)
    :param segment_name: The segment (its display name). (templated)
    :param segment_definition_name: The definition's name. (templated)
    :param marker_attribute: The custom attribute the upload wrote. (templated)
    :param query: The Personalize query (the definition's description). (templated)
    :param wait_for_completion: Wait for the estimate and report the size (default True).
    :param waiter_delay: Seconds between estimate status checks. (default 5)
    :param waiter_max_attempts: Maximum estimate status checks. (default 120)
    :return: (XCom) ``{segment_name, domain_name, segment_definition_name, segment_definition_arn,
        size}`` (``size`` is None when not waiting). Amazon Connect outbound campaigns target the
        segment by ``segment_definition_arn``.
    """

    aws_hook_class = CustomerProfilesHook
    template_fields: Sequence[str] = aws_template_fields(
        "domain_name", "segment_name", "segment_definition_name", "marker_attribute", "query"
    )
    ui_color = "#c5e3f9"
    create_call = "create_segment_definition"
    waiter_name = "segment_estimate_complete"

    def __init__(
        self,
        *,
        domain_name: str,
        segment_name: str,
        segment_definition_name: str,
        marker_attribute: str,
        query: str | None = None,
        wait_for_completion: bool = True,
        waiter_delay: int = 5,
        waiter_max_attempts: int = 120,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.domain_name = domain_name
        self.segment_name = segment_name
        self.segment_definition_name = segment_definition_name
        self.marker_attribute = marker_attribute
        self.query = query
        self.wait_for_completion = wait_for_completion
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts

    def execute(self, context: Context) -> dict[str, Any]:
        groups = membership_segment_groups(self.marker_attribute, self.segment_definition_name)
        definition = _ensure_segment_definition(
            self.hook,
            self.domain_name,
            self.segment_definition_name,
            self.segment_name,
            groups,
            f"Amazon Personalize batch segment: {self.query}" if self.query else None,
        )
        arn = definition.get("SegmentDefinitionArn")
        self.log.info(
            "Segment definition %s (%s) in domain %s", self.segment_definition_name, arn, self.domain_name
        )
        size = self._size(groups) if self.wait_for_completion else None
        self.log.info("Segment %s holds %s profiles", self.segment_definition_name, size)
        return {
            "segment_name": self.segment_name,
            "domain_name": self.domain_name,
            "segment_definition_name": self.segment_definition_name,
            "segment_definition_arn": arn,
            "size": size,
        }

    def _size(self, groups: dict[str, Any]) -> int | None:
        estimate_id = self.hook.conn.create_segment_estimate(
            DomainName=self.domain_name, SegmentQuery=groups
        )["EstimateId"]
        try:
            self.hook.get_waiter(self.waiter_name).wait(
                DomainName=self.domain_name,
                EstimateId=estimate_id,
                WaiterConfig={"Delay": self.waiter_delay, "MaxAttempts": self.waiter_max_attempts},
            )
        except WaiterError as exc:
            failed = self.hook.conn.get_segment_estimate(DomainName=self.domain_name, EstimateId=estimate_id)
            raise AirflowException(
                f"Segment estimate {estimate_id} of {self.segment_definition_name} did not succeed: "
                f"status {failed.get('Status')!r}, {failed.get('Message')}"
            ) from exc
        answer = self.hook.conn.get_segment_estimate(DomainName=self.domain_name, EstimateId=estimate_id)
        return _estimate_size(answer.get("Estimate"))
