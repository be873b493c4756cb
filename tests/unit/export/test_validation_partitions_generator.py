from __future__ import annotations

import gzip
import io
import json
import pathlib

import pytest

from personalize_logic import layout as L
from personalize_logic import partitions as P
from personalize_logic.interactions_validation import CsvValidator, parse_schema, validate_files
from personalize_logic.mparticle_interactions import MParticleExportConfig, MParticleInteractionsExporter
from scripts.mparticle_generator import (
    EDGE_MPIDS,
    bingewatch_batches,
    bingewatch_mpid,
    synthetic_batch_lines,
)

ROOT = pathlib.Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "include/schemas/interactions.json").read_text())
BINGE = ROOT / "include/data/bingewatch/interactions.csv"
HEADER = "USER_ID,ITEM_ID,EVENT_TYPE,TIMESTAMP,EVENT_VALUE\n"


def good_rows(n=1000, users=50):
    return "".join(f"{i % users},item-{i % 77},view_detail,{1_700_000_000 + i},{i % 5}.5\n" for i in range(n))


def validate(text: str, **kw):
    v = CsvValidator(SCHEMA, **kw)
    v.validate_bytes_stream("s3://b/snap/part-00000.csv", io.BytesIO(text.encode("utf-8")))
    return v.finish()


def test_valid_file_report():
    rep = validate(HEADER + good_rows())
    assert rep.ok, rep.errors
    assert rep.rows == 1000
    assert rep.users == 50
    assert rep.users_with_2plus == 50
    assert rep.event_types == {"view_detail": 1000}
    assert rep.min_timestamp == 1_700_000_000
    assert rep.max_timestamp == 1_700_000_999


@pytest.mark.parametrize(
    ("row", "field", "needle"),
    [
        ("1,a,view,1700000000000,1\n", "TIMESTAMP", "milliseconds"),
        ("1,a,view,abc,1\n", "TIMESTAMP", "not an integer"),
        (",a,view,1700000000,1\n", "USER_ID", "required field is empty"),
        ("1," + "x" * 257 + ",view,1700000000,1\n", "ITEM_ID", "longer than 256"),
        ("1,a,view,1700000000,high\n", "EVENT_VALUE", "not a number"),
        ('1,"a\nb",view,1700000000,1\n', "ITEM_ID", "line break"),
    ],
)
def test_errors_name_file_line_field(row, field, needle):
    rep = validate(HEADER + good_rows(5) + row + good_rows(1000))
    err = rep.errors[0]
    assert (err.file, err.line, err.field) == ("s3://b/snap/part-00000.csv", 7, field)
    assert needle in err.message
    assert "part-00000.csv:7 [" in str(err)


def test_nullable_event_value_may_be_empty():
    assert validate(HEADER + good_rows(999) + "1,a,view,1700000000,\n").ok


def test_header_problems():
    rep = validate('"USER_ID",ITEM_ID,EVENT_TYPE,EXTRA\n' + good_rows(3))
    messages = [str(e) for e in rep.errors]
    assert any("header must not be quoted" in m for m in messages)
    assert any("[EXTRA]" in m and "not in schema" in m for m in messages)
    assert any("[TIMESTAMP]" in m and "required field missing" in m for m in messages)


def test_dataset_minimums():
    rep = validate(HEADER + good_rows(999, users=999))
    text = " ".join(str(e) for e in rep.errors)
    assert "999 rows" in text
    assert "0 users with ≥ 2" in text


def test_event_types_plus_metadata_limit():
    rows = "".join(f"{i % 30},i{i},type{i % 11},1700000000,1\n" for i in range(1100))
    rep = validate(HEADER + rows)
    assert any("11 event types" in str(e) for e in rep.errors)


def test_fail_fast_max_errors():
    rows = "".join("1,a,view,1700000000000,1\n" for _ in range(100))
    rep = validate(HEADER + rows, max_errors=3)
    assert rep.error_count == 3
    assert rep.truncated
    assert len(rep.errors) == 3


def test_not_utf8_named():
    v = CsvValidator(SCHEMA)
    v.validate_bytes_stream("f.csv", io.BytesIO(HEADER.encode() + b"1,\xff,view,1700000000,1\n"))
    assert "not UTF-8" in str(v.finish().errors[0])


def test_parse_schema_bingewatch_and_wrapped():
    specs = parse_schema({"schema": json.dumps(SCHEMA)})
    assert [s.name for s in specs] == ["USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP", "EVENT_VALUE"]
    assert specs[-1].nullable
    assert not specs[0].nullable
    with pytest.raises(ValueError, match="unsupported type"):
        parse_schema({"fields": [{"name": "X", "type": "bytes"}]})


