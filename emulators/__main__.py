"""``python -m emulators start|stop|status`` — run the embedded stack on this machine.

``start`` starts the stack in the background and returns once every service answers; it prints the
endpoints and the Airflow connections that point at them (also written to ``<state-dir>/stack.json``).
``start --foreground`` runs it in this process until Ctrl-C (what docker-compose uses).
``stop`` stops the background stack of that state dir.

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
import subprocess
import sys
import time
from pathlib import Path

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
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _run_foreground(args: argparse.Namespace) -> int:
    from emulators.stack import start_stack

    ports = {
        service: getattr(args, f"{name.replace('-', '_')}_port")
        for name, service in PORT_OPTIONS.items()
        if getattr(args, f"{name.replace('-', '_')}_port")
    }
    stack = start_stack(args.state_dir, host=args.host, ports=ports, min_job_seconds=args.min_job_seconds)
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
    if current and _alive(current["pid"]):
        print(f"stack already running (pid {current['pid']}):")
        print(json.dumps(current["endpoints"], indent=2))
        return 0
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
    if not described or not _alive(described["pid"]):
        print("no stack running")
        (args.state_dir / "stack.json").unlink(missing_ok=True)
        return 0
    os.kill(described["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 20
    while _alive(described["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
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
    if described and _alive(described["pid"]):
        print(json.dumps(described, indent=2))
        return 0
    print("no stack running")
    return 3


if __name__ == "__main__":
    sys.exit(main())
