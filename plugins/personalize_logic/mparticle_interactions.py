"""mParticle event batches → Amazon Personalize interactions rows (pure, streaming, fast).

Input: files as mParticle's S3 / Firehose outputs land them — newline-delimited JSON (one batch per
line), or one JSON batch / a JSON array of batches per file (pretty-printed is fine), each possibly
gzip-compressed (detected by the magic bytes ``1f 8b``, not by the file name; multi-member gzip is
supported).

Output rows (one per product of a selected commerce event)::

    USER_ID      batch ``mpid`` (default) or ``user_identities.<name>`` (e.g. customer_id)
    ITEM_ID      product ``id`` (fallback ``sku``; configurable list of product fields)
    EVENT_TYPE   ``product_action.action`` (default set: purchase, view_detail, add_to_cart,
                 add_to_wishlist)
    TIMESTAMP    event ``data.timestamp_unixtime_ms // 1000`` (epoch seconds)
    EVENT_VALUE  product ``price`` (optional column; empty when the product has no price)
    SESSION_ID   ``session_uuid`` or ``session_id`` as a string (optional column, off by default:
                 SESSION_ID is not a Personalize reserved field, so it is a categorical metadata
                 column that counts against "event types + metadata columns ≤ 10")

Parsing: each line is decoded with ``msgspec`` (an Airflow core dependency) into typed structs that
declare only the fields used here, so everything else in a batch (device info, attributes...) is
skipped in C. Integers are parsed exactly (arbitrary precision, never through a float), so a 64-bit
``mpid`` like -9223372036854775808 or 2^53+1 reaches the CSV text unchanged. A line the fast path
rejects (malformed JSON, unexpected structure, invalid UTF-8, nesting too deep) goes through a
careful per-line path that either recovers the valid parts or quarantines with a precise reason.

Files: a file is newline-delimited JSON (the fast path) unless its first non-blank line starts a
JSON value that does not end on that line (``{`` alone, ``{ "mpid": 1,`` ...) or starts with ``[``:
then it is read as JSON documents, one or several in a row, pretty-printed or not, each document
standing for one "line" in the counts and named by the line it starts on. A document that does not
parse is quarantined by its first line, and the rest of the file is read line by line (so an NDJSON
file whose first line was cut short loses that line only).

Decisions:

* ``mpid`` is a signed 64-bit integer in mParticle. A JSON integer outside [-2^63, 2^63-1] is
  quarantined (``mpid_out_of_int64_range``) rather than reinterpreted, a float-looking mpid (e.g.
  ``-7.6e18``, already rounded by some JSON tool) is quarantined (``mpid_not_integer``), and
  ``0`` / missing is ``missing_user_id``. A string of ASCII digits (``-?[0-9]{1,40}``) is accepted
  and normalised; digits of other scripts (``"١٢٣"``) are ``invalid_mpid``, never converted.
* Timestamps: ``timestamp_unixtime_ms`` below 1e11 looks like *seconds* (1e11 ms is 1973-03-03);
  those are quarantined as ``timestamp_in_seconds`` (or converted with
  ``seconds_timestamps="convert"``); values ≥ 1e14 are named ``timestamp_in_microseconds``. An event
  without its own ``timestamp_unixtime_ms`` takes its batch's: mParticle's Events API schema makes
  both optional (``EventData.timestamp_unixtime_ms`` and the batch's ``timestamp_unixtime_ms`` are
  ``#/definitions/Integer``, ``["integer", "null"]``, in ``mparticle.inbound.eventsapi.schema.json``,
  ``shared/reference/mparticle/``); counted in ``events_batch_timestamp``. Neither: ``missing_timestamp``.
* IDs: empty, longer than 256 characters, or containing CR/LF (Personalize needs one record per
  line) → quarantined. Commas, quotes and any Unicode are kept; CSV quoting round-trips them.
* EVENT_VALUE (Personalize's ``float``): a JSON number is written as its exact text (an integer) or
  its shortest round-trip text (a float); a non-finite value (``NaN``, ``Infinity``, ``1e400``) is
  ``invalid_event_value``. mParticle's schema types ``price`` as a number, but feeds do send
  ``"19.99"``: a *string* holding a JSON number literal (ASCII, the JSON grammar, no spaces, no
  currency sign, no decimal comma) is read as that number, exactly as if it had been sent unquoted
  (the same CSV text); any other string (``"$19.99"``, ``"19,99"``, ``"١٩"``, ``"NaN"``) quarantines
  the row as ``invalid_event_value``, because guessing a number could change the value. A product
  without the field gets an empty EVENT_VALUE when the schema's EVENT_VALUE is nullable, and is
  quarantined as ``missing_event_value`` when it is not (``event_value_required``; the generated
  DAGs set it from the schema, ``project_config.mparticle_export_options``): an empty value in a
  required column would fail the whole import.
* Invalid UTF-8: the line is decoded with ``surrogateescape`` so the rest of the batch survives;
  a value carrying undecodable bytes (or a lone UTF-16 surrogate escape such as ``"\\ud800"``,
  which UTF-8 cannot encode) that would reach the CSV is quarantined (``invalid_utf8``).
* Nesting deeper than Python's parsers go (about 900 levels; mParticle batches use fewer than 10):
  the line is quarantined as ``nesting_too_deep``. A line longer than ``max_document_bytes`` is
  quarantined as ``line_too_long`` without being held in memory.
* Truncated or corrupt gzip: every complete line decompressed before the damage is processed;
  the partial tail is quarantined once (``truncated_gzip`` / ``corrupt_gzip``) naming the file and
  the decompressed byte offset, and ``stats.files_truncated`` is incremented (the operator fails
  on it by default because how much data was lost is unknown).
* Commerce events without ``product_action`` but with a ``promotion_action`` or
  ``product_impressions`` are ignored (counted: they are not product interactions); without any of
  them they are quarantined (``missing_product_action``). A selected action with no products is
  quarantined (``empty_products``); a ``null`` (or non-object) entry of ``products`` quarantines
  only itself (``null_product`` / ``invalid_product``), the event's other products are exported.
* Events outside ``[interval_start, interval_end)`` (compared in milliseconds) are counted in
  ``events_out_of_interval`` / ``rows_out_of_interval`` and not written; those older than
  :attr:`MParticleInteractionsExporter.lost_before_ms` (set by the caller to the lateness window's
  edge) are also counted in ``events_beyond_lateness``: no interval's export will read them.

Accounting (``ExportStats.check_accounting`` raises if any of these fails, so nothing is dropped or
counted twice silently; a "line" of a document file is one JSON document)::

    lines_read         = batches_parsed + lines_quarantined + blank_lines
    events_seen        = events_ignored + events_quarantined + events_out_of_interval + events_used
    products_seen      = rows_written + rows_quarantined        (products of events_used)
    quarantine_records = lines_quarantined + batches_quarantined + events_quarantined + rows_quarantined

(``batches_parsed`` counts lines that parsed into a batch or an array of batches; a bad batch
inside an array is one ``batches_quarantined`` record, a bad batch alone on its line quarantines
the line.)

Memory is bounded by one line (at most ``max_document_bytes``) plus the decompression chunk and the
CSV row buffer; a document file is read whole and limited to ``max_document_bytes``.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import IO, Any

import msgspec

from personalize_logic.line_blocks import LineBlocks, LongLine
from personalize_logic.text import is_text

DEFAULT_ACTIONS = frozenset({"purchase", "view_detail", "add_to_cart", "add_to_wishlist"})
MAX_ID_CHARS = 256
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
SECONDS_THRESHOLD_MS = 10**11
MICROS_THRESHOLD_MS = 10**14
GZIP_MAGIC = b"\x1f\x8b"
CHUNK_BYTES = 1 << 20
SNIPPET_CHARS = 300

_DIGITS = re.compile(r"-?[0-9]{1,40}")  # ASCII only: \d would take every script's digits
# A JSON number literal (RFC 8259 section 6), the only text a string EVENT_VALUE may hold.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_JSON_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT_MAX = sys.float_info.max
_ID_INT_LIMIT = 10**MAX_ID_CHARS  # an integer id at or past this has more than 256 digits
_WHITESPACE = re.compile(r"[ \t\n\r]*")  # JSON's insignificant whitespace
_SURROGATE = re.compile("[\ud800-\udfff]")


# --------------------------------------------------------------------------------------- structs
class _Product(msgspec.Struct):
    id: Any = None
    sku: Any = None
    name: Any = None
    brand: Any = None
    category: Any = None
    variant: Any = None
    price: Any = None
    quantity: Any = None
    total_product_amount: Any = None


PRODUCT_FIELDS = frozenset(_Product.__struct_fields__)


class _ProductAction(msgspec.Struct):
    action: Any = None
    products: list[_Product | None] | None = None  # a null entry quarantines only itself


class _EventData(msgspec.Struct):
    timestamp_unixtime_ms: Any = None
    session_id: Any = None
    session_uuid: Any = None
    product_action: _ProductAction | None = None
    promotion_action: msgspec.Raw = msgspec.Raw()
    product_impressions: msgspec.Raw = msgspec.Raw()


class _Event(msgspec.Struct):
    event_type: Any = None
    data: _EventData | None = None


class _Batch(msgspec.Struct):
    mpid: Any = None
    timestamp_unixtime_ms: Any = None  # the time of an event that has none of its own
    user_identities: dict[str, Any] | None = None
    events: list[_Event] | None = None


_LINE_DECODER = msgspec.json.Decoder(_Batch)
_DOC_DECODER = msgspec.json.Decoder(_Batch | list[_Batch])


# ------------------------------------------------------------------------------- config / stats
@dataclass(frozen=True)
class MParticleExportConfig:
    """What to export. ``user_id_source``: ``"mpid"`` or a ``user_identities`` key."""

    actions: frozenset[str] = DEFAULT_ACTIONS
    user_id_source: str = "mpid"
    item_id_fields: tuple[str, ...] = ("id", "sku")
    event_value_field: str | None = "price"
    event_value_required: bool = False  # True: a product without the field is quarantined, not written empty
    include_session_id: bool = False
    seconds_timestamps: str = "quarantine"
    max_document_bytes: int = 256 * 1024 * 1024  # also the longest NDJSON line held in memory

    def __post_init__(self) -> None:
        if self.max_document_bytes < 1:
            raise ValueError("max_document_bytes must be at least 1")
        bad = [f for f in self.item_id_fields if f not in PRODUCT_FIELDS]
        if not self.item_id_fields or bad:
            raise ValueError(f"item_id_fields must be product fields {sorted(PRODUCT_FIELDS)}, got {bad}")
        if self.event_value_field is not None and self.event_value_field not in PRODUCT_FIELDS:
            raise ValueError(f"event_value_field must be one of {sorted(PRODUCT_FIELDS)}")
        if self.seconds_timestamps not in ("quarantine", "convert"):
            raise ValueError("seconds_timestamps must be 'quarantine' or 'convert'")
        if not self.actions:
            raise ValueError("actions must not be empty")

    @property
    def header(self) -> list[str]:
        cols = ["USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP"]
        if self.event_value_field:
            cols.append("EVENT_VALUE")
        if self.include_session_id:
            cols.append("SESSION_ID")
        return cols


@dataclass
class ExportStats:
    files: int = 0
    files_truncated: int = 0
    bytes_read: int = 0
    lines_read: int = 0
    blank_lines: int = 0
    batches_parsed: int = 0
    lines_quarantined: int = 0
    lines_slow_path: int = 0
    lines_invalid_utf8: int = 0
    batches_quarantined: int = 0
    events_seen: int = 0
    events_ignored: int = 0
    events_quarantined: int = 0
    events_out_of_interval: int = 0
    events_used: int = 0
    events_batch_timestamp: int = 0
    events_beyond_lateness: int = 0
    late_events: int = 0  # events_used from files the caller read as late (set by the caller)
    products_seen: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    rows_out_of_interval: int = 0
    quarantine_records: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    min_timestamp: int | None = None
    max_timestamp: int | None = None

    def check_accounting(self) -> None:
        problems = []
        if self.lines_read != self.batches_parsed + self.lines_quarantined + self.blank_lines:
            problems.append("lines_read != batches_parsed + lines_quarantined + blank_lines")
        used = self.events_ignored + self.events_quarantined + self.events_out_of_interval + self.events_used
        if self.events_seen != used:
            problems.append("events_seen != ignored + quarantined + out_of_interval + used")
        if self.products_seen != self.rows_written + self.rows_quarantined:
            problems.append("products_seen != rows_written + rows_quarantined")
        units = (
            self.lines_quarantined
            + self.batches_quarantined
            + self.events_quarantined
            + self.rows_quarantined
        )
        if self.quarantine_records != units:
            problems.append("quarantine_records != lines + batches + events + rows quarantined")
        if problems:
            raise AssertionError(f"export accounting broken: {problems}: {self.as_dict()}")

    @property
    def quarantine_share(self) -> float:
        """Quarantined units (bad lines + bad events + bad product rows) over all units seen."""
        bad = self.lines_quarantined + self.events_quarantined + self.rows_quarantined
        total = self.lines_read - self.blank_lines + self.events_seen + self.products_seen
        return bad / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reasons"] = dict(sorted(self.reasons.items()))
        data["quarantine_share"] = round(self.quarantine_share, 6)
        return data


class _Quarantine(Exception):
    def __init__(self, field: str, reason: str, detail: str = "", value: Any = None):
        super().__init__(reason)
        self.field = field
        self.reason = reason
        self.detail = detail
        self.value = value


def _snippet(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        raw = raw[: SNIPPET_CHARS * 4].decode("utf-8", "backslashreplace")
    return raw[:SNIPPET_CHARS]


def _printable(text: str) -> str:
    """``text`` as valid UTF-8 text: undecodable bytes as ``\\xNN``, lone surrogates as ``\\uNNNN``."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte (a "\\ud800" escape)
        return _SURROGATE.sub(_escape_surrogate, text)


