"""
The bucket layout and run identity: every S3 key and URI the pipeline writes or reads.

Pure: no Airflow, no boto3. No other module builds an ``s3://`` string or splits one
(``tests/unit/test_layout.py`` checks that), and ``docs/design.md`` ("Bucket layout") shows every
pattern here as a table, which the same test keeps true.

Run identity comes in three kinds. Each one exists for a reason; the names say which is which:

* :func:`attempt_key` (one per **task attempt**, ``<run id sanitised>.try<N>``): the export writes
  each attempt into its own ``run=<attempt key>/`` folder, so a retry never overwrites the files
  the previous attempt may still have published.
* :func:`dag_run_key` (one per **DAG run**, ``<run id sanitised, 40 chars>-<hash>``, the Jinja macro
  ``run_key(run_id)``): batch inputs and segment CSVs; a retry rewrites the same object.
* :func:`task_run_key` (one per **(DAG run, task)**, ``<dag id>/<run id>/<task id>``): the mParticle
  upload's checkpoints and dead letters, so a retry resumes where its previous attempt stopped.
  It also seeds mParticle's ``source_request_id``. The map index is not part of it: the mapped
  upload task has one instance per output file, and the file id (a hash of the file's URI) already
  tells the instances apart.

The per-pattern functions are grouped as the bucket is: export partitions and training snapshots
(keys inside the bucket, built from the configured prefix), then :class:`BucketLayout` (URIs the
DAG factory passes to its tasks), then the objects written under those URIs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from personalize_logic.naming import sanitize, stable_hash

SCHEME = "s3://"

# ------------------------------------------------------------------------------------ URIs and keys


def is_s3_uri(value: str) -> bool:
    return value.startswith(SCHEME)


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` → ``("bucket", "some/key")``; anything else is a ``ValueError``."""
    if not is_s3_uri(uri):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len(SCHEME) :].partition("/")
    return bucket, key


def s3_uri(bucket: str, key: str = "") -> str:
    return f"{SCHEME}{bucket}/{key}"


def join(*parts: str) -> str:
    """Join key (or URI) parts with one ``/``; empty parts are dropped, no trailing slash."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def folder(path: str) -> str:
    """``path`` with exactly one trailing ``/`` (an S3 "folder" prefix)."""
    return path.rstrip("/") + "/"


# ------------------------------------------------------------------------------------- run identity
_RUN_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")

#: The Jinja macro every generated DAG defines: ``{{ run_key(run_id) }}`` renders :func:`dag_run_key`.
DAG_RUN_KEY_TEMPLATE = "{{ run_key(run_id) }}"


def attempt_key(run_id: str, try_number: int | None = None) -> str:
    """Deterministic, S3-safe key of one task attempt: ``<run id sanitised>[.tryN]``.

    ``scheduled__2024-01-01T00:00:00+00:00`` becomes ``scheduled__2024-01-01T00-00-00-00-00``; the
    result is capped at 120 characters (long ids are truncated and hash-suffixed).
    """
    safe = _RUN_ID_UNSAFE.sub("-", run_id.replace(":", "-").replace("+", "-")).strip("-.") or "run"
    if len(safe) > 120:
        digest = hashlib.sha256(run_id.encode()).hexdigest()[:10]
        safe = f"{safe[:109]}-{digest}"
    return f"{safe}.try{try_number}" if try_number is not None else safe


def attempt_key_from_context(context: Mapping[str, Any]) -> str:
    """:func:`attempt_key` of the running task instance (its run id and try number)."""
    try_number = getattr(context.get("ti"), "try_number", None)
    return attempt_key(str(context["run_id"]), try_number)


def dag_run_key(run_id: str) -> str:
    """A short S3-key-safe token, unique and stable for one DAG run (the macro ``run_key``)."""
    return f"{sanitize(run_id)[:40]}-{stable_hash(run_id, length=8)}"


def dag_run_key_macros() -> dict[str, Any]:
    """``user_defined_macros`` that make :data:`DAG_RUN_KEY_TEMPLATE` render."""
    return {"run_key": dag_run_key}


def task_run_key(dag_id: str, run_id: str, task_id: str) -> str:
    """Identity of one task in one DAG run, shared by its attempts: ``<dag id>/<run id>/<task id>``."""
    return f"{dag_id}/{run_id}/{task_id}"


def task_run_key_from_context(context: Mapping[str, Any]) -> str:
    ti = context["ti"]
    return task_run_key(ti.dag_id, ti.run_id, ti.task_id)


def _task_run_folder(run_key: str) -> str:
    """A task run key as one S3-safe folder name (readable part + hash of the whole key)."""
    return f"{sanitize(run_key)[:100]}-{stable_hash(run_key)}"


def _file_id(file_uri: str) -> str:
    """One S3 object as an S3-safe name: its base name + a hash of its full URI."""
    name = posixpath.basename(split_s3(file_uri)[1]) or "output"
    return f"{sanitize(name)[:80]}-{stable_hash(file_uri)}"


# ---------------------------------------------------------------- export partitions (keys in bucket)
MANIFEST_NAME = "_manifest.json"
QUARANTINE_NAME = "_quarantine.jsonl"
_DS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def check_ds(ds: str) -> str:
    """``ds`` if it is a valid ``YYYY-MM-DD`` date, else a ``ValueError`` naming it."""
    if not _DS_RE.match(ds):
        raise ValueError(f"partition date must be YYYY-MM-DD, got {ds!r}")
    dt.date.fromisoformat(ds)
    return ds


def _name(value: str, what: str) -> str:
    if not value or "/" in value:
        raise ValueError(f"invalid {what} {value!r}")
    return value


def dataset_root_prefix(prefix: str, dataset: str) -> str:
    """``<prefix>/<dataset>/``: the folder holding every partition of a dataset."""
    return folder(join(prefix, dataset))


def partition_prefix(prefix: str, dataset: str, ds: str) -> str:
    """``<prefix>/<dataset>/dt=<ds>/`` (no bucket, trailing slash)."""
    return folder(join(prefix, dataset, f"dt={check_ds(ds)}"))


def manifest_key(prefix: str, dataset: str, ds: str) -> str:
    """The partition's published pointer: one PUT of it publishes a run folder atomically."""
    return partition_prefix(prefix, dataset, ds) + MANIFEST_NAME


