"""An Amazon Redshift Data API emulator, served from botocore's ``redshift-data`` model.

``create_app(state_dir=..., postgres_dsn=..., s3_endpoint_url=...)`` returns a WSGI app (with
``.close()``) built on :class:`emulators.aws_service.AwsService` (json protocol, target prefix
``RedshiftData``, request and response validation against the model, AWS-shaped errors). Each
handler reads the request's members and calls
:class:`~emulators.redshift_data.models.RedshiftDataBackend`, which runs the statements on the
machine's PostgreSQL (Redshift SQL transpiled by sqlglot) and implements ``UNLOAD`` into the stack's
S3; its docstring has the sources and the assumptions.

Operations: ExecuteStatement, DescribeStatement, GetStatementResult, CancelStatement — what the
provider's ``RedshiftDataHook`` / ``RedshiftDataOperator`` / ``RedshiftDataTrigger`` call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emulators.aws_service import AwsService
from emulators.redshift_data.models import RedshiftDataBackend

Params = dict[str, Any]


class RedshiftDataEmulator(AwsService):
    """The Redshift Data API: one thin handler per supported operation over ``self.backend``."""

    backend: RedshiftDataBackend

    def __init__(self, backend: RedshiftDataBackend) -> None:
        super().__init__("redshift-data", backend=backend)

    def ExecuteStatement(self, params: Params) -> dict[str, Any]:
        return self.backend.execute_statement(params)

    def DescribeStatement(self, params: Params) -> dict[str, Any]:
        return self.backend.describe_statement(params["Id"])

    def GetStatementResult(self, params: Params) -> dict[str, Any]:
        return self.backend.get_statement_result(params["Id"], params.get("NextToken"))

    def CancelStatement(self, params: Params) -> dict[str, Any]:
        return self.backend.cancel_statement(params["Id"])


def create_app(
    *,
    state_dir: Path,
    postgres_dsn: str,
    s3_endpoint_url: str,
    min_statement_seconds: float = 0.5,
    slices: int = 2,
) -> RedshiftDataEmulator:
    """Build the Redshift Data API emulator WSGI app (call ``.close()`` when done; ``RunningServer`` does)."""
    backend = RedshiftDataBackend(
        state_dir=Path(state_dir),
        postgres_dsn=postgres_dsn,
        s3_endpoint_url=s3_endpoint_url,
        slices=slices,
        min_statement_seconds=min_statement_seconds,
    )
    return RedshiftDataEmulator(backend)
