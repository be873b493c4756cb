"""The embedded stack: S3 on moto's server plus the project's Personalize, Pinpoint, Customer Profiles
and mParticle emulators.

Everything listens on loopback (or on ``host``) and keeps its state under one folder. The DAGs reach it
through the very same boto3 calls they make on AWS; only the endpoints differ, and
:meth:`LocalStack.airflow_connections` gives the Airflow connections that say so.

What a restart keeps (``docs/emulators.md`` says the same):

* Personalize, Pinpoint and mParticle state: SQLite (and model files) under ``<state_dir>/<service>``,
  written as it changes, so nothing is lost, even when the process is killed.
* S3 objects live in moto's memory. With ``persist_s3`` (``python -m emulators start`` sets it) a
  stop saves every bucket and the latest version of every object, with its content type and user
  metadata, under ``<state_dir>/s3/``, and the next start puts them back. A stack that is killed
  (SIGKILL, a crash, a reboot) cannot save: its next start restores the snapshot of the last clean
  stop, so the S3 changes since then are lost. Never kept: object versions, ACLs and bucket
  settings (policies, lifecycle, notifications, versioning), multipart uploads in progress.
* Ports: each start records them in ``<state_dir>/ports.json`` and the next start reuses each one
  that is still free, so the endpoints (and the Airflow connections built from them) stay the same.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
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
SERVICES = ("s3", "personalize", "pinpoint", "customer-profiles", "mparticle", "redshift-data", "athena")
# The AWS services of the stack's own emulators: each gets its endpoint in the connection's service_config.
AWS_EMULATORS = ("personalize", "pinpoint", "customer-profiles", "redshift-data", "athena")
# The Redshift Data API emulator runs statements on this PostgreSQL server (the statement's Database
# is the database name); the machine's, trust auth, by default.
POSTGRES_DSN = os.environ.get("AP_STACK_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres")


@dataclass
class LocalStack:
    """A running embedded stack. Build it with :func:`start_stack`."""

    state_dir: Path
    endpoints: dict[str, str] = field(default_factory=dict)
    persist_s3: bool = False
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
        if self.persist_s3 and "s3" in self.endpoints and self._servers:
            try:
                saved = save_s3(self.client("s3"), self.state_dir / S3_SNAPSHOT_DIR)
                log.info("saved %d S3 objects to %s", saved, self.state_dir / S3_SNAPSHOT_DIR)
            except Exception:  # pragma: no cover - the servers must still stop
                log.exception("could not save the S3 objects; the previous snapshot is kept")
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
    persist_s3: bool = False,
    reuse_ports: bool = False,
) -> LocalStack:
    """
    Start the stack and return it; every service runs in a thread of this process.

    :param state_dir: where every emulator keeps its state (SQLite, models, the S3 snapshot).
    :param host: the address to listen on (loopback by default).
    :param ports: fixed ports per service; missing ones are chosen free by the OS.
    :param min_job_seconds: the shortest time a Personalize, Pinpoint or Customer Profiles job stays in progress, so
        sensors and triggers really wait.
    :param persist_s3: restore the S3 snapshot of ``state_dir`` now and save one at :meth:`LocalStack.stop`.
    :param reuse_ports: use the ports of the previous start of ``state_dir`` where they are free.
    """
    # One access-log line per request drowns what matters (moto and the emulators use werkzeug).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    ports = {**(_previous_ports(state_dir, host) if reuse_ports else {}), **(ports or {})}
    stack = LocalStack(state_dir=state_dir, persist_s3=persist_s3)
    public_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:
        if "s3" in services:
            port = _start_s3(stack, host, ports.get("s3") or free_port(host))
            stack.endpoints["s3"] = f"http://{public_host}:{port}"
            if persist_s3:
                restored = restore_s3(stack.client("s3"), state_dir / S3_SNAPSHOT_DIR)
                log.info("restored %d S3 objects from %s", restored, state_dir / S3_SNAPSHOT_DIR)
        for name in ("personalize", "pinpoint", "customer-profiles", "mparticle", "redshift-data", "athena"):
            if name in services:
                app = _emulator_app(name, stack, min_job_seconds, mparticle_rate_limit)
                server = RunningServer(app, host, ports.get(name, 0), name=name).start()
                stack._servers.append(server)
                stack.endpoints[name] = f"http://{public_host}:{server.port}"
    except BaseException:
        stack.persist_s3 = False  # a half-started stack must not overwrite the snapshot
        stack.stop()
        raise
    (state_dir / PORTS_FILE).write_text(
        json.dumps({name: int(url.rsplit(":", 1)[1]) for name, url in stack.endpoints.items()})
    )
    return stack


PORTS_FILE = "ports.json"
S3_SNAPSHOT_DIR = "s3"


def _previous_ports(state_dir: Path, host: str) -> dict[str, int]:
    """The ports the last start of ``state_dir`` used, each only if it is free now."""
    try:
        previous = json.loads((state_dir / PORTS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(previous, dict):
        return {}
    return {
        name: port
        for name, port in previous.items()
        if name in SERVICES and isinstance(port, int) and 0 < port < 65536 and _port_free(host, port)
    }


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# -- the S3 snapshot ------------------------------------------------------------------------------
SNAPSHOT_INDEX = "index.json"


def save_s3(s3: Any, folder: Path) -> int:
    """
    Save every bucket and the latest version of every object (body, content type, user metadata)
    to ``folder``; returns the number of objects. Written beside the previous snapshot and swapped
    in at the end, so a failure leaves the previous snapshot whole.
    """
    folder = Path(folder)
    staging = folder.with_name(folder.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "objects").mkdir(parents=True)
    buckets: list[dict[str, Any]] = []
    count = 0
    for bucket in s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        region = s3.get_bucket_location(Bucket=name).get("LocationConstraint")
        objects = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                obj = s3.get_object(Bucket=name, Key=item["Key"])
                blob = hashlib.sha256(f"{name}/{item['Key']}".encode()).hexdigest()
                with (staging / "objects" / blob).open("wb") as out:
                    shutil.copyfileobj(obj["Body"], out)
                objects.append(
                    {
                        "key": item["Key"],
                        "blob": blob,
                        "content_type": obj.get("ContentType"),
                        "metadata": obj.get("Metadata") or {},
                    }
                )
                count += 1
        buckets.append({"name": name, "region": region, "objects": objects})
    (staging / SNAPSHOT_INDEX).write_text(json.dumps({"version": 1, "buckets": buckets}))
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return count


def restore_s3(s3: Any, folder: Path) -> int:
    """Put the snapshot saved by :func:`save_s3` back (nothing when there is none); returns the objects."""
    index = Path(folder) / SNAPSHOT_INDEX
    if not index.exists():
        return 0
    count = 0
    for bucket in json.loads(index.read_text())["buckets"]:
        kwargs: dict[str, Any] = {"Bucket": bucket["name"]}
        if bucket.get("region") and bucket["region"] != REGION:
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": bucket["region"]}
        try:
            s3.create_bucket(**kwargs)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        for obj in bucket["objects"]:
            extra: dict[str, Any] = {"Metadata": obj["metadata"]}
            if obj.get("content_type"):
                extra["ContentType"] = obj["content_type"]
            with (Path(folder) / "objects" / obj["blob"]).open("rb") as body:
                s3.put_object(Bucket=bucket["name"], Key=obj["key"], Body=body, **extra)
            count += 1
    return count


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
    if name == "customer-profiles":
        from emulators.customer_profiles.responses import create_app as customer_profiles_app

        return customer_profiles_app(
            state_dir=stack.state_dir / "customer_profiles",
            s3_endpoint_url=stack.endpoints["s3"],
            min_job_seconds=min(min_job_seconds, 1.0),
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