def is_manifest_key(key: str, prefix: str, dataset: str) -> bool:
    """Whether ``key`` is a partition pointer (:func:`manifest_key`), not a run folder's copy."""
    head = dataset_root_prefix(prefix, dataset)
    if not key.startswith(head) or not key.endswith("/" + MANIFEST_NAME):
        return False
    middle = key[len(head) : -len(MANIFEST_NAME) - 1]
    return middle.startswith("dt=") and "/" not in middle


def run_prefix(prefix: str, dataset: str, ds: str, key: str) -> str:
    """``<prefix>/<dataset>/dt=<ds>/run=<attempt key>/``: everything one attempt writes."""
    return f"{partition_prefix(prefix, dataset, ds)}run={_name(key, 'run key')}/"


def run_file_key(run_folder: str, name: str) -> str:
    """A file in a run folder (a CSV part, the audit copy of the manifest, the quarantine file)."""
    return folder(run_folder) + name


def quarantine_key(prefix: str, dataset: str, ds: str, key: str) -> str:
    return run_file_key(run_prefix(prefix, dataset, ds, key), QUARANTINE_NAME)


def unload_file_prefix(run_folder: str) -> str:
    """The key prefix Redshift UNLOAD writes its ``part-…`` files under."""
    return run_file_key(run_folder, "part-")


def unload_run_folder(unload_prefix: str) -> str:
    """The run folder of an UNLOAD target key (:func:`unload_file_prefix`), checked; ``ValueError`` if not one."""
    head, sep, tail = unload_prefix.rpartition("/run=")
    if not sep or not head or not tail.endswith("/part-") or "/" in tail[: -len("/part-")]:
        raise ValueError(f"not an UNLOAD target of a run folder: {unload_prefix!r}")
    return unload_prefix[: -len("part-")]


def run_key_of(run_folder: str) -> str:
    """The attempt key of a run folder (:func:`run_prefix`)."""
    name = run_folder.rstrip("/").rsplit("/", 1)[-1]
    if not name.startswith("run=") or len(name) == len("run="):
        raise ValueError(f"not a run folder: {run_folder!r}")
    return name[len("run=") :]


def unload_manifest_key(run_folder: str) -> str:
    """``<name-prefix>manifest``: where ``UNLOAD ... MANIFEST`` writes its manifest (r_UNLOAD, MANIFEST)."""
    return unload_file_prefix(run_folder) + "manifest"


def athena_results_prefix(run_folder: str) -> str:
    """The query result location of the run's Athena query: Athena writes ``<query id>.csv`` there."""
    return run_file_key(run_folder, "_athena/")


def part_name(index: int) -> str:
    return f"part-{index:05d}.csv"


