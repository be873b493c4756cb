"""
``python -m emulators start|stop|status`` tell the truth (issue 13): a dead or silent stack is not
reported as running, and a restart keeps the S3 objects and the ports (what it does not keep is
written in ``emulators/stack.py`` and ``docs/emulators.md``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'plugins'}:{REPO}")
    argv = [sys.executable, "-m", "emulators", *args, "--state-dir", str(state)]
    if args[0] == "start":
        argv += ["--min-job-seconds", "0.2"]
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=180, check=False)


def described(state: Path) -> dict:
    return json.loads((state / "stack.json").read_text())


def s3(endpoints: dict) -> object:
    return boto3.client(
        "s3",
        endpoint_url=endpoints["s3"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def state(tmp_path: Path):  # type: ignore[no-untyped-def]
    yield tmp_path
    cli("stop", state=tmp_path)


def test_a_clean_restart_keeps_s3_objects_and_ports(state: Path) -> None:
    assert cli("start", state=state).returncode == 0
    first = described(state)["endpoints"]
    client = s3(first)
    client.create_bucket(Bucket="restart-bucket")
    client.create_bucket(Bucket="restart-empty")
    key = "mparticle/dt=2026-01-01/b ü+.json"
    client.put_object(Bucket="restart-bucket", Key=key, Body=b"\x00\xffbody", ContentType="application/json",
                      Metadata={"source": "test"})  # fmt: skip
    assert cli("stop", state=state).returncode == 0
    assert not (state / "stack.json").exists()

    assert cli("start", state=state).returncode == 0
    second = described(state)["endpoints"]
    assert second == first  # the same ports, so the Airflow connections still point at the stack
    client = s3(second)
    assert {b["Name"] for b in client.list_buckets()["Buckets"]} == {"restart-bucket", "restart-empty"}
    obj = client.get_object(Bucket="restart-bucket", Key=key)
    assert obj["Body"].read() == b"\x00\xffbody"
    assert (obj["ContentType"], obj["Metadata"]) == ("application/json", {"source": "test"})


def test_a_killed_stack_is_dead_not_running_and_start_replaces_it(state: Path) -> None:
    assert cli("start", state=state).returncode == 0
    pid = described(state)["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    status = cli("status", state=state)
    assert status.returncode == 3
    assert "dead" in status.stdout
    started = cli("start", state=state)
    assert started.returncode == 0
    assert "is dead: starting a new one" in started.stdout
    assert described(state)["pid"] != pid
    assert cli("status", state=state).returncode == 0


def test_a_pid_reused_by_another_program_is_not_taken_for_the_stack(state: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (state / "stack.json").write_text(
            json.dumps({"pid": other.pid, "endpoints": {"s3": "http://127.0.0.1:9"}, "state_dir": str(state)})
        )
        assert cli("status", state=state).returncode == 3
        started = cli("start", state=state)
        assert started.returncode == 0
        assert "is dead: starting a new one" in started.stdout
        assert other.poll() is None  # not ours: left alone
        assert cli("status", state=state).returncode == 0
    finally:
        other.kill()
        other.wait()


def test_a_stack_process_that_stopped_answering_is_replaced(state: Path) -> None:
    silent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "emulators"])
    try:
        (state / "stack.json").write_text(
            json.dumps(
                {"pid": silent.pid, "endpoints": {"s3": "http://127.0.0.1:9"}, "state_dir": str(state)}
            )
        )
        started = cli("start", state=state)
        assert started.returncode == 0
        assert "is not answering: starting a new one" in started.stdout
        assert silent.wait(timeout=30) is not None  # the silent one was stopped first
    finally:
        if silent.poll() is None:
            silent.kill()
            silent.wait()
