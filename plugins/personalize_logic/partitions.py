"""Partition manifests, the look-back window and local CSV part writing (pure: no Airflow, no boto3).

Every key named here is built by :mod:`personalize_logic.layout` (``docs/design.md``, "Bucket
layout"): one partition per data interval, ``dt=<ds>/_manifest.json`` pointing at one attempt's
``run=<attempt key>/`` folder, and training snapshots that copy a look-back window into one folder.

Why this shape:

* An attempt writes only under its own ``run=<attempt key>/`` folder, so no attempt ever
  overwrites the output of another one (the attempt key embeds the Airflow run id and try number).
* A run is *published* by one PUT of ``dt=.../_manifest.json`` listing the run's files. A single
  PUT is atomic in S3, so a reader that goes through the manifest sees either the previous run's
  complete file set or the new one, never half of a partition. Re-running or backfilling an
  interval replaces exactly that partition; other partitions are not touched.
* Old run folders are kept (cheap, auditable); an S3 lifecycle rule on ``run=`` folders older
  than N days can expire them, because readers never list folders, they read manifests.
* Amazon Personalize imports "a folder of CSV files", so the snapshot step copies the manifest
  files of every partition in the look-back window into one folder, whose name is deterministic
  for the DAG run. Manifests for the snapshot live *beside* that folder, never inside it, so the
  import job only sees CSV files.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from personalize_logic.layout import check_ds, part_name, snapshot_file_key

MANIFEST_VERSION = 1
INTERACTIONS_HEADER = ("USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP", "EVENT_VALUE")
DEFAULT_PART_BYTES = 256 * 1024 * 1024


def lookback_dates(end_ds: str, days: int) -> list[str]:
    """The ``days`` partition dates ending at ``end_ds`` (inclusive), oldest first."""
    if days < 1:
        raise ValueError("look-back window must be at least 1 day")
    end = dt.date.fromisoformat(check_ds(end_ds))
    return [(end - dt.timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]


def snapshot_copy_plan(
    manifests: Sequence[dict[str, Any]], prefix: str, snapshot_key: str, dataset: str
) -> list[tuple[str, str]]:
    """``(source key, destination key)`` pairs, deterministic: partitions by date, files in order.

    Destination names embed the partition date (``2024-01-01-part-00000.csv``) so files of
    different partitions never collide in the flat import folder.
    """
    return [
        (entry["key"], snapshot_file_key(prefix, snapshot_key, dataset, manifest["partition"], entry["key"]))
        for manifest in sorted(manifests, key=lambda m: m["partition"])
        for entry in manifest["files"]
    ]


@dataclass
class PartFile:
    """One local CSV part: path, data rows (header excluded) and size in bytes."""

    path: str
    rows: int = 0
    bytes: int = 0


def build_manifest(
    *,
    dataset: str,
    ds: str,
    key: str,
    bucket: str,
    files: Sequence[dict[str, Any]],
    header: Sequence[str],
    interval: tuple[str, str] | None = None,
    stats: dict[str, Any] | None = None,
    quarantine: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest body. ``files`` items: ``{"key", "rows", "bytes"}`` (``rows`` may be None).

    No wall-clock timestamp is written, so a re-run over the same input publishes a manifest that
    differs only in its run key and file keys.
    """
    rows = [f.get("rows") for f in files]
    return {
        "version": MANIFEST_VERSION,
        "dataset": dataset,
        "partition": check_ds(ds),
        "run_key": key,
        "bucket": bucket,
        "header": list(header),
        "interval": {"start": interval[0], "end": interval[1]} if interval else None,
        "files": [dict(f) for f in files],
        "rows": None if any(r is None for r in rows) else sum(int(r) for r in rows if r is not None),
        "bytes": sum(int(f.get("bytes") or 0) for f in files),
        "quarantine": quarantine,
        "stats": stats or {},
        "source": source or {},
    }


