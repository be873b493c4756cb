"""Fixtures: a moto S3 server with the Bingewatch sample, and the Personalize emulator on a free port."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from emulators.http_server import RunningServer, free_port
from emulators.personalize.responses import create_app

BINGEWATCH = Path(__file__).resolve().parents[3] / "include" / "data" / "bingewatch"
BUCKET = "bw-data"
ROLE = "arn:aws:iam::123456789012:role/PersonalizeRole"
MIN_JOB_SECONDS = 0.2
TERMINAL = {"ACTIVE", "CREATE FAILED", "CREATE STOPPED"}


def _client(service: str, url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="session")
def s3_url() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    s3 = _client("s3", url)
    s3.create_bucket(Bucket=BUCKET)
    for name in ("interactions.csv", "items.csv", "users.csv", "job_config.json"):
        s3.upload_file(str(BINGEWATCH / name), BUCKET, f"bingewatch/{name}")
    yield url
    server.stop()


@pytest.fixture(scope="session")
def s3(s3_url: str) -> Any:
    return _client("s3", s3_url)


@dataclass
class Emulator:
    """A running emulator plus a boto3 client; ``restart()`` keeps the state folder."""

    state_dir: Path
    s3_url: str
    min_job_seconds: float = MIN_JOB_SECONDS
    server: RunningServer | None = None
    client: Any = None
    created: list[str] = field(default_factory=list)

    def start(self, min_job_seconds: float | None = None) -> Emulator:
        if min_job_seconds is not None:
            self.min_job_seconds = min_job_seconds
        app = create_app(
            state_dir=self.state_dir, s3_endpoint_url=self.s3_url, min_job_seconds=self.min_job_seconds
        )
        self.server = RunningServer(app, name="personalize-test").start()
        self.client = _client("personalize", self.server.url)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    def restart(self, min_job_seconds: float | None = None) -> Emulator:
        self.stop()
        return self.start(min_job_seconds)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory, s3_url: str) -> Iterator[Emulator]:
    emu = Emulator(tmp_path_factory.mktemp("personalize-state"), s3_url).start()
    yield emu
    emu.stop()


@pytest.fixture
def fresh_emulator(tmp_path: Path, s3_url: str) -> Iterator[Emulator]:
    emu = Emulator(tmp_path / "state", s3_url).start()
    yield emu
    emu.stop()


def wait_status(describe: Callable[[], dict[str, Any]], key: str, timeout: float = 120.0) -> dict[str, Any]:
    """Poll ``describe()[key]`` until its status is terminal; return the resource."""
    deadline = time.time() + timeout
    while True:
        resource = describe()[key]
        if resource["status"] in TERMINAL:
            return resource
        if time.time() > deadline:
            raise AssertionError(f"still {resource['status']} after {timeout}s: {resource}")
        time.sleep(0.05)


BW_CONFIG = json.loads((BINGEWATCH / "bingewatch_config.json").read_text())


def bw_schema(kind: str) -> str:
    return json.dumps(BW_CONFIG["datasets"][kind]["schema"]["serviceConfig"]["schema"])


@dataclass
class Group:
    arn: str
    datasets: dict[str, str]


def make_group(client: Any, name: str, kinds: tuple[str, ...] = ("interactions", "items", "users")) -> Group:
    """Dataset group + schemas + datasets (ACTIVE), no imports."""
    group_arn = client.create_dataset_group(name=name)["datasetGroupArn"]
    wait_status(lambda: client.describe_dataset_group(datasetGroupArn=group_arn), "datasetGroup")
    datasets: dict[str, str] = {}
    for kind in kinds:
        schema_arn = client.create_schema(name=f"{name}-{kind}", schema=bw_schema(kind))["schemaArn"]
        arn = client.create_dataset(
            name=f"{name}-{kind}",
            schemaArn=schema_arn,
            datasetGroupArn=group_arn,
            datasetType=kind.capitalize(),
        )["datasetArn"]
        datasets[kind] = arn
    for arn in datasets.values():
        wait_status(functools.partial(client.describe_dataset, datasetArn=arn), "dataset")
    return Group(group_arn, datasets)


def import_data(
    client: Any, dataset_arn: str, location: str, job_name: str, mode: str = "FULL"
) -> dict[str, Any]:
    arn = client.create_dataset_import_job(
        jobName=job_name,
        datasetArn=dataset_arn,
        dataSource={"dataLocation": location},
        roleArn=ROLE,
        importMode=mode,
    )["datasetImportJobArn"]
    return wait_status(
        lambda: client.describe_dataset_import_job(datasetImportJobArn=arn), "datasetImportJob"
    )


def train(client: Any, group_arn: str, name: str, recipe: str, **kwargs: Any) -> str:
    solution_arn = client.create_solution(
        name=name,
        datasetGroupArn=group_arn,
        recipeArn=f"arn:aws:personalize:::recipe/{recipe}",
        performAutoTraining=False,
        **kwargs,
    )["solutionArn"]
    wait_status(lambda: client.describe_solution(solutionArn=solution_arn), "solution")
    version_arn = client.create_solution_version(solutionArn=solution_arn)["solutionVersionArn"]
    version = wait_status(
        lambda: client.describe_solution_version(solutionVersionArn=version_arn),
        "solutionVersion",
        timeout=300,
    )
    assert version["status"] == "ACTIVE", version
    return version_arn


@pytest.fixture(scope="session")
def bingewatch(emulator: Emulator) -> Group:
    """The Bingewatch dataset group with all three datasets imported (FULL)."""
    client = emulator.client
    group = make_group(client, "bingewatch")
    for kind in ("interactions", "items", "users"):
        job = import_data(
            client, group.datasets[kind], f"s3://{BUCKET}/bingewatch/{kind}.csv", f"bw-{kind}-full"
        )
        assert job["status"] == "ACTIVE", job
    return group


@pytest.fixture(scope="session")
def versions(emulator: Emulator, bingewatch: Group) -> dict[str, str]:
    """One ACTIVE solution version per recipe used by the output-format tests (trained lazily)."""
    return _LazyVersions(emulator, bingewatch)


class _LazyVersions(dict[str, str]):
    def __init__(self, emulator: Emulator, group: Group) -> None:
        super().__init__()
        self.emulator = emulator
        self.group = group

    def __missing__(self, recipe: str) -> str:
        arn = train(self.emulator.client, self.group.arn, f"bw-{recipe}", recipe)
        self[recipe] = arn
        return arn
