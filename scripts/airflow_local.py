"""
Start a real Airflow 3 on this machine (api-server, scheduler, dag-processor, triggerer) and talk to
it through its REST API. Used by the demo (``make demo``) and by the end-to-end tests.

The four components run as separate processes, as in production and in ``docker-compose.yaml``,
with the LocalExecutor. The metadata database is PostgreSQL when a URL is given (the end-to-end
tests use the machine's PostgreSQL), else SQLite in the Airflow home.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL_RUN_STATES = {"success", "failed"}


class AirflowError(RuntimeError):
    pass


def postgres_url(
    database: str, host: str = "127.0.0.1", port: int = 5432, user: str = "postgres"
) -> str | None:
    """
    The URL of ``database`` on the local PostgreSQL (created if missing), or None when no
    PostgreSQL answers there. SQLite works for one component at a time; four Airflow components
    and their task processes writing at once want a real database.
    """
    try:
        import psycopg2
    except ImportError:  # pragma: no cover
        return None
    try:
        conn = psycopg2.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=3)
    except psycopg2.OperationalError:
        return None
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{database}"')
    conn.close()
    return f"postgresql+psycopg2://{user}@{host}:{port}/{database}"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalAirflow:
    """A real Airflow deployment in ``home``, started by :meth:`start`, stopped by :meth:`stop`."""

    home: Path
    db_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    _token: str | None = None

    # ------------------------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        db_url = self.db_url or f"sqlite:///{self.home / 'airflow.db'}"
        env = dict(os.environ)
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API_AUTH__JWT_SECRET": "airflow-personalize-local-only",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "PYTHONPATH": f"{REPO / 'plugins'}:{REPO}",
                "OPENBLAS_NUM_THREADS": "1",
                "AWS_EC2_METADATA_DISABLED": "true",
                "NO_PROXY": "127.0.0.1,localhost",
            }
        )
        env.update(self.extra_env)
        return env

    def airflow(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run the ``airflow`` CLI of this deployment."""
        airflow_bin = str(Path(sys.executable).with_name("airflow"))
        for attempt in range(3):
            proc = subprocess.run(
                [airflow_bin, *args],
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            # SQLite (no PostgreSQL on the machine) locks under four components: try again.
            if proc.returncode == 0 or "database is locked" not in proc.stderr + proc.stdout:
                break
            time.sleep(2 * (attempt + 1))
        if check and proc.returncode != 0:
            raise AirflowError(
                f"airflow {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        return proc

    def start(self, timeout: float = 240) -> LocalAirflow:
        self.home.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = _free_port()
        self.airflow("db", "reset", "--yes") if self.db_url else self.airflow("db", "migrate")
        logs = self.home / "component-logs"
        logs.mkdir(exist_ok=True)
        airflow_bin = str(Path(sys.executable).with_name("airflow"))
        for component in COMPONENTS:
            args = [airflow_bin, component]
            with (logs / f"{component}.log").open("ab") as out:
                self.processes[component] = subprocess.Popen(
                    args, env=self.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
        self.wait_healthy(timeout)
        return self

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.processes.clear()

    def component_logs(self, tail: int = 60) -> str:
        out = []
        for component in COMPONENTS:
            path = self.home / "component-logs" / f"{component}.log"
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-tail:]
                out.append(f"--- {component} ---\n" + "\n".join(lines))
        return "\n".join(out)

    def _check_alive(self) -> None:
        for component, proc in self.processes.items():
            if proc.poll() is not None:
                raise AirflowError(
                    f"airflow {component} exited with {proc.returncode}\n{self.component_logs()}"
                )

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                health = requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).json()
                if all(
                    health.get(part, {}).get("status") == "healthy"
                    for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
                ):
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(2)
        raise AirflowError(f"Airflow did not become healthy within {timeout} s\n{self.component_logs()}")

    # ----------------------------------------------------------------------------------------- REST
    def _headers(self) -> dict[str, str]:
        if self._token is None:
            response = requests.get(f"{self.base_url}/auth/token", timeout=30)
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(
            method, f"{self.base_url}/api/v2{path}", headers=self._headers(), timeout=60, **kwargs
        )
        if response.status_code >= 400:
            raise AirflowError(f"{method} {path} → {response.status_code}: {response.text[:2000]}")
        return response.json() if response.content else None

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float = 300) -> dict[str, Any]:
        wanted = set(dag_ids)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            dags = {d["dag_id"]: d for d in self.api("GET", "/dags", params={"limit": 100})["dags"]}
            if wanted <= set(dags):
                return dags
            time.sleep(3)
        raise AirflowError(f"DAGs {sorted(wanted)} not parsed within {timeout} s: {self.import_errors()}")

    def import_errors(self) -> list[dict[str, Any]]:
        return self.api("GET", "/importErrors")["import_errors"]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def trigger(
        self, dag_id: str, conf: dict[str, Any] | None = None, logical_date: str | None = None
    ) -> str:
        body = {"conf": conf or {}, "logical_date": logical_date}
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "run_after"})[
            "dag_runs"
        ]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 200})[
            "task_instances"
        ]

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> Any:
        entry = self.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"map_index": map_index, "deserialize": "true"},
        )
        value = entry.get("value")
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def wait_for_runs(
        self, dag_id: str, count: int = 1, timeout: float = 900, poll: float = 3
    ) -> list[dict[str, Any]]:
        """Wait until ``dag_id`` has ``count`` runs and all of them are finished; fail on a failed run."""
        deadline = time.monotonic() + timeout
        runs: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            self._check_alive()
            runs = self.dag_runs(dag_id)
            failed = [r for r in runs if r["state"] == "failed"]
            if failed:
                details = self.failed_tasks(dag_id, failed[0]["dag_run_id"])
                raise AirflowError(f"{dag_id} run {failed[0]['dag_run_id']} failed: {details}")
            if len(runs) >= count and all(r["state"] in TERMINAL_RUN_STATES for r in runs):
                return runs
            time.sleep(poll)
        states = [(r["dag_run_id"], r["state"]) for r in runs]
        raise AirflowError(f"{dag_id}: {count} finished runs not seen within {timeout} s; have {states}")

    def failed_tasks(self, dag_id: str, run_id: str) -> list[str]:
        return [
            f"{t['task_id']}[{t.get('map_index', -1)}]={t['state']}"
            for t in self.task_instances(dag_id, run_id)
            if t["state"] not in ("success", "skipped")
        ]

    def wipe(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)

    def backfill(self, dag_id: str, from_date: str, to_date: str, max_active_runs: int = 4) -> str:
        """``airflow backfill create`` — the command a user runs to backfill past intervals."""
        proc = self.airflow(
            "backfill",
            "create",
            "--dag-id",
            dag_id,
            "--from-date",
            from_date,
            "--to-date",
            to_date,
            "--max-active-runs",
            str(max_active_runs),
        )
        return proc.stdout