def _escape_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def _int_text(value: int) -> str:
    """The decimal text of an integer, or its size when Python will not print it (> 4300 digits)."""
    try:
        return str(value)
    except ValueError:
        return f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"


def _shown(value: Any) -> Any:
    """A quarantined value as the quarantine file shows it (JSON-safe, valid UTF-8, short)."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return _int_text(value)
    if isinstance(value, str):
        return _printable(value[:SNIPPET_CHARS])
    try:
        text = repr(value)
    except RecursionError:
        return f"<a {type(value).__name__} nested too deeply to show>"
    return _snippet(text)


# ------------------------------------------------------------------------------- value checks
def clean_id(value: Any, field: str) -> str:
    """An ID as its exact string form, or raise ``_Quarantine`` naming why."""
    if type(value) is str:
        if 0 < len(value) <= MAX_ID_CHARS and value.isascii() and "\n" not in value and "\r" not in value:
            return value
        if not value:
            raise _Quarantine(field, f"empty_{field.lower()}")
        if len(value) > MAX_ID_CHARS:
            raise _Quarantine(field, "id_too_long", f"{len(value)} characters > {MAX_ID_CHARS}", value)
        if "\n" in value or "\r" in value:
            raise _Quarantine(field, "newline_in_id", "Personalize needs one record per line", value)
        if not is_text(value):
            raise _Quarantine(
                field, "invalid_utf8", "value contains bytes that are not UTF-8 or a lone surrogate", value
            )
        return value
    if type(value) is int:
        if -_ID_INT_LIMIT < value < _ID_INT_LIMIT:
            return str(value)
        raise _Quarantine(field, "id_too_long", f"an integer of more than {MAX_ID_CHARS} digits", value)
    if value is None:
        raise _Quarantine(field, f"missing_{field.lower()}")
    raise _Quarantine(
        field, f"invalid_{field.lower()}", f"expected a string, got {type(value).__name__}", value
    )


def mpid_to_str(value: Any) -> str:
    """Exact decimal text of a signed 64-bit mpid, or raise ``_Quarantine``."""
    if type(value) is str and _DIGITS.fullmatch(value):
        value = int(value)
    if type(value) is int:
        if value == 0:
            raise _Quarantine("mpid", "missing_user_id", "mpid is 0 (unknown user)", value)
        if INT64_MIN <= value <= INT64_MAX:
            return str(value)
        raise _Quarantine("mpid", "mpid_out_of_int64_range", "mpid must fit a signed 64-bit integer", value)
    if value is None:
        raise _Quarantine("mpid", "missing_user_id", "batch has no mpid")
    if type(value) is float:
        raise _Quarantine("mpid", "mpid_not_integer", "mpid is a float: precision already lost", value)
    raise _Quarantine("mpid", "invalid_mpid", f"expected an integer, got {type(value).__name__}", value)


def _format_value(value: Any) -> str:
    """EVENT_VALUE text: the number's exact text, or raise ``_Quarantine`` (module docstring)."""
    if value is None:
        return ""
    t = type(value)
    if t is float:
        if -_FLOAT_MAX <= value <= _FLOAT_MAX:  # NaN fails both comparisons
            return repr(value)
        raise _Quarantine("EVENT_VALUE", "invalid_event_value", "not a finite number", value)
    if t is int:
        if -_FLOAT_MAX <= value <= _FLOAT_MAX:
            return str(value)
        raise _Quarantine("EVENT_VALUE", "invalid_event_value", "outside the range of a float", value)
    if t is str:
        return _number_text(value)
    raise _Quarantine("EVENT_VALUE", "invalid_event_value", f"expected a number, got {t.__name__}", value)


