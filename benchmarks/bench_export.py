"""Benchmark: mParticle batches → interactions CSV.

Measures, in one run, on inputs made by the synthetic generator (gzip NDJSON, sizes are
uncompressed bytes) in a temp dir that is deleted afterwards:

1. throughput of the project's exporter vs a naive per-record port of the classic Lambda logic
   (json.loads per batch, a pandas DataFrame grown one row at a time, to_csv at the end) — goal >= 10x;
   the naive port runs on a small prefix of the input (it is far too slow for more), and a careful
   stdlib-json pure-Python streaming port is shown for reference;
2. peak RSS of the exporter on 100 MB vs 1 GB of input, each in a fresh subprocess — goal: ratio
   ≤ 1.2 (flat memory).

Usage: ``python benchmarks/bench_export.py [--quick]`` (quick: 20 MB vs 200 MB). Exit 1 if a goal is
missed.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path[:0] = [
    os.path.join(os.path.dirname(__file__), "..", "plugins"),
    os.path.join(os.path.dirname(__file__), ".."),
]

from personalize_logic.mparticle_interactions import (  # noqa: E402
    DEFAULT_ACTIONS,
    MParticleExportConfig,
    MParticleInteractionsExporter,
)
from personalize_logic.partitions import PartedCsvWriter  # noqa: E402
from scripts.mparticle_generator import write_synthetic_ndjson  # noqa: E402

SPEEDUP_GOAL = 10.0
RSS_RATIO_GOAL = 1.2


def run_exporter(path: str, out_dir: str) -> tuple[float, int]:
    config = MParticleExportConfig()
    writer = PartedCsvWriter(out_dir, config.header)
    quarantined: list[dict] = []
    exporter = MParticleInteractionsExporter(
        config, interval_start_ms=None, interval_end_ms=None,
        row_sink=writer.write_many, quarantine_sink=quarantined.append,
    )  # fmt: skip
    start = time.perf_counter()
    with open(path, "rb") as fh:
        exporter.process_stream(path, fh)
    writer.close()
    exporter.stats.check_accounting()
    return time.perf_counter() - start, exporter.stats.rows_written


def naive_lambda_port(lines: list[bytes], out_path: str) -> tuple[float, int]:
    """Per-record port of the classic Lambda: DataFrame grown row by row."""
    import pandas as pd

    start = time.perf_counter()
    df = pd.DataFrame(columns=["USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP", "EVENT_VALUE"])
    for raw in lines:
        batch = json.loads(raw)
        for event in batch.get("events") or []:
            if event.get("event_type") != "commerce_event":
                continue
            action = event["data"].get("product_action") or {}
            if action.get("action") not in DEFAULT_ACTIONS:
                continue
            for product in action.get("products") or []:
                row = {
                    "USER_ID": str(batch["mpid"]),
                    "ITEM_ID": product["id"],
                    "EVENT_TYPE": action["action"],
                    "TIMESTAMP": event["data"]["timestamp_unixtime_ms"] // 1000,
                    "EVENT_VALUE": product.get("price"),
                }
                df = pd.concat([df, pd.DataFrame([row])], ignore_index=True)
    df.to_csv(out_path, index=False)
    return time.perf_counter() - start, len(df)


def stdlib_streaming_port(path: str, out_path: str) -> tuple[float, int]:
    """Reference: careful streaming port with stdlib json + csv.writer per row."""
    start = time.perf_counter()
    rows = 0
    with gzip.open(path, "rb") as fh, open(out_path, "w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP", "EVENT_VALUE"])
        for raw in fh:
            batch = json.loads(raw)
            for event in batch.get("events") or []:
                if event.get("event_type") != "commerce_event":
                    continue
                action = event["data"].get("product_action") or {}
                if action.get("action") not in DEFAULT_ACTIONS:
                    continue
                for product in action.get("products") or []:
                    price = product.get("price")
                    writer.writerow([batch["mpid"], product["id"], action["action"],
                                     event["data"]["timestamp_unixtime_ms"] // 1000, "" if price is None else price])  # fmt: skip
                    rows += 1
    return time.perf_counter() - start, rows


def child_peak_rss(path: str) -> tuple[float, float, int]:
    """Run the exporter on ``path`` in a fresh interpreter; returns (peak RSS MiB, seconds, rows)."""
    code = (
        "import json,resource,sys,tempfile;"
        f"sys.path[:0]=[{os.path.dirname(os.path.abspath(__file__))!r}];"
        "from bench_export import run_exporter;"
        "d=tempfile.mkdtemp();s,r=run_exporter(sys.argv[1],d);"
        "import shutil;shutil.rmtree(d);"
        "print(json.dumps([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024,s,r]))"
    )
    out = subprocess.run([sys.executable, "-c", code, path], check=True, capture_output=True, text=True)
    rss, seconds, rows = json.loads(out.stdout.strip().splitlines()[-1])
    return rss, seconds, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20 MB vs 200 MB instead of 100 MB vs 1 GB")
    args = parser.parse_args()
    small, large = (20_000_000, 200_000_000) if args.quick else (100_000_000, 1_000_000_000)
    naive_bytes = 1_000_000 if args.quick else 2_000_000
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        small_path, large_path = os.path.join(tmp, "small.json.gz"), os.path.join(tmp, "large.json.gz")
        t0 = time.perf_counter()
        write_synthetic_ndjson(small_path, target_bytes=small, seed=1)
        write_synthetic_ndjson(large_path, target_bytes=large, seed=2)
        print(
            f"generated {small / 1e6:.0f} MB + {large / 1e6:.0f} MB (uncompressed) in {time.perf_counter() - t0:.1f}s"
        )

        # 1. throughput on the same prefix of input, then the fast path on the whole small file
        lines: list[bytes] = []
        size = 0
        with gzip.open(small_path, "rb") as fh:
            for raw in fh:
                lines.append(raw)
                size += len(raw)
                if size >= naive_bytes:
                    break
        prefix_path = os.path.join(tmp, "prefix.json.gz")
        with gzip.open(prefix_path, "wb", compresslevel=1) as fh:
            fh.write(b"".join(lines))
        out_dir = tempfile.mkdtemp(dir=tmp)
        naive_s, naive_rows = naive_lambda_port(lines, os.path.join(tmp, "naive.csv"))
        _fast_prefix_s, fast_prefix_rows = run_exporter(prefix_path, out_dir)
        assert fast_prefix_rows == naive_rows, (fast_prefix_rows, naive_rows)
        std_s, std_rows = stdlib_streaming_port(small_path, os.path.join(tmp, "std.csv"))
        fast_s, fast_rows = run_exporter(small_path, tempfile.mkdtemp(dir=tmp))
        assert std_rows == fast_rows
        naive_mbs = size / naive_s / 1e6
        fast_mbs = small / fast_s / 1e6
        std_mbs = small / std_s / 1e6
        speedup = fast_mbs / naive_mbs
        print(
            f"naive per-record pandas port : {naive_mbs:8.2f} MB/s ({naive_rows} rows from {size / 1e6:.1f} MB)"
        )
        print(f"stdlib json streaming port   : {std_mbs:8.2f} MB/s ({std_rows} rows)")
        print(
            f"exporter (msgspec fast path) : {fast_mbs:8.2f} MB/s ({fast_rows} rows, {fast_rows / fast_s:,.0f} rows/s)"
        )
        print(f"speedup vs naive             : {speedup:8.1f}x  (goal >= {SPEEDUP_GOAL:.0f}x)")
        print(f"speedup vs stdlib streaming  : {fast_mbs / std_mbs:8.1f}x")
        ok &= speedup >= SPEEDUP_GOAL

        # 2. memory: fresh processes
        rss_small, s_small, rows_small = child_peak_rss(small_path)
        rss_large, s_large, rows_large = child_peak_rss(large_path)
        ratio = rss_large / rss_small
        print(
            f"peak RSS {small / 1e6:.0f} MB input : {rss_small:7.1f} MiB ({rows_small} rows, {small / s_small / 1e6:.1f} MB/s)"
        )
        print(
            f"peak RSS {large / 1e6:.0f} MB input : {rss_large:7.1f} MiB ({rows_large} rows, {large / s_large / 1e6:.1f} MB/s)"
        )
        print(f"RSS ratio                   : {ratio:8.2f}  (goal <= {RSS_RATIO_GOAL})")
        ok &= ratio <= RSS_RATIO_GOAL
    print("OK" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
