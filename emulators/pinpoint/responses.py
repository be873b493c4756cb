"""An Amazon Pinpoint emulator (the engagement APIs this project uses), served from botocore's model.

``create_app(state_dir=..., s3_endpoint_url=...)`` returns a WSGI app (with ``.close()``) built on
:class:`emulators.aws_service.AwsService` (rest-json routing, request and response validation against
the ``pinpoint`` model, AWS-shaped errors). Each handler reads the request's members, calls
:class:`~emulators.pinpoint.models.PinpointBackend` (state, jobs, S3; its docstring has the import
and export rules) and wraps the result in the operation's response member; list operations page
with ``Token`` / ``PageSize``.

Operations: CreateApp / GetApp / GetApps / DeleteApp; UpdateEndpoint / UpdateEndpointsBatch /
GetEndpoint / GetUserEndpoints (``NotFoundException`` 404 for a user without endpoints) /
DeleteEndpoint; CreateExportJob / GetExportJob / GetExportJobs; CreateImportJob / GetImportJob /
GetImportJobs; GetSegment / GetSegments / DeleteSegment.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from emulators.aws_service import AwsService, load_service_model
from emulators.errors import ServiceError
from emulators.pinpoint.models import PinpointBackend

Params = dict[str, Any]
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def _page(items: list[dict[str, Any]], params: Params) -> dict[str, Any]:
    """``{"Item": [...], "NextToken"?: ...}`` for the page ``Token`` / ``PageSize`` ask for."""
    try:
        start = int(params.get("Token") or 0)
        size = int(params.get("PageSize") or DEFAULT_PAGE_SIZE)
    except ValueError as exc:
        raise ServiceError("BadRequestException", f"Invalid Token / PageSize: {exc}") from exc
    size = max(1, min(size, MAX_PAGE_SIZE))
    body: dict[str, Any] = {"Item": items[start : start + size]}
    if start + size < len(items):
        body["NextToken"] = str(start + size)
    return body


def _accepted() -> dict[str, Any]:
    return {"MessageBody": {"Message": "Accepted", "RequestID": uuid.uuid4().hex}}


class PinpointEmulator(AwsService):
    """The Pinpoint service: one thin handler per supported operation over ``self.backend``."""

    backend: PinpointBackend

    def __init__(self, backend: PinpointBackend) -> None:
        super().__init__("pinpoint", validation_error_code="BadRequestException", backend=backend)

    # -- apps -------------------------------------------------------------------------------------
    def CreateApp(self, params: Params) -> dict[str, Any]:
        request = params["CreateApplicationRequest"]
        return {"ApplicationResponse": self.backend.create_app(request["Name"], request.get("tags") or {})}

    def GetApp(self, params: Params) -> dict[str, Any]:
        return {"ApplicationResponse": self.backend.get_app(params["ApplicationId"])}

    def GetApps(self, params: Params) -> dict[str, Any]:
        return {"ApplicationsResponse": _page(self.backend.apps(), params)}

    def DeleteApp(self, params: Params) -> dict[str, Any]:
        return {"ApplicationResponse": self.backend.delete_app(params["ApplicationId"])}

    # -- endpoints --------------------------------------------------------------------------------
    def UpdateEndpoint(self, params: Params) -> dict[str, Any]:
        self.backend.update_endpoint(params["ApplicationId"], params["EndpointId"], params["EndpointRequest"])
        return _accepted()

    def UpdateEndpointsBatch(self, params: Params) -> dict[str, Any]:
        self.backend.update_endpoints_batch(params["ApplicationId"], params["EndpointBatchRequest"]["Item"])
        return _accepted()

    def GetEndpoint(self, params: Params) -> dict[str, Any]:
        return {"EndpointResponse": self.backend.get_endpoint(params["ApplicationId"], params["EndpointId"])}

    def DeleteEndpoint(self, params: Params) -> dict[str, Any]:
        return {
            "EndpointResponse": self.backend.delete_endpoint(params["ApplicationId"], params["EndpointId"])
        }

    def GetUserEndpoints(self, params: Params) -> dict[str, Any]:
        items = self.backend.user_endpoints(params["ApplicationId"], params["UserId"])
        return {"EndpointsResponse": {"Item": items}}

    # -- segments ---------------------------------------------------------------------------------
    def GetSegment(self, params: Params) -> dict[str, Any]:
        return {"SegmentResponse": self.backend.get_segment(params["ApplicationId"], params["SegmentId"])}

    def GetSegments(self, params: Params) -> dict[str, Any]:
        return {"SegmentsResponse": _page(self.backend.segments(params["ApplicationId"]), params)}

    def DeleteSegment(self, params: Params) -> dict[str, Any]:
        return {"SegmentResponse": self.backend.delete_segment(params["ApplicationId"], params["SegmentId"])}

    # -- import and export jobs -------------------------------------------------------------------
    def CreateImportJob(self, params: Params) -> dict[str, Any]:
        job = self.backend.create_import_job(params["ApplicationId"], params["ImportJobRequest"])
        return {"ImportJobResponse": job}

    def GetImportJob(self, params: Params) -> dict[str, Any]:
        return {"ImportJobResponse": self.backend.job(params["ApplicationId"], params["JobId"], "IMPORT")}

    def GetImportJobs(self, params: Params) -> dict[str, Any]:
        return {"ImportJobsResponse": _page(self.backend.jobs(params["ApplicationId"], "IMPORT"), params)}

    def CreateExportJob(self, params: Params) -> dict[str, Any]:
        job = self.backend.create_export_job(params["ApplicationId"], params["ExportJobRequest"])
        return {"ExportJobResponse": job}

    def GetExportJob(self, params: Params) -> dict[str, Any]:
        return {"ExportJobResponse": self.backend.job(params["ApplicationId"], params["JobId"], "EXPORT")}

    def GetExportJobs(self, params: Params) -> dict[str, Any]:
        return {"ExportJobsResponse": _page(self.backend.jobs(params["ApplicationId"], "EXPORT"), params)}


def create_app(
    *,
    state_dir: Path,
    s3_endpoint_url: str,
    min_job_seconds: float = 1.0,
    region: str = "us-east-1",
    account_id: str = "123456789012",
) -> PinpointEmulator:
    """Build the Pinpoint emulator WSGI app (call ``.close()`` when done; ``RunningServer`` does)."""
    backend = PinpointBackend(
        state_dir=Path(state_dir),
        s3_endpoint_url=s3_endpoint_url,
        channel_types=frozenset(load_service_model("pinpoint").shape_for("ChannelType").enum),
        min_job_seconds=min_job_seconds,
        region=region,
        account_id=account_id,
    )
    return PinpointEmulator(backend)