def test_bingewatch_csv_is_valid(tmp_path):
    rep = validate_files(
        [str(BINGE)], {"fields": [*SCHEMA["fields"][:3], SCHEMA["fields"][4], SCHEMA["fields"][3]]}
    )
    assert rep.ok
    assert rep.rows == 1500
    assert rep.users == 100


# ---------------------------------------------------------------------------- partitions
def test_layout_and_run_key():
    key = L.attempt_key("scheduled__2024-01-01T00:00:00+00:00", 2)
    assert key == "scheduled__2024-01-01T00-00-00-00-00.try2"
    assert L.partition_prefix("/base/", "interactions", "2024-01-01") == "base/interactions/dt=2024-01-01/"
    assert L.run_prefix("base", "interactions", "2024-01-01", key).endswith(f"dt=2024-01-01/run={key}/")
    assert (
        L.manifest_key("base", "interactions", "2024-01-01")
        == "base/interactions/dt=2024-01-01/_manifest.json"
    )
    assert len(L.attempt_key("x" * 500)) <= 120
    with pytest.raises(ValueError, match=r"month must be in 1\.\.12"):
        L.partition_prefix("b", "interactions", "2024-13-01")


def test_lookback_and_copy_plan():
    assert P.lookback_dates("2024-03-01", 3) == ["2024-02-28", "2024-02-29", "2024-03-01"]
    manifests = [
        {"partition": "2024-01-02", "files": [{"key": "p/interactions/dt=2024-01-02/run=r/part-00000.csv"}]},
        {"partition": "2024-01-01", "files": [{"key": "p/interactions/dt=2024-01-01/run=r/part-00000.csv"}]},
    ]
    plan = P.snapshot_copy_plan(manifests, "p", "snap1", "interactions")
    assert [d for _, d in plan] == [
        "p/snapshots/snap1/interactions/2024-01-01-part-00000.csv",
        "p/snapshots/snap1/interactions/2024-01-02-part-00000.csv",
    ]


def test_manifest_roundtrip_and_errors():
    m = P.build_manifest(dataset="interactions", ds="2024-01-01", key="r", bucket="b",
                         files=[{"key": "k", "rows": 3, "bytes": 10}], header=["USER_ID"])  # fmt: skip
    assert P.parse_manifest(P.dump_manifest(m))["rows"] == 3
    with pytest.raises(ValueError, match="s3://b/m: manifest field 'files'"):
        P.parse_manifest(json.dumps({**m, "files": "x"}), "s3://b/m")


def test_parted_writer_rolls_over(tmp_path):
    w = P.PartedCsvWriter(str(tmp_path), ["A", "B"], max_bytes=100, buffer_rows=5)
    for i in range(50):
        w.write((str(i), "x,y"))
    parts = w.close()
    assert len(parts) > 1
    assert sum(p.rows for p in parts) == 50
    for p in parts:
        assert pathlib.Path(p.path).read_text().startswith("A,B\n")
    assert '"x,y"' in pathlib.Path(parts[0].path).read_text()


# ----------------------------------------------------------------------------- generator
def test_bingewatch_generator_deterministic_and_exportable(tmp_path):
    out: dict[str, bytes] = {}
    res = bingewatch_batches(str(BINGE), end_date="2024-01-30", days=30, prefix="mp", sink=out.__setitem__)
    again: dict[str, bytes] = {}
    bingewatch_batches(str(BINGE), end_date="2024-01-30", days=30, prefix="mp", sink=again.__setitem__)
    assert out == again
    assert sorted(res.rows_per_day) == [f"2024-01-{d:02d}" for d in range(1, 31)]
    assert sum(res.rows_per_day.values()) == 1500
    assert min(res.rows_per_day.values()) > 0
    assert res.mapping["1"] == EDGE_MPIDS[1]
    assert res.mapping["2"] == 2**53 + 1
    assert any(v < 0 for v in res.mapping.values())
    assert len(set(res.mapping.values())) == 100
    assert set(res.actions) == {"view_detail", "add_to_cart", "purchase"}
    assert next(iter(out)) == "mp/dt=2024-01-01/batches-0000.json.gz"
    rows: list = []
    ex = MParticleInteractionsExporter(MParticleExportConfig(), interval_start_ms=None, interval_end_ms=None,
                                       row_sink=rows.extend, quarantine_sink=lambda r: pytest.fail(str(r)))  # fmt: skip
    for key, body in out.items():
        ex.process_stream(key, io.BytesIO(body))
    assert len(rows) == 1500
    assert {r[0] for r in rows} == {str(v) for v in res.mapping.values()}
    assert str(-(2**63)) in {r[0] for r in rows}
    assert bingewatch_mpid(1) == -(2**63)


