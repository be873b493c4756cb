"""
docker-compose.yaml is consistent with the repository (no Docker engine needed: the file is parsed).

Checks the official Airflow 3 shape (services, health checks), that every bind mount exists, that
the services running project code (the triggerer above all: deferrable triggers live in plugins/)
mount plugins/ and include/, that the images are built from Dockerfiles installing the pinned
requirements.txt with the same Airflow version, and that the local-stack command, its ports and the
Airflow connections pointing at it agree.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yaml"

EXPECTED_SERVICES = {
    "postgres",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-init",
    "airflow-cli",
    "local-stack",
}
CODE_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
STACK_PORT_ARGS = {
    "s3": "--s3-port",
    "personalize": "--personalize-port",
    "pinpoint": "--pinpoint-port",
    "mparticle": "--mparticle-port",
    "customer-profiles": "--customer-profiles-port",
}
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def _interpolate(value: str) -> str:
    """Resolve ``${VAR:-default}`` with its default (what Compose does when VAR is unset)."""
    return INTERPOLATION.sub(lambda match: match.group(2) or "", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def _env_files(service: dict[str, Any]) -> list[Path]:
    entries = service.get("env_file", [])
    entries = [entries] if isinstance(entries, str | dict) else entries
    paths = []
    for entry in entries:
        path = entry if isinstance(entry, str) else entry["path"]
        paths.append(REPO / _interpolate(path))
    return paths


def _read_env_file(path: Path) -> dict[str, str]:
    """Minimal dotenv reader: KEY=VALUE, comments, single or double quotes around the value."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _service_env(service: dict[str, Any]) -> dict[str, str]:
    """The environment a service gets: env files in order (existing ones), then ``environment``."""
    env: dict[str, str] = {}
    for path in _env_files(service):
        if path.exists():
            env.update(_read_env_file(path))
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    env.update({key: str(value) for key, value in environment.items()})
    return env


def _bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, target = _interpolate(volume).split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def _requirements_pin(package: str) -> str:
    text = (REPO / "requirements.txt").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(package)}==(\S+)", text, flags=re.MULTILINE)
    assert match, f"{package} is not pinned in requirements.txt"
    return match.group(1)


def test_services(services: dict[str, Any]) -> None:
    assert set(services) == EXPECTED_SERVICES
    assert services["postgres"]["image"] == "postgres:16"
    assert services["airflow-apiserver"]["command"] == "api-server"
    assert services["airflow-scheduler"]["command"] == "scheduler"
    assert services["airflow-dag-processor"]["command"] == "dag-processor"
    assert services["airflow-triggerer"]["command"] == "triggerer"
    assert services["airflow-cli"]["profiles"] == ["debug"]
    assert services["local-stack"]["profiles"] == ["local"]
    for name in EXPECTED_SERVICES - {"airflow-cli", "local-stack"}:
        assert "profiles" not in services[name], f"{name} must start without a profile"


def test_health_checks(services: dict[str, Any]) -> None:
    assert (
        "http://localhost:8080/api/v2/monitor/health" in services["airflow-apiserver"]["healthcheck"]["test"]
    )
    assert "http://localhost:8974/health" in services["airflow-scheduler"]["healthcheck"]["test"]
    assert services["airflow-apiserver"]["ports"] == ["8080:8080"]
    for name in ("postgres", "airflow-dag-processor", "airflow-triggerer", "local-stack"):
        assert services[name]["healthcheck"]["test"], name


