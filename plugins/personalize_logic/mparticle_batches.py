"""
Turn Personalize batch-inference output into mParticle Events API request bodies.

One output line (one user) becomes one mParticle *batch*::

    {"environment": "production",
     "source_request_id": "<uuid5(run key, user id)>",
     "mpid": 8016957248024779345,                      # or "user_identities": {"customer_id": "..."}
     "user_attributes": {"product_recs": ["i1", "i2", ...]},
     "events": [{"event_type": "custom_event",
                 "data": {"event_name": "AWS Recs Update", "custom_event_type": "other",
                          "source_message_id": "<same uuid>",
                          "custom_attributes": {"product_recs": "i1,i2,..."}}}]}

and :class:`RequestPacker` groups batches into ``/v2/bulkevents`` bodies (a JSON array).

Limits applied (mParticle "default service limits"; ``shared/reference`` §5.4):

* ``user_attributes`` list: at most 1000 entries of at most 512 characters. Longer lists are cut to
  ``max_items``; over-long ids are dropped. Both are reported as dead-letter records
  (``items_truncated`` / ``item_too_long``) while the user is still uploaded.
* Event attribute values: at most 4096 characters, so the comma-joined event attribute carries the
  leading ids that fit whole; the complete list is always in the user attribute.
* One batch at most 128 KB (dead-lettered as ``batch_too_large``); one request at most 100 batches
  and 256 KB (the packer never exceeds them).

Identity: with ``identity_type="mpid"`` the Personalize USER_ID *is* the mParticle ID, emitted as a
JSON integer written from its decimal digits (never through ``float``: MPIDs exceed 2**53); it must be
a signed 64-bit integer. With ``"customer_id"`` it goes to ``user_identities.customer_id`` (the
spelling of the JSON reference and schema; the Python SDK's ``customerid`` is not used).

``source_request_id`` is a UUID-5 of (run key, user id): deterministic, so a re-sent batch (the
window between an accepted request and the checkpoint write) carries the id mParticle deduplicates on.

Batches are serialised by templating with the C JSON string encoder instead of building a dict and
calling :func:`json.dumps` per user; the output is byte-for-byte the compact ``json.dumps`` of the
dict shown above (tested).

Pure module: no Airflow import.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from personalize_logic.batch_output import OutputRecord, TooLongLine, parse_line
from personalize_logic.text import is_text

MAX_BATCHES_PER_REQUEST = 100
MAX_BATCH_BYTES = 128 * 1024
MAX_REQUEST_BYTES = 256 * 1024
MAX_ATTRIBUTE_NAME_CHARS = 256
MAX_ATTRIBUTE_VALUE_CHARS = 4096
MAX_LIST_ENTRIES = 1000
MAX_LIST_ENTRY_CHARS = 512
MAX_EVENT_NAME_CHARS = 256
# The longest output line the upload holds in memory. A batch is at most 128 KB and a line of
# numResults ≤ 500 item ids (≤ 256 characters each) plus scores is under 200 KB, so a longer line
# cannot become a batch: it is dead-lettered as malformed_line without being read into memory.
MAX_OUTPUT_LINE_BYTES = 8 * 1024 * 1024
ENVIRONMENTS = ("production", "development")
IDENTITY_TYPES = ("mpid", "customer_id")
CUSTOM_EVENT_TYPES = (
    "navigation",
    "location",
    "search",
    "transaction",
    "user_content",
    "user_preference",
    "social",
    "other",
    "media",
)
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# Namespace of this project's source_request_id UUIDs (uuid5 of a fixed URL).
SOURCE_REQUEST_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/airflow-personalize/mparticle")

_INTEGER = re.compile(r"-?[0-9]{1,40}")  # longer cannot be an int64 (and int() refuses > 4300 digits)
_VARIANT = {f"{n:x}": f"{(n & 0x3) | 0x8:x}" for n in range(16)}
_encode = json.encoder.encode_basestring_ascii  # C accelerated

# Dead-letter reason codes.
REASON_PERSONALIZE_ERROR = "personalize_error"
REASON_MALFORMED_LINE = "malformed_line"
REASON_MISSING_USER_ID = "missing_user_id"
REASON_INVALID_MPID = "invalid_mpid"
REASON_INVALID_USER_ID = "invalid_user_id"
REASON_NO_RECOMMENDATIONS = "no_recommendations"
REASON_ITEM_TOO_LONG = "item_too_long"
REASON_INVALID_ITEM = "invalid_item"
REASON_ITEMS_TRUNCATED = "items_truncated"
REASON_BATCH_TOO_LARGE = "batch_too_large"


@dataclass(frozen=True)
class BatchSettings:
    """
    How output lines become mParticle batches.

    :param run_key: identifies the run; with the user id it seeds ``source_request_id``.
    :param environment: ``"production"`` or ``"development"``.
    :param identity_type: ``"mpid"`` (USER_ID is the mParticle ID) or ``"customer_id"``.
    :param attribute_name: user attribute (and event attribute) holding the recommendations.
    :param event_name: name of the custom event sent with each batch; None sends no event.
    :param custom_event_type: mParticle ``custom_event_type`` of that event.
    :param max_items: keep at most this many recommended items per user (1..1000).
    :param user_id_field: key of the user id inside the output line's ``input`` object.
    """

    run_key: str
    environment: str = "production"
    identity_type: str = "mpid"
    attribute_name: str = "product_recs"
    event_name: str | None = "AWS Recs Update"
    custom_event_type: str = "other"
    max_items: int = MAX_LIST_ENTRIES
    user_id_field: str = "userId"

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field."""
        if not self.run_key:
            raise ValueError("run_key must not be empty")
        if self.environment not in ENVIRONMENTS:
            raise ValueError(f"environment must be one of {ENVIRONMENTS}, got {self.environment!r}")
        if self.identity_type not in IDENTITY_TYPES:
            raise ValueError(f"identity_type must be one of {IDENTITY_TYPES}, got {self.identity_type!r}")
        if not self.attribute_name or len(self.attribute_name) > MAX_ATTRIBUTE_NAME_CHARS:
            raise ValueError(f"attribute_name must be 1..{MAX_ATTRIBUTE_NAME_CHARS} characters")
        if self.attribute_name.startswith("$"):
            raise ValueError("attribute_name must not start with '$' (reserved by mParticle)")
        if self.event_name is not None and not 0 < len(self.event_name) <= MAX_EVENT_NAME_CHARS:
            raise ValueError(f"event_name must be 1..{MAX_EVENT_NAME_CHARS} characters")
        if self.custom_event_type not in CUSTOM_EVENT_TYPES:
            raise ValueError(f"custom_event_type must be one of {CUSTOM_EVENT_TYPES}")
        if not 1 <= self.max_items <= MAX_LIST_ENTRIES:
            raise ValueError(f"max_items must be between 1 and {MAX_LIST_ENTRIES}, got {self.max_items}")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """
    One record of the dead-letter file.

    :param line_number: line of the output file the record is about.
    :param reason: machine-readable code (``REASON_*``).
    :param detail: human-readable explanation naming the field.
    :param user_id: the user id when known.
    :param error: Personalize's ``error`` text for ``personalize_error`` records.
    :param items: the dropped item ids (``item_too_long`` / ``items_truncated``).
    :param user_uploaded: True when the user was still sent (only some items were dropped).
    """

    line_number: int
    reason: str
    detail: str
    user_id: str | None = None
    error: str | None = None
    items: tuple[str, ...] = ()
    user_uploaded: bool = False

    def to_dict(self, source: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line_number, "reason": self.reason, "detail": self.detail}
        if source is not None:
            out["file"] = source
        if self.user_id is not None:
            out["user_id"] = self.user_id
        if self.error is not None:
            out["error"] = self.error
        if self.items:
            out["items"] = list(self.items)
        out["user_uploaded"] = self.user_uploaded
        return out


