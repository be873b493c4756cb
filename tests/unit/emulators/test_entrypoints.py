"""Every way the embedded stack starts has ``plugins/`` on ``sys.path``: the emulators import the data
rules from ``plugins/personalize_logic/facts``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parents[3]


def test_makefile_exports_plugins_on_pythonpath() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^export PYTHONPATH := \$\(CURDIR\)/plugins:", makefile, re.MULTILINE)
    assert "-m emulators start" in makefile


def test_stack_image_copies_plugins_and_puts_them_on_pythonpath() -> None:
    dockerfile = (REPO / "docker" / "stack.Dockerfile").read_text(encoding="utf-8")
    workdir = re.search(r"^WORKDIR (\S+)", dockerfile, re.MULTILINE)
    assert workdir is not None
    assert re.search(r"^COPY .*\bplugins/ \./plugins/", dockerfile, re.MULTILINE)
    pythonpath = re.search(r"PYTHONPATH=(\S+)", dockerfile)
    assert pythonpath is not None
    assert f"{workdir.group(1)}/plugins" in pythonpath.group(1).split(":")
    ignored = (REPO / "docker" / "stack.Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    assert "plugins" not in ignored
    assert "plugins/" not in ignored


def test_python_m_emulators_start_needs_no_pythonpath(tmp_path: Path) -> None:
    """``python -m emulators start`` from the repository root, with no PYTHONPATH, serves Personalize
    requests that go through the data rules (CreateSchema parses the schema with them)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    argv = [sys.executable, "-m", "emulators", "start", "--foreground", "--state-dir", str(tmp_path)]
    proc = subprocess.Popen(
        [*argv, "--min-job-seconds", "0.2"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        described = tmp_path / "stack.json"
        deadline = time.monotonic() + 90
        while not described.exists():
            assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")
            assert time.monotonic() < deadline, "the stack did not come up"
            time.sleep(0.2)
        endpoints = json.loads(described.read_text())["endpoints"]
        assert set(endpoints) == {
            "s3",
            "personalize",
            "pinpoint",
            "customer-profiles",
            "mparticle",
            "redshift-data",
            "athena",
        }
        assert all(url.startswith("http://127.0.0.1:") for url in endpoints.values())
        client = boto3.client(
            "personalize",
            endpoint_url=endpoints["personalize"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        schema = {"type": "record", "name": "Users", "fields": [{"name": "USER_ID", "type": "string"}]}
        arn = client.create_schema(name="entrypoint-users", schema=json.dumps(schema))["schemaArn"]
        assert arn.endswith(":schema/entrypoint-users")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
