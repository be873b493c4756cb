"""Export stage: interactions per data interval → CSV partitions in S3 → training snapshot → validation.

Operators (all ``AwsBaseOperator[S3Hook]``, XCom = small dicts of S3 URIs and counts):

* :class:`MParticleBatchesToInteractionsOperator` — mParticle batch files (S3 / Firehose output)
  of the interval → ``<prefix>/interactions/dt=<ds>/run=<run key>/part-*.csv`` + quarantine file,
  published by the partition manifest.
* :class:`SqlToInteractionsOperator` — a SQL file rendered for the interval, run on any
  common-sql connection (the embedded stand-in is PostgreSQL), streamed into the same layout.
* :class:`RedshiftUnloadToPartitionOperator` + :class:`PublishUnloadedPartitionOperator`
  (or :func:`redshift_partition_export` for both) — Redshift UNLOAD into the run folder, then publish
  (``source: redshift``).
* :class:`AthenaQueryToPartitionOperator` + :class:`PublishAthenaResultOperator` — the mParticle
  batches queried by Athena where they lie (``export.engine: athena``), the result published.
* :class:`BuildTrainingSnapshotOperator` — copy the partitions of a look-back window (via their
  manifests) into the folder an import job reads.
* :class:`ValidateInteractionsOperator` — stream-validate that folder against the Avro schema.

Redshift: UNLOAD through the Redshift Data API (``RedshiftDataOperator``, deferrable; the class
docstring of :class:`RedshiftUnloadToPartitionOperator` says why not ``RedshiftToS3Operator``). The
cluster's slices write straight to S3, so no row passes through the Airflow worker, and the publish
step reads UNLOAD's own manifest for the files and row counts.

Partition semantics (see ``personalize_logic.partitions``; keys: ``personalize_logic.layout``): each
attempt writes its own ``run=<run id>.try<N>/`` folder, and one PUT of ``dt=<ds>/_manifest.json`` publishes it, so
re-runs and backfills replace exactly their interval atomically and never overwrite an older
run's files. The mParticle exporter reads the ``source_prefixes`` you give it (templated: the
interval's own landing folder, e.g. ``dt={{ ds }}``) and the ``late_source_prefixes`` (the later
folders its events may still land in, e.g. ``dt={{ macros.ds_add(ds, 1) }}``; the generated DAGs
read ``pipeline.export.mparticle.latenessDays`` of them) and keeps only events whose own timestamp
is inside ``[data_interval_start, data_interval_end)``, so the output of an interval is
deterministic once its source folders are complete. Events found in the later folders are counted
as late, per interval. An interval without events is not an error: the partition then
holds one header-only CSV part, the manifest says ``rows: 0`` and the snapshot skips it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.operators.redshift_data import RedshiftDataOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, BaseHook

from personalize_logic import layout

# The DAG files import this module on every parse; the modules only execute() needs are imported
# inside the methods that use them (benchmarks/bench_parse.py measures the difference).
if TYPE_CHECKING:
    from airflow.sdk import Context

    from personalize_logic.mparticle_interactions import ExportStats, MParticleExportConfig

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "include" / "schemas"
PROGRESS_SECONDS = 30.0


def _parse_instant(value: Any) -> int:
    """Epoch milliseconds of a rendered ``{{ data_interval_start }}`` (str or datetime)."""
    if isinstance(value, dt.datetime):
        moment = value
    else:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def load_schema(schema: dict[str, Any] | str) -> dict[str, Any]:
    """A schema dict, or a JSON file path (relative names resolve in ``include/schemas``)."""
    if isinstance(schema, dict):
        return schema
    path = Path(schema)
    if not path.is_absolute() and not path.exists():
        path = SCHEMA_DIR / schema
    return json.loads(path.read_text())


class _PartitionOperator(AwsBaseOperator[S3Hook]):
    """Shared S3 helpers: upload a run folder, publish its manifest."""

    aws_hook_class = S3Hook

    def _upload_and_publish(
        self,
        *,
        bucket: str,
        prefix: str,
        dataset: str,
        ds: str,
        key: str,
        parts: Sequence[Any],
        header: Sequence[str],
        extra_files: Sequence[tuple[str, str]] = (),
        interval: tuple[str, str] | None = None,
        stats: dict[str, Any] | None = None,
        quarantine: dict[str, Any] | None = None,
        source: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        folder = layout.run_prefix(prefix, dataset, ds, key)
        files = []
        for part in parts:
            object_key = layout.run_file_key(folder, os.path.basename(part.path))
            self.hook.load_file(part.path, object_key, bucket_name=bucket, replace=True)
            files.append({"key": object_key, "rows": part.rows, "bytes": part.bytes})
        for local, name in extra_files:
            self.hook.load_file(local, layout.run_file_key(folder, name), bucket_name=bucket, replace=True)
        return self._publish(
            bucket=bucket, prefix=prefix, dataset=dataset, ds=ds, key=key, folder=folder, files=files,
            header=header, interval=interval, stats=stats, quarantine=quarantine, source=source,
        )  # fmt: skip

    def _publish(
        self,
        *,
        bucket: str,
        prefix: str,
        dataset: str,
        ds: str,
        key: str,
        folder: str,
        files: Sequence[dict[str, Any]],
        header: Sequence[str],
        **manifest_fields: Any,
    ) -> dict[str, Any]:
        """Write the manifest of a run folder's ``files``: the audit copy first, the pointer last."""
        from personalize_logic.partitions import build_manifest, dump_manifest

        manifest = build_manifest(
            dataset=dataset, ds=ds, key=key, bucket=bucket, files=files, header=header, **manifest_fields
        )
        body = dump_manifest(manifest)
        # audit copy inside the run folder first, the partition pointer last (the atomic publish)
        self.hook.load_bytes(
            body, layout.run_file_key(folder, layout.MANIFEST_NAME), bucket_name=bucket, replace=True
        )
        pointer = layout.manifest_key(prefix, dataset, ds)
        self.hook.load_bytes(body, pointer, bucket_name=bucket, replace=True)
        manifest_uri = layout.s3_uri(bucket, pointer)
        self.log.info("Published %s -> %s (%s rows)", manifest_uri, folder, manifest["rows"])
        return {
            "partition": ds,
            "manifest_uri": manifest_uri,
            "run_prefix_uri": layout.s3_uri(bucket, folder),
            "run_key": key,
            "files": len(files),
            "rows": manifest["rows"],
        }


