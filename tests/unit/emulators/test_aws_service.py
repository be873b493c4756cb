"""The generic AWS protocol layer, exercised with real boto3 clients against tiny handlers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from emulators.aws_service import AwsService, ServiceError
from emulators.http_server import RunningServer

ARN = "arn:aws:personalize:us-east-1:123456789012:dataset-group/dg1"


class TinyPersonalize(AwsService):
    def __init__(self) -> None:
        super().__init__("personalize")
        self.calls: list[dict[str, Any]] = []

    def CreateDatasetGroup(self, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(params)
        if params["name"] == "exists":
            raise ServiceError("ResourceAlreadyExistsException", "already there")
        return {"datasetGroupArn": ARN}

    def DescribeDatasetGroup(self, params: dict[str, Any]) -> dict[str, Any]:
        if params["datasetGroupArn"] != ARN:
            raise ServiceError("ResourceNotFoundException", "no such dataset group")
        now = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        return {
            "datasetGroup": {
                "name": "dg1",
                "datasetGroupArn": ARN,
                "status": "ACTIVE",
                "creationDateTime": now,
                "lastUpdatedDateTime": now,
            }
        }

    def ListDatasetGroups(self, params: dict[str, Any]) -> dict[str, Any]:
        # a lie: status must be a string and the member does not exist
        return {"datasetGroups": [{"name": 5, "bogus": True}]}


class TinyPinpoint(AwsService):
    def __init__(self) -> None:
        super().__init__("pinpoint")

    def CreateImportJob(self, params: dict[str, Any]) -> dict[str, Any]:
        req = params["ImportJobRequest"]
        return {
            "ImportJobResponse": {
                "ApplicationId": params["ApplicationId"],
                "CreationDate": "2024-01-01T00:00:00Z",
                "Definition": {"Format": req["Format"], "RoleArn": req["RoleArn"], "S3Url": req["S3Url"]},
                "Id": "job-1",
                "JobStatus": "CREATED",
                "Type": "IMPORT",
            }
        }

    def GetUserEndpoints(self, params: dict[str, Any]) -> dict[str, Any]:
        if params["UserId"] != "u 1":
            raise ServiceError("NotFoundException", "Resource not found", 404)
        return {"EndpointsResponse": {"Item": [{"Id": "e1", "User": {"UserId": params["UserId"]}}]}}

    def GetImportJobs(self, params: dict[str, Any]) -> dict[str, Any]:
        assert params.get("PageSize") == "3"
        return {"ImportJobsResponse": {"Item": [], "NextToken": params.get("Token", "")}}


def _client(service: str, url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def personalize() -> Iterator[tuple[Any, TinyPersonalize]]:
    app = TinyPersonalize()
    server = RunningServer(app, name="tiny-personalize").start()
    yield _client("personalize", server.url), app
    server.shutdown()


@pytest.fixture(scope="module")
def pinpoint() -> Iterator[Any]:
    server = RunningServer(TinyPinpoint(), name="tiny-pinpoint").start()
    yield _client("pinpoint", server.url)
    server.shutdown()


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def test_json_round_trip(personalize: tuple[Any, TinyPersonalize]) -> None:
    client, app = personalize
    assert client.create_dataset_group(name="dg1", domain="VIDEO_ON_DEMAND")["datasetGroupArn"] == ARN
    assert app.calls[-1] == {"name": "dg1", "domain": "VIDEO_ON_DEMAND"}
    group = client.describe_dataset_group(datasetGroupArn=ARN)["datasetGroup"]
    assert group["status"] == "ACTIVE"
    assert group["creationDateTime"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def test_handler_service_error(personalize: tuple[Any, TinyPersonalize]) -> None:
    client, _ = personalize
    with pytest.raises(ClientError) as exc:
        client.create_dataset_group(name="exists")
    assert _code(exc) == "ResourceAlreadyExistsException"
    assert exc.value.response["Error"]["Message"] == "already there"
    with pytest.raises(ClientError) as exc:
        client.describe_dataset_group(datasetGroupArn=ARN + "x")
    assert _code(exc) == "ResourceNotFoundException"


def test_server_side_validation(personalize: tuple[Any, TinyPersonalize]) -> None:
    # disable client-side validation so the server sees the bad requests
    client, _ = personalize
    raw = boto3.client(
        "personalize",
        endpoint_url=client.meta.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as exc:
        raw.create_dataset_group()  # missing required name
    assert _code(exc) == "ValidationException"
    assert "name" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        raw.create_dataset_group(name="dg", domain="NOT_A_DOMAIN")
    assert _code(exc) == "ValidationException"
    assert "enum" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        raw.create_dataset_group(name="x" * 64)  # boto3 checks min but not max length
    assert _code(exc) == "ValidationException"
    assert "less than or equal to 63" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        raw.create_dataset_group(name="has space")
    assert _code(exc) == "ValidationException"
    assert "pattern" in str(exc.value)


def test_too_long_name_with_normal_client(personalize: tuple[Any, TinyPersonalize]) -> None:
    client, _ = personalize
    with pytest.raises(ClientError) as exc:
        client.create_dataset_group(name="x" * 64)
    assert _code(exc) == "ValidationException"


def test_unsupported_operation(personalize: tuple[Any, TinyPersonalize]) -> None:
    client, _ = personalize
    with pytest.raises(ClientError) as exc:
        client.list_schemas()
    assert _code(exc) == "UnknownOperationException"


def test_response_validated(personalize: tuple[Any, TinyPersonalize]) -> None:
    client, _ = personalize
    with pytest.raises(ClientError) as exc:
        client.list_dataset_groups()
    assert _code(exc) == "InternalFailure"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_rest_json_payload_and_status(pinpoint: Any) -> None:
    resp = pinpoint.create_import_job(
        ApplicationId="app1",
        ImportJobRequest={"Format": "CSV", "RoleArn": "arn:aws:iam::1:role/r", "S3Url": "s3://b/k.csv"},
    )
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert resp["ImportJobResponse"]["Id"] == "job-1"
    assert resp["ImportJobResponse"]["ApplicationId"] == "app1"


def test_rest_json_uri_labels_and_errors(pinpoint: Any) -> None:
    resp = pinpoint.get_user_endpoints(ApplicationId="app1", UserId="u 1")
    assert resp["EndpointsResponse"]["Item"][0]["User"]["UserId"] == "u 1"
    with pytest.raises(ClientError) as exc:
        pinpoint.get_user_endpoints(ApplicationId="app1", UserId="nobody")
    assert _code(exc) == "NotFoundException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_rest_json_querystring(pinpoint: Any) -> None:
    resp = pinpoint.get_import_jobs(ApplicationId="app1", PageSize="3", Token="t1")
    assert resp["ImportJobsResponse"]["NextToken"] == "t1"


def test_rest_json_unsupported_operation(pinpoint: Any) -> None:
    with pytest.raises(ClientError) as exc:
        pinpoint.get_apps()
    assert _code(exc) == "UnknownOperationException"


def test_error_status_comes_from_the_model() -> None:
    """A backend raises ``ServiceError(code, message)``; the HTTP status is the model's for that code."""
    pinpoint = AwsService("pinpoint")
    assert pinpoint.error_status("NotFoundException") == 404
    assert pinpoint.error_status("ConflictException") == 409
    assert pinpoint.error_status("NoSuchCode") == 400
    assert AwsService("personalize").error_status("ResourceNotFoundException") == 400
