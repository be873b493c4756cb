"""An Amazon Connect Customer Profiles emulator (the segment-import flow), served from botocore's model.

``create_app(state_dir=..., s3_endpoint_url=...)`` returns a WSGI app (with ``.close()``) built on
:class:`emulators.aws_service.AwsService` (rest-json routing, request and response validation against
the ``customer-profiles`` model, AWS-shaped errors). Each handler reads the request's members, calls
:class:`~emulators.customer_profiles.models.CustomerProfilesBackend` (its docstring has the rules)
and returns the response members; list operations page with ``NextToken`` / ``MaxResults``.

Operations: CreateDomain / GetDomain / ListDomains; CreateProfile / SearchProfiles;
CreateUploadJob / GetUploadJobPath / StartUploadJob / StopUploadJob / GetUploadJob / ListUploadJobs;
CreateSegmentDefinition / GetSegmentDefinition / ListSegmentDefinitions / DeleteSegmentDefinition;
CreateSegmentEstimate / GetSegmentEstimate; CreateSegmentSnapshot / GetSegmentSnapshot.

Besides the API, the app serves the **pre-signed upload URL** ``PUT /_upload/<domain>/<job id>?...``
that ``GetUploadJobPath`` returns: it checks the URL's signature and expiry and the SSE-C headers
(algorithm, key = the job's client token, key MD5), and answers S3-style XML errors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from emulators.aws_service import AwsService
from emulators.customer_profiles.models import CustomerProfilesBackend
from emulators.errors import ServiceError

Params = dict[str, Any]
DEFAULT_PAGE_SIZE = 100
UPLOAD_PATH = "/_upload/"


def _page(items: list[dict[str, Any]], params: Params, default: int = DEFAULT_PAGE_SIZE) -> dict[str, Any]:
    """``{"Items": [...], "NextToken"?: ...}`` for the page ``NextToken`` / ``MaxResults`` ask for."""
    try:
        start = int(params.get("NextToken") or 0)
    except ValueError as exc:
        raise ServiceError("BadRequestException", f"Invalid NextToken: {exc}") from exc
    size = int(params.get("MaxResults") or default)
    body: dict[str, Any] = {"Items": items[start : start + size]}
    if start + size < len(items):
        body["NextToken"] = str(start + size)
    return body


def _upload_item(job: dict[str, Any]) -> dict[str, Any]:
    keys = ("JobId", "DisplayName", "Status", "StatusReason", "CreatedAt", "CompletedAt", "DataExpiry")
    return {key: job[key] for key in keys if key in job}


class CustomerProfilesEmulator(AwsService):
    """The Customer Profiles service: one thin handler per supported operation over ``self.backend``."""

    backend: CustomerProfilesBackend

    def __init__(self, backend: CustomerProfilesBackend) -> None:
        super().__init__("customer-profiles", validation_error_code="BadRequestException", backend=backend)
        self._request = threading.local()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(UPLOAD_PATH):
            return self._upload(environ, start_response)
        self._request.base_url = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
        return super().__call__(environ, start_response)

    # -- the pre-signed PUT -----------------------------------------------------------------------
    def _upload(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        parts = environ["PATH_INFO"][len(UPLOAD_PATH) :].split("/")
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        try:
            if environ.get("REQUEST_METHOD") != "PUT" or len(parts) != 2:
                raise ServiceError("MethodNotAllowed", "The upload URL takes one PUT", 405)
            self.backend.receive_upload(parts[0], parts[1], query, headers, self._read_body(environ))
        except ServiceError as exc:
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(exc.code)}</Code>'
                f"<Message>{escape(exc.message)}</Message></Error>"
            ).encode()
            start_response(
                f"{exc.status or 400} Error",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
            )
            return [body]
        start_response("200 OK", [("Content-Length", "0"), ("ETag", '"upload"')])
        return [b""]

    # -- domains and profiles ---------------------------------------------------------------------
    def CreateDomain(self, params: Params) -> dict[str, Any]:
        domain = self.backend.create_domain(
            params["DomainName"], params["DefaultExpirationDays"], params.get("Tags")
        )
        return {k: v for k, v in domain.items() if v}

    def GetDomain(self, params: Params) -> dict[str, Any]:
        return {k: v for k, v in self.backend.get_domain(params["DomainName"]).items() if v}

    def ListDomains(self, params: Params) -> dict[str, Any]:
        items = [
            {k: d[k] for k in ("DomainName", "CreatedAt", "LastUpdatedAt")} for d in self.backend.domains()
        ]
        return _page(items, params)

    def CreateProfile(self, params: Params) -> dict[str, Any]:
        fields = {k: v for k, v in params.items() if k != "DomainName"}
        return {"ProfileId": self.backend.create_profile(params["DomainName"], fields)}

    def SearchProfiles(self, params: Params) -> dict[str, Any]:
        found = self.backend.search_profiles(params["DomainName"], params["KeyName"], params["Values"])
        return _page(found, params, default=20)

    # -- upload jobs ------------------------------------------------------------------------------
    def CreateUploadJob(self, params: Params) -> dict[str, Any]:
        job_id = self.backend.create_upload_job(
            params["DomainName"],
            params["DisplayName"],
            params["Fields"],
            params["UniqueKey"],
            params.get("DataExpiry"),
        )
        return {"JobId": job_id}

    def GetUploadJobPath(self, params: Params) -> dict[str, Any]:
        return self.backend.upload_job_path(params["DomainName"], params["JobId"], self._request.base_url)

    def StartUploadJob(self, params: Params) -> dict[str, Any]:
        self.backend.start_upload_job(params["DomainName"], params["JobId"])
        return {}

    def StopUploadJob(self, params: Params) -> dict[str, Any]:
        self.backend.stop_upload_job(params["DomainName"], params["JobId"])
        return {}

    def GetUploadJob(self, params: Params) -> dict[str, Any]:
        return self.backend.upload_job(params["DomainName"], params["JobId"])

    def ListUploadJobs(self, params: Params) -> dict[str, Any]:
        return _page([_upload_item(job) for job in self.backend.upload_jobs(params["DomainName"])], params)

    # -- segment definitions, estimates, snapshots ------------------------------------------------
    def CreateSegmentDefinition(self, params: Params) -> dict[str, Any]:
        data = self.backend.create_segment_definition(
            params["DomainName"], params["SegmentDefinitionName"], params
        )
        keys = (
            "SegmentDefinitionName",
            "DisplayName",
            "Description",
            "CreatedAt",
            "SegmentDefinitionArn",
            "Tags",
        )
        return {key: data[key] for key in keys if key in data}

    def GetSegmentDefinition(self, params: Params) -> dict[str, Any]:
        return self.backend.segment_definition(params["DomainName"], params["SegmentDefinitionName"])

    def ListSegmentDefinitions(self, params: Params) -> dict[str, Any]:
        keys = (
            "SegmentDefinitionName",
            "DisplayName",
            "Description",
            "SegmentDefinitionArn",
            "CreatedAt",
            "Tags",
            "SegmentType",
        )
        items = [
            {k: d[k] for k in keys if k in d} for d in self.backend.segment_definitions(params["DomainName"])
        ]
        return _page(items, params)

    def DeleteSegmentDefinition(self, params: Params) -> dict[str, Any]:
        self.backend.delete_segment_definition(params["DomainName"], params["SegmentDefinitionName"])
        return {"Message": "Deleted"}

    def CreateSegmentEstimate(self, params: Params) -> dict[str, Any]:
        estimate_id = self.backend.create_estimate(
            params["DomainName"], params.get("SegmentQuery"), params.get("SegmentSqlQuery")
        )
        return {"DomainName": params["DomainName"], "EstimateId": estimate_id}

    def GetSegmentEstimate(self, params: Params) -> dict[str, Any]:
        return self.backend.estimate(params["DomainName"], params["EstimateId"])

    def CreateSegmentSnapshot(self, params: Params) -> dict[str, Any]:
        snapshot_id = self.backend.create_snapshot(
            params["DomainName"], params["SegmentDefinitionName"], params
        )
        return {"SnapshotId": snapshot_id}

    def GetSegmentSnapshot(self, params: Params) -> dict[str, Any]:
        return self.backend.snapshot(
            params["DomainName"], params["SegmentDefinitionName"], params["SnapshotId"]
        )


def create_app(
    *,
    state_dir: Path,
    s3_endpoint_url: str,
    min_job_seconds: float = 1.0,
    region: str = "us-east-1",
    account_id: str = "123456789012",
) -> CustomerProfilesEmulator:
    """Build the Customer Profiles emulator WSGI app (call ``.close()`` when done; ``RunningServer`` does)."""
    backend = CustomerProfilesBackend(
        state_dir=Path(state_dir),
        s3_endpoint_url=s3_endpoint_url,
        min_job_seconds=min_job_seconds,
        region=region,
        account_id=account_id,
    )
    return CustomerProfilesEmulator(backend)
