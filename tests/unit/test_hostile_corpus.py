"""
The hostile-input corpus of issue 13 (``tests/corpus/README.md``): each seen case, kept as a regression.

Every case asserts where each input record ended: a written row (with its exact value), a counted
quarantine entry naming file, line and field, or a clear error. None may raise a library exception.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path

import pytest

from personalize_logic.batch_output import iter_output_records
from personalize_logic.interactions_validation import CsvValidator
from personalize_logic.line_blocks import LineBlocks
from personalize_logic.mparticle_batches import BatchBuilder, BatchSettings
from personalize_logic.mparticle_interactions import MParticleExportConfig, MParticleInteractionsExporter
from personalize_logic.project_config import (
    ConfigError,
    load_config,
    load_configs,
    mparticle_export_options,
)
from personalize_logic.segments import iter_segment_lines

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "corpus"
SCHEMA = json.loads((REPO / "include" / "schemas" / "interactions.json").read_text())
TS_S = "1704070800"  # the corpus' event time, 2024-01-01T01:00:00Z, in seconds


def export(name: str, config: MParticleExportConfig | None = None) -> tuple[list, list, object]:
    rows: list[tuple[str, ...]] = []
    quarantine: list[dict] = []
    exporter = MParticleInteractionsExporter(
        config or MParticleExportConfig(),
        interval_start_ms=None,
        interval_end_ms=None,
        row_sink=rows.extend,
        quarantine_sink=quarantine.append,
    )
    with (CORPUS / name).open("rb") as fh:
        exporter.process_stream(name, fh)
    exporter.stats.check_accounting()
    for record in quarantine:  # what the operator writes: valid UTF-8 JSON, every time
        json.dumps(record, ensure_ascii=False).encode("utf-8")
        assert record["file"] == name
    return rows, quarantine, exporter.stats


def where(record: dict) -> tuple:
    return record["line"], record["field"], record["reason"]


# --------------------------------------------------------------------------------------- export
def test_a_lone_surrogate_is_quarantined_with_file_line_and_field() -> None:
    rows, q, _ = export("export/lone_surrogate.ndjson")
    assert rows == [("11", "ok-1", "purchase", TS_S, "2")]
    assert [where(r) for r in q] == [(1, "ITEM_ID", "invalid_utf8")]
    assert q[0]["value"] == "\\ud800"


def test_digits_of_other_scripts_are_not_an_mpid() -> None:
    rows, q, _ = export("export/non_ascii_digits_mpid.ndjson")
    assert rows == [("123", "i3", "purchase", TS_S, "1")]
    assert [where(r) for r in q] == [(1, "mpid", "invalid_mpid"), (2, "mpid", "invalid_mpid")]


def test_an_event_without_a_timestamp_takes_its_batch_s() -> None:
    rows, q, st = export("export/event_without_timestamp.ndjson")
    assert rows == [("7", "i1", "purchase", TS_S, "3")]
    assert q == []
    assert st.events_batch_timestamp == 1


def test_a_pretty_printed_batch_is_read_as_a_document() -> None:
    rows, q, st = export("export/pretty_printed.json")
    assert rows == [("5", "p1", "purchase", TS_S, "4.25")]
    assert q == []
    assert st.lines_read == 1


def test_a_null_product_quarantines_only_itself() -> None:
    rows, q, _ = export("export/null_product.ndjson")
    assert rows == [("9", "kept", "purchase", TS_S, "1")]
    assert [(r["product_index"], r["field"], r["reason"]) for r in q] == [(0, "product", "null_product")]


def test_a_string_price_is_read_as_its_number_or_quarantined() -> None:
    rows, q, _ = export("export/string_price.ndjson")
    assert [(r[1], r[4]) for r in rows] == [("s1", "19.99"), ("s3", "1000.0")]
    assert [(r["product_index"], r["field"], r["reason"], r["value"]) for r in q] == [
        (1, "EVENT_VALUE", "invalid_event_value", "$5")
    ]


def test_a_required_event_value_quarantines_a_price_less_product() -> None:
    """The shipped Bingewatch schema declares EVENT_VALUE ``["float"]``: the export follows it."""
    options = mparticle_export_options(load_config(REPO / "include" / "config" / "bingewatch.json"))
    assert options == {
        "event_value_field": "price",
        "event_value_required": True,
        "include_session_id": False,
    }
    rows, _q, _ = export("export/null_product.ndjson", MParticleExportConfig(event_value_required=True))
    assert rows == [("9", "kept", "purchase", TS_S, "1")]
    data = (CORPUS / "export/string_price.ndjson").read_bytes().replace(b'"price":"19.99"', b'"name":"x"')
    exporter_rows: list = []
    q2: list = []
    exporter = MParticleInteractionsExporter(
        MParticleExportConfig(event_value_required=True), interval_start_ms=None, interval_end_ms=None,
        row_sink=exporter_rows.extend, quarantine_sink=q2.append,
    )  # fmt: skip
    exporter.process_stream("f", io.BytesIO(data))
    assert ("EVENT_VALUE", "missing_event_value") in [(r["field"], r["reason"]) for r in q2]


# --------------------------------------------------------------------------------------- nesting
def test_deep_nesting_in_the_export_quarantines_the_line_and_goes_on() -> None:
    rows, q, _ = export("nesting/deep_export.ndjson")
    assert rows == [("2", "after", "purchase", TS_S, "1")]
    assert [where(r) for r in q] == [(1, "line", "nesting_too_deep")]


def test_deep_nesting_in_batch_output_is_a_parse_error_and_a_dead_letter() -> None:
    data = (CORPUS / "nesting/deep_batch_output.out").read_bytes()
    records = list(iter_output_records([data]))
    assert [(r.line_number, r.ok) for r in records] == [(1, True), (2, False), (3, True)]
    assert "nested deeper" in (records[1].parse_error or "")
    builder = BatchBuilder(BatchSettings(run_key="corpus"))
    built = [builder.build_line(line, n, s, e)[1] for n, s, e, line in _lines(data)]
    assert [r.batch is not None for r in built] == [True, False, True]
    assert built[1].dead_letters[0].reason == "malformed_line"


def _lines(data: bytes) -> list[tuple[int, int, int, bytes]]:
    from personalize_logic.batch_output import iter_lines

    return list(iter_lines([data]))


def test_deep_nesting_in_segment_output_is_an_error_line() -> None:
    with (CORPUS / "nesting/deep_segment.out").open("rb") as fh:
        lines = list(iter_segment_lines(fh, source="deep_segment.out"))
    assert [(line.line_number, line.ok) for line in lines] == [(1, True), (2, False)]
    assert "nested deeper" in (lines[1].error or "")


# --------------------------------------------------------------------------------------- parsers
def test_segment_ids_that_are_not_strings_are_errors_never_changed_ids() -> None:
    with (CORPUS / "parsers/segment_non_string_ids.out").open("rb") as fh:
        lines = list(iter_segment_lines(fh, source="s.out"))
    assert [line.error for line in lines[:3]] == [
        "output.usersList[1] is not a user id (a string): null",
        "output.usersList[1] is not a user id (a string): 1.0",
        'output.usersList[1] is not a user id (a string): {"a": 1}',
    ]
    assert lines[3].ok
    assert lines[3].users == ("u1", "42")


def test_a_non_utf8_byte_is_reported_on_its_own_line() -> None:
    validator = CsvValidator(SCHEMA, min_rows=0, min_users_2plus=0)
    with (CORPUS / "parsers/csv_non_utf8_line3.csv").open("rb") as fh:
        validator.validate_bytes_stream("line3.csv", fh)
    report = validator.finish()
    line_errors = [str(e) for e in report.errors if e.line is not None]
    assert line_errors == ["line3.csv:3: not UTF-8 (invalid start byte at byte 4 of the line)"]
    assert report.rows == 2  # lines 2 and 4; line 3 is its error


def test_a_long_line_is_read_in_linear_time() -> None:
    """A 64 MiB line in 64 KiB chunks: the quadratic reader copied ~32 GB here (tens of seconds)."""
    size, chunk = 64 << 20, 64 << 10
    line = b'{"input":{"userId":"1"},"output":{"recommendedItems":["' + b"x" * (size - 60) + b'"]}}\n'
    chunks = [line[i : i + chunk] for i in range(0, len(line), chunk)]
    started = time.perf_counter()
    blocks = list(LineBlocks(chunks))
    elapsed = time.perf_counter() - started
    assert [len(b) for b in blocks] == [1]
    assert len(blocks[0][0]) == len(line) - 1
    assert elapsed < 3.0, elapsed


# --------------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("name", "file", "needle"),
    [
        pytest.param(
            "wrong_type.json",
            "wrong_type.json",
            "invalid key datasetGroup: Expected `object`",
            id="wrong-type",
        ),
        pytest.param(
            "not_utf8.json", "not_utf8.json", "not UTF-8 (line 4, column 19: byte 0xed", id="not-utf8"
        ),
        pytest.param("deep.json", "deep.json", "nested deeper than the parser can follow", id="deep"),
        pytest.param(
            "with_sidecar.json",
            "with_sidecar.pipeline.json",
            "invalid key pipeline.export.schedule: Expected `str`, got `int`",
            id="sidecar-named",
        ),
        pytest.param(
            "event_value_long.json",
            "event_value_long.json",
            'invalid key datasets.interactions.schema.serviceConfig.schema: field EVENT_VALUE is "long"',
            id="schema-vs-export",
        ),
    ],
)
def test_a_broken_config_is_a_config_error_naming_file_and_key(name: str, file: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(CORPUS / "config" / "broken" / name)
    message = str(err.value)
    assert message.startswith(f"{CORPUS / 'config' / 'broken' / file}: "), message
    assert needle in message


def test_duplicate_project_ids_are_errors_naming_both_files(tmp_path: Path) -> None:
    loaded = load_configs(sorted((CORPUS / "config" / "duplicate").glob("*.json")))
    assert [item.config for item in loaded] == [None, None]
    first, second = (str(item.error) for item in loaded)
    assert first.startswith(f"{CORPUS / 'config/duplicate/good-proj.json'}: invalid key datasetGroup")
    assert str(CORPUS / "config/duplicate/good_proj.json") in first
    assert str(CORPUS / "config/duplicate/good-proj.json") in second
    # two files for one dataset group are the same project id
    shutil.copy(CORPUS / "config/good/good-proj.json", tmp_path / "a.json")
    shutil.copy(CORPUS / "config/good/good-proj.json", tmp_path / "b.json")
    assert all(item.error is not None for item in load_configs(sorted(tmp_path.glob("*.json"))))


def test_one_broken_config_leaves_the_others_loaded() -> None:
    paths = [CORPUS / "config/good/good-proj.json", *sorted((CORPUS / "config/broken").glob("*.json"))]
    loaded = load_configs([p for p in paths if not p.name.endswith(".pipeline.json")])
    assert loaded[0].config is not None
    assert loaded[0].config.name == "good-proj"
    assert all(item.config is None and item.error is not None for item in loaded[1:])