def test_generated_batches_are_schema_valid():
    schema_path = pathlib.Path("/work/shared/reference/mparticle/mparticle.inbound.eventsapi.schema.json")
    if not schema_path.exists():
        pytest.skip("mParticle reference schema not available")
    import jsonschema

    validator = jsonschema.Draft7Validator(json.loads(schema_path.read_text()),
                                           format_checker=jsonschema.FormatChecker())  # fmt: skip
    out: dict[str, bytes] = {}
    bingewatch_batches(str(BINGE), end_date="2024-01-30", days=3, prefix="mp", sink=out.__setitem__)
    lines = gzip.decompress(next(iter(out.values()))).splitlines()[:20]
    lines += list(synthetic_batch_lines(n_users=10, n_items=10, n_batches=20))
    for raw in lines:
        errors = list(validator.iter_errors(json.loads(raw)))
        assert not errors, errors[0].message


def test_synthetic_generator_constant_shape():
    lines = list(synthetic_batch_lines(n_users=5, n_items=5, n_batches=3, seed=1))
    assert lines == list(synthetic_batch_lines(n_users=5, n_items=5, n_batches=3, seed=1))
    assert all(json.loads(x)["environment"] == "production" for x in lines)


# ------------------------------------------------------------------------------ incremental imports
def _manifest(ds: str, run: str, rows: int | None = 600, size: int = 10) -> dict:
    return {"partition": ds, "run_key": run, "files": [{"key": f"k/{ds}", "rows": rows, "bytes": size}]}


def test_import_plan_full_takes_the_window() -> None:
    from personalize_logic.partitions import import_plan

    manifests = [_manifest("2024-01-01", "a"), _manifest("2024-01-02", "b")]
    plan = import_plan(manifests, "FULL", {"2024-01-01": "a"}, min_rows=1000, max_incremental_bytes=100)
    assert plan.mode == "FULL"
    assert plan.partitions == {"2024-01-01": "a", "2024-01-02": "b"}
    assert plan.rows == 1200
    assert plan.skip is None


def test_import_plan_incremental_takes_the_new_partitions_only() -> None:
    from personalize_logic.partitions import import_plan

    manifests = [_manifest("2024-01-01", "a2"), _manifest("2024-01-02", "b"), _manifest("2024-01-03", "c")]
    plan = import_plan(
        manifests, "INCREMENTAL", {"2024-01-01": "a"}, min_rows=1000, max_incremental_bytes=100
    )
    assert plan.mode == "INCREMENTAL"
    assert plan.partitions == {"2024-01-02": "b", "2024-01-03": "c"}
    assert plan.republished == ["2024-01-01"]  # re-exported after its import: not imported twice
    assert plan.rows == 1200
    assert plan.bytes == 20
    assert plan.skip is None


def test_import_plan_incremental_waits_below_the_per_job_minimum() -> None:
    from personalize_logic.partitions import import_plan

    manifests = [_manifest("2024-01-01", "a"), _manifest("2024-01-02", "b", rows=999)]
    plan = import_plan(
        manifests, "INCREMENTAL", {"2024-01-01": "a"}, min_rows=1000, max_incremental_bytes=100
    )
    assert plan.skip is not None
    assert "999 interactions, fewer than the 1000" in plan.skip
    nothing = import_plan(
        manifests[:1], "INCREMENTAL", {"2024-01-01": "a"}, min_rows=1000, max_incremental_bytes=100
    )
    assert nothing.skip == "every partition of the window was imported already"


def test_import_plan_incremental_over_the_size_limit_fails_naming_the_partitions() -> None:
    from personalize_logic.partitions import import_plan

    manifests = [_manifest("2024-01-01", "a"), _manifest("2024-01-02", "b", rows=5000, size=101)]
    with pytest.raises(ValueError, match=r"\['2024-01-02'\] hold 101 bytes, more than the 100 bytes"):
        import_plan(manifests, "INCREMENTAL", {"2024-01-01": "a"}, min_rows=1000, max_incremental_bytes=100)


def test_import_plan_first_incremental_is_full() -> None:
    from personalize_logic.partitions import import_plan

    plan = import_plan(
        [_manifest("2024-01-01", "a", rows=1000)], "INCREMENTAL", {}, min_rows=1000, max_incremental_bytes=1
    )
    assert plan.mode == "FULL"