class MParticleBatchesToInteractionsOperator(_PartitionOperator):
    """
    Convert the mParticle batch files of one data interval into a Personalize interactions partition.

    :param bucket: Destination bucket. (templated)
    :param prefix: Destination prefix; the partition is ``<prefix>/<dataset>/dt=<ds>/``. (templated)
    :param source_prefixes: Key prefix (or list) of the batch files to read, e.g.
        ``mparticle/dt={{ ds }}/``: the interval's own landing folder(s). (templated)
    :param late_source_prefixes: Key prefixes of the landing folders after the interval's own, read
        for late events (e.g. the next day's); the events of the interval found there are exported and
        counted as late (``late_events``, per interval in the log, the XCom and the manifest). (templated)
    :param lateness_days: The lateness window, in days, when the folders are landing days: events in
        ``source_prefixes`` from before ``partition_date`` minus this many days are counted as
        ``events_beyond_lateness`` (no interval's export reads them). None: not counted.
    :param source_bucket: Bucket of the batch files (default: ``bucket``). (templated)
    :param partition_date: Partition date ``YYYY-MM-DD``. (templated)
    :param interval_start: Inclusive start of the event-time window. (templated)
    :param interval_end: Exclusive end of the event-time window. (templated)
    :param dataset: Dataset folder name.
    :param actions: Product actions to export (default purchase, view_detail, add_to_cart,
        add_to_wishlist).
    :param user_id_source: ``"mpid"`` or a ``user_identities`` key such as ``"customer_id"``.
    :param item_id_fields: Product fields tried in order for ITEM_ID.
    :param event_value_field: Product field for EVENT_VALUE (None: no EVENT_VALUE column).
    :param event_value_required: Quarantine a product without ``event_value_field`` instead of writing an
        empty EVENT_VALUE (for a schema whose EVENT_VALUE is not nullable).
    :param include_session_id: Add a SESSION_ID column.
    :param seconds_timestamps: ``"quarantine"`` or ``"convert"`` second-looking event times.
    :param max_quarantine_share: Fail when the quarantined share of lines+events+rows exceeds this.
    :param allow_truncated_files: Do not fail on truncated / corrupt gzip files (their readable
        part is still exported and the tail quarantined).
    :param part_max_bytes: Roll over to a new CSV part at this size (default: 256 MiB, ``DEFAULT_PART_BYTES``).
    """

    template_fields: Sequence[str] = aws_template_fields(
        "bucket",
        "prefix",
        "source_prefixes",
        "late_source_prefixes",
        "source_bucket",
        "partition_date",
        "interval_start",
        "interval_end",
    )

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        source_prefixes: str | Sequence[str],
        late_source_prefixes: str | Sequence[str] = (),
        lateness_days: int | None = None,
        source_bucket: str | None = None,
        partition_date: str = "{{ ds }}",
        interval_start: str = "{{ data_interval_start }}",
        interval_end: str = "{{ data_interval_end }}",
        dataset: str = "interactions",
        actions: Sequence[str] | None = None,
        user_id_source: str = "mpid",
        item_id_fields: Sequence[str] = ("id", "sku"),
        event_value_field: str | None = "price",
        event_value_required: bool = False,
        include_session_id: bool = False,
        seconds_timestamps: str = "quarantine",
        max_quarantine_share: float = 0.01,
        allow_truncated_files: bool = False,
        part_max_bytes: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bucket = bucket
        self.prefix = prefix
        self.source_prefixes = source_prefixes
        self.late_source_prefixes = late_source_prefixes
        self.lateness_days = lateness_days
        self.source_bucket = source_bucket
        self.partition_date = partition_date
        self.interval_start = interval_start
        self.interval_end = interval_end
        self.dataset = dataset
        self.actions = actions
        self.user_id_source = user_id_source
        self.item_id_fields = item_id_fields
        self.event_value_field = event_value_field
        self.event_value_required = event_value_required
        self.include_session_id = include_session_id
        self.seconds_timestamps = seconds_timestamps
        self.max_quarantine_share = max_quarantine_share
        self.allow_truncated_files = allow_truncated_files
        self.part_max_bytes = part_max_bytes

    def _source_keys(self, bucket: str, prefixes: str | Sequence[str]) -> list[str]:
        keys: set[str] = set()
        for source in _as_list(prefixes):
            for key in self.hook.list_keys(bucket_name=bucket, prefix=source) or []:
                name = key.rsplit("/", 1)[-1]
                if key.endswith("/") or not name or name.startswith(("_", ".")):
                    continue
                keys.add(key)
        return sorted(keys)

    def _export_config(self) -> MParticleExportConfig:
        from personalize_logic.mparticle_interactions import DEFAULT_ACTIONS, MParticleExportConfig

        return MParticleExportConfig(
            actions=frozenset(self.actions) if self.actions else DEFAULT_ACTIONS,
            user_id_source=self.user_id_source,
            item_id_fields=tuple(self.item_id_fields),
            event_value_field=self.event_value_field,
            event_value_required=self.event_value_required,
            include_session_id=self.include_session_id,
            seconds_timestamps=self.seconds_timestamps,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from personalize_logic.partitions import DEFAULT_PART_BYTES, PartedCsvWriter

        config = self._export_config()
        source_bucket = self.source_bucket or self.bucket
        interval_ms = _parse_instant(self.interval_start), _parse_instant(self.interval_end)
        key = layout.attempt_key_from_context(context)
        own = self._source_keys(source_bucket, self.source_prefixes)
        own_keys = set(own)
        late = [k for k in self._source_keys(source_bucket, self.late_source_prefixes) if k not in own_keys]
        keys = own + late
        self.log.info(
            "Exporting %s mParticle file(s) from bucket %s, prefixes %s (and %s for late events) for [%s, %s) "
            "into run %s",
            len(keys), source_bucket, _as_list(self.source_prefixes), _as_list(self.late_source_prefixes),
            self.interval_start, self.interval_end, key,
        )  # fmt: skip
        quarantine_key = layout.quarantine_key(self.prefix, self.dataset, self.partition_date, key)
        with tempfile.TemporaryDirectory(prefix="mparticle-export-") as tmp:
            writer = PartedCsvWriter(tmp, config.header, max_bytes=self.part_max_bytes or DEFAULT_PART_BYTES)
            q_path = os.path.join(tmp, layout.QUARANTINE_NAME)
            stats = self._convert(config, interval_ms, source_bucket, (own, late), writer, q_path)
            parts = writer.close()
            stats.check_accounting()
            extra = [(q_path, layout.QUARANTINE_NAME)] if stats.quarantine_records else []
            self._fail_unless_publishable(stats, q_path if extra else None, quarantine_key)
            if stats.rows_written == 0:
                self.log.warning(
                    "No interactions for %s (%d files, %d events seen): publishing a header-only partition",
                    self.partition_date, stats.files, stats.events_seen,
                )  # fmt: skip
            result = self._upload_and_publish(
                bucket=self.bucket, prefix=self.prefix, dataset=self.dataset, ds=self.partition_date, key=key,
                parts=parts, header=config.header, extra_files=extra,
                interval=(str(self.interval_start), str(self.interval_end)),
                stats=stats.as_dict(), quarantine=_quarantine_summary(stats, quarantine_key if extra else None),
                source={
                    "bucket": source_bucket, "prefixes": _as_list(self.source_prefixes),
                    "late_prefixes": _as_list(self.late_source_prefixes), "files": len(keys),
                },
            )  # fmt: skip
        result.update(
            source_files=len(keys),
            quarantined=stats.quarantine_records,
            out_of_interval_rows=stats.rows_out_of_interval,
            late_events=stats.late_events,
            events_beyond_lateness=stats.events_beyond_lateness,
            quarantine_uri=layout.s3_uri(self.bucket, quarantine_key) if extra else None,
            empty=stats.rows_written == 0,
        )
        return result

    def _convert(
        self,
        config: MParticleExportConfig,
        interval_ms: tuple[int, int],
        source_bucket: str,
        keys: tuple[list[str], list[str]],
        writer: Any,
        q_path: str,
    ) -> ExportStats:
        """
        Stream every source file through the exporter into ``writer`` and the quarantine file.

        ``keys``: the files of the interval's own folders, then those of the later (lateness) folders;
        the events exported from the later ones are the interval's late events.
        """
        from personalize_logic.mparticle_interactions import MParticleInteractionsExporter

        own, late = keys
        total = len(own) + len(late)
        with open(q_path, "w", encoding="utf-8") as q_fh:

            def quarantine(record: dict[str, Any]) -> None:
                q_fh.write(json.dumps(record, ensure_ascii=False) + "\n")

            exporter = MParticleInteractionsExporter(
                config, interval_start_ms=interval_ms[0], interval_end_ms=interval_ms[1],
                row_sink=writer.write_many, quarantine_sink=quarantine,
            )  # fmt: skip
            stats = exporter.stats
            lost_before = self._lost_before_ms()
            last_log = time.monotonic()
            for n, object_key in enumerate([*own, *late], start=1):
                is_late = n > len(own)
                exporter.lost_before_ms = -(2**62) if is_late or lost_before is None else lost_before
                used_before = stats.events_used
                body = self.hook.conn.get_object(Bucket=source_bucket, Key=object_key)["Body"]
                try:
                    exporter.process_stream(layout.s3_uri(source_bucket, object_key), body)
                finally:
                    body.close()
                if is_late:
                    stats.late_events += stats.events_used - used_before
                if time.monotonic() - last_log > PROGRESS_SECONDS or n == total:
                    last_log = time.monotonic()
                    self._log_progress(n, total, stats)
        self.log.info(
            "Interval %s: %d events exported, %d of them late (landed in a later folder); %d events in "
            "this interval's folder are older than the %s-day lateness window and are exported by no "
            "interval; %d events outside the interval",
            self.partition_date, stats.events_used, stats.late_events, stats.events_beyond_lateness,
            self.lateness_days, stats.events_out_of_interval,
        )  # fmt: skip
        return stats

    def _lost_before_ms(self) -> int | None:
        """Epoch ms of the lateness window's edge: start of ``partition_date`` minus ``lateness_days``."""
        if self.lateness_days is None:
            return None
        day = dt.datetime.strptime(str(self.partition_date), "%Y-%m-%d").replace(tzinfo=dt.UTC)
        return int((day - dt.timedelta(days=self.lateness_days)).timestamp() * 1000)

    def _log_progress(self, done: int, total: int, stats: ExportStats) -> None:
        self.log.info(
            "Progress: %d/%d files (%.0f%%), %d bytes read, %d rows written, %d quarantined",
            done, total, 100.0 * done / total, stats.bytes_read, stats.rows_written, stats.quarantine_records,
        )  # fmt: skip

    def _fail_unless_publishable(self, stats: ExportStats, q_path: str | None, quarantine_key: str) -> None:
        """Too much quarantined or truncated input: keep the quarantine file for inspection, publish nothing."""
        failure = None
        if stats.quarantine_share > self.max_quarantine_share:
            failure = (
                f"quarantined share {stats.quarantine_share:.4%} exceeds max_quarantine_share "
                f"{self.max_quarantine_share:.4%}: {dict(stats.reasons)}"
            )
        elif stats.files_truncated and not self.allow_truncated_files:
            failure = (
                f"{stats.files_truncated} truncated or corrupt gzip file(s); set allow_truncated_files=True "
                "to export their readable part"
            )
        if not failure:
            return
        if q_path:
            self.hook.load_file(q_path, quarantine_key, bucket_name=self.bucket, replace=True)
        raise AirflowException(
            f"mParticle export of {self.partition_date} not published: {failure}. "
            f"Quarantine: {layout.s3_uri(self.bucket, quarantine_key)}"
        )


def _quarantine_summary(stats: ExportStats, key: str | None) -> dict[str, Any]:
    """The manifest's ``quarantine`` block: counts, reasons and the quarantine file (if written)."""
    return {
        "records": stats.quarantine_records,
        "share": round(stats.quarantine_share, 6),
        "reasons": dict(stats.reasons),
        "key": key,
    }


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime | dt.date):
        raise AirflowException(
            f"SQL returned a {type(value).__name__}; select epoch seconds (BIGINT) for TIMESTAMP columns"
        )
    return value