def _format_required_value(value: Any) -> str:
    """EVENT_VALUE text when the schema's EVENT_VALUE is not nullable: a missing value is quarantined."""
    if value is None:
        raise _Quarantine(
            "EVENT_VALUE",
            "missing_event_value",
            "the schema's EVENT_VALUE is required and the product has none",
        )
    return _format_value(value)


def _number_text(text: str) -> str:
    """A string EVENT_VALUE holding a JSON number: the text that number would have been written as."""
    if len(text) <= 400 and _JSON_NUMBER.fullmatch(text):
        return _format_value(int(text) if _JSON_INTEGER.fullmatch(text) else float(text))
    raise _Quarantine(
        "EVENT_VALUE", "invalid_event_value", 'a string that is not a JSON number (e.g. "19.99")', text
    )


# ------------------------------------------------------------------------------- byte streams
class _ReadState:
    __slots__ = ("damage", "offset")

    def __init__(self) -> None:
        self.offset = 0
        self.damage: tuple[str, str] | None = None


def _chunks(raw: IO[bytes], state: _ReadState, head: bytes) -> Iterator[bytes]:
    """Decompressed chunks of ``raw`` (gzip detected by magic bytes); ``head`` = already read bytes.

    Multi-member gzip is followed member by member; trailing NUL padding is ignored. A stream that
    ends inside a member sets ``state.damage = ("truncated_gzip", ...)``, undecodable data sets
    ``("corrupt_gzip", ...)``; everything decompressed before is yielded first.
    """
    if not head.startswith(GZIP_MAGIC):
        if head:
            yield head
        while chunk := raw.read(CHUNK_BYTES):
            yield chunk
        return
    decomp = zlib.decompressobj(wbits=31)
    fed = False
    data = head
    while True:
        if not data:
            data = raw.read(CHUNK_BYTES)
            if not data:
                break
        try:
            out = decomp.decompress(data)
        except zlib.error as exc:
            state.damage = ("corrupt_gzip", str(exc))
            return
        fed = True
        if out:
            yield out
        if decomp.eof:
            data = decomp.unused_data
            if data and not data.strip(b"\x00"):
                return
            decomp = zlib.decompressobj(wbits=31)
            fed = False
        else:
            data = b""
    if fed and not decomp.eof:
        tail = decomp.flush()
        if tail:
            yield tail
        state.damage = ("truncated_gzip", "compressed stream ended before its end-of-stream marker")


