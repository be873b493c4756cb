"""
DAG parse time: each file in dags/ vs an empty TaskFlow DAG file, measured in the same run.

Each file is parsed the way the dag-processor does: in a fresh interpreter per repetition, Airflow
imported and the file's own ``airflow.*`` imports pre-imported (``[dag_processor]
parsing_pre_import_modules``, on by default: the processor imports them once in its parent before
it forks the parsing process), then ``DagBag`` on that one file is timed. The number is what every
re-parse of the file costs: the project's own modules, reading the config and building the DAGs.
Bytecode caches are allowed and warmed by one discarded parse, as in a long-running deployment. The baseline is a DAG
file with one empty ``@task``. Goal: every file <= 1.5x the baseline (median of the repetitions).

    python benchmarks/bench_parse.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL = 1.5

EMPTY_DAG = textwrap.dedent(
    '''
    """An empty TaskFlow DAG: the baseline."""
    import pendulum
    from airflow.sdk import dag, task


    @dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), tags=["baseline"])
    def empty_baseline():
        @task
        def nothing():
            return None

        nothing()


    empty_baseline()
    '''
)

PROBE = textwrap.dedent(
    """
    import importlib, json, sys, time
    import airflow  # noqa: F401  (imported before timing: every DAG file pays it once per process)
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.file import iter_airflow_imports
    # What the dag-processor does before it forks the parsing process of a file
    # ([dag_processor] parsing_pre_import_modules, default True): import the file's airflow.* modules.
    for module in iter_airflow_imports(sys.argv[1]):
        importlib.import_module(module)
    started = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)
    elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": elapsed, "dags": len(bag.dags), "errors": len(bag.import_errors)}))
    """
)


def parse_once(path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'plugins'}:{REPO}", AIRFLOW__CORE__LOAD_EXAMPLES="False")
    # A long-running dag-processor re-parses with bytecode caches in place; let Python write them
    # (this machine sets PYTHONDONTWRITEBYTECODE, which would recompile every module every time).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(path: Path, repeat: int) -> tuple[float, dict]:
    parse_once(path)  # warm-up: writes the bytecode caches, as the first parse in production does
    runs = [parse_once(path) for _ in range(repeat)]
    return statistics.median(r["seconds"] for r in runs), runs[-1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        baseline_file = Path(tmp) / "empty_taskflow_dag.py"
        baseline_file.write_text(EMPTY_DAG)
        baseline, _ = measure(baseline_file, args.repeat)
        print(f"baseline (empty TaskFlow DAG): {baseline * 1000:.0f} ms")
        for dag_file in sorted((REPO / "dags").glob("*.py")):
            seconds, facts = measure(dag_file, args.repeat)
            ratio = seconds / baseline
            per_dag = seconds / max(facts["dags"], 1)
            ok = ratio <= GOAL and facts["errors"] == 0
            failed |= not ok
            print(
                f"{dag_file.name}: {seconds * 1000:.0f} ms for {facts['dags']} DAGs "
                f"({per_dag * 1000:.0f} ms per DAG), ratio {ratio:.2f}x (goal <= {GOAL}x) "
                f"{'OK' if ok else 'MISSED'}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