class BuildResult(NamedTuple):
    """The batch built from one output line (None if the user is not sent) and its dead letters."""

    batch: bytes | None
    user_id: str | None
    dead_letters: tuple[DeadLetter, ...] = ()
    items_dropped: int = 0


def source_request_id(namespace: uuid.UUID, user_id: str) -> str:
    """Return ``str(uuid.uuid5(namespace, user_id))`` without building UUID objects (hot path)."""
    h = hashlib.sha1(namespace.bytes + user_id.encode("utf-8")).hexdigest()
    # RFC 4122: version nibble 5, variant bits 10xx
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def run_namespace(run_key: str) -> uuid.UUID:
    """The UUID namespace of one run: every source_request_id of the run is derived from it."""
    return uuid.uuid5(SOURCE_REQUEST_NAMESPACE, run_key)


def parse_mpid(user_id: str) -> int | None:
    """Return the signed 64-bit integer written in ``user_id`` (decimal digits only), else None."""
    text = user_id.strip()
    if not _INTEGER.fullmatch(text):
        return None
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else None


class BatchBuilder:
    """Build the mParticle batch (compact JSON bytes) for each batch-inference output record."""

    def __init__(self, settings: BatchSettings) -> None:
        settings.validate()
        self.settings = settings
        self.namespace = run_namespace(settings.run_key)
        name = _encode(settings.attribute_name)
        self._head = '{"environment":' + _encode(settings.environment) + ',"source_request_id":"'
        self._attrs_open = ',"user_attributes":{' + name + ":["
        if settings.event_name is None:
            self._event_open = ""
            self._event_mid = ""
            self._tail = "]}}"
        else:
            self._event_open = (
                ']},"events":[{"event_type":"custom_event","data":{"event_name":'
                + _encode(settings.event_name)
                + ',"custom_event_type":'
                + _encode(settings.custom_event_type)
                + ',"source_message_id":"'
            )
            self._event_mid = '","custom_attributes":{' + name + ":"
            self._tail = "}}}]}"
        self._fast_line = _fast_line_pattern(settings.user_id_field)

    # ------------------------------------------------------------------ identity
    def _identity(self, record: OutputRecord) -> tuple[str | None, str | None, DeadLetter | None]:
        """Return (user id, JSON fragment for the identity, dead letter)."""
        raw_input = record.input or {}
        user_id = raw_input.get(self.settings.user_id_field)
        if isinstance(user_id, int) and not isinstance(user_id, bool):
            user_id = str(user_id)
        if not isinstance(user_id, str) or not user_id.strip():
            return (
                None,
                None,
                DeadLetter(
                    record.line_number,
                    REASON_MISSING_USER_ID,
                    f"input.{self.settings.user_id_field} is missing or not a non-empty string",
                ),
            )
        if self.settings.identity_type == "mpid":
            mpid = parse_mpid(user_id)
            if mpid is None:
                return (
                    user_id,
                    None,
                    DeadLetter(
                        record.line_number,
                        REASON_INVALID_MPID,
                        f"input.{self.settings.user_id_field} is not a signed 64-bit integer mpid",
                        user_id=user_id,
                    ),
                )
            return user_id, '"mpid":' + str(mpid), None
        if not is_text(user_id):
            return (
                user_id,
                None,
                DeadLetter(
                    record.line_number,
                    REASON_INVALID_USER_ID,
                    f"input.{self.settings.user_id_field} holds a lone UTF-16 surrogate, not text",
                    user_id=user_id,
                ),
            )
        return user_id, '"user_identities":{"customer_id":' + _encode(user_id) + "}", None

    # ------------------------------------------------------------------ items
    def _items(self, record: OutputRecord, user_id: str) -> tuple[list[str], list[DeadLetter], int]:
        """
        The item ids to send for ``output.recommendedItems``, a dead letter per kind of entry dropped
        (not a string, empty or too long, past ``max_items``), and the number of entries dropped.
        """
        items = (record.output or {}).get("recommendedItems")
        if not isinstance(items, list):
            return [], [], 0
        # Fast path (nearly every line): all non-empty strings within the limits; checked in C loops.
        if (
            len(items) <= self.settings.max_items
            and all(type(item) is str for item in items)
            and (not items or (min(map(len, items)) > 0 and max(map(len, items)) <= MAX_LIST_ENTRY_CHARS))
        ):
            return items, [], 0
        kept, invalid, bad_length = _sort_items(items)
        max_items = self.settings.max_items
        kept, cut = kept[:max_items], kept[max_items:]
        dropped = [
            (
                invalid,
                REASON_INVALID_ITEM,
                f"{invalid} entries of output.recommendedItems are not strings",
                (),
            ),
            (
                len(bad_length),
                REASON_ITEM_TOO_LONG,
                f"item ids longer than {MAX_LIST_ENTRY_CHARS} characters (or empty) dropped "
                "from output.recommendedItems",
                tuple(bad_length),
            ),
            (
                len(cut),
                REASON_ITEMS_TRUNCATED,
                f"output.recommendedItems has more than {max_items} entries; the rest were not sent",
                tuple(cut),
            ),
        ]
        dead = [
            DeadLetter(record.line_number, reason, detail, user_id=user_id, items=ids, user_uploaded=True)
            for count, reason, detail, ids in dropped
            if count
        ]
        return kept, dead, sum(count for count, *_ in dropped)

    # ------------------------------------------------------------------ build
    def build_line(
        self, line: bytes, line_number: int, start_offset: int, end_offset: int
    ) -> tuple[OutputRecord | None, BuildResult]:
        """
        Build the batch for one raw output line (hot path of the operator).

        A line of the common shape (compact or spaced ``input``/``output``/``error:null`` with
        printable-ASCII ids and no escapes) is matched by one regular expression and its item list is
        reused as JSON text, with no JSON decoding; any other line goes through
        :func:`~personalize_logic.batch_output.parse_line` and :meth:`build`. Both paths produce the
        same bytes (tested). Returns the parsed record when the slow path ran (else None).
        """
        match = None if type(line) is TooLongLine else self._fast_line.fullmatch(line)
        if match is not None:
            user_id = match.group(1).decode("ascii")
            raw_items = match.group(2)
            identity = self._fast_identity(user_id)
            if identity is not None and raw_items:
                text = raw_items.decode("ascii")
                # items cannot contain '"', so this split is exact; the pattern bounded their length
                items = text[1:-1].split('","')
                if len(items) <= self.settings.max_items:
                    body = self._assemble(user_id, identity, text, '"' + joined_within_limit(items) + '"')
                    if len(body) <= MAX_BATCH_BYTES:
                        return None, BuildResult(body, user_id)
        record = parse_line(line, line_number, start_offset, end_offset, keep_scores=False)
        return record, self.build(record)

    def _fast_identity(self, user_id: str) -> str | None:
        if self.settings.identity_type == "mpid":
            mpid = parse_mpid(user_id)
            return None if mpid is None else '"mpid":' + str(mpid)
        return '"user_identities":{"customer_id":"' + user_id + '"}' if user_id.strip() else None

    def _assemble(self, user_id: str, identity: str, items_json: str, joined_json: str) -> bytes:
        request_id = source_request_id(self.namespace, user_id)
        if self._event_open:
            text = "".join(
                (
                    self._head,
                    request_id,
                    '",',
                    identity,
                    self._attrs_open,
                    items_json,
                    self._event_open,
                    request_id,
                    self._event_mid,
                    joined_json,
                    self._tail,
                )
            )
        else:
            text = "".join((self._head, request_id, '",', identity, self._attrs_open, items_json, self._tail))
        return text.encode("ascii")

    def build(self, record: OutputRecord) -> BuildResult:
        """Build the batch for one record, or the dead letter explaining why there is none."""
        if record.parse_error is not None:
            return BuildResult(
                None, None, (DeadLetter(record.line_number, REASON_MALFORMED_LINE, record.parse_error),)
            )
        user_id, identity, dead = self._identity(record)
        if record.error is not None:
            return BuildResult(
                None,
                user_id,
                (
                    DeadLetter(
                        record.line_number,
                        REASON_PERSONALIZE_ERROR,
                        "Personalize reported an error for this input line",
                        user_id=user_id,
                        error=record.error,
                    ),
                ),
            )
        if dead is not None or identity is None or user_id is None:
            return BuildResult(None, user_id, (dead,) if dead else ())
        items, item_dead, dropped = self._items(record, user_id)
        if not items:
            return BuildResult(
                None,
                user_id,
                (
                    *item_dead,
                    DeadLetter(
                        record.line_number,
                        REASON_NO_RECOMMENDATIONS,
                        "output.recommendedItems is missing, not a list or has no valid item id",
                        user_id=user_id,
                    ),
                ),
                dropped,
            )
        body = self._assemble(
            user_id, identity, ",".join(map(_encode, items)), _encode(joined_within_limit(items))
        )
        if len(body) > MAX_BATCH_BYTES:
            return BuildResult(
                None,
                user_id,
                (
                    *item_dead,
                    DeadLetter(
                        record.line_number,
                        REASON_BATCH_TOO_LARGE,
                        f"the batch is {len(body)} bytes, above mParticle's {MAX_BATCH_BYTES}-byte limit",
                        user_id=user_id,
                    ),
                ),
                dropped,
            )
        return BuildResult(body, user_id, tuple(item_dead), dropped)


