"""
Benchmark: parse time against line length, for the readers that take one line at a time.

Issue 13: a batch-inference output line longer than the read chunk was re-copied with every chunk,
so the time grew with the square of the line: a 256 MB line took 41 s where 64 MB took 3 s (ratio
13.7). Each reader here gets one line of 64 MB and one of 256 MB (decimal), in 1 MiB chunks as an S3
``iter_chunks`` delivers them, and the ratio of the two times must stay at most 4.5 (linear is 4):

* the batch-output reader (``batch_output.iter_output_records``: the line splitter plus ``json``),
  with a line of one user and many recommended item ids;
* the mParticle export (``MParticleInteractionsExporter``: the line splitter plus ``msgspec``), with
  one batch of many purchase events;
* the splitter alone (``line_blocks.LineBlocks``), which is where the quadratic copy was.

``--with-old`` also times the old splitter (``rest + chunk`` per chunk) on 16 MB and 64 MB lines, for
the record. Each time is the best of ``--repeat`` runs in this process; the line is built once.

    python benchmarks/bench_parsers.py [--quick] [--with-old] [--repeat 2]

Exit 1 if a ratio is above the goal. ``--quick``: 16 MB vs 64 MB, ratios printed but not judged (a
16 MB line takes milliseconds, too short for a stable ratio on a shared machine).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable, Iterator

sys.path[:0] = [
    os.path.join(os.path.dirname(__file__), "..", "plugins"),
    os.path.join(os.path.dirname(__file__), ".."),
]

from personalize_logic.batch_output import iter_output_records  # noqa: E402
from personalize_logic.line_blocks import LineBlocks  # noqa: E402
from personalize_logic.mparticle_interactions import (  # noqa: E402
    MParticleExportConfig,
    MParticleInteractionsExporter,
)

GOAL = 4.5
CHUNK = 1 << 20
ITEM = "item-" + "x" * 250  # long ids: a few hundred thousand strings, not tens of millions
EVENT = (
    '{"event_type":"commerce_event","data":{"timestamp_unixtime_ms":1704070800000,'
    '"product_action":{"action":"purchase","products":[{"id":"%s","price":9.5}]}}}'
)


def output_line(size: int) -> bytes:
    head, tail = (
        '{"input":{"userId":"7000000000000000001"},"output":{"recommendedItems":[',
        ']},"error":null}\n',
    )
    item = '"' + ITEM + '"'
    count = max(1, (size - len(head) - len(tail)) // (len(item) + 1))
    return (head + ",".join([item] * count) + tail).encode()


def export_line(size: int) -> bytes:
    head, tail = '{"environment":"production","mpid":42,"events":[', "]}\n"
    event = EVENT % ("p" * 200)
    count = max(1, (size - len(head) - len(tail)) // (len(event) + 1))
    return (head + ",".join([event] * count) + tail).encode()


def chunks(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), CHUNK):
        yield bytes(view[start : start + CHUNK])


def old_splitter(parts: Iterator[bytes]) -> int:
    """The replaced loop: the unfinished line re-copied with every chunk."""
    carry, count = b"", 0
    for chunk in parts:
        if carry:
            chunk = carry + chunk
        lines = chunk.split(b"\n")
        carry = lines.pop()
        count += len(lines)
    return count


def run_splitter(data: bytes) -> int:
    return sum(len(b) for b in LineBlocks(chunks(data)) if isinstance(b, list))


def run_output(data: bytes) -> int:
    records = list(iter_output_records(chunks(data)))
    assert len(records) == 1
    assert records[0].parse_error is None, records[0].parse_error
    return len(records[0].output["recommendedItems"])  # type: ignore[index]


def run_export(data: bytes) -> int:
    exporter = MParticleInteractionsExporter(
        MParticleExportConfig(), interval_start_ms=None, interval_end_ms=None,
        row_sink=lambda rows: None, quarantine_sink=lambda record: None,
    )  # fmt: skip

    class Reader:
        def __init__(self) -> None:
            self.parts = chunks(data)

        def read(self, size: int = -1) -> bytes:
            return next(self.parts, b"")

    exporter.process_stream("bench", Reader())  # type: ignore[arg-type]
    exporter.stats.check_accounting()
    return exporter.stats.rows_written


def best(fn: Callable[[bytes], int], data: bytes, repeat: int) -> tuple[float, int]:
    times, result = [], 0
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        result = fn(data)
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--quick", action="store_true", help="16 MB vs 64 MB instead of 64 MB vs 256 MB")
    parser.add_argument("--with-old", action="store_true", help="also time the old splitter (16 vs 64 MB)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    small, large = (16_000_000, 64_000_000) if args.quick else (64_000_000, 256_000_000)
    ok = True
    for name, make, fn in (
        ("line splitter (LineBlocks)", output_line, run_splitter),
        ("batch-output reader (iter_output_records)", output_line, run_output),
        ("mParticle export (one batch line)", export_line, run_export),
    ):
        timings = []
        for size in (small, large):
            data = make(size)
            seconds, result = best(fn, data, args.repeat)
            timings.append(seconds)
            print(f"{name:44s} {len(data) / 1e6:6.0f} MB line: {seconds:7.3f} s  ({result:,} parsed)")
            del data
        ratio = timings[1] / timings[0]
        ok &= ratio <= GOAL
        print(
            f"{name:44s} ratio {large // 1_000_000} MB / {small // 1_000_000} MB: {ratio:5.2f}  (goal <= {GOAL})"
        )
    if args.with_old:
        old = []
        for size in (16_000_000, 64_000_000):
            data = output_line(size)
            seconds, _ = best(lambda d: old_splitter(chunks(d)), data, 1)
            old.append(seconds)
            print(
                f"{'old splitter (rest + chunk), for the record':44s} {len(data) / 1e6:6.0f} MB line: {seconds:7.3f} s"
            )
        print(f"{'old splitter':44s} ratio 64 MB / 16 MB: {old[1] / old[0]:5.2f}  (quadratic: 16)")
    print("OK" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
