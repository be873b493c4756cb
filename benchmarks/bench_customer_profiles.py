"""Benchmark: a batch segment of N users → the Customer Profiles upload CSV, at 1 M and 5 M users.

Inputs (generated once per size, in a temp dir): a batch segment ``.out`` file with one query line
holding ``N`` user ids (a 5 M-user line is ~60 MB of JSON), and a snapshot of the domain's profiles
(gzipped JSON lines, one ``Profile`` a line, the user id in ``Attributes.personalize_user_id``)
holding 90% of the users.

* **project path**: what ``CustomerProfilesPrepareUploadsOperator`` runs (minus S3 transfers):
  ``segments.stage_segment_users`` streams the users out of the line, ``segments.ProfileKeyIndex``
  loads the profile keys and writes the upload CSV (``user_id,segment``) of the users with a
  profile, counting the others — DuckDB under its ``memory_limit``, spilling beyond it.
* **baseline**: one plain DuckDB statement over the same files, default settings: unnest the users
  of the line, semi-join with the snapshot's keys, ``COPY`` the CSV (no counting, no validation).

Each path runs in a process of its own, which reports its wall time and peak RSS (``VmHWM``). The goals (issue 11): the project path's peak RSS at 5 M users within 1.2x of its
peak at 1 M, and its time at 5 M at most 2x the baseline's time at 5 M, measured in the same run.
Exits 1 when a goal is missed, 2 when the outputs differ.

Usage: ``PYTHONPATH=plugins:. python benchmarks/bench_customer_profiles.py [--sizes 1000000 5000000]``
(``--quick``: 100 k and 500 k users).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEMORY_LIMIT = "64MB"
KEY = "Attributes.personalize_user_id"


def generate(work: Path, users: int) -> tuple[Path, Path]:
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    out = work / "job_config.json.out"
    snapshot = work / "snapshot" / "part-00000.jsonl.gz"
    snapshot.parent.mkdir()
    con.execute(
        f"""COPY (SELECT {{'itemAttributes': 'ITEMS.genres = "Action"'}} AS input,
                         {{'usersList': list('u' || i::VARCHAR ORDER BY i)}} AS output, NULL AS error
                  FROM range({users}) t(i))
            TO '{out}' (FORMAT json)"""
    )
    con.execute(
        f"""COPY (
              SELECT md5(i::VARCHAR) AS ProfileId, 'u' || i::VARCHAR || '@example.com' AS EmailAddress,
                     {{'personalize_user_id': 'u' || i::VARCHAR, 'tier': 'gold'}} AS Attributes
              FROM range({users}) t(i) WHERE i % 10 <> 0
            ) TO '{snapshot}' (FORMAT json, COMPRESSION gzip)"""
    )
    con.close()
    return out, snapshot


def project_path(out: Path, snapshot: Path, work: Path, memory_limit: str = MEMORY_LIMIT) -> dict:
    from personalize_logic.segments import ProfileKeyIndex, stage_segment_users

    started = time.perf_counter()
    with out.open("rb") as handle:
        staged = [s for s in stage_segment_users(handle, str(out), work / "users") if s.line.ok]
    with ProfileKeyIndex([snapshot], work / "duckdb", profile_key=KEY, memory_limit=memory_limit) as index:
        uploads = [
            index.write_upload(s.users_file, "SEGMENT", work / f"upload-{n}.csv")
            for n, s in enumerate(staged)
        ]
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": sum(u.rows for u in uploads),
        "users_without_profile": sum(u.users_without_profile or 0 for u in uploads),
    }


def baseline(out: Path, snapshot: Path, work: Path) -> dict:
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    target = work / "baseline.csv"
    con.execute(
        f"""COPY (
              WITH u AS (SELECT DISTINCT unnest(output.usersList) AS user_id
                         FROM read_json('{out}', format='newline_delimited', maximum_object_size=2000000000)),
                   p AS (SELECT json_extract_string(Attributes, '$.personalize_user_id') AS user_id
                         FROM read_json('{snapshot}', format='newline_delimited', columns={{'Attributes': 'JSON'}}))
              SELECT u.user_id, 'SEGMENT' AS segment FROM u SEMI JOIN p ON u.user_id = p.user_id
            ) TO '{target}' (HEADER, FORMAT csv)"""
    ).fetchall()
    con.close()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": sum(1 for _ in target.open()) - 1}


def _peak_rss_mb() -> float:
    """This process's peak RSS: ``VmHWM`` (per address space, so fresh after ``exec``; ``ru_maxrss``
    keeps the high-water mark of the forking parent on Linux), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(args: argparse.Namespace) -> int:
    """Run one path in this process; print its result and peak RSS as JSON."""
    import duckdb  # noqa: F401 - imported before timing in both paths (same one-off cost)

    work = Path(args.work)
    if args.child == "project":
        result = project_path(Path(args.out), Path(args.snapshot), work, args.memory_limit)
    else:
        result = baseline(Path(args.out), Path(args.snapshot), work)
    result["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result))
    return 0


def _measure(path: str, out: Path, snapshot: Path, work: Path, memory_limit: str = MEMORY_LIMIT) -> dict:
    run_dir = work / f"{path}-{time.monotonic_ns()}"
    run_dir.mkdir()
    command = [sys.executable, __file__, "--child", path, "--work", str(run_dir), "--out", str(out), "--snapshot", str(snapshot),
               "--memory-limit", memory_limit]  # fmt: skip
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{path} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--sizes", type=int, nargs=2, default=[1_000_000, 5_000_000])
    parser.add_argument("--quick", action="store_true", help="100k and 500k users")
    parser.add_argument("--max-rss-ratio", type=float, default=1.2)
    parser.add_argument("--max-time-ratio", type=float, default=2.0)
    parser.add_argument(
        "--memory-limit", default=MEMORY_LIMIT, help="DuckDB memory_limit of the project path"
    )
    parser.add_argument("--child", choices=["project", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args)
    small, large = (100_000, 500_000) if args.quick else args.sizes
    results: dict[int, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-customer-profiles-") as tmp:
        for users in (small, large):
            work = Path(tmp) / str(users)
            work.mkdir()
            started = time.perf_counter()
            out, snapshot = generate(work, users)
            print(f"{users:,} users: generated in {time.perf_counter() - started:.1f}s "
                  f"(.out {out.stat().st_size / 1e6:.0f} MB, snapshot {snapshot.stat().st_size / 1e6:.0f} MB gz)")  # fmt: skip
            results[users] = {"project": _measure("project", out, snapshot, work, args.memory_limit)}
            if users == large:
                results[users]["baseline"] = _measure("baseline", out, snapshot, work)
            for name, found in results[users].items():
                print(
                    f"  {name:9s} {found['seconds']:6.2f}s  peak RSS {found['peak_rss_mb']:7.1f} MB  rows {found['rows']:,}"
                )
    big = results[large]
    if big["project"]["rows"] != big["baseline"]["rows"]:
        print(f"MISMATCH: project wrote {big['project']['rows']} rows, baseline {big['baseline']['rows']}")
        return 2
    rss_ratio = big["project"]["peak_rss_mb"] / results[small]["project"]["peak_rss_mb"]
    time_ratio = big["project"]["seconds"] / big["baseline"]["seconds"]
    print(f"peak RSS {large:,} / {small:,} users: {rss_ratio:.2f} (goal <= {args.max_rss_ratio})")
    print(
        f"time at {large:,} users, project / plain DuckDB join: {time_ratio:.2f} (goal <= {args.max_time_ratio})"
    )
    print(f"users without a profile at {large:,}: {big['project']['users_without_profile']:,}")
    return 0 if rss_ratio <= args.max_rss_ratio and time_ratio <= args.max_time_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
