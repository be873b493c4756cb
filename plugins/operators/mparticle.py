"""
Upload Amazon Personalize batch-inference recommendations to mParticle as user attributes.

:class:`PersonalizeRecsToMParticleOperator` streams ONE ``.out`` file from S3 (ranged reads, a chunk
at a time) and posts one mParticle batch per user through ``/v2/bulkevents``
(:mod:`personalize_logic.mparticle_batches` builds and packs them). Large jobs fan out with dynamic
task mapping, one mapped task per output file::

    files = task(list_batch_output_files)(output_prefix="s3://bucket/batch/{{ ds_nodash }}/")
    PersonalizeRecsToMParticleOperator.partial(
        task_id="recs_to_mparticle", state_prefix="s3://bucket/mparticle-state",
        max_active_tis_per_dagrun=1,      # or divide rate_limit_per_s among the parallel tasks
    ).expand(output_uri=files)

Exactly-once bookkeeping (a retried or cleared task neither loses nor re-sends a user):

* after every request mParticle accepted (202) the operator writes a checkpoint object
  ``<state_prefix>/checkpoints/<run key>/<file id>.json`` holding the byte offset and line number up
  to which every line is either uploaded or dead-lettered, the counts, and the dead-letter records
  not yet written to a part file;
* a new attempt reads the checkpoint and resumes with a ranged GET from that offset (``IfMatch`` the
  ETag recorded at the start, so a replaced output file fails loudly instead of mixing two files); a
  completed checkpoint makes the task return the recorded counts without sending anything.

The one unavoidable window: a crash (or a lost 202) between mParticle accepting a request and the
checkpoint write re-sends that one request (at most 100 users) on the next attempt. Each batch has a
``source_request_id`` derived from (run key, user id), which is what mParticle deduplicates inbound
batches on, so the re-sent batches are identical and deduplicated (the embedded emulator does the
same, which is how the tests count 0 duplicates). A new DAG run has a new run key: it re-sends on
purpose.

Dead letters (JSON lines, one record per problem, with ``reason``, ``line``, ``user_id``) go to
``<state_prefix>/dead_letter/<run key>/<file id>/part-NNNNN.jsonl``. A line that cannot be read at all
(not JSON, not UTF-8, nested deeper than the parser can follow, longer than
``MAX_OUTPUT_LINE_BYTES``) is one ``malformed_line`` dead letter like any other: the upload goes on
past it, so a poison line never pins every retry at the same checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.exceptions import AirflowException
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk import BaseOperator
from botocore.exceptions import ClientError

from hooks.mparticle import DEFAULT_RATE_LIMIT_PER_S, MParticleHook
from personalize_logic import layout

# The DAG files import this module on every parse; the modules only execute() needs are imported
# inside the methods that use them (benchmarks/bench_parse.py measures the difference).
if TYPE_CHECKING:
    from airflow.sdk import Context

    from personalize_logic.mparticle_batches import BatchBuilder, BatchSettings, BuildResult, PackedRequest

CHECKPOINT_VERSION = 1
DEAD_LETTER_FLUSH_RECORDS = 1000
DEAD_LETTER_FLUSH_BYTES = 256 * 1024  # keeps checkpoint objects small
COUNT_KEYS = ("lines", "users_uploaded", "requests", "dead_lettered", "errors_in_output", "items_dropped")


def list_batch_output_files(output_prefix: str, aws_conn_id: str | None = "aws_default") -> list[str]:
    """
    List the ``.out`` result files under a batch-inference job's output prefix (sorted S3 URIs).

    ``_CHECK`` and anything not ending in ``.out`` is ignored. Usable directly in ``@task`` /
    ``task(list_batch_output_files)(...)`` to feed ``.expand(output_uri=...)``.

    :param output_prefix: ``s3://bucket/prefix/`` of the job's ``jobOutput``.
    :param aws_conn_id: AWS connection.
    """
    from personalize_logic.batch_output import is_output_key

    hook = S3Hook(aws_conn_id=aws_conn_id)
    bucket, prefix = layout.split_s3(output_prefix)
    keys = hook.list_keys(bucket_name=bucket, prefix=prefix) or []
    files = sorted(layout.s3_uri(bucket, key) for key in keys if is_output_key(key))
    if not files:
        hook.log.warning("No .out file under %s", output_prefix)
    return files


class PersonalizeRecsToMParticleOperator(BaseOperator):
    """
    Upload one Personalize batch-inference output file to mParticle, resumable and deduplicated.

    Returns (XCom) ``{"output_uri", "users_uploaded", "requests", "dead_lettered",
    "errors_in_output", "items_dropped", "lines", "checkpoint", "dead_letter"}``; ``dead_letter`` is the
    dead-letter prefix URI, or None when nothing was dead-lettered.

    :param output_uri: ``s3://`` URI of one ``.out`` file. (templated)
    :param state_prefix: ``s3://`` prefix for checkpoints and dead letters. (templated)
    :param run_key: identifies the run for checkpoints and ``source_request_id``; default
        ``<dag_id>/<run_id>/<task_id>``. (templated)
    :param environment: mParticle ``environment``: ``production`` or ``development``. (templated)
    :param identity_type: ``mpid`` (USER_ID is the mParticle ID) or ``customer_id``.
    :param attribute_name: user attribute receiving the item ids. (templated)
    :param event_name: custom event sent with each batch; None sends none. (templated)
    :param max_items: keep at most this many items per user (≤ 1000).
    :param user_id_field: key of the user id in the output line's ``input``.
    :param mparticle_conn_id: mParticle HTTP connection.
    :param aws_conn_id: AWS connection for S3.
    :param rate_limit_per_s: client-side limit in batches/s for this task.
    :param max_attempts: attempts per HTTP request (429 / 5xx / network errors).
    :param max_dead_letter_fraction: fail the task when more than this fraction of the lines were
        not uploaded (None: never). Checked again on a rerun of a completed file.
    :param chunk_size: bytes per S3 read.
    """

    template_fields: Sequence[str] = (
        "output_uri",
        "state_prefix",
        "run_key",
        "environment",
        "attribute_name",
        "event_name",
    )

    def __init__(
        self,
        *,
        output_uri: str,
        state_prefix: str,
        run_key: str | None = None,
        environment: str = "production",
        identity_type: str = "mpid",
        attribute_name: str = "product_recs",
        event_name: str | None = "AWS Recs Update",
        max_items: int = 1000,
        user_id_field: str = "userId",
        mparticle_conn_id: str = "mparticle_default",
        aws_conn_id: str | None = "aws_default",
        rate_limit_per_s: float = DEFAULT_RATE_LIMIT_PER_S,
        max_attempts: int = 8,
        max_dead_letter_fraction: float | None = None,
        chunk_size: int = 1 << 20,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.output_uri = output_uri
        self.state_prefix = state_prefix
        self.run_key = run_key
        self.environment = environment
        self.identity_type = identity_type
        self.attribute_name = attribute_name
        self.event_name = event_name
        self.max_items = max_items
        self.user_id_field = user_id_field
        self.mparticle_conn_id = mparticle_conn_id
        self.aws_conn_id = aws_conn_id
        self.rate_limit_per_s = rate_limit_per_s
        self.max_attempts = max_attempts
        self.max_dead_letter_fraction = max_dead_letter_fraction
        self.chunk_size = chunk_size

    @cached_property
    def hook(self) -> MParticleHook:
        return MParticleHook(
            self.mparticle_conn_id, rate_limit_per_s=self.rate_limit_per_s, max_attempts=self.max_attempts
        )

    @cached_property
    def s3_hook(self) -> S3Hook:
        return S3Hook(aws_conn_id=self.aws_conn_id)

    # ------------------------------------------------------------------ state
    def _paths(self, run_key: str) -> tuple[str, str]:
        """The checkpoint URI and the dead-letter prefix of this file in this task run."""
        return (
            layout.checkpoint_uri(self.state_prefix, run_key, self.output_uri),
            layout.dead_letter_uri(self.state_prefix, run_key, self.output_uri),
        )

    def _read_checkpoint(self, uri: str) -> dict[str, Any] | None:
        bucket, key = layout.split_s3(uri)
        try:
            body = self.s3_hook.get_conn().get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return json.loads(body)

    def _put(self, uri: str, body: bytes, content_type: str) -> None:
        bucket, key = layout.split_s3(uri)
        self.s3_hook.get_conn().put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    def _flush_dead_letters(self, state: dict[str, Any], dead_letter_prefix: str) -> None:
        pending = state["pending_dead_letters"]
        if not pending:
            return
        part = state["dead_letter_parts"]
        # ASCII escapes: a user id may hold a lone surrogate (a JSON "\ud800" escape), which UTF-8 cannot encode
        body = "".join(json.dumps(record) + "\n" for record in pending)
        self._put(
            layout.dead_letter_part_uri(dead_letter_prefix, part), body.encode(), "application/x-ndjson"
        )
        state["dead_letter_parts"] = part + 1
        state["pending_dead_letters"] = []

    def _save(self, state: dict[str, Any], checkpoint_uri: str, dead_letter_prefix: str) -> None:
        pending = state["pending_dead_letters"]
        if pending and (
            len(pending) >= DEAD_LETTER_FLUSH_RECORDS or len(json.dumps(pending)) >= DEAD_LETTER_FLUSH_BYTES
        ):
            self._flush_dead_letters(state, dead_letter_prefix)
        self._put(checkpoint_uri, json.dumps(state).encode(), "application/json")

    def _start_or_resume(self, checkpoint_uri: str, run_key: str, etag: str, size: int) -> dict[str, Any]:
        """The checkpointed state of this file, or a fresh one; a replaced file is an error."""
        state = self._read_checkpoint(checkpoint_uri)
        if state is None:
            return {
                "version": CHECKPOINT_VERSION,
                "output_uri": self.output_uri,
                "run_key": run_key,
                "etag": etag,
                "size": size,
                "offset": 0,
                "line": 0,
                "complete": False,
                "counts": dict.fromkeys(COUNT_KEYS, 0),
                "dead_letter_parts": 0,
                "pending_dead_letters": [],
            }
        if state.get("etag") != etag:
            raise AirflowException(
                f"{self.output_uri} changed since checkpoint {checkpoint_uri} was written (ETag "
                f"{state.get('etag')} → {etag}); delete the checkpoint to upload the new file in this run"
            )
        self.log.info(
            "Resuming %s from checkpoint %s: byte %d, line %d, %d users already uploaded%s",
            self.output_uri,
            checkpoint_uri,
            state["offset"],
            state["line"],
            state["counts"]["users_uploaded"],
            " (file complete)" if state["complete"] else "",
        )
        return state

    # ------------------------------------------------------------------ execute
    def execute(self, context: Context) -> dict[str, Any]:
        from personalize_logic.mparticle_batches import BatchBuilder

        run_key = self.run_key or layout.task_run_key_from_context(context)
        builder = BatchBuilder(self._settings(run_key))  # validates the settings before any I/O
        checkpoint_uri, dead_letter_prefix = self._paths(run_key)
        bucket, key = layout.split_s3(self.output_uri)
        s3 = self.s3_hook.get_conn()
        head = s3.head_object(Bucket=bucket, Key=key)
        etag, size = head["ETag"], head["ContentLength"]
        state = self._start_or_resume(checkpoint_uri, run_key, etag, size)
        if not state["complete"]:
            self._upload(s3, bucket, key, etag, size, builder, state, checkpoint_uri, dead_letter_prefix)
        return self._report(state, checkpoint_uri, dead_letter_prefix)

    def _settings(self, run_key: str) -> BatchSettings:
        from personalize_logic.mparticle_batches import BatchSettings

        return BatchSettings(
            run_key=run_key,
            environment=self.environment,
            identity_type=self.identity_type,
            attribute_name=self.attribute_name,
            event_name=self.event_name,
            max_items=self.max_items,
            user_id_field=self.user_id_field,
        )

    def _upload(
        self,
        s3: Any,
        bucket: str,
        key: str,
        etag: str,
        size: int,
        builder: BatchBuilder,
        state: dict[str, Any],
        checkpoint_uri: str,
        dead_letter_prefix: str,
    ) -> None:
        """Upload the file from the checkpointed offset to its end, checkpointing after every request."""
        from personalize_logic.batch_output import iter_lines
        from personalize_logic.mparticle_batches import MAX_OUTPUT_LINE_BYTES, RequestPacker

        packer = RequestPacker()
        last_line = state["line"]
        if state["offset"] < size:
            body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={state['offset']}-", IfMatch=etag)[
                "Body"
            ]
            for line_number, start, end, line in iter_lines(
                body.iter_chunks(self.chunk_size),
                start_offset=state["offset"],
                start_line=state["line"],
                max_line_bytes=MAX_OUTPUT_LINE_BYTES,
            ):
                last_line = line_number
                _record, result = builder.build_line(line, line_number, start, end)
                if result.batch is not None:
                    request = packer.add(result.batch, start_offset=start, lines_before=line_number - 1)
                    if request is not None:  # covers only lines before this one
                        self._send(request, state)
                        state["offset"], state["line"] = request.resume_offset, request.resume_line
                        state["counts"]["lines"] = request.resume_line
                        self._save(state, checkpoint_uri, dead_letter_prefix)
                self._account_line(result, state)
        last = packer.finish(end_offset=size, lines=last_line)
        if last is not None:
            self._send(last, state)
        state["offset"], state["line"] = size, last_line
        state["counts"]["lines"] = last_line
        self._flush_dead_letters(state, dead_letter_prefix)
        state["complete"] = True
        self._save(state, checkpoint_uri, dead_letter_prefix)

    def _send(self, request: PackedRequest, state: dict[str, Any]) -> None:
        self.hook.upload_bulk_body(request.body, request.batch_count)
        state["counts"]["users_uploaded"] += request.batch_count
        state["counts"]["requests"] += 1

    def _account_line(self, result: BuildResult, state: dict[str, Any]) -> None:
        """Count one line's dead letters and dropped items; queue its dead-letter records."""
        from personalize_logic.mparticle_batches import REASON_PERSONALIZE_ERROR

        counts = state["counts"]
        if result.batch is None:
            counts["dead_lettered"] += 1
        if result.dead_letters:
            state["pending_dead_letters"].extend(
                dead.to_dict(self.output_uri) for dead in result.dead_letters
            )
            if any(dead.reason == REASON_PERSONALIZE_ERROR for dead in result.dead_letters):
                counts["errors_in_output"] += 1
        counts["items_dropped"] += result.items_dropped

    def _report(self, state: dict[str, Any], checkpoint_uri: str, dead_letter_prefix: str) -> dict[str, Any]:
        counts = state["counts"]
        result = {
            "output_uri": self.output_uri,
            **counts,
            "checkpoint": checkpoint_uri,
            "dead_letter": dead_letter_prefix if state["dead_letter_parts"] else None,
        }
        self.log.info(
            "%s: %d users uploaded in %d requests, %d lines dead-lettered (%d Personalize errors), "
            "%d item ids dropped",
            self.output_uri,
            counts["users_uploaded"],
            counts["requests"],
            counts["dead_lettered"],
            counts["errors_in_output"],
            counts["items_dropped"],
        )
        self._check_dead_letter_fraction(counts, result["dead_letter"])
        return result

    def _check_dead_letter_fraction(self, counts: dict[str, int], dead_letter: str | None) -> None:
        if self.max_dead_letter_fraction is None or not counts["lines"]:
            return
        fraction = counts["dead_lettered"] / counts["lines"]
        if fraction > self.max_dead_letter_fraction:
            raise AirflowException(
                f"{counts['dead_lettered']} of {counts['lines']} lines of {self.output_uri} were not "
                f"uploaded ({fraction:.1%} > {self.max_dead_letter_fraction:.1%}); see {dead_letter}"
            )
