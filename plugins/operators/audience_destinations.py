"""
Where a resolved audience segment goes: a small interface with one implementation per AWS service.

Amazon Pinpoint's engagement APIs (endpoints, segments, campaigns, journeys) reached AWS end of
support on **2026-10-30**; its successor for "imported segment from a file" is Amazon Connect
Customer Profiles. The activation operators only talk to :class:`AudienceDestination`, so a Customer
Profiles destination can replace the Pinpoint one without touching the DAGs' resolution step.

Flow of every destination: ``prepare(segment)`` (checks, turns staged files into the service's
request) → ``activate(staged)`` (exactly one create call; a retry finds and reuses its own job) →
``wait(job_id)`` (poll until terminal; raise with the service's failure reason) →
``describe_result(job_id)`` (a JSON-able dict for XCom).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException
from botocore.exceptions import WaiterError

from personalize_logic.facts.pinpoint import describe_failure

if TYPE_CHECKING:
    from hooks.pinpoint import PinpointHook


@dataclass(frozen=True)
class AudienceSegment:
    """
    One audience segment staged in S3.

    :param name: Deterministic segment name (see ``personalize_logic.segments.segment_name``).
    :param s3_url: Where the segment file(s) are: one file or a folder prefix.
    :param column: The CSV layout: ``"Id"`` (endpoint ids) or ``"User.UserId"``.
    :param query: The Personalize query the segment came from (informational).
    """

    name: str
    s3_url: str
    column: str = "Id"
    query: str | None = None


@dataclass(frozen=True)
class StagedAudience:
    """A segment turned into one destination request (``request`` is service specific)."""

    segment: AudienceSegment
    request: dict[str, Any] = field(default_factory=dict)


class AudienceDestination(abc.ABC):
    """The interface every audience destination implements (see the module docstring)."""

    #: Short name used in logs and XCom.
    name: str = "destination"

    @abc.abstractmethod
    def prepare(self, segment: AudienceSegment) -> StagedAudience:
        """Validate the staged segment and build the service request (no side effect on the service)."""

    @abc.abstractmethod
    def activate(self, staged: StagedAudience) -> str:
        """Start (or find, on retry) the job that activates the segment; return its job id."""

    @abc.abstractmethod
    def wait(self, job_id: str, *, delay: int, max_attempts: int) -> None:
        """Block until the job is terminal; raise ``AirflowException`` with the failure reason."""

    @abc.abstractmethod
    def describe_result(self, job_id: str) -> dict[str, Any]:
        """Describe the finished job (JSON-able)."""


class PinpointImportedSegmentDestination(AudienceDestination):
    """
    Amazon Pinpoint imported segment: ``CreateImportJob(DefineSegment=True, SegmentName=...)``.

    **Legacy**: Pinpoint's engagement APIs reached end of support on 2026-10-30.

    :param hook: A :class:`hooks.pinpoint.PinpointHook`.
    :param application_id: The Pinpoint project id.
    :param role_arn: IAM role Pinpoint assumes to read the S3 location.
    :param import_format: ``"CSV"`` or ``"JSON"``.
    :param register_endpoints: Pass ``RegisterEndpoints`` (only meaningful for full definitions).
    :param if_exists: ``"reuse"`` an import job that already defines this segment name (a retry) or
        ``"fail"``.
    """

    name = "pinpoint"

    def __init__(
        self,
        hook: PinpointHook,
        application_id: str,
        role_arn: str,
        *,
        import_format: str = "CSV",
        register_endpoints: bool | None = None,
        if_exists: str = "reuse",
    ) -> None:
        if if_exists not in ("reuse", "fail"):
            raise ValueError(f"if_exists must be 'reuse' or 'fail', not {if_exists!r}")
        self.hook = hook
        self.application_id = application_id
        self.role_arn = role_arn
        self.import_format = import_format
        self.register_endpoints = register_endpoints
        self.if_exists = if_exists

    def prepare(self, segment: AudienceSegment) -> StagedAudience:
        from personalize_logic.layout import is_s3_uri

        if not is_s3_uri(segment.s3_url):
            raise ValueError(f"Pinpoint imports from S3 only; got {segment.s3_url!r}")
        if not segment.name:
            raise ValueError("The segment needs a name")
        request: dict[str, Any] = {
            "DefineSegment": True,
            "Format": self.import_format,
            "RoleArn": self.role_arn,
            "S3Url": segment.s3_url,
            "SegmentName": segment.name,
        }
        if self.register_endpoints is not None:
            request["RegisterEndpoints"] = self.register_endpoints
        return StagedAudience(segment, request)

    def activate(self, staged: StagedAudience) -> str:
        existing = self.hook.find_import_job(self.application_id, staged.segment.name)
        if existing is not None:
            if self.if_exists == "fail":
                raise AirflowException(
                    f"Pinpoint import job {existing['Id']} already defines segment {staged.segment.name!r} "
                    f"(status {existing.get('JobStatus')}); if_exists='fail'"
                )
            return existing["Id"]
        response = self.hook.conn.create_import_job(
            ApplicationId=self.application_id, ImportJobRequest=staged.request
        )
        return response["ImportJobResponse"]["Id"]

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self.hook.conn.get_import_job(ApplicationId=self.application_id, JobId=job_id)[
            "ImportJobResponse"
        ]

    def failure_message(self, job_id: str, extra: str = "") -> str:
        job = self.get_job(job_id)
        return f"Pinpoint import job {job_id} did not complete: {describe_failure(job)}{extra}"

    def wait(self, job_id: str, *, delay: int, max_attempts: int) -> None:
        try:
            self.hook.get_waiter("import_job_complete").wait(
                ApplicationId=self.application_id,
                JobId=job_id,
                WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts},
            )
        except WaiterError as exc:
            raise AirflowException(self.failure_message(job_id, f"; waiter: {exc}")) from exc

    def describe_result(self, job_id: str) -> dict[str, Any]:
        job = self.get_job(job_id)
        definition = job.get("Definition", {})
        segment_id = definition.get("SegmentId")
        size = None
        if segment_id and job.get("JobStatus") == "COMPLETED":
            segment = self.hook.conn.get_segment(ApplicationId=self.application_id, SegmentId=segment_id)
            size = segment["SegmentResponse"].get("ImportDefinition", {}).get("Size")
        return {
            "destination": self.name,
            "segment_id": segment_id,
            "segment_name": definition.get("SegmentName"),
            "import_job_id": job_id,
            "status": job.get("JobStatus"),
            "size": size,
        }


class CustomerProfilesSegmentDestination(AudienceDestination):
    """
    Amazon Connect Customer Profiles segment (the AWS successor of Pinpoint imported segments).

    **Not implemented yet** (cut from the first version; no emulator needed to build it: test it with
    ``botocore.stub.Stubber`` on a ``customer-profiles`` client). The flow, per the botocore
    ``customer-profiles`` model and the Connect admin guide ("Create segments from imported files"):

    1. ``CreateUploadJob(DomainName, DisplayName, Fields={col: {Source, Target, ContentType}},
       UniqueKey, DataExpiry?)`` → ``JobId``. Set ``DataExpiry`` (1-1098 days): the default is 14
       days, after which imported profiles disappear.
    2. ``GetUploadJobPath(DomainName, JobId)`` → pre-signed ``Url``, ``ClientToken``, ``ValidUntil``.
    3. HTTP ``PUT`` the CSV (< 1 GB, UTF-8, with headers mapping to profile attributes) to ``Url``
       with SSE-C headers: ``x-amz-server-side-encryption-customer-algorithm: AES256``,
       ``x-amz-server-side-encryption-customer-key`` (the client token) and ``...-customer-key-MD5``.
    4. ``StartUploadJob(DomainName, JobId)``.
    5. Poll ``GetUploadJob`` until ``Status`` is SUCCEEDED / PARTIALLY_SUCCEEDED (FAILED / STOPPED
       fail, with ``StatusReason`` and ``ResultsSummary``).
    6. ``CreateSegmentDefinition(DomainName, SegmentDefinitionName, DisplayName, SegmentGroups |
       SegmentSqlQuery)`` selecting the uploaded profiles (no API field links an upload job to a
       segment: select by an attribute written in step 3, e.g. a ``segment_name`` column).

    Customer Profiles works with profiles (people), not channel endpoints, so the resolver's
    ``User.UserId`` layout (one user id a row) is the natural input; Amazon Connect outbound campaigns
    then target the segment by ARN. See ``/work/shared/reference/aws-and-mparticle-apis.md`` §1.2.
    """

    name = "customer_profiles"

    def __init__(self, domain_name: str, **kwargs: Any) -> None:
        self.domain_name = domain_name
        self.options = kwargs

    def _not_implemented(self) -> AirflowException:
        return AirflowException(
            "CustomerProfilesSegmentDestination is not implemented yet; see its docstring for the "
            "CreateUploadJob → GetUploadJobPath → PUT (SSE-C) → StartUploadJob → GetUploadJob → "
            "CreateSegmentDefinition flow."
        )

    def prepare(self, segment: AudienceSegment) -> StagedAudience:
        raise NotImplementedError(str(self._not_implemented()))

    def activate(self, staged: StagedAudience) -> str:
        raise NotImplementedError(str(self._not_implemented()))

    def wait(self, job_id: str, *, delay: int, max_attempts: int) -> None:
        raise NotImplementedError(str(self._not_implemented()))

    def describe_result(self, job_id: str) -> dict[str, Any]:
        raise NotImplementedError(str(self._not_implemented()))