def mparticle_source_day_prefix(source_key: str, ds: str) -> str:
    """``<source prefix>/dt=<ds>/``: one day of mParticle's S3 output (``ds`` may be a template)."""
    return folder(join(source_key, f"dt={ds}"))


# --------------------------------------------------------------------------------- training snapshots
def default_snapshot_key(snapshot_date: str, lookback_days: int, attempt: str) -> str:
    """``<end date>-lb<days>-<attempt key>``: the snapshot folder name of one attempt."""
    return f"{snapshot_date}-lb{lookback_days}-{attempt}"


def snapshot_prefix(prefix: str, snapshot_key: str) -> str:
    """``<prefix>/snapshots/<snapshot key>/`` (the folder above the per-dataset import folders)."""
    return folder(join(prefix, "snapshots", _name(snapshot_key, "snapshot key")))


def snapshot_data_prefix(prefix: str, snapshot_key: str, dataset: str) -> str:
    """The folder an import job reads: ``<prefix>/snapshots/<key>/<dataset>/``."""
    return f"{snapshot_prefix(prefix, snapshot_key)}{dataset}/"


def snapshot_file_key(prefix: str, snapshot_key: str, dataset: str, ds: str, source_key: str) -> str:
    """A partition's file in the import folder: ``<dt>-<file name>``, so partitions never collide."""
    name = source_key.rsplit("/", 1)[-1]
    return f"{snapshot_data_prefix(prefix, snapshot_key, dataset)}{ds}-{name}"


def snapshot_manifest_key(prefix: str, snapshot_key: str, dataset: str) -> str:
    """Beside the import folder, never inside it: the import job only sees CSV files."""
    return f"{snapshot_prefix(prefix, snapshot_key)}_manifest.{dataset}.json"


def snapshot_increment_prefix(prefix: str, snapshot_key: str, dataset: str) -> str:
    """An INCREMENTAL import's folder: the window's partitions not imported before."""
    return f"{snapshot_prefix(prefix, snapshot_key)}{dataset}-increment/"


def snapshot_increment_file_key(
    prefix: str, snapshot_key: str, dataset: str, ds: str, source_key: str
) -> str:
    name = source_key.rsplit("/", 1)[-1]
    return f"{snapshot_increment_prefix(prefix, snapshot_key, dataset)}{ds}-{name}"


def imported_partitions_key(prefix: str, dataset: str) -> str:
    """The partitions the dataset holds in bulk: partition date → run key, rewritten by every import."""
    return join(prefix, "state", "imports", f"{_name(dataset, 'dataset')}.json")


# ------------------------------------------------------------------- the pipeline's URIs per project
BATCH_INFERENCE = "inference"
BATCH_SEGMENTS = "segments"
PINPOINT = "pinpoint"
CUSTOMER_PROFILES = "customer_profiles"