# --------------------------------------------------------------------------------- the exporter
RowSink = Callable[[list[tuple[str, ...]]], None]
QuarantineSink = Callable[[dict[str, Any]], None]
# An exported event: (EVENT_TYPE, TIMESTAMP as text, SESSION_ID or "", its products).
_UsedEvent = tuple[str, str, str, list[_Product | None]]


class MParticleInteractionsExporter:
    """Stream mParticle batch files into interactions rows.

    :param config: what to export.
    :param interval_start_ms: inclusive start of the data interval (epoch ms), None = unbounded.
    :param interval_end_ms: exclusive end of the data interval (epoch ms), None = unbounded.
    :param row_sink: receives lists of row tuples (ordered as ``config.header``).
    :param quarantine_sink: receives one dict per quarantined record: ``file``, ``line``,
        ``offset`` (decompressed byte offset of the line), ``batch_index``, ``event_index``,
        ``product_index``, ``field``, ``reason``, ``detail``, ``value``, ``raw`` (snippet).
    """

    def __init__(
        self,
        config: MParticleExportConfig,
        *,
        interval_start_ms: int | None,
        interval_end_ms: int | None,
        row_sink: RowSink,
        quarantine_sink: QuarantineSink,
        flush_rows: int = 4096,
    ) -> None:
        self.config = config
        self.start_ms = interval_start_ms if interval_start_ms is not None else -(2**62)
        self.end_ms = interval_end_ms if interval_end_ms is not None else 2**62
        self.row_sink = row_sink
        self.quarantine_sink = quarantine_sink
        self.flush_rows = flush_rows
        self.stats = ExportStats()
        self._rows: list[tuple[str, ...]] = []
        self._file = ""
        #: events older than this (epoch ms) that fall outside the interval are also counted in
        #: ``events_beyond_lateness`` (the caller sets it per file: the lateness window's edge)
        self.lost_before_ms: int = -(2**62)
        self._min_ts: int | None = None
        self._max_ts: int | None = None
        # the config values the per-event and per-product steps read, one attribute lookup each
        self._actions = config.actions
        self._id_fields = config.item_id_fields
        self._value_field = config.event_value_field
        self._format_value = _format_required_value if config.event_value_required else _format_value
        self._with_session = config.include_session_id

    # -- public -----------------------------------------------------------------------------
    def process_stream(self, name: str, raw: IO[bytes]) -> None:
        """Process one file-like object (binary; S3 streaming bodies work)."""
        self._file = name
        st = self.stats
        st.files += 1
        state = _ReadState()
        head = raw.read(CHUNK_BYTES)
        st.bytes_read += len(head)
        counting = _CountingReader(raw, st)
        chunks = _chunks(counting, state, head)  # type: ignore[arg-type]
        first = b""
        for chunk in chunks:
            first = chunk
            break
        if not first:
            self._finish_damage(state, b"")
            self.flush()
            return
        if _is_document(first):
            self._process_document(first, chunks, state)
        else:
            self._process_lines(itertools.chain((first,), chunks), state)
        self.flush()

    def flush(self) -> None:
        if self._rows:
            self.row_sink(self._rows)
            self._rows = []
        st = self.stats
        if self._min_ts is not None and (st.min_timestamp is None or self._min_ts < st.min_timestamp):
            st.min_timestamp = self._min_ts
        if self._max_ts is not None and (st.max_timestamp is None or self._max_ts > st.max_timestamp):
            st.max_timestamp = self._max_ts

    # -- reading ----------------------------------------------------------------------------
    def _process_lines(
        self, chunks: Iterator[bytes], state: _ReadState, line_no: int = 0, offset: int = 0
    ) -> None:
        """NDJSON: one batch (or array of batches) per line; ``line_no``/``offset`` = where ``chunks`` start."""
        st = self.stats
        decode = _LINE_DECODER.decode
        process = self._process_batch
        blocks = LineBlocks(chunks, self.config.max_document_bytes)
        for lines in blocks:
            if isinstance(lines, LongLine):  # quarantined without being held
                line_no += 1
                st.lines_read += 1
                self._long_line(lines, line_no, offset)
                offset += lines.size + 1
                continue
            for line in lines:
                line_no += 1
                st.lines_read += 1
                try:
                    batch = decode(line)
                except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
                    if not line.strip():
                        st.blank_lines += 1
                    else:
                        self._slow_line(line, line_no, offset)
                else:
                    st.batches_parsed += 1
                    process(batch, line, line_no, offset, None)
                offset += len(line) + 1
            if len(self._rows) >= self.flush_rows:
                self.row_sink(self._rows)
                self._rows = []
        long_tail, rest = blocks.tail_long, blocks.tail
        if state.damage is not None:
            if long_tail is not None:
                self._finish_damage(state, long_tail.head, line_no + 1, offset, size=long_tail.size)
            else:
                self._finish_damage(state, rest, line_no + 1, offset)
        elif long_tail is not None:
            st.lines_read += 1
            self._long_line(long_tail, line_no + 1, offset)
        elif rest:
            line_no += 1
            st.lines_read += 1
            if not rest.strip():
                st.blank_lines += 1
            else:
                try:
                    batch = decode(rest)
                except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
                    self._slow_line(rest, line_no, offset)
                else:
                    st.batches_parsed += 1
                    process(batch, rest, line_no, offset, None)

    def _long_line(self, line: LongLine, line_no: int, offset: int) -> None:
        self._quarantine_line(
            line.head, line_no, offset, None, "line", "line_too_long",
            f"{line.size} bytes, above max_document_bytes ({self.config.max_document_bytes}): not parsed",
        )  # fmt: skip

    def _process_document(self, first: bytes, chunks: Iterator[bytes], state: _ReadState) -> None:
        """A document file: the whole file in memory (up to ``max_document_bytes``), one or more JSON values."""
        st = self.stats
        parts = [first]
        size = len(first)
        for chunk in chunks:
            size += len(chunk)
            if size > self.config.max_document_bytes:
                st.lines_read += 1
                self._quarantine_line(
                    parts[0], 1, 0, None, "file", "document_too_large",
                    f"JSON document larger than {self.config.max_document_bytes} bytes; use NDJSON",
                )  # fmt: skip
                for _ in chunks:
                    pass
                return
            parts.append(chunk)
        doc = b"".join(parts)
        if state.damage is not None:
            st.lines_read += 1
            self._finish_damage(state, doc, 1, 0, count_line=False)
            return
        try:
            parsed = _DOC_DECODER.decode(doc)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
            self._documents(doc, state)
            return
        st.lines_read += 1
        st.batches_parsed += 1
        batches = parsed if isinstance(parsed, list) else [parsed]
        for index, batch in enumerate(batches):
            self._process_batch(batch, doc, 1, 0, index if isinstance(parsed, list) else None)

    def _documents(self, doc: bytes, state: _ReadState) -> None:
        """
        The careful path of a document file: each JSON value in turn through the slow path. A value
        that does not parse is quarantined by its first line, and the rest is read as NDJSON lines.
        """
        st = self.stats
        try:
            text = doc.decode("utf-8")
        except UnicodeDecodeError:
            text = doc.decode("utf-8", "surrogateescape")
            st.lines_invalid_utf8 += 1
        raw_decode = json.JSONDecoder().raw_decode
        pos = line_no = offset = 0
        line_at = 1  # the line ``pos`` is on
        while True:
            start = _WHITESPACE.match(text, pos).end()  # type: ignore[union-attr]
            if start == len(text):
                return
            line_at += text.count("\n", pos, start)
            offset += len(text[pos:start].encode("utf-8", "surrogateescape"))
            pos = start
            try:
                obj, end = raw_decode(text, pos)
            except (ValueError, RecursionError) as exc:
                self._document_failed(doc, text, pos, line_at, offset, exc, state)
                return
            source = text[pos:end].encode("utf-8", "surrogateescape")
            line_no = line_at
            st.lines_read += 1
            st.lines_slow_path += 1
            self._slow_object(obj, source, line_no, offset)
            line_at += text.count("\n", pos, end)
            offset += len(source)
            pos = end

    def _document_failed(
        self, doc: bytes, text: str, pos: int, line_no: int, offset: int, exc: Exception, state: _ReadState
    ) -> None:
        """Quarantine the first line of a document that does not parse; read the rest as NDJSON lines."""
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        first_line = text[pos:end].encode("utf-8", "surrogateescape")
        self.stats.lines_read += 1
        self.stats.lines_slow_path += 1
        if isinstance(exc, RecursionError):
            reason, detail = "nesting_too_deep", "JSON nested deeper than the parser can follow"
        else:
            where = f"line {getattr(exc, 'lineno', '?')} column {getattr(exc, 'colno', '?')} of the file"
            reason, detail = "malformed_json", f"{getattr(exc, 'msg', exc)} at {where}"
        self._quarantine_line(
            first_line, line_no, offset, None, "line", reason,
            f"{detail}; the document starting here is quarantined by this line, the lines after it "
            "are read one by one",
        )  # fmt: skip
        rest_at = offset + len(first_line) + 1
        if rest_at < len(doc):
            self._process_lines(iter((doc[rest_at:],)), state, line_no, rest_at)

    def _finish_damage(
        self,
        state: _ReadState,
        tail: bytes,
        line_no: int = 1,
        offset: int = 0,
        count_line: bool = True,
        size: int | None = None,
    ) -> None:
        if state.damage is None:
            return
        reason, detail = state.damage
        self.stats.files_truncated += 1
        if count_line:
            self.stats.lines_read += 1
        self._quarantine_line(
            tail, line_no, offset, None, "file", reason,
            f"{detail}; {len(tail) if size is None else size} bytes of an incomplete line after "
            f"decompressed offset {offset} quarantined; everything before was processed",
        )  # fmt: skip

    # -- slow path --------------------------------------------------------------------------
    def _slow_line(self, line: bytes, line_no: int, offset: int) -> None:
        """Careful path: recover what is valid, quarantine the rest with a precise reason."""
        st = self.stats
        st.lines_slow_path += 1
        invalid_utf8 = False
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            invalid_utf8 = True
            text = line.decode("utf-8", "surrogateescape")
            st.lines_invalid_utf8 += 1
            bad_at = exc.start
        try:
            obj = json.loads(text)
        except RecursionError:
            self._quarantine_line(
                line, line_no, offset, None, "line", "nesting_too_deep",
                "JSON nested deeper than the parser can follow (mParticle batches nest fewer than 10 levels)",
            )  # fmt: skip
            return
        except ValueError as exc:
            where = f"line {getattr(exc, 'lineno', '?')} column {getattr(exc, 'colno', '?')}"
            detail = f"{getattr(exc, 'msg', exc)} at {where}"
            if invalid_utf8:
                detail += f"; invalid UTF-8 at byte {bad_at}"
            self._quarantine_line(line, line_no, offset, None, "line", "malformed_json", detail)
            return
        self._slow_object(obj, line, line_no, offset)

    def _slow_object(self, obj: Any, line: bytes, line_no: int, offset: int) -> None:
        """One parsed line (or document): a batch, or an array of batches each checked on its own."""
        st = self.stats
        if not isinstance(obj, list):
            batch = self._lenient_batch(obj, line, line_no, offset, None)
            if batch is not None:
                st.batches_parsed += 1
                self._process_batch(batch, line, line_no, offset, None)
            return
        st.batches_parsed += 1
        for index, item in enumerate(obj):
            batch = self._lenient_batch(item, line, line_no, offset, index)
            if batch is not None:
                self._process_batch(batch, line, line_no, offset, index)

    def _lenient_batch(
        self, obj: Any, line: bytes, line_no: int, offset: int, batch_index: int | None
    ) -> _Batch | None:
        """
        A batch from a parsed JSON value, or None when it cannot be one: then quarantined as its
        line (a batch alone on its line) or as one batch of an array.
        """

        def bad(fld: str, reason: str, detail: str) -> None:
            if batch_index is None:
                self._quarantine_line(line, line_no, offset, None, fld, reason, detail)
            else:
                self.stats.batches_quarantined += 1
                self._record(line, line_no, offset, batch_index, None, None, fld, reason, detail, None)

        if not isinstance(obj, dict):
            bad("batch", "batch_not_object", f"expected a JSON object, got {type(obj).__name__}")
            return None
        idents = obj.get("user_identities")
        if not isinstance(idents, dict):
            idents = None
        events_in = obj.get("events")
        if events_in is not None and not isinstance(events_in, list):
            bad("events", "invalid_events", "'events' must be an array")
            return None
        events: list[_Event] = []
        for ei, ev in enumerate(events_in or []):
            converted = self._lenient_event(ev)
            if isinstance(converted, _Event):
                events.append(converted)
            else:
                # count the event as seen + quarantined here; keep index alignment with a stub
                self.stats.events_seen += 1
                self.stats.events_quarantined += 1
                self._record(line, line_no, offset, batch_index, ei, None, *converted, ev)
                events.append(_Event(event_type="__quarantined__"))
        return _Batch(
            mpid=obj.get("mpid"),
            timestamp_unixtime_ms=obj.get("timestamp_unixtime_ms"),
            user_identities=idents,
            events=events,
        )

    def _lenient_event(self, ev: Any) -> _Event | tuple[str, str, str]:
        if not isinstance(ev, dict):
            return ("event", "event_not_object", f"got {type(ev).__name__}")
        data = ev.get("data")
        if data is None:
            return _Event(event_type=ev.get("event_type"), data=None)
        if not isinstance(data, dict):
            return ("data", "invalid_event_data", "'data' must be an object")
        pa = data.get("product_action")
        action = None
        if pa is not None:
            if not isinstance(pa, dict):
                return ("product_action", "invalid_product_action", "'product_action' must be an object")
            prods = pa.get("products")
            products: list[Any] | None = None
            if prods is not None:
                if not isinstance(prods, list):
                    return ("products", "invalid_products", "'products' must be an array")
                # a product that is not an object stays in the list: it quarantines only itself
                products = [
                    _Product(**{k: p.get(k) for k in PRODUCT_FIELDS}) if isinstance(p, dict) else p
                    for p in prods
                ]
            action = _ProductAction(action=pa.get("action"), products=products)
        raw_promo = msgspec.Raw(b"1") if data.get("promotion_action") is not None else msgspec.Raw()
        raw_imp = msgspec.Raw(b"1") if data.get("product_impressions") is not None else msgspec.Raw()
        return _Event(
            event_type=ev.get("event_type"),
            data=_EventData(
                timestamp_unixtime_ms=data.get("timestamp_unixtime_ms"),
                session_id=data.get("session_id"),
                session_uuid=data.get("session_uuid"),
                product_action=action,
                promotion_action=raw_promo,
                product_impressions=raw_imp,
            ),
        )

    # -- the hot loop -----------------------------------------------------------------------
    def _user_id(self, batch: _Batch) -> str:
        source = self.config.user_id_source
        if source == "mpid":
            return mpid_to_str(batch.mpid)
        idents = batch.user_identities or {}
        value = idents.get(source)
        if value is None:
            raise _Quarantine(f"user_identities.{source}", "missing_user_id", f"batch has no {source}")
        return clean_id(value, "USER_ID")

    def _timestamp_ms(self, value: Any, batch_value: Any) -> int:
        """The event's time in ms (its own, else its batch's), or raise ``_Quarantine`` naming why."""
        fld = "timestamp_unixtime_ms"
        if value is None:
            if batch_value is None:
                raise _Quarantine(fld, "missing_timestamp", "neither the event nor its batch has a time")
            value, fld = batch_value, "batch.timestamp_unixtime_ms"
            self.stats.events_batch_timestamp += 1
        if type(value) is not int:
            raise _Quarantine(
                fld, "invalid_timestamp", f"expected an integer, got {type(value).__name__}", value
            )
        if value >= SECONDS_THRESHOLD_MS:
            if value >= MICROS_THRESHOLD_MS:
                raise _Quarantine(fld, "timestamp_in_microseconds", "value ≥ 1e14 looks like µs", value)
            return value
        if value <= 0:
            raise _Quarantine(fld, "invalid_timestamp", "not a positive epoch time", value)
        if self.config.seconds_timestamps == "convert":
            self.stats.reasons["timestamp_in_seconds_converted"] += 1
            return value * 1000
        raise _Quarantine(
            fld, "timestamp_in_seconds", "value < 1e11 looks like epoch seconds, expected milliseconds", value
        )

    def _process_batch(
        self, batch: _Batch, line: bytes, line_no: int, offset: int, batch_index: int | None
    ) -> None:
        """
        One batch → rows. Its user is resolved once (:meth:`_user_id`); each event is counted as
        ignored, quarantined, out of the interval or used (:meth:`_used_event`); each product of a
        used event becomes a row or is quarantined on its own. The product loop stays inline: it is
        the export's innermost loop, and a call per product or per used event cost 5-15 % of this
        method's time in ``benchmarks/bench_export.py``.
        """
        events = batch.events
        if not events:
            return
        st = self.stats
        where = (line, line_no, offset, batch_index)
        try:  # the batch's USER_ID, or why it has none (quarantined with each event that uses it)
            user_id, user_error = self._user_id(batch), None
        except _Quarantine as exc:
            user_id, user_error = "", exc
        used_event = self._used_event
        id_fields, value_field, with_session = self._id_fields, self._value_field, self._with_session
        format_value = self._format_value
        rows = self._rows
        batch_ts = batch.timestamp_unixtime_ms
        for ei, ev in enumerate(events):
            etype = ev.event_type
            if etype == "__quarantined__":  # already counted by the lenient path
                continue
            st.events_seen += 1
            if etype != "commerce_event":
                st.events_ignored += 1
                continue
            try:
                used = used_event(ev.data, user_error, batch_ts)
            except _Quarantine as exc:
                st.events_quarantined += 1
                self._record(*where, ei, None, exc.field, exc.reason, exc.detail, exc.value)
                continue
            if used is None:
                continue
            st.events_used += 1
            action, ts, session, products = used
            for pi, product in enumerate(products):
                st.products_seen += 1
                try:
                    if type(product) is not _Product:
                        raise _not_a_product(product)
                    item = None  # ITEM_ID: the first non-empty of the configured product fields
                    for fname in id_fields:
                        candidate = getattr(product, fname)
                        if candidate is not None and candidate != "":
                            item = candidate
                            break
                    if (  # clean_id's common case, inlined
                        type(item) is str
                        and 0 < len(item) <= MAX_ID_CHARS
                        and item.isascii()
                        and "\n" not in item
                        and "\r" not in item
                    ):
                        item_id = item
                    else:
                        item_id = clean_id(item, "ITEM_ID")
                    if value_field is None:
                        row: tuple[str, ...] = (user_id, item_id, action, ts)
                    else:
                        row = (user_id, item_id, action, ts, format_value(getattr(product, value_field)))
                    if with_session:
                        row = (*row, session)
                except _Quarantine as exc:
                    st.rows_quarantined += 1
                    self._record(*where, ei, pi, exc.field, exc.reason, exc.detail, exc.value)
                    continue
                rows.append(row)
                st.rows_written += 1

    def _used_event(
        self, data: _EventData | None, user_error: _Quarantine | None, batch_ts: Any
    ) -> _UsedEvent | None:
        """
        A commerce event's ``(action, timestamp text, session, products)`` when it is exported; None
        when it is ignored or outside the interval (counted here); raise ``_Quarantine`` when it is
        bad. The checks run in this order, so an event with several problems names the first.
        """
        if data is None:
            raise _Quarantine("product_action", "missing_product_action")
        pa = data.product_action
        if pa is None:
            if _raw_present(data.promotion_action) or _raw_present(data.product_impressions):
                self.stats.events_ignored += 1  # a promotion or impression: no product interaction
                return None
            raise _Quarantine("product_action", "missing_product_action")
        action = pa.action
        if type(action) is not str:  # checked first: a list or an object cannot be looked up in a set
            raise _Quarantine("product_action.action", "invalid_action", value=action)
        if action not in self._actions:
            self.stats.events_ignored += 1
            return None
        if user_error is not None:
            raise user_error.with_traceback(None)
        ts_ms = data.timestamp_unixtime_ms
        if type(ts_ms) is not int or not SECONDS_THRESHOLD_MS <= ts_ms < MICROS_THRESHOLD_MS:
            ts_ms = self._timestamp_ms(
                ts_ms, batch_ts
            )  # the common case is checked inline: this runs per event
        products = pa.products
        if not products:
            raise _Quarantine(
                "product_action.products", "empty_products", "selected product action without products"
            )
        if ts_ms < self.start_ms or ts_ms >= self.end_ms:
            self.stats.events_out_of_interval += 1
            self.stats.rows_out_of_interval += len(products)
            if ts_ms < self.lost_before_ms:
                self.stats.events_beyond_lateness += 1
            return None
        session = self._session(data) if self._with_session else ""
        ts_s = ts_ms // 1000
        if self._min_ts is None or ts_s < self._min_ts:
            self._min_ts = ts_s
        if self._max_ts is None or ts_s > self._max_ts:
            self._max_ts = ts_s
        return action, str(ts_s), session, products

    @staticmethod
    def _session(data: _EventData) -> str:
        """SESSION_ID: ``session_uuid`` or ``session_id`` as text, empty when the event has neither."""
        session_raw = data.session_uuid or data.session_id
        return "" if session_raw is None else clean_id(session_raw, "SESSION_ID")

    # -- quarantine -------------------------------------------------------------------------
    def _quarantine_line(
        self,
        line: bytes,
        line_no: int,
        offset: int,
        batch_index: int | None,
        fld: str,
        reason: str,
        detail: str,
    ) -> None:
        self.stats.lines_quarantined += 1
        self._record(line, line_no, offset, batch_index, None, None, fld, reason, detail, None)

    def _record(
        self,
        line: bytes,
        line_no: int,
        offset: int,
        batch_index: int | None,
        event_index: int | None,
        product_index: int | None,
        fld: str,
        reason: str,
        detail: str,
        value: Any,
    ) -> None:
        st = self.stats
        st.quarantine_records += 1
        st.reasons[reason] += 1
        self.quarantine_sink(
            {
                "file": self._file,
                "line": line_no,
                "offset": offset,
                "batch_index": batch_index,
                "event_index": event_index,
                "product_index": product_index,
                "field": fld,
                "reason": reason,
                "detail": detail,
                "value": _shown(value),
                "raw": _snippet(line),
            }
        )