# A JSON string of 1..512 printable ASCII characters without escapes (its text is its value).
_ITEM = rb'"[\x20\x21\x23-\x5b\x5d-\x7e]{1,%d}"' % MAX_LIST_ENTRY_CHARS


def _sort_items(items: list[Any]) -> tuple[list[str], int, list[str]]:
    """
    Split recommended items into (sendable ids, number of entries that are not strings, ids that are
    empty or longer than an mParticle list entry). Integers are taken as their decimal text.
    """
    kept: list[str] = []
    invalid = 0
    bad_length: list[str] = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        elif not isinstance(item, str):
            invalid += 1
            continue
        if len(item) > MAX_LIST_ENTRY_CHARS or not item:
            bad_length.append(item)
        else:
            kept.append(item)
    return kept, invalid, bad_length


def _fast_line_pattern(user_id_field: str) -> re.Pattern[bytes]:
    """
    The common output line shape, matched whole; group 1 = user id, group 2 = items JSON text.

    Only compact lines (as Personalize writes them) whose JSON meaning is fully determined by the
    match are accepted: strings are printable ASCII without escapes (so their text is their value),
    item ids are 1..512 characters and ``error`` is null or absent.
    ``scores`` is not used and only checked to hold number characters, exactly like the general
    path (``parse_line(keep_scores=False)``). Everything else takes the general path.
    """
    template = (
        rb'\{"input":\{"KEY":"([\x21\x23-\x5b\x5d-\x7e][\x20\x21\x23-\x5b\x5d-\x7e]*)"\},'
        rb'"output":\{"recommendedItems":\[(S(?:,S)*)?\]'
        rb'(?:,"scores":\[[-+0-9.eE,]*\])?\}'
        rb'(?:,"error":null)?\}'
    )
    key = re.escape(_encode(user_id_field)[1:-1].encode("ascii"))
    pattern = template.replace(b"S", _ITEM).replace(b"KEY", key)
    return re.compile(pattern)


