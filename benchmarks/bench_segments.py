"""Benchmark: batch segment output → endpoint CSV via the project's resolution path vs a plain join.

Inputs (generated once, in a temp dir): a batch segment ``.out`` file with one query line holding
``--users`` user ids, and a Pinpoint endpoint export (gzipped JSON lines) where 45% of the users
have one endpoint, 45% have two (EMAIL + SMS) and 10% none.

* **project path**: ``personalize_logic.segments``: stage every ``.out`` line's users to a file
  (streamed), build the DuckDB endpoint index from the export, semi-join, count users without
  endpoint, write ``Id`` CSV parts ≤ 1 GB — what ``ResolveSegmentEndpointsOperator`` runs (minus S3
  transfers).
* **baseline**: one DuckDB statement over the same files: unnest the users, hash-join with the
  export, ``COPY`` the endpoint ids to one CSV (no splitting, no counting, no validation).

Prints both times and the ratio; exits 1 when the ratio exceeds ``--max-ratio`` (default 2.0).
Usage: ``PYTHONPATH=plugins:. python benchmarks/bench_segments.py [--users N] [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def generate(work: Path, users: int) -> tuple[Path, Path]:
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    out = work / "job_config.json.out"
    export = work / "export" / "part-00000.gz"
    export.parent.mkdir()
    con.execute(
        f"""COPY (SELECT {{'itemAttributes': 'ITEMS.genres = "Action"'}} AS input,
                         {{'usersList': list('u' || i::VARCHAR ORDER BY i)}} AS output, NULL AS error
                  FROM range({users}) t(i))
            TO '{out}' (FORMAT json)"""
    )
    con.execute(
        f"""COPY (
              SELECT md5(i::VARCHAR || c)[:27] AS Id, c AS ChannelType, 'u' || i::VARCHAR || '@example.com' AS Address,
                     {{'UserId': 'u' || i::VARCHAR}} AS "User"
              FROM range({users}) t(i), (VALUES ('EMAIL'), ('SMS')) ch(c)
              WHERE i % 10 <> 0 AND (c = 'EMAIL' OR i % 2 = 0)
            ) TO '{export}' (FORMAT json, COMPRESSION gzip)"""
    )
    con.close()
    return out, export


def project_path(out: Path, export: Path, work: Path) -> tuple[int, int]:
    from personalize_logic.segments import EndpointCsvWriter, EndpointIndex, stage_segment_users

    endpoints = missing = 0
    with EndpointIndex([export], work / "idx") as index, out.open("rb") as handle:
        for staged in stage_segment_users(handle, str(out), work / "users"):
            writer = EndpointCsvWriter(work / "csv", "segment")
            result = index.resolve(staged.users_file, writer)
            endpoints += result.endpoints
            missing += result.users_without_endpoint
    return endpoints, missing


def baseline(out: Path, export: Path, work: Path) -> int:
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    target = work / "baseline.csv"
    con.execute(
        f"""COPY (
              WITH u AS (SELECT unnest(output.usersList) AS user_id
                         FROM read_json('{out}', format='newline_delimited', maximum_object_size=2000000000)),
                   e AS (SELECT Id, "User".UserId AS user_id
                         FROM read_json('{export}', format='newline_delimited',
                                        columns={{'Id': 'VARCHAR', 'ChannelType': 'VARCHAR', 'User': 'STRUCT(UserId VARCHAR)'}}))
              SELECT e.Id FROM e JOIN u USING (user_id)
            ) TO '{target}' (HEADER, FORMAT csv)"""
    ).fetchall()
    con.close()
    return sum(1 for _ in target.open()) - 1


def warm_up() -> float:
    """Import what both paths import (one-off per process; large here because this machine runs with
    PYTHONDONTWRITEBYTECODE=1, so every import compiles from source). Reported, not timed."""
    started = time.perf_counter()
    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc

    column = duckdb.connect().sql("SELECT 'x' AS a").to_arrow_table().column(0)
    pc.sum(pc.less_equal(pc.cumulative_sum(pc.binary_length(column)), pa.scalar(1, pa.int64())))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5_000_000)
    parser.add_argument("--quick", action="store_true", help="200k users")
    parser.add_argument("--max-ratio", type=float, default=2.0)
    args = parser.parse_args()
    users = 200_000 if args.quick else args.users
    with tempfile.TemporaryDirectory(prefix="bench-segments-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        out, export = generate(work, users)
        print(f"generated {users:,} users in {time.perf_counter() - started:.1f}s "
              f"(.out {out.stat().st_size / 1e6:.1f} MB, export {export.stat().st_size / 1e6:.1f} MB gz)")  # fmt: skip
        print(f"one-off imports (excluded from both timings): {warm_up():.1f}s")
        started = time.perf_counter()
        base_rows = baseline(out, export, work)
        base_s = time.perf_counter() - started
        started = time.perf_counter()
        endpoints, missing = project_path(out, export, work)
        project_s = time.perf_counter() - started
    if endpoints != base_rows:
        print(f"MISMATCH: project wrote {endpoints} endpoints, baseline {base_rows}")
        return 2
    ratio = project_s / base_s
    print(f"baseline duckdb join: {base_s:.2f}s  project path: {project_s:.2f}s  "
          f"endpoints={endpoints:,} users_without_endpoint={missing:,}  ratio={ratio:.2f} (goal <= {args.max_ratio})")  # fmt: skip
    return 0 if ratio <= args.max_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