def _not_a_product(product: Any) -> _Quarantine:
    if product is None:
        return _Quarantine("product", "null_product", "a null entry of product_action.products")
    return _Quarantine(
        "product", "invalid_product", f"expected an object, got {type(product).__name__}", product
    )


def _is_document(first: bytes) -> bool:
    """
    Whether a file whose first decompressed chunk is ``first`` holds JSON documents rather than NDJSON:
    it starts with ``[``, or its first non-blank line starts a JSON value that does not end on it.
    """
    probe = first.lstrip()
    if probe.startswith(b"["):
        return True
    end = probe.find(b"\n")
    if not probe.startswith(b"{") or end < 0:
        return False  # one line longer than the chunk, or no line end at all: NDJSON
    text = probe[:end].decode("utf-8", "surrogateescape").rstrip()
    try:
        json.loads(text)
    except RecursionError:
        return False
    except json.JSONDecodeError as exc:
        return exc.pos >= len(text)  # the parser ran out of line: the value goes on
    except ValueError:
        return False
    return False


def _raw_present(raw: msgspec.Raw) -> bool:
    return len(raw) > 0 and bytes(raw) != b"null"


class _CountingReader:
    """Counts raw (compressed) bytes read into ``stats.bytes_read``."""

    def __init__(self, raw: IO[bytes], stats: ExportStats) -> None:
        self._raw = raw
        self._stats = stats

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._stats.bytes_read += len(data)
        return data
