"""``python -m emulators start|stop|status`` — run the embedded stack on this machine.

``start`` starts the stack in the background and returns once every service answers; it prints the
endpoints and the Airflow connections that point at them (also written to ``<state-dir>/stack.json``).
A stack already running for that state dir is reused only when it is alive *and* every endpoint
answers; a dead one (its process gone, or a zombie, or a pid now used by another program) or one
that stopped answering (its process is stopped first) is replaced by a new one.
``start --foreground`` runs it in this process until Ctrl-C (what docker-compose uses).
``stop`` stops the background stack of that state dir; ``status`` exits 0 only for a healthy stack.
Both save the S3 objects on a clean stop and restore them at the next start, on the same ports when
they are free (:mod:`emulators.stack` says exactly what a restart keeps).

The emulators judge import data by the project's pure rules under ``plugins/personalize_logic``:
``main`` puts this checkout's ``plugins/`` on ``sys.path`` when it is not there yet (the Makefile,
``docker/stack.Dockerfile`` and the tests set ``PYTHONPATH`` themselves), so a plain
``python -m emulators start`` from the repository root works too.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_STATE_DIR = Path(os.environ.get("AP_STACK_DIR", ".stack"))
PLUGINS_DIR = Path(__file__).resolve().parents[1] / "plugins"


def ensure_plugins_on_path() -> None:
    """Put the checkout's ``plugins/`` folder on ``sys.path`` (first) unless it is already there."""
    if PLUGINS_DIR.is_dir() and str(PLUGINS_DIR) not in sys.path:
        sys.path.insert(0, str(PLUGINS_DIR))


# --<option>-port → the stack's service name
PORT_OPTIONS = {
    "s3": "s3",
    "personalize": "personalize",
    "pinpoint": "pinpoint",
    "customer-profiles": "customer-profiles",
    "mparticle": "mparticle",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emulators", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start the stack (background unless --foreground)")
    start.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    start.add_argument("--host", default="127.0.0.1")
    for name in PORT_OPTIONS:
        start.add_argument(f"--{name}-port", type=int, default=0)
    start.add_argument("--min-job-seconds", type=float, default=2.0)
    start.add_argument("--foreground", action="store_true")
    for name in ("stop", "status"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    return parser


def _describe(state_dir: Path) -> dict | None:
    path = state_dir / "stack.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a dead child not yet reaped)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): os.kill is all there is
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _is_stack_process(pid: int) -> bool | None:
    """Whether ``pid`` runs ``python -m emulators`` (None when the command line cannot be read)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        try:
            out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        argv = out.stdout.split()
    return b"emulators" in argv


def _answers(url: str, timeout: float = 2.0) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout):
            return True
    except OSError:
        return False


def _health(described: dict | None) -> str:
    """``healthy``, ``missing`` (no stack.json), ``dead`` (its process is gone) or ``not answering``."""
    if not described:
        return "missing"
    pid = described.get("pid")
    if not isinstance(pid, int) or not _alive(pid) or _is_stack_process(pid) is False:
        return "dead"
    endpoints = described.get("endpoints") or {}
    if not endpoints or not all(_answers(url) for url in endpoints.values()):
        return "not answering"
    return "healthy"


def _end_stuck_stack(described: dict, state_dir: Path) -> None:
    """Stop the process of a stack that no longer answers (only if it is this project's stack)."""
    pid = described["pid"]
    if _alive(pid) and _is_stack_process(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    (state_dir / "stack.json").unlink(missing_ok=True)


def _run_foreground(args: argparse.Namespace) -> int:
    from emulators.stack import start_stack

    ports = {
        service: getattr(args, f"{name.replace('-', '_')}_port")
        for name, service in PORT_OPTIONS.items()
        if getattr(args, f"{name.replace('-', '_')}_port")
    }
    stack = start_stack(
        args.state_dir,
        host=args.host,
        ports=ports,
        min_job_seconds=args.min_job_seconds,
        persist_s3=True,
        reuse_ports=True,
    )
    stack.write_description()
    print(json.dumps(stack.describe()["endpoints"], indent=2), flush=True)
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stopping:
            time.sleep(0.2)
    finally:
        stack.stop()
    return 0


def _start_background(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir.resolve()
    current = _describe(state_dir)
    health = _health(current)
    if current and health == "healthy":
        print(f"stack already running (pid {current['pid']}):")
        print(json.dumps(current["endpoints"], indent=2))
        return 0
    if current:
        print(
            f"the stack recorded in {state_dir / 'stack.json'} (pid {current.get('pid')}) is {health}: starting a new one"
        )
        _end_stuck_stack(current, state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "stack.json").unlink(missing_ok=True)
    argv = [sys.executable, "-m", "emulators", "start", "--foreground", "--state-dir", str(state_dir)]
    argv += ["--host", args.host, "--min-job-seconds", str(args.min_job_seconds)]
    for name in PORT_OPTIONS:
        if getattr(args, f"{name.replace('-', '_')}_port"):
            argv += [f"--{name}-port", str(getattr(args, f"{name.replace('-', '_')}_port"))]
    log_path = state_dir / "stack.log"
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen(
            argv, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True, cwd=os.getcwd()
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        described = _describe(state_dir)
        if described:
            print(json.dumps(described, indent=2))
            return 0
        if proc.poll() is not None:
            print(f"the stack exited with {proc.returncode}; see {log_path}", file=sys.stderr)
            return 1
        time.sleep(0.2)
    proc.terminate()
    print(f"the stack did not come up within 60 s; see {log_path}", file=sys.stderr)
    return 1


def _stop(args: argparse.Namespace) -> int:
    described = _describe(args.state_dir)
    if not described or _health(described) == "dead":
        print("no stack running")
        (args.state_dir / "stack.json").unlink(missing_ok=True)
        return 0
    os.kill(described["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 120  # a clean stop saves the S3 objects first
    while _alive(described["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(described["pid"]):
        print(f"stack (pid {described['pid']}) did not stop within 120 s", file=sys.stderr)
        return 1
    print(f"stopped stack (pid {described['pid']})")
    return 0


def main(argv: list[str] | None = None) -> int:
    ensure_plugins_on_path()
    args = _parser().parse_args(argv)
    if args.command == "start":
        return _run_foreground(args) if args.foreground else _start_background(args)
    if args.command == "stop":
        return _stop(args)
    described = _describe(args.state_dir)
    health = _health(described)
    if health == "healthy":
        print(json.dumps(described, indent=2))
        return 0
    print(
        "no stack running" if health == "missing" else f"stack {health} (pid {(described or {}).get('pid')})"
    )
    return 3


if __name__ == "__main__":
    sys.exit(main())