@dataclass(frozen=True)
class BucketLayout:
    """The URIs of one project: ``s3://<bucket>/<prefix>/...`` (bucket and prefix may be templates)."""

    bucket: str
    prefix: str = ""

    def uri(self, *parts: str) -> str:
        return s3_uri(self.bucket, join(self.prefix, *parts))

    def dataset_root_uri(self, dataset: str = "interactions") -> str:
        """The export's partitions of ``dataset`` (see :func:`partition_prefix`)."""
        return self.uri(dataset)

    def partitions_pattern(self, dataset: str = "interactions") -> str:
        """For people: ``s3://<bucket>/<prefix>/<dataset>/dt=YYYY-MM-DD/``."""
        return folder(join(self.dataset_root_uri(dataset), "dt=YYYY-MM-DD"))

    def snapshots_uri(self) -> str:
        return self.uri("snapshots")

    def imported_partitions_uri(self, dataset: str = "interactions") -> str:
        """The record of the partitions the dataset holds in bulk (see :func:`imported_partitions_key`)."""
        return s3_uri(self.bucket, imported_partitions_key(self.prefix, dataset))

    def dataset_source_uri(self, kind: str) -> str:
        """Folder of the CSVs to import into the ``items`` / ``users`` dataset, dropped by you."""
        return folder(self.uri("datasets", kind))

    def batch_root_uri(self) -> str:
        return self.uri("batch")

    def batch_inference_input_uri(self, solution: str, run_key: str) -> str:
        """Every user of the training snapshot, one ``{"userId": ...}`` per line."""
        return self.uri("batch", solution, "input", run_key, "users.json")

    def batch_segment_input_uri(self, solution: str, run_key: str) -> str:
        """The run's segment queries, one JSON object per line."""
        return self.uri("batch", solution, "input", run_key, "queries.json")

    def batch_inference_output_uri(self, solution: str) -> str:
        return self.uri("batch", solution, BATCH_INFERENCE)

    def batch_segment_output_uri(self, solution: str) -> str:
        return self.uri("batch", solution, BATCH_SEGMENTS)

    def batch_job_config_uri(self, solution: str) -> str:
        """Default batch segment queries (JSON lines), dropped by you."""
        return self.uri("batch", solution, "job_config.json")

    def athena_ddl_results_uri(self) -> str:
        """Where the Athena engine's DDL queries (database, table) write their ``<query id>.txt`` results."""
        return folder(self.uri("athena", "ddl"))

    def state_root_uri(self) -> str:
        return self.uri("state")

    def solution_state_uri(self, solution: str) -> str:
        """The quality gate's records of one solution (see :func:`latest_accepted_uri`)."""
        return self.uri("state", solution)

    def mparticle_state_uri(self) -> str:
        """Checkpoints and dead letters of the mParticle upload (see :func:`checkpoint_uri`)."""
        return self.uri("state", "mparticle")

    def segment_root_uri(self, destination: str = PINPOINT) -> str:
        """Root of one segment destination's files (``pinpoint``, ``customer_profiles``)."""
        return self.uri(destination)

    def segment_csvs_uri(self, run_key: str, destination: str = PINPOINT) -> str:
        """Where one run's segment files for ``destination`` go (see :func:`segment_folder_uri`)."""
        return self.uri(destination, run_key)

    def activation_state_uri(self, destination: str) -> str:
        """The activation claims of one segment destination (see :func:`activation_claim_uri`)."""
        return self.uri("state", "activation", destination)


# ------------------------------------------------------------------------- quality-gate state records
def latest_accepted_uri(state_prefix: str) -> str:
    """Points at the newest accepted solution version (rewritten on every acceptance)."""
    return join(state_prefix, "accepted", "latest.json")


def accepted_version_uri(state_prefix: str, version_id: str) -> str:
    return join(state_prefix, "accepted", f"{version_id}.json")


def verdict_uri(state_prefix: str, version_id: str) -> str:
    return join(state_prefix, "verdicts", f"{version_id}.json")


# -------------------------------------------------------------------------------- batch job outputs
def batch_job_output_uri(job_output: str, job_name: str) -> str:
    """The folder a batch job writes ``<input file>.out`` into: one per job name."""
    return folder(join(job_output, job_name))


# ---------------------------------------------------------------------------------- segment files
def segment_folder_uri(segment_csvs: str, segment_name: str) -> str:
    """One imported segment's CSV folder (no trailing slash)."""
    return join(segment_csvs, segment_name)


def segment_file_uri(segment_folder: str, name: str) -> str:
    return join(segment_folder, name)


def segment_errors_uri(segment_csvs: str) -> str:
    """The batch segment output lines that carry an error, one JSON object per line."""
    return join(segment_csvs, "_errors.jsonl")


def endpoint_export_uri(segment_csvs: str) -> str:
    """Default target of the Pinpoint endpoint export job (a folder)."""
    return folder(join(segment_csvs, "_endpoint_export"))


def upload_csv_uri(segment_folder: str) -> str:
    """One Customer Profiles segment's upload file (the file PUT to the upload job's URL)."""
    return join(segment_folder, "upload.csv")


def profile_snapshot_uri(segment_csvs: str) -> str:
    """Where the Customer Profiles snapshot of the domain's profile keys goes (a folder)."""
    return folder(join(segment_csvs, "_profile_snapshot"))


def activation_claim_uri(activation_state: str, run_key: str, segment_name: str) -> str:
    """
    ``<state>/activation/<destination>/<dag run key>/<segment name>.json``: which input a segment of
    a DAG run was activated from, and the AWS resources that did it. Written once, with a
    conditional PUT, by the first attempt that activates the segment.
    """
    return join(activation_state, run_key, f"{segment_name}.json")


# ------------------------------------------------------------------------------ mParticle upload state
def checkpoint_uri(state_prefix: str, run_key: str, file_uri: str) -> str:
    """``<state>/checkpoints/<task run>/<file id>.json``: how far the upload of one file got."""
    return join(state_prefix, "checkpoints", _task_run_folder(run_key), f"{_file_id(file_uri)}.json")


