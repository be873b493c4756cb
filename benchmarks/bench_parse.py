"""
DAG parse time: each file in dags/ vs an empty TaskFlow DAG file, measured in the same run.

Each file is parsed the way the dag-processor does: in a fresh interpreter per repetition, Airflow
imported and the file's own ``airflow.*`` imports pre-imported (``[dag_processor]
parsing_pre_import_modules``, on by default: the processor imports them once in its parent before
it forks the parsing process), then ``DagBag`` on that one file is timed. The number is what every
re-parse of the file costs: the project's own modules, reading the config and building the DAGs.
Bytecode caches are allowed and warmed by one discarded parse, as in a long-running deployment.

The baseline is a DAG file with one empty ``@task``, written the way a user writes it. Baseline and
file are parsed alternately, and the ratio is the median of the per-pair ratios, so a machine that
speeds up or slows down during the run moves both sides. Goal: every file <= 1.5x the baseline.

What the ratio does not show, printed on its own line: most of the baseline's time is Airflow
importing its TaskFlow modules (``from airflow.sdk import task`` resolves them lazily, so the
dag-processor's pre-import does not cover them). The same empty file with those modules pre-imported
as well is printed too, with each file's cost above it: that difference is what the file itself
costs per parse (config, the project's modules, and Airflow building the DAG's tasks).

    python benchmarks/bench_parse.py [--repeat 11]
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

# The same file, its TaskFlow modules imported by name so the dag-processor pre-imports them too.
EMPTY_DAG_PREIMPORTED = EMPTY_DAG.replace(
    "import pendulum\n",
    "import airflow.providers.standard.decorators.python\nimport airflow.sdk.definitions.decorators\nimport pendulum\n",
)

PROBE = textwrap.dedent(
    """
    import importlib, json, sys, time
    import airflow  # noqa: F401  (imported before timing: every DAG file pays it once per process)
    try:  # Airflow >= 3.2
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
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


def measure_pairs(baseline: Path, path: Path, repeat: int) -> tuple[float, float, float, dict]:
    """Parse ``baseline`` and ``path`` alternately; (median ratio, median baseline s, median file s, facts)."""
    parse_once(baseline)  # warm-up: writes the bytecode caches, as the first parse in production does
    parse_once(path)
    ratios, base_s, file_s = [], [], []
    facts: dict = {}
    for _ in range(repeat):
        b = parse_once(baseline)["seconds"]
        facts = parse_once(path)
        ratios.append(facts["seconds"] / b)
        base_s.append(b)
        file_s.append(facts["seconds"])
    return statistics.median(ratios), statistics.median(base_s), statistics.median(file_s), facts


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=11)
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        baseline_file = Path(tmp) / "empty_taskflow_dag.py"
        baseline_file.write_text(EMPTY_DAG)
        preimported_file = Path(tmp) / "empty_taskflow_dag_preimported.py"
        preimported_file.write_text(EMPTY_DAG_PREIMPORTED)
        print(f"goal: every DAG file <= {GOAL}x an empty TaskFlow DAG file (median of {args.repeat} pairs)")
        floors = []
        for dag_file in sorted((REPO / "dags").glob("*.py")):
            ratio, base, seconds, facts = measure_pairs(baseline_file, dag_file, args.repeat)
            _, floor, _, _ = measure_pairs(preimported_file, dag_file, max(3, args.repeat // 3))
            floors.append(floor)
            ok = ratio <= GOAL and facts["errors"] == 0
            failed |= not ok
            print(
                f"{dag_file.name}: {seconds * 1000:.1f} ms for {facts['dags']} DAG(s) vs {base * 1000:.1f} ms, "
                f"ratio {ratio:.2f}x {'OK' if ok else 'MISSED'}; "
                f"{(seconds - floor) * 1000:.1f} ms above an empty file with nothing left to import"
            )
        print(
            f"(the empty TaskFlow file with its TaskFlow modules pre-imported too: "
            f"{statistics.median(floors) * 1000:.1f} ms)"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