class SqlToInteractionsOperator(_PartitionOperator):
    """
    Run a SQL file for the data interval on a common-sql connection and stream rows into a partition.

    The column names of the result are the CSV header (alias them as the schema fields, e.g.
    ``AS "USER_ID"``). Rows are fetched with a server-side cursor on PostgreSQL (psycopg2) and
    ``fetchmany(fetch_size)`` elsewhere, so memory does not grow with the result.

    :param sql: SQL text or a ``.sql`` file on the template search path. (templated)
    :param conn_id: A common-sql connection (postgres, redshift, ...).
    :param bucket: Destination bucket. (templated)
    :param prefix: Destination prefix. (templated)
    :param partition_date: Partition date ``YYYY-MM-DD``. (templated)
    :param dataset: Dataset folder name (interactions, items, users).
    :param parameters: Bind parameters for the query. (templated)
    :param fetch_size: Rows per fetch.
    """

    template_fields: Sequence[str] = aws_template_fields(
        "sql", "bucket", "prefix", "partition_date", "parameters"
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "parameters": "json"}

    def __init__(
        self,
        *,
        sql: str,
        conn_id: str,
        bucket: str,
        prefix: str,
        partition_date: str = "{{ ds }}",
        dataset: str = "interactions",
        parameters: dict[str, Any] | Sequence[Any] | None = None,
        fetch_size: int = 10_000,
        part_max_bytes: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sql = sql
        self.conn_id = conn_id
        self.bucket = bucket
        self.prefix = prefix
        self.partition_date = partition_date
        self.dataset = dataset
        self.parameters = parameters
        self.fetch_size = fetch_size
        self.part_max_bytes = part_max_bytes

    def execute(self, context: Context) -> dict[str, Any]:
        db_hook = BaseHook.get_connection(self.conn_id).get_hook()
        key = layout.attempt_key_from_context(context)
        conn = db_hook.get_conn()
        try:
            cursor = self._run_query(conn)
            first = cursor.fetchmany(self.fetch_size)
            header = self._checked_header(cursor)
            with tempfile.TemporaryDirectory(prefix="sql-export-") as tmp:
                parts, rows = self._write_parts(cursor, first, header, tmp)
                cursor.close()
                self.log.info("Query returned %d rows for %s", rows, self.partition_date)
                return self._upload_and_publish(
                    bucket=self.bucket, prefix=self.prefix, dataset=self.dataset, ds=self.partition_date,
                    key=key, parts=parts, header=header, source={"conn_id": self.conn_id, "rows": rows},
                )  # fmt: skip
        finally:
            conn.close()

    def _run_query(self, conn: Any) -> Any:
        """Execute the query on a server-side cursor where the driver has one (psycopg2)."""
        try:
            cursor = conn.cursor(name=f"personalize_export_{os.getpid()}")
            cursor.itersize = self.fetch_size
        except TypeError:
            cursor = conn.cursor()
        cursor.execute(self.sql, self.parameters)
        return cursor

    @staticmethod
    def _checked_header(cursor: Any) -> list[str]:
        header = [str(d[0]) for d in cursor.description]
        if any(c != c.upper() for c in header):
            raise AirflowException(
                f"result columns must be the Personalize field names in upper case (alias them "
                f'AS "USER_ID" ...); got {header}'
            )
        return header

    def _write_parts(
        self, cursor: Any, first: list[Any], header: list[str], tmp: str
    ) -> tuple[list[Any], int]:
        """Stream the result, ``fetch_size`` rows at a time, into local CSV parts."""
        from personalize_logic.partitions import DEFAULT_PART_BYTES, PartedCsvWriter

        writer = PartedCsvWriter(tmp, header, max_bytes=self.part_max_bytes or DEFAULT_PART_BYTES)
        batch = first
        while batch:
            writer.write_many([tuple(_csv_value(v) for v in row) for row in batch])
            batch = cursor.fetchmany(self.fetch_size)
        return writer.close(), writer.rows


class RedshiftUnloadToPartitionOperator(RedshiftDataOperator):
    """
    UNLOAD the interval's query from Amazon Redshift into the run folder of a partition, through the
    Redshift Data API (publish with :class:`PublishUnloadedPartitionOperator`).

    Why the provider's ``RedshiftDataOperator`` and not ``RedshiftToS3Operator`` (both exist on every
    supported provider, 9.22+): rows never pass through the worker with either, but only
    ``RedshiftDataOperator`` is deferrable (the wait is a ``RedshiftDataTrigger`` in the triggerer;
    ``RedshiftToS3Operator`` polls with ``time.sleep`` in the worker slot), cancels its statement when
    the task is killed, and on Airflow 3.3+ (non-deferrable) reconnects to its running statement on a
    retry instead of unloading twice. ``RedshiftToS3Operator`` also takes the UNLOAD authorization
    from the AWS connection: its ``role_arn`` extra (the role Airflow itself assumes) or else the
    worker's access keys written into the statement text, which ``DescribeStatement`` returns and
    ``RedshiftDataHook`` prints into the task log when a statement fails (``pformat`` of the
    response). Here the statement names ``IAM_ROLE`` (the role associated with the cluster): no
    secret is in the SQL.

    The query is ``select_query`` rendered from ``include/sql/`` (``.sql`` templates, as
    ``RedshiftDataOperator.sql``); :func:`personalize_logic.redshift_unload.unload_statement` wraps it
    into ``UNLOAD ('…') TO 's3://<bucket>/<run folder>/part-' IAM_ROLE '…' FORMAT AS CSV HEADER
    MANIFEST VERBOSE …``. Each attempt writes its own run folder. The folder returned is the one the
    statement that completed names in its ``TO`` clause (``DescribeStatement.QueryString``), so a
    statement reconnected to on a retry is published from where it wrote. The generated DAGs run it
    deferrable: every attempt (a retry, a cleared task) then runs a fresh UNLOAD. Non-deferrable on
    Airflow 3.3+, the provider's ``durable`` reconnect also applies to a *cleared* task whose
    statement succeeded (the task state store outlives a clear): it republishes that statement's
    files; pass ``durable=False`` to unload again.

    Returns ``{"run_prefix", "run_key", "partition", "bucket", "statement_id"}`` for
    :class:`PublishUnloadedPartitionOperator`.

    :param bucket: Destination bucket. (templated)
    :param prefix: Destination prefix. (templated)
    :param select_query: The SELECT, or a ``.sql`` file on the template search path. (templated)
    :param iam_role_arn: The IAM role the cluster uses to write to S3 (associated with the cluster),
        or ``default``. (templated)
    :param partition_date: Partition date ``YYYY-MM-DD``. (templated)
    :param dataset: Dataset folder name.
    :param unload_options: UNLOAD options (default
        :data:`~personalize_logic.redshift_unload.DEFAULT_UNLOAD_OPTIONS`).
    :param kwargs: ``RedshiftDataOperator`` arguments: ``database``, ``cluster_identifier`` or
        ``workgroup_name``, ``db_user``, ``secret_arn``, ``deferrable``, ``poll_interval``, ...
    """

    template_fields: tuple[str, ...] = (
        *RedshiftDataOperator.template_fields,
        "bucket",
        "prefix",
        "partition_date",
        "iam_role_arn",
    )

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        select_query: str,
        iam_role_arn: str,
        partition_date: str = "{{ ds }}",
        dataset: str = "interactions",
        unload_options: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(sql=select_query, **kwargs)
        self.bucket = bucket
        self.prefix = prefix
        self.iam_role_arn = iam_role_arn
        self.partition_date = partition_date
        self.dataset = dataset
        self.unload_options = unload_options

    def execute(self, context: Context) -> dict[str, Any]:  # type: ignore[override]
        from personalize_logic.redshift_unload import DEFAULT_UNLOAD_OPTIONS, UnloadError, unload_statement

        folder = layout.run_prefix(
            self.prefix, self.dataset, self.partition_date, layout.attempt_key_from_context(context)
        )
        target = layout.s3_uri(self.bucket, layout.unload_file_prefix(folder))
        try:
            self.sql = unload_statement(
                str(self.sql), target, self.iam_role_arn, self.unload_options or DEFAULT_UNLOAD_OPTIONS
            )
        except UnloadError as exc:
            raise AirflowException(f"{self.task_id}: {exc}") from None
        statement_ids = super().execute(context)  # deferrable: continues in execute_complete
        return self._unloaded(str(statement_ids[0]))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:  # type: ignore[override]
        statement_ids = super().execute_complete(context, event)
        return self._unloaded(str(statement_ids[0]))

    def _unloaded(self, statement_id: str) -> dict[str, Any]:
        """Where the completed statement wrote, read from its own text."""
        from personalize_logic.redshift_unload import UnloadError, unload_target

        statement = self.hook.conn.describe_statement(Id=statement_id)
        try:
            bucket, unload_prefix = layout.split_s3(unload_target(statement.get("QueryString", "")))
            folder = layout.unload_run_folder(unload_prefix)
        except (UnloadError, ValueError) as exc:
            raise AirflowException(
                f"statement {statement_id}: cannot tell where it unloaded: {exc}"
            ) from None
        self.log.info("Statement %s unloaded %s rows into %s", statement_id,
                      statement.get("ResultRows"), layout.s3_uri(bucket, folder))  # fmt: skip
        return {
            "run_prefix": folder,
            "run_key": layout.run_key_of(folder),
            "partition": self.partition_date,
            "bucket": bucket,
            "statement_id": statement_id,
        }


class _PublishStagedOperator(_PartitionOperator):
    """What the publish steps of a run folder another service wrote share: where, and which header."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        expected_header: Sequence[str] | None = None,
        dataset: str = "interactions",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bucket = bucket
        self.prefix = prefix
        self.expected_header = expected_header
        self.dataset = dataset


class PublishUnloadedPartitionOperator(_PublishStagedOperator):
    """
    Publish a run folder written by Redshift UNLOAD: the files and row counts come from UNLOAD's
    ``MANIFEST VERBOSE`` manifest, each file's header line is checked with a ranged GET, and the
    partition manifest is written. No data file is downloaded.

    An interval without rows publishes one header-only part, like the other exports.

    :param bucket: Bucket. (templated)
    :param prefix: Destination prefix. (templated)
    :param unload: The XCom of :class:`RedshiftUnloadToPartitionOperator` (dict). (templated)
    :param expected_header: Header every part must start with (default: not checked; then the first
        part's header is the partition's).
    :param dataset: Dataset folder name.
    """

    template_fields: Sequence[str] = aws_template_fields("bucket", "prefix", "unload")
    HEAD_BYTES = 64 * 1024

    def __init__(self, *, unload: dict[str, Any] | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.unload = unload

    def execute(self, context: Context) -> dict[str, Any]:
        from personalize_logic.redshift_unload import UnloadError, parse_unload_manifest

        info = json.loads(self.unload) if isinstance(self.unload, str) else self.unload
        folder, key, ds = info["run_prefix"], info["run_key"], info["partition"]
        manifest_key = layout.unload_manifest_key(folder)
        where = layout.s3_uri(self.bucket, manifest_key)
        try:
            body = self.hook.conn.get_object(Bucket=self.bucket, Key=manifest_key)["Body"].read()
            unloaded = parse_unload_manifest(body, where)
        except self.hook.conn.exceptions.NoSuchKey:
            raise AirflowException(
                f"{where} does not exist: did the UNLOAD run with MANIFEST VERBOSE?"
            ) from None
        except UnloadError as exc:
            raise AirflowException(str(exc)) from None
        files: list[dict[str, Any]] = []
        header: list[str] = list(self.expected_header or [])
        for item in unloaded:
            file_bucket, object_key = layout.split_s3(item.uri)
            if file_bucket != self.bucket or not object_key.startswith(folder):
                raise AirflowException(
                    f"{where} lists {item.uri}, outside the run folder {layout.s3_uri(self.bucket, folder)}"
                )
            got = self._header(object_key)
            if self.expected_header and got != list(self.expected_header):
                raise AirflowException(
                    f"{item.uri}: header {got} != {list(self.expected_header)} "
                    "(on Redshift set enable_case_sensitive_identifier=true for the unloading user)"
                )
            header = header or got
            files.append({"key": object_key, "rows": item.rows, "bytes": item.bytes})
        if not files:
            if not header:
                raise AirflowException(f"{where} lists no file and no expected_header is set")
            self.log.warning("UNLOAD wrote no file for %s: publishing a header-only partition", ds)
            empty = (",".join(header) + "\n").encode()
            object_key = layout.run_file_key(folder, layout.part_name(0))
            self.hook.load_bytes(empty, object_key, bucket_name=self.bucket, replace=True)
            files.append({"key": object_key, "rows": 0, "bytes": len(empty)})
        result = self._publish(
            bucket=self.bucket, prefix=self.prefix, dataset=self.dataset, ds=ds, key=key, folder=folder,
            files=files, header=header, source={"unload": True, "statement_id": info.get("statement_id")},
        )  # fmt: skip
        result.update(empty=result["rows"] == 0)
        return result

    def _header(self, object_key: str) -> list[str]:
        """The first line of an object, read with one ranged GET."""
        head = self.hook.conn.get_object(
            Bucket=self.bucket, Key=object_key, Range=f"bytes=0-{self.HEAD_BYTES - 1}"
        )
        first = head["Body"].read().split(b"\n", 1)[0]
        return first.decode("utf-8", "replace").rstrip("\r").split(",")


def redshift_partition_export(
    *,
    task_id: str,
    bucket: str,
    prefix: str,
    iam_role_arn: str,
    select_query: str = "sql/unload_interactions.sql",
    dataset: str = "interactions",
    expected_header: Sequence[str] | None = ("USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP", "EVENT_VALUE"),
    outlets: Sequence[Any] = (),
    **kwargs: Any,
) -> tuple[RedshiftUnloadToPartitionOperator, PublishUnloadedPartitionOperator]:
    """
    Two chained tasks: ``<task_id>_unload`` (UNLOAD through the Data API) >> ``<task_id>`` (publish).
    Call inside a DAG context; ``kwargs`` go to :class:`RedshiftUnloadToPartitionOperator`.
    """
    aws_conn_id = kwargs.pop("aws_conn_id", "aws_default")
    unload = RedshiftUnloadToPartitionOperator(
        task_id=f"{task_id}_unload", bucket=bucket, prefix=prefix, select_query=select_query,
        iam_role_arn=iam_role_arn, dataset=dataset, aws_conn_id=aws_conn_id, **kwargs,
    )  # fmt: skip
    publish = PublishUnloadedPartitionOperator(
        task_id=task_id, bucket=bucket, prefix=prefix, dataset=dataset,
        unload=unload.output,  # type: ignore[arg-type]
        expected_header=list(expected_header) if expected_header else None, aws_conn_id=aws_conn_id,
        outlets=list(outlets),
    )  # fmt: skip
    unload >> publish
    return unload, publish


class AthenaTableOperator(AthenaOperator):
    """
    The provider's ``AthenaOperator`` for the DDL of a table over S3: its query names the table's
    location as ``{{ task.location }}``. ``location`` is rendered first (it comes from the config and
    may itself be a template, ``s3://{{ var.value.bucket }}/…``; ``params`` values are not rendered).

    :param location: The table's ``s3://`` location. (templated)
    """

    template_fields: Sequence[str] = ("location", *AthenaOperator.template_fields)

    def __init__(self, *, location: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.location = location


class AthenaQueryToPartitionOperator(AthenaOperator):
    """
    Run the interval's Athena query with its result written into the run folder of a partition
    (publish with :class:`PublishAthenaResultOperator`).

    The provider's ``AthenaOperator`` (deferrable: ``AthenaTrigger`` waits in the triggerer; killed
    while running, it stops the query) with the result location set per attempt:
    ``<run folder>/_athena/``, where Athena writes ``<query id>.csv``. ``ClientRequestToken`` is
    derived from the task attempt, so a request Athena already took is not run twice.

    Why a plain SELECT and not ``UNLOAD`` or CTAS: Personalize reads CSV with a header row whose
    names are not quoted, uncompressed. Athena's ``UNLOAD`` and CTAS ``TEXTFILE`` output has no
    header, no CSV quoting (a comma in an id breaks the row) and, for ``UNLOAD``, is always gzip
    (https://docs.aws.amazon.com/athena/latest/ug/unload.html: "Athena uses gzip for the JSON and
    TEXTFILE formats"), so the worker would have to decompress and rewrite every byte. A SELECT's
    result file is CSV with RFC 4180 quoting and a header row
    (https://docs.aws.amazon.com/athena/latest/ug/querying.html); only its header is quoted, and
    :class:`PublishAthenaResultOperator` rewrites that one line with a server-side copy.

    Returns ``{"query_execution_id", "run_prefix", "run_key", "partition", "bucket"}``.

    :param bucket: Destination bucket. (templated)
    :param prefix: Destination prefix. (templated)
    :param partition_date: Partition date ``YYYY-MM-DD``. (templated)
    :param dataset: Dataset folder name.
    :param kwargs: ``AthenaOperator`` arguments: ``query`` (a ``.sql`` file on the template search
        path), ``database``, ``workgroup``, ``deferrable``, ``sleep_time``, ``params``, ...
    """

    template_fields: Sequence[str] = (*AthenaOperator.template_fields, "bucket", "prefix", "partition_date")

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        partition_date: str = "{{ ds }}",
        dataset: str = "interactions",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bucket = bucket
        self.prefix = prefix
        self.partition_date = partition_date
        self.dataset = dataset

    def _folder(self, context: Context) -> str:
        return layout.run_prefix(
            self.prefix, self.dataset, self.partition_date, layout.attempt_key_from_context(context)
        )

    def execute(self, context: Context) -> dict[str, Any]:  # type: ignore[override]
        from personalize_logic.naming import stable_hash

        folder = self._folder(context)
        self.output_location = layout.s3_uri(self.bucket, layout.athena_results_prefix(folder))
        attempt = layout.attempt_key_from_context(context)
        self.client_request_token = stable_hash(self.dag_id, self.task_id, attempt, length=64)
        query_execution_id = super().execute(context)  # deferrable: continues in execute_complete
        return self._result(str(query_execution_id), folder)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:  # type: ignore[override]
        query_execution_id = super().execute_complete(context, event)
        return self._result(str(query_execution_id), self._folder(context))

    def _result(self, query_execution_id: str, folder: str) -> dict[str, Any]:
        return {
            "query_execution_id": query_execution_id,
            "run_prefix": folder,
            "run_key": layout.run_key_of(folder),
            "partition": self.partition_date,
            "bucket": self.bucket,
        }


# Part 1 of a multipart copy is read (≥ 5 MiB, S3's minimum part size); the rest is copied by S3.
HEAD_PART_BYTES = 8 * 1024 * 1024
COPY_PART_BYTES = 1024 * 1024 * 1024


def copy_with_header(
    conn: Any, source: tuple[str, str], target: tuple[str, str], header: Sequence[str], where: str
) -> int:
    """
    Copy a CSV object with its first line replaced by ``header`` (unquoted), S3 side: the first
    ``HEAD_PART_BYTES`` pass through here, the rest is ``UploadPartCopy``. Returns the new size.

    :raises AirflowException: the source is empty or its first line is not ``header`` (quoted or not).
    """
    import csv

    (src_bucket, src_key), (dst_bucket, dst_key) = source, target
    size = conn.head_object(Bucket=src_bucket, Key=src_key)["ContentLength"]
    if size == 0:
        raise AirflowException(f"{where}: the query result is empty (no header line)")
    head = conn.get_object(Bucket=src_bucket, Key=src_key, Range=f"bytes=0-{min(size, HEAD_PART_BYTES) - 1}")
    first_part = head["Body"].read()
    first_line, newline, rest = first_part.partition(b"\n")
    got = next(csv.reader([first_line.decode("utf-8", "replace")]), [])
    if not newline or got != list(header):
        raise AirflowException(f"{where}: result header {got} != {list(header)}")
    new_head = (",".join(header) + "\n").encode() + rest
    if size <= HEAD_PART_BYTES:
        conn.put_object(Bucket=dst_bucket, Key=dst_key, Body=new_head)
        return len(new_head)
    upload_id = conn.create_multipart_upload(Bucket=dst_bucket, Key=dst_key)["UploadId"]
    try:
        part = conn.upload_part(
            Bucket=dst_bucket, Key=dst_key, UploadId=upload_id, PartNumber=1, Body=new_head
        )
        parts = [{"ETag": part["ETag"], "PartNumber": 1}]
        for start in range(HEAD_PART_BYTES, size, COPY_PART_BYTES):
            end = min(start + COPY_PART_BYTES, size) - 1
            copied = conn.upload_part_copy(
                Bucket=dst_bucket, Key=dst_key, UploadId=upload_id, PartNumber=len(parts) + 1,
                CopySource={"Bucket": src_bucket, "Key": src_key}, CopySourceRange=f"bytes={start}-{end}",
            )  # fmt: skip
            parts.append({"ETag": copied["CopyPartResult"]["ETag"], "PartNumber": len(parts) + 1})
        conn.complete_multipart_upload(
            Bucket=dst_bucket, Key=dst_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        conn.abort_multipart_upload(Bucket=dst_bucket, Key=dst_key, UploadId=upload_id)
        raise
    return len(new_head) + size - len(first_part)


class PublishAthenaResultOperator(_PublishStagedOperator):
    """
    Publish the result of :class:`AthenaQueryToPartitionOperator` as the partition's CSV part: the
    result file (found in ``GetQueryExecution``'s ``OutputLocation``, so a workgroup that enforces
    its own result location works too) is copied into ``part-00000.csv`` of the run folder with its
    header line unquoted (:func:`copy_with_header`: no row passes through the worker), the row count
    is Athena's ``GetQueryRuntimeStatistics`` ``OutputRows``, and the partition manifest is written.

    :param bucket: Bucket. (templated)
    :param prefix: Destination prefix. (templated)
    :param query: The XCom of :class:`AthenaQueryToPartitionOperator` (dict). (templated)
    :param expected_header: The header the query must produce (its column aliases).
    :param dataset: Dataset folder name.
    """

    template_fields: Sequence[str] = aws_template_fields("bucket", "prefix", "query")

    def __init__(self, *, query: dict[str, Any] | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.query = query

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.providers.amazon.aws.hooks.athena import AthenaHook

        if not self.expected_header:
            raise AirflowException("expected_header is required: the result's header line is replaced by it")
        info = json.loads(self.query) if isinstance(self.query, str) else self.query
        query_id, folder, key, ds = (
            info["query_execution_id"],
            info["run_prefix"],
            info["run_key"],
            info["partition"],
        )
        athena = AthenaHook(
            aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify
        ).conn
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        if execution["Status"]["State"] != "SUCCEEDED":
            raise AirflowException(
                f"Athena query {query_id} is {execution['Status']['State']}, not SUCCEEDED"
            )
        result_uri = execution["ResultConfiguration"]["OutputLocation"]
        statistics = athena.get_query_runtime_statistics(QueryExecutionId=query_id)["QueryRuntimeStatistics"]
        rows = (statistics.get("Rows") or {}).get("OutputRows")
        part_key = layout.run_file_key(folder, layout.part_name(0))
        size = copy_with_header(
            self.hook.conn, layout.split_s3(result_uri), (self.bucket, part_key), self.expected_header,
            f"Athena query {query_id} ({result_uri})",
        )  # fmt: skip
        result = self._publish(
            bucket=self.bucket, prefix=self.prefix, dataset=self.dataset, ds=ds, key=key, folder=folder,
            files=[{"key": part_key, "rows": rows, "bytes": size}], header=list(self.expected_header),
            source={"athena": {"query_execution_id": query_id, "result": result_uri,
                               "data_scanned_bytes": execution.get("Statistics", {}).get("DataScannedInBytes")}},
        )  # fmt: skip
        result.update(empty=rows == 0, query_execution_id=query_id)
        return result


class BuildTrainingSnapshotOperator(_PartitionOperator):
    """
    Copy the published partitions of a look-back window into one import folder.

    :param bucket: Bucket. (templated)
    :param prefix: Prefix of the partitions and snapshots. (templated)
    :param snapshot_date: Last partition date of the window (inclusive). (templated)
    :param lookback_days: Window length in days.
    :param snapshot_key: Snapshot folder name (default ``<end_date>-lb<N>-<run key>``). (templated)
    :param dataset: Dataset folder name.
    :param missing_partitions: ``"fail"`` (default) or ``"skip"`` dates without a manifest.
    :param import_mode: The import the snapshot feeds: ``FULL`` imports the snapshot folder;
        ``INCREMENTAL`` imports only the window's partitions not imported before (the project's record
        ``<prefix>/state/imports/<dataset>.json``), copied into ``<dataset>-increment/``
        (:func:`personalize_logic.partitions.import_plan`: nothing new, or fewer than AWS's 1000
        interactions per import job, skips the import; more than AWS's 1 GB per INCREMENTAL job fails
        here, before any AWS call). (templated)

    Returns the snapshot (``snapshot_uri``, ...) and the import: ``import_uri``, ``import_mode``,
    ``import_partitions``, ``import_rows``, ``import_bytes``, ``import_skip``.
    """

    template_fields: Sequence[str] = aws_template_fields(
        "bucket", "prefix", "snapshot_date", "snapshot_key", "import_mode"
    )

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        snapshot_date: str = "{{ ds }}",
        lookback_days: int = 30,
        snapshot_key: str | None = None,
        dataset: str = "interactions",
        missing_partitions: str = "fail",
        import_mode: str = "FULL",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bucket = bucket
        self.prefix = prefix
        self.snapshot_date = snapshot_date
        self.lookback_days = lookback_days
        self.snapshot_key = snapshot_key
        self.dataset = dataset
        self.missing_partitions = missing_partitions
        self.import_mode = import_mode

    def execute(self, context: Context) -> dict[str, Any]:
        from personalize_logic.partitions import lookback_dates, parse_manifest, snapshot_copy_plan

        if self.missing_partitions not in ("fail", "skip"):
            raise AirflowException("missing_partitions must be 'fail' or 'skip'")
        snap = self.snapshot_key or layout.default_snapshot_key(
            self.snapshot_date, self.lookback_days, layout.attempt_key_from_context(context)
        )
        manifests, missing = [], []
        for ds in lookback_dates(self.snapshot_date, self.lookback_days):
            mkey = layout.manifest_key(self.prefix, self.dataset, ds)
            if not self.hook.check_for_key(mkey, bucket_name=self.bucket):
                missing.append(ds)
                continue
            body = self.hook.read_key(mkey, bucket_name=self.bucket)
            manifests.append(parse_manifest(body, layout.s3_uri(self.bucket, mkey)))
        if missing and self.missing_partitions == "fail":
            raise AirflowException(
                f"{len(missing)} partition(s) of the {self.lookback_days}-day window have no manifest: "
                f"{missing[:10]}{' ...' if len(missing) > 10 else ''} (backfill them or use missing_partitions='skip')"
            )
        for m in manifests:  # header-only parts are not copied
            m["files"] = [f for f in m["files"] if f.get("rows") != 0]
        plan = snapshot_copy_plan(manifests, self.prefix, snap, self.dataset)
        dest = layout.snapshot_data_prefix(self.prefix, snap, self.dataset)
        planned = {d for _, d in plan}
        stale = [
            k for k in self.hook.list_keys(bucket_name=self.bucket, prefix=dest) or [] if k not in planned
        ]
        if stale:
            self.hook.delete_objects(bucket=self.bucket, keys=stale)
        for src, dst in plan:
            self.hook.copy_object(src, dst, source_bucket_name=self.bucket, dest_bucket_name=self.bucket)
        rows = sum(int(f.get("rows") or 0) for m in manifests for f in m["files"])
        snapshot_manifest = {
            "snapshot_key": snap,
            "dataset": self.dataset,
            "window": {"end": self.snapshot_date, "days": self.lookback_days},
            "partitions": {m["partition"]: m["run_key"] for m in manifests},
            "missing": missing,
            "files": [d for _, d in plan],
            "rows": rows,
        }
        self.hook.load_bytes(
            (json.dumps(snapshot_manifest, indent=2, sort_keys=True) + "\n").encode(),
            layout.snapshot_manifest_key(self.prefix, snap, self.dataset),
            bucket_name=self.bucket,
            replace=True,
        )
        self.log.info("Snapshot %s: %d partitions, %d files, %d rows", dest, len(manifests), len(plan), rows)
        snapshot_uri = layout.s3_uri(self.bucket, dest)
        return {
            "snapshot_uri": snapshot_uri,
            "snapshot_key": snap,
            "partitions": len(manifests),
            "missing": missing,
            "files": len(plan),
            "rows": rows,
            **self._import(manifests, snap, snapshot_uri),
        }

    def _import(self, manifests: list[dict[str, Any]], snap: str, snapshot_uri: str) -> dict[str, Any]:
        """Plan the import this snapshot feeds; for INCREMENTAL, copy the new partitions apart."""
        from personalize_logic.facts import personalize_data_rules as rules
        from personalize_logic.partitions import import_plan

        state_key = layout.imported_partitions_key(self.prefix, self.dataset)
        imported: dict[str, str] = {}
        if self.import_mode == "INCREMENTAL" and self.hook.check_for_key(state_key, bucket_name=self.bucket):
            imported = dict(
                json.loads(self.hook.read_key(state_key, bucket_name=self.bucket)).get("partitions", {})
            )
        try:
            plan = import_plan(
                manifests,
                self.import_mode,
                imported,
                min_rows=rules.MIN_INTERACTIONS_PER_IMPORT,
                max_incremental_bytes=rules.MAX_INCREMENTAL_IMPORT_BYTES,
            )
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        if plan.republished:
            self.log.warning(
                "Partitions %s were exported again after their import; INCREMENTAL does not import them twice, "
                "the next FULL import takes their new content",
                plan.republished,
            )
        import_uri = snapshot_uri
        if plan.mode == "INCREMENTAL":
            increment = layout.snapshot_increment_prefix(self.prefix, snap, self.dataset)
            copies = [
                (
                    f["key"],
                    layout.snapshot_increment_file_key(
                        self.prefix, snap, self.dataset, m["partition"], f["key"]
                    ),
                )
                for m in sorted(manifests, key=lambda m: m["partition"])
                if m["partition"] in plan.partitions and not plan.skip
                for f in m["files"]
            ]
            wanted = {d for _, d in copies}
            stale = [
                k
                for k in self.hook.list_keys(bucket_name=self.bucket, prefix=increment) or []
                if k not in wanted
            ]
            if stale:
                self.hook.delete_objects(bucket=self.bucket, keys=stale)
            for src, dst in copies:
                self.hook.copy_object(src, dst, source_bucket_name=self.bucket, dest_bucket_name=self.bucket)
            import_uri = layout.s3_uri(self.bucket, increment)
            self.log.info(
                "INCREMENTAL import: %d new partition(s) %s, %s rows, %d bytes%s",
                len(plan.partitions),
                sorted(plan.partitions),
                plan.rows,
                plan.bytes,
                f"; not imported this run: {plan.skip}" if plan.skip else "",
            )
        return {
            "import_uri": import_uri,
            "import_mode": plan.mode,
            "import_partitions": plan.partitions,
            "import_rows": plan.rows,
            "import_bytes": plan.bytes,
            "import_skip": plan.skip,
        }


class ValidateInteractionsOperator(_PartitionOperator):
    """
    Validate the CSV files under an S3 folder against a Personalize schema; fail with file/line/field.

    :param s3_uri: ``s3://bucket/folder/`` to validate (e.g. the snapshot's XCom). (templated)
    :param schema: Avro schema dict or JSON file (relative names resolve in include/schemas).
    :param dataset: ``interactions`` applies the interactions minimums.
    :param max_errors: Stop after this many errors.
    :param min_rows: Override the minimum row count.
    """

    template_fields: Sequence[str] = aws_template_fields("s3_uri")

    def __init__(
        self,
        *,
        s3_uri: str,
        schema: dict[str, Any] | str = "interactions.json",
        dataset: str = "interactions",
        max_errors: int = 20,
        min_rows: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.s3_uri = s3_uri
        self.schema = schema
        self.dataset = dataset
        self.max_errors = max_errors
        self.min_rows = min_rows

    def execute(self, context: Context) -> dict[str, Any]:
        from personalize_logic.interactions_validation import CsvValidator, InteractionsValidationError

        try:
            bucket, folder = layout.split_s3(self.s3_uri)
        except ValueError as exc:
            raise AirflowException(f"s3_uri: {exc}") from exc
        validator = CsvValidator(
            load_schema(self.schema), dataset=self.dataset, max_errors=self.max_errors, min_rows=self.min_rows
        )
        keys = sorted(
            k for k in self.hook.list_keys(bucket_name=bucket, prefix=folder) or [] if k.endswith(".csv")
        )
        for object_key in keys:
            body = self.hook.conn.get_object(Bucket=bucket, Key=object_key)["Body"]
            try:
                validator.validate_bytes_stream(layout.s3_uri(bucket, object_key), body)
            finally:
                body.close()
            if validator.report.truncated:
                break
        report = validator.finish()
        self.log.info("Validation of %s: %s", self.s3_uri, json.dumps(report.as_dict()))
        if not report.ok:
            raise AirflowException(str(InteractionsValidationError(report)))
        return report.as_dict()