def test_local_executor_without_celery(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name.startswith("airflow-"):
            env = _service_env(service)
            assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
    assert not {"redis", "airflow-worker", "flower"} & set(services)


def test_airflow_settings(services: dict[str, Any]) -> None:
    env = _service_env(services["airflow-scheduler"])
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("simple_auth_manager.SimpleAuthManager")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "true"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert "${FERNET_KEY" in env["AIRFLOW__CORE__FERNET_KEY"]
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"].startswith("${AIRFLOW__API_AUTH__JWT_SECRET")
    assert env.get("_PIP_ADDITIONAL_REQUIREMENTS", "") == ""
    init_env = _service_env(services["airflow-init"])
    assert init_env["_AIRFLOW_DB_MIGRATE"] == "true"


@pytest.mark.parametrize("name", sorted(EXPECTED_SERVICES))
def test_bind_mounts_exist(services: dict[str, Any], name: str) -> None:
    for source, _ in _bind_mounts(services[name]):
        if source == "./logs":  # created by Docker / airflow-init on first start
            continue
        assert (REPO / source).is_dir(), f"{name} mounts {source}, which is not in the repository"


@pytest.mark.parametrize("name", CODE_SERVICES)
def test_code_services_mount_plugins_and_include(services: dict[str, Any], name: str) -> None:
    mounts = dict(_bind_mounts(services[name]))
    assert mounts.get("./dags") == "/opt/airflow/dags", name
    assert mounts.get("./plugins") == "/opt/airflow/plugins", f"{name} must mount plugins/"
    assert mounts.get("./include") == "/opt/airflow/include", f"{name} must mount include/"
    assert mounts.get("./logs") == "/opt/airflow/logs", name


def _dockerfiles(services: dict[str, Any]) -> dict[str, Path]:
    found = {}
    for name, service in services.items():
        build = service.get("build")
        if build is None:
            continue
        if isinstance(build, str):
            build = {"context": build}
        context = REPO / build.get("context", ".")
        found[name] = context / build.get("dockerfile", "Dockerfile")
    return found


def test_dockerfiles_exist_and_install_requirements(services: dict[str, Any]) -> None:
    dockerfiles = _dockerfiles(services)
    assert set(CODE_SERVICES) | {"local-stack"} <= set(dockerfiles)
    airflow_version = _requirements_pin("apache-airflow")
    for name, path in dockerfiles.items():
        assert path.is_file(), f"{name}: {path} does not exist"
        text = path.read_text(encoding="utf-8")
        assert "requirements.txt" in text, f"{path.name} must install the pinned requirements.txt"
        assert re.search(r"pip install[^\n]*-r /requirements\.txt", text), path.name
        base = re.search(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
        assert base, path.name
        image, _, tag = base.group(1).partition(":")
        if image == "apache/airflow":
            assert tag.split("-")[0] == airflow_version, (
                f"{path.name} uses Airflow {tag} but requirements.txt pins apache-airflow=={airflow_version}"
            )
    assert dockerfiles["airflow-triggerer"] == REPO / "docker" / "Dockerfile"
    assert dockerfiles["local-stack"] == REPO / "docker" / "stack.Dockerfile"


def test_airflow_image_is_the_official_one(services: dict[str, Any]) -> None:
    text = (REPO / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM apache/airflow:\d+\.\d+\.\d+-python3\.11$", text, flags=re.MULTILINE)


def _stack_ports(services: dict[str, Any]) -> dict[str, int]:
    command = _command(services["local-stack"])
    assert command[:4] == ["python", "-m", "emulators", "start"]
    assert "--foreground" in command
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--state-dir") + 1] == "/state"
    return {name: int(command[command.index(flag) + 1]) for name, flag in STACK_PORT_ARGS.items()}


def test_local_stack_ports_are_published(services: dict[str, Any]) -> None:
    ports = _stack_ports(services)
    assert ports == {
        "s3": 5000,
        "personalize": 5001,
        "pinpoint": 5002,
        "mparticle": 5003,
        "customer-profiles": 5004,
    }
    published = {int(_interpolate(mapping).rsplit(":", 1)[1]) for mapping in services["local-stack"]["ports"]}
    assert published == set(ports.values())
    state = [volume for volume in services["local-stack"]["volumes"] if volume.endswith(":/state")]
    assert state, "the emulator state must live on a volume"


@pytest.mark.parametrize("name", [*CODE_SERVICES, "airflow-cli"])
def test_connections_point_at_the_local_stack(services: dict[str, Any], name: str) -> None:
    ports = _stack_ports(services)
    env = _service_env(services[name])
    aws = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    assert aws["conn_type"] == "aws"
    assert (aws["login"], aws["password"]) == ("testing", "testing")
    extra = aws["extra"]
    assert extra["region_name"] == "us-east-1"
    urls = {
        "s3": extra["endpoint_url"],
        "personalize": extra["service_config"]["personalize"]["endpoint_url"],
        "pinpoint": extra["service_config"]["pinpoint"]["endpoint_url"],
        "customer-profiles": extra["service_config"]["customer-profiles"]["endpoint_url"],
    }
    mparticle = json.loads(env["AIRFLOW_CONN_MPARTICLE_DEFAULT"])
    assert mparticle["conn_type"] == "http"
    assert mparticle["login"]
    assert mparticle["password"]
    urls["mparticle"] = mparticle["host"]
    for service_name, url in urls.items():
        parts = urlsplit(url)
        assert parts.hostname == "local-stack", f"{service_name}: {url}"
        assert parts.port == ports[service_name], f"{service_name}: {url} vs --{service_name}-port"


def test_env_file_overrides_come_last(services: dict[str, Any]) -> None:
    """``.env`` is read after the local-stack connections, so it can replace them."""
    entries = services["airflow-scheduler"]["env_file"]
    assert [entry["path"] for entry in entries][-1] == ".env"
    assert entries[-1]["required"] is False
    assert "AIRFLOW_CONN_AWS_DEFAULT" not in services["airflow-scheduler"]["environment"]
