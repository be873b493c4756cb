"""An Amazon Athena emulator, served from botocore's ``athena`` model.

``create_app(state_dir=..., s3_endpoint_url=...)`` returns a WSGI app (with ``.close()``) built on
:class:`emulators.aws_service.AwsService` (json protocol, target prefix ``AmazonAthena``, request and
response validation against the model, AWS-shaped errors: ``InvalidRequestException``). Each handler
reads the request's members and calls :class:`~emulators.athena.models.AthenaBackend`, which runs the
queries with DuckDB over the stack's S3 (Trino SQL translated by sqlglot) and keeps tables in the Glue
catalog of the stack's moto server; its docstring has the sources and the assumptions.

Operations: StartQueryExecution, GetQueryExecution, StopQueryExecution, GetQueryResults,
GetQueryRuntimeStatistics — what the provider's ``AthenaHook`` / ``AthenaOperator`` /
``AthenaTrigger`` (the ``query_complete`` waiter) and the export's publish step call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emulators.athena.models import AthenaBackend
from emulators.aws_service import AwsService

Params = dict[str, Any]


class AthenaEmulator(AwsService):
    """Athena: one thin handler per supported operation over ``self.backend``."""

    backend: AthenaBackend

    def __init__(self, backend: AthenaBackend) -> None:
        super().__init__("athena", validation_error_code="InvalidRequestException", backend=backend)

    def StartQueryExecution(self, params: Params) -> dict[str, Any]:
        return {"QueryExecutionId": self.backend.start_query_execution(params)}

    def GetQueryExecution(self, params: Params) -> dict[str, Any]:
        return {"QueryExecution": self.backend.get_query_execution(params["QueryExecutionId"])}

    def StopQueryExecution(self, params: Params) -> dict[str, Any]:
        self.backend.stop_query_execution(params["QueryExecutionId"])
        return {}

    def GetQueryResults(self, params: Params) -> dict[str, Any]:
        return self.backend.get_query_results(
            params["QueryExecutionId"], params.get("NextToken"), params.get("MaxResults")
        )

    def GetQueryRuntimeStatistics(self, params: Params) -> dict[str, Any]:
        return {
            "QueryRuntimeStatistics": self.backend.get_query_runtime_statistics(params["QueryExecutionId"])
        }


def create_app(*, state_dir: Path, s3_endpoint_url: str, min_query_seconds: float = 0.5) -> AthenaEmulator:
    """Build the Athena emulator WSGI app (call ``.close()`` when done; ``RunningServer`` does)."""
    return AthenaEmulator(
        AthenaBackend(
            state_dir=Path(state_dir), s3_endpoint_url=s3_endpoint_url, min_query_seconds=min_query_seconds
        )
    )
