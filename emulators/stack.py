"""The embedded stack: S3 on moto's server plus the project's Personalize, Pinpoint and mParticle emulators.

Everything listens on loopback (or on ``host``) and keeps its state under one folder, so the stack can
be stopped and started again without losing anything. The DAGs reach it through the very same boto3
calls they make on AWS; only the endpoints differ, and :meth:`LocalStack.airflow_connections` gives
the Airflow connections that say so.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulators.http_server import RunningServer, free_port

log = logging.getLogger(__name__)

ACCESS_KEY = "testing"
SECRET_KEY = "testing"  # the emulators' fixed credentials, not a secret
REGION = "us-east-1"
MPARTICLE_KEY = "local-key"
MPARTICLE_SECRET = "local-secret"  # the emulator's fixed Custom Feed secret
SERVICES = ("s3", "personalize", "pinpoint", "mparticle", "redshift-data", "athena")
# The AWS services of the stack's own emulators: each gets its endpoint in the connection's service_config.
AWS_EMULATORS = ("personalize", "pinpoint", "redshift-data", "athena")
# The Redshift Data API emulator runs statements on this PostgreSQL server (the statement's Database
# is the database name); the machine's, trust auth, by default.
POSTGRES_DSN = os.environ.get("AP_STACK_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres")


@dataclass
class LocalStack:
    """A running embedded stack. Build it with :func:`start_stack`."""

    state_dir: Path
    endpoints: dict[str, str] = field(default_factory=dict)
    _servers: list[Any] = field(default_factory=list)

    # -- what clients need -----------------------------------------------------------------------
    def aws_conn_extra(self) -> dict[str, Any]:
        """Extras of the Airflow ``aws_default`` connection pointing at this stack."""
        service_config = {
            name: {"endpoint_url": self.endpoints[name]} for name in AWS_EMULATORS if name in self.endpoints
        }
        return {
            "region_name": REGION,
            "endpoint_url": self.endpoints["s3"],
            "service_config": service_config,
        }

    def airflow_connections(self) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` environment variables (JSON form) for this stack."""
        conns = {
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
                {
                    "conn_type": "aws",
                    "login": ACCESS_KEY,
                    "password": SECRET_KEY,
                    "extra": self.aws_conn_extra(),
                }
            )
        }
        if "mparticle" in self.endpoints:
            conns["AIRFLOW_CONN_MPARTICLE_DEFAULT"] = json.dumps(
                {
                    "conn_type": "http",
                    "host": self.endpoints["mparticle"],
                    "login": MPARTICLE_KEY,
                    "password": MPARTICLE_SECRET,
                }
            )
        return conns

    def client(self, service_name: str) -> Any:
        """A boto3 client for ``service_name`` pointed at this stack (S3 for anything it does not emulate)."""
        import boto3

        endpoint = self.endpoints.get(service_name, self.endpoints["s3"])
        return boto3.client(
            service_name,
            region_name=REGION,
            endpoint_url=endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "state_dir": str(self.state_dir),
            "endpoints": self.endpoints,
            "airflow_connections": self.airflow_connections(),
            "pid": os.getpid(),
        }

    def write_description(self) -> Path:
        path = self.state_dir / "stack.json"
        path.write_text(json.dumps(self.describe(), indent=2))
        return path

    def stop(self) -> None:
        for server in reversed(self._servers):
            try:
                server.shutdown() if hasattr(server, "shutdown") else server.stop()
            except Exception:  # pragma: no cover - best effort on teardown
                log.exception("could not stop %r", server)
        self._servers.clear()
        (self.state_dir / "stack.json").unlink(missing_ok=True)


def start_stack(
    state_dir: Path,
    *,
    host: str = "127.0.0.1",
    ports: dict[str, int] | None = None,
    min_job_seconds: float = 2.0,
    mparticle_rate_limit: float = 270.0,
    services: tuple[str, ...] = SERVICES,
) -> LocalStack:
    """
    Start the stack and return it; every service runs in a thread of this process.

    :param state_dir: where every emulator keeps its state (SQLite, models, S3 objects on disk).
    :param host: the address to listen on (loopback by default).
    :param ports: fixed ports per service; missing ones are chosen free by the OS.
    :param min_job_seconds: the shortest time a Personalize or Pinpoint job stays in progress, so
        sensors and triggers really wait.
    """
    # One access-log line per request drowns what matters (moto and the emulators use werkzeug).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    ports = ports or {}
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(state_dir=state_dir)
    public_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:
        if "s3" in services:
            port = _start_s3(stack, host, ports.get("s3") or free_port(host))
            stack.endpoints["s3"] = f"http://{public_host}:{port}"
        for name in ("personalize", "pinpoint", "mparticle", "redshift-data", "athena"):
            if name in services:
                app = _emulator_app(name, stack, min_job_seconds, mparticle_rate_limit)
                server = RunningServer(app, host, ports.get(name, 0), name=name).start()
                stack._servers.append(server)
                stack.endpoints[name] = f"http://{public_host}:{server.port}"
    except BaseException:
        stack.stop()
        raise
    return stack


def _start_s3(stack: LocalStack, host: str, port: int) -> int:
    """Start moto's S3 server on ``host:port`` as part of ``stack``; returns the port."""
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    moto.start()
    stack._servers.append(moto)
    return port


def _emulator_app(name: str, stack: LocalStack, min_job_seconds: float, mparticle_rate_limit: float) -> Any:
    """The WSGI app of one of the project's emulators, its state in ``<state_dir>/<name>``."""
    state_dir = stack.state_dir / name
    if name == "personalize":
        from emulators.personalize.responses import create_app as personalize_app

        return personalize_app(
            state_dir=state_dir, s3_endpoint_url=stack.endpoints["s3"], min_job_seconds=min_job_seconds
        )
    if name == "pinpoint":
        from emulators.pinpoint.responses import create_app as pinpoint_app

        return pinpoint_app(
            state_dir=state_dir,
            s3_endpoint_url=stack.endpoints["s3"],
            min_job_seconds=min(min_job_seconds, 1.0),
        )
    if name == "redshift-data":
        from emulators.redshift_data.responses import create_app as redshift_data_app

        return redshift_data_app(
            state_dir=state_dir,
            postgres_dsn=POSTGRES_DSN,
            s3_endpoint_url=stack.endpoints["s3"],
            min_statement_seconds=min(min_job_seconds, 1.0),
        )
    if name == "athena":
        from emulators.athena.responses import create_app as athena_app

        return athena_app(
            state_dir=state_dir,
            s3_endpoint_url=stack.endpoints["s3"],
            min_query_seconds=min(min_job_seconds, 1.0),
        )
    from emulators.mparticle.responses import create_app as mparticle_app

    return mparticle_app(
        state_dir=state_dir,
        api_key=MPARTICLE_KEY,
        api_secret=MPARTICLE_SECRET,
        rate_limit_per_s=mparticle_rate_limit,
    )