def joined_within_limit(items: Sequence[str], limit: int = MAX_ATTRIBUTE_VALUE_CHARS) -> str:
    """Comma-join the leading ``items`` that fit whole in ``limit`` characters."""
    joined = ",".join(items)
    if len(joined) <= limit:
        return joined
    size = -1
    count = 0
    for item in items:
        if size + 1 + len(item) > limit:
            break
        size += 1 + len(item)
        count += 1
    return ",".join(items[:count])


def batch_dict(settings: BatchSettings, user_id: str, items: Sequence[str]) -> dict[str, Any]:
    """
    The batch :meth:`BatchBuilder.build` writes, as a dict (reference implementation for tests).

    ``items`` must already respect the limits.
    """
    request_id = source_request_id(run_namespace(settings.run_key), user_id)
    batch: dict[str, Any] = {"environment": settings.environment, "source_request_id": request_id}
    if settings.identity_type == "mpid":
        batch["mpid"] = int(user_id)
    else:
        batch["user_identities"] = {"customer_id": user_id}
    batch["user_attributes"] = {settings.attribute_name: list(items)}
    if settings.event_name is not None:
        batch["events"] = [
            {
                "event_type": "custom_event",
                "data": {
                    "event_name": settings.event_name,
                    "custom_event_type": settings.custom_event_type,
                    "source_message_id": request_id,
                    "custom_attributes": {settings.attribute_name: joined_within_limit(items)},
                },
            }
        ]
    return batch