def parse_manifest(body: bytes | str, where: str = "manifest") -> dict[str, Any]:
    """Parse and sanity-check a manifest; errors name the manifest's location."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"{where}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{where}: manifest must be a JSON object")
    for name in ("version", "dataset", "partition", "run_key", "files"):
        if name not in data:
            raise ValueError(f"{where}: manifest field {name!r} is missing")
    if data["version"] != MANIFEST_VERSION:
        raise ValueError(f"{where}: unsupported manifest version {data['version']!r}")
    if not isinstance(data["files"], list) or not all(
        isinstance(f, dict) and isinstance(f.get("key"), str) for f in data["files"]
    ):
        raise ValueError(f"{where}: manifest field 'files' must be a list of {{'key': ...}} objects")
    return data


def dump_manifest(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


@dataclass
class PartedCsvWriter:
    """Write CSV rows to numbered local part files, rolling over at ``max_bytes``.

    Every part starts with the header (Personalize: first row = unquoted header). Rows are
    buffered and written in blocks with ``csv.writer.writerows``; memory is bounded by
    ``buffer_rows``. Quoting is minimal (RFC 4180: fields with ``,`` ``"`` or newlines are quoted,
    quotes doubled); line terminator ``\\n``; UTF-8.
    """

    directory: str
    header: Sequence[str]
    max_bytes: int = DEFAULT_PART_BYTES
    buffer_rows: int = 8192
    parts: list[PartFile] = field(default_factory=list)
    rows: int = 0

    def __post_init__(self) -> None:
        self._buffer: list[Sequence[Any]] = []
        self._fh: Any = None
        self._writer: Any = None
        self._open_next()

    def _open_next(self) -> None:
        if self._fh is not None:
            self._close_current()
        path = os.path.join(self.directory, part_name(len(self.parts)))
        self._fh = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()
        self._writer = csv.writer(self._fh, lineterminator="\n")
        self._writer.writerow(self.header)
        self.parts.append(PartFile(path=path))

    def _close_current(self) -> None:
        self._fh.flush()
        self.parts[-1].bytes = self._fh.tell()
        self._fh.close()
        self._fh = None

    def write(self, row: Sequence[Any]) -> None:
        self._buffer.append(row)
        if len(self._buffer) >= self.buffer_rows:
            self.flush()

    def write_many(self, rows: Iterable[Sequence[Any]]) -> None:
        self._buffer.extend(rows)
        if len(self._buffer) >= self.buffer_rows:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        self._writer.writerows(self._buffer)
        self.parts[-1].rows += len(self._buffer)
        self.rows += len(self._buffer)
        self._buffer.clear()
        if self._fh.tell() >= self.max_bytes:
            self._open_next()

    def close(self) -> list[PartFile]:
        """Flush and close; drops a trailing header-only part unless it is the only one."""
        self.flush()
        if self._fh is not None:
            self._close_current()
        if len(self.parts) > 1 and self.parts[-1].rows == 0:
            os.unlink(self.parts.pop().path)
        return self.parts


# ------------------------------------------------------------------------------ incremental imports
@dataclass(frozen=True)
class ImportPlan:
    """
    What one run imports into the interactions dataset (:func:`import_plan`).

    :param mode: ``FULL`` or ``INCREMENTAL``.
    :param partitions: partition date → run key of the manifests to import.
    :param republished: partitions imported before whose pointer now names another run (re-exported
        after their import): an INCREMENTAL import does not import them again (interactions have no
        record id, a second import would add their rows twice); the next FULL import takes them.
    :param rows: data rows to import (``None`` if a manifest does not count them).
    :param bytes: bytes to import.
    :param skip: why nothing is imported this run (``None``: import).
    """

    mode: str
    partitions: dict[str, str]
    republished: list[str]
    rows: int | None
    bytes: int
    skip: str | None = None


def import_plan(
    manifests: Sequence[dict[str, Any]],
    mode: str,
    imported: dict[str, str],
    *,
    min_rows: int,
    max_incremental_bytes: int,
) -> ImportPlan:
    """
    The partitions a run imports, and whether the import runs at all.

    * ``FULL``: every manifest of the window (a FULL import replaces all bulk data).
    * ``INCREMENTAL``: the manifests whose partition is not in ``imported`` (the project's record of
      imported partitions, partition → run key). With none, or with fewer rows than AWS's minimum
      per import job (``min_rows``), nothing is imported this run (``skip`` says why) and the
      partitions wait for the next run. More bytes than AWS's INCREMENTAL limit per job is an error
      (``ValueError``) naming the partitions: run that once with FULL. With no record yet (the project
      never imported), the import is FULL: AWS takes INCREMENTAL only after a bulk import.
    """
    if mode not in ("FULL", "INCREMENTAL"):
        raise ValueError(f"import mode must be FULL or INCREMENTAL, got {mode!r}")
    if mode == "INCREMENTAL" and not imported:
        # "If you haven't imported bulk records into the dataset previously, you can only specify FULL"
        # (CreateDatasetImportJob.importMode): the project never imported, so the first import is FULL.
        mode = "FULL"
    chosen = list(manifests) if mode == "FULL" else [m for m in manifests if m["partition"] not in imported]
    republished = sorted(
        m["partition"]
        for m in manifests
        if mode == "INCREMENTAL" and m["partition"] in imported and imported[m["partition"]] != m["run_key"]
    )
    counted = [f.get("rows") for m in chosen for f in m["files"]]
    rows = None if any(r is None for r in counted) else sum(int(r) for r in counted if r is not None)
    size = sum(int(f.get("bytes") or 0) for m in chosen for f in m["files"])
    partitions = {m["partition"]: m["run_key"] for m in sorted(chosen, key=lambda m: m["partition"])}
    skip = None
    if mode == "INCREMENTAL":
        if not chosen:
            skip = "every partition of the window was imported already"
        elif rows is not None and rows < min_rows:
            skip = (
                f"the {len(chosen)} new partition(s) hold {rows} interactions, fewer than the {min_rows} "
                "Personalize requires per import job; they are imported by a later run"
            )
        elif size > max_incremental_bytes:
            raise ValueError(
                f"the {len(chosen)} new partition(s) {sorted(partitions)} hold {size} bytes, more than the "
                f"{max_incremental_bytes} bytes Personalize takes per INCREMENTAL import job; run the train "
                "DAG once with import_mode=FULL"
            )
    return ImportPlan(mode, partitions, republished, rows, size, skip)