def dead_letter_uri(state_prefix: str, run_key: str, file_uri: str) -> str:
    """``<state>/dead_letter/<task run>/<file id>``: the folder of one file's dead-letter parts."""
    return join(state_prefix, "dead_letter", _task_run_folder(run_key), _file_id(file_uri))


def dead_letter_part_uri(dead_letter: str, part: int) -> str:
    return join(dead_letter, f"part-{part:05d}.jsonl")


# ------------------------------------------------------------------------------------- the doc table
def documented_patterns() -> dict[str, str]:
    """Every key pattern above, rendered with placeholders, keyed by what it holds.

    ``docs/design.md`` ("Bucket layout") has one table row per entry; the test keeps them equal.
    """
    ds, where = "2000-01-01", BucketLayout("<bucket>", "<prefix>")
    run_folder = run_prefix("<prefix>", "<dataset>", ds, "<attempt key>")
    state = where.mparticle_state_uri()
    segments = where.segment_csvs_uri("<dag run key>")
    profile_files = where.segment_csvs_uri("<dag run key>", CUSTOMER_PROFILES)
    dead = dead_letter_uri(state, "<task run key>", "s3://b/<file>")
    found = {
        "mParticle source files": mparticle_source_day_prefix("<source prefix>", ds),
        "partition pointer": manifest_key("<prefix>", "<dataset>", ds),
        "run folder: CSV parts": run_file_key(run_folder, part_name(0)),
        "run folder: Redshift UNLOAD parts": unload_file_prefix(run_folder),
        "run folder: Redshift UNLOAD manifest": unload_manifest_key(run_folder),
        "run folder: Athena query result": run_file_key(athena_results_prefix(run_folder), "<query id>.csv"),
        "run folder: manifest copy": run_file_key(run_folder, MANIFEST_NAME),
        "run folder: quarantine": quarantine_key("<prefix>", "<dataset>", ds, "<attempt key>"),
        "snapshot import folder": snapshot_file_key(
            "<prefix>", "<snapshot key>", "<dataset>", ds, part_name(0)
        ),
        "snapshot manifest": snapshot_manifest_key("<prefix>", "<snapshot key>", "<dataset>"),
        "snapshot increment folder": snapshot_increment_file_key(
            "<prefix>", "<snapshot key>", "<dataset>", ds, part_name(0)
        ),
        "imported partitions": where.imported_partitions_uri("<dataset>"),
        "items / users to import": where.dataset_source_uri("<kind>"),
        "Athena DDL results": join(where.athena_ddl_results_uri(), "<query id>.txt"),
        "quality gate: verdict": verdict_uri(where.solution_state_uri("<solution>"), "<version id>"),
        "quality gate: accepted": accepted_version_uri(
            where.solution_state_uri("<solution>"), "<version id>"
        ),
        "quality gate: latest": latest_accepted_uri(where.solution_state_uri("<solution>")),
        "batch inference input": where.batch_inference_input_uri("<solution>", "<dag run key>"),
        "batch segment input": where.batch_segment_input_uri("<solution>", "<dag run key>"),
        "batch segment default queries": where.batch_job_config_uri("<solution>"),
        "batch inference output": batch_job_output_uri(
            where.batch_inference_output_uri("<solution>"), "<job name>"
        ),
        "batch segment output": batch_job_output_uri(
            where.batch_segment_output_uri("<solution>"), "<job name>"
        ),
        "segment CSVs": segment_file_uri(segment_folder_uri(segments, "<segment name>"), "<csv part>"),
        "segment output errors": segment_errors_uri(segments),
        "endpoint export": endpoint_export_uri(segments),
        "Customer Profiles upload CSV": upload_csv_uri(segment_folder_uri(profile_files, "<segment name>")),
        "Customer Profiles output errors": segment_errors_uri(profile_files),
        "profile-key snapshot": profile_snapshot_uri(profile_files),
        "segment activation claim": activation_claim_uri(
            where.activation_state_uri("<destination>"), "<dag run key>", "<segment name>"
        ),
        "mParticle checkpoint": checkpoint_uri(state, "<task run key>", "s3://b/<file>"),
        "mParticle dead letters": dead_letter_part_uri(dead, 0),
    }
    placeholders = {  # hashes first: they could contain the other values
        _task_run_folder("<task run key>"): "<task run key>",
        _file_id("s3://b/<file>"): "<file id>",
        s3_uri("<bucket>"): "",
        ds: "YYYY-MM-DD",
        "00000": "NNNNN",
    }
    for name, pattern in found.items():
        for value, placeholder in placeholders.items():
            pattern = pattern.replace(value, placeholder)
        found[name] = pattern
    return found