# ---------------------------------------------------------------------- packing
@dataclass(frozen=True, slots=True)
class PackedRequest:
    """
    One ``/v2/bulkevents`` body and where to resume once mParticle accepted it.

    :param body: the JSON array of batches (bytes).
    :param batch_count: number of batches in ``body``.
    :param resume_offset: byte offset of the first input line *not* covered by this request and the
        ones before it (lines in between were packed or dead-lettered).
    :param resume_line: number of input lines before ``resume_offset``.
    """

    body: bytes
    batch_count: int
    resume_offset: int
    resume_line: int


@dataclass
class RequestPacker:
    """
    Group serialised batches into request bodies of at most ``max_batches`` and ``max_bytes``.

    Call :meth:`add` per batch with the position of its input line; it returns the pending request
    when the new batch does not fit in it (the new batch then starts the next request). Call
    :meth:`finish` at the end of the input for the last request.
    """

    max_batches: int = MAX_BATCHES_PER_REQUEST
    max_bytes: int = MAX_REQUEST_BYTES
    _parts: list[bytes] = field(default_factory=list)
    _size: int = 1  # "[" ... "]" minus one comma for the first batch

    def __post_init__(self) -> None:
        if not 1 <= self.max_batches <= MAX_BATCHES_PER_REQUEST:
            raise ValueError(f"max_batches must be 1..{MAX_BATCHES_PER_REQUEST}")
        if not 2 < self.max_bytes <= MAX_REQUEST_BYTES:
            raise ValueError(f"max_bytes must be at most {MAX_REQUEST_BYTES}")

    @property
    def pending(self) -> int:
        return len(self._parts)

    def _take(self, resume_offset: int, resume_line: int) -> PackedRequest:
        body = b"[" + b",".join(self._parts) + b"]"
        request = PackedRequest(body, len(self._parts), resume_offset, resume_line)
        self._parts = []
        self._size = 1
        return request

    def add(self, batch: bytes, *, start_offset: int, lines_before: int) -> PackedRequest | None:
        """
        Add one batch whose input line starts at ``start_offset`` after ``lines_before`` lines.

        :return: the full request to send now, or None.
        """
        if len(batch) + 2 > self.max_bytes:
            raise ValueError(f"a batch of {len(batch)} bytes cannot fit in a {self.max_bytes}-byte request")
        out = None
        if self._parts and (
            len(self._parts) >= self.max_batches or self._size + 1 + len(batch) > self.max_bytes
        ):
            out = self._take(start_offset, lines_before)
        self._parts.append(batch)
        self._size += 1 + len(batch)
        return out

    def finish(self, *, end_offset: int, lines: int) -> PackedRequest | None:
        """Return the last request (covering the input up to ``end_offset``), or None if empty."""
        return self._take(end_offset, lines) if self._parts else None


def iter_requests(
    records: Iterable[OutputRecord],
    builder: BatchBuilder,
    packer: RequestPacker | None = None,
    dead_letters: list[DeadLetter] | None = None,
) -> Iterator[PackedRequest]:
    """
    Build and pack every record; dead letters are appended to ``dead_letters`` when given.

    Convenience for tests; the operator drives :class:`BatchBuilder` and
    :class:`RequestPacker` itself to interleave checkpoints.
    """
    packer = packer or RequestPacker()
    end_offset = 0
    lines = 0
    for record in records:
        end_offset, lines = record.end_offset, record.line_number
        result = builder.build(record)
        if dead_letters is not None and result.dead_letters:
            dead_letters.extend(result.dead_letters)
        if result.batch is not None:
            request = packer.add(
                result.batch, start_offset=record.start_offset, lines_before=record.line_number - 1
            )
            if request is not None:
                yield request
    last = packer.finish(end_offset=end_offset, lines=lines)
    if last is not None:
        yield last
