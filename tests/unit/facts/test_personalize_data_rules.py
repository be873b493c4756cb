"""The data rules have one owner: every rule cites a source, and the validator and the emulator both
judge data by ``personalize_logic.facts.personalize_data_rules`` (changing a rule there changes both
verdicts)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from emulators.personalize import data_rules as emulator_rules
from personalize_logic.facts import personalize_data_rules as rules
from personalize_logic.interactions_validation import CsvValidator

ITEMS_SCHEMA = {
    "type": "record",
    "name": "Items",
    "fields": [
        {"name": "ITEM_ID", "type": "string"},
        {"name": "GENRES", "type": ["null", "string"], "categorical": True},
        {"name": "CREATION_TIMESTAMP", "type": "long"},
    ],
}
INTERACTIONS_SCHEMA = {
    "type": "record",
    "name": "Interactions",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "ITEM_ID", "type": "string"},
        {"name": "EVENT_TYPE", "type": "string"},
        {"name": "EVENT_VALUE", "type": ["null", "float"]},
        {"name": "TIMESTAMP", "type": "long"},
    ],
}


def _rule_names() -> set[str]:
    return {
        name
        for name, value in vars(rules).items()
        if name.isupper()
        and not name.startswith("_")
        and not name.endswith("_URL")
        and name != "BOTOCORE_MODEL"
        if not callable(value) or hasattr(value, "fullmatch")
    } - {"RULE_SOURCES"}


def test_every_rule_names_its_source() -> None:
    assert _rule_names() == set(rules.RULE_SOURCES)
    for name, source in rules.RULE_SOURCES.items():
        assert source.url.startswith(
            ("https://docs.aws.amazon.com/personalize/latest/dg/", "https://avro.apache.org/", "botocore/")
        ), name
        if source.assumption is not None:
            assert len(source.assumption) > 20, f"{name}: an assumption says what was assumed and why"


def test_reserved_interaction_fields_follow_the_custom_schema_page() -> None:
    # custom-datasets-and-schemas.html lists EVENT_ATTRIBUTION_SOURCE as a reserved keyword of the
    # Item interactions dataset; EVENT_ID is a PutEvents field, not a dataset column.
    assert "EVENT_ATTRIBUTION_SOURCE" in rules.RESERVED_INTERACTION_FIELDS
    assert "EVENT_ID" not in rules.RESERVED_INTERACTION_FIELDS
    assert rules.metadata_fields(["USER_ID", "EVENT_ATTRIBUTION_SOURCE", "EVENT_ID"], "Interactions") == [
        "EVENT_ID"
    ]


def test_event_budget_counts_event_type_and_event_value_columns() -> None:
    columns = ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE", "IMPRESSION", "DEVICE"]
    assert rules.event_budget_columns(columns) == ["DEVICE", "EVENT_TYPE", "EVENT_VALUE"]
    assert rules.event_budget_problem(7, columns) is None
    assert "8 event types + 3 metadata columns" in (rules.event_budget_problem(8, columns) or "")


# --------------------------------------------------------------------------------------------------
# both consumers, one verdict
# --------------------------------------------------------------------------------------------------


def _validator_errors(schema: dict, text: str, dataset: str) -> list[str]:
    validator = CsvValidator(schema, dataset=dataset)
    validator.validate_bytes_stream("f.csv", io.BytesIO(text.encode()))
    return [str(e) for e in validator.finish().errors]


def _emulator_error(schema: dict, text: str, dataset: str, tmp_path: Path) -> str | None:
    path = tmp_path / "f.csv"
    path.write_text(text)
    fields = emulator_rules.parse_schema(json.dumps(schema))
    try:
        emulator_rules.import_files(
            [(path, "f.csv")],
            fields,
            dataset,
            tmp_path / "out.parquet",
            import_mode="FULL",
            location="s3://b/",
        )
    except emulator_rules.DataRuleError as exc:
        return str(exc)
    return None


def _items(item_id: str = "item-1", genres: str = "Drama", created: str = "1600000000") -> str:
    return f"ITEM_ID,GENRES,CREATION_TIMESTAMP\n{item_id},{genres},{created}\n"


def _interactions(event_types: int, n: int = 1000, users: int = 50) -> str:
    rows = "".join(f"u{i % users},i{i % 77},e{i % event_types},1,{1_700_000_000 + i}\n" for i in range(n))
    return "USER_ID,ITEM_ID,EVENT_TYPE,EVENT_VALUE,TIMESTAMP\n" + rows


@pytest.mark.parametrize(
    ("rule", "value", "text", "dataset", "schema"),
    [
        ("MAX_ID_CHARS", 5, _items(item_id="item-12"), "items", ITEMS_SCHEMA),
        ("MAX_CATEGORICAL_CHARS", 3, _items(genres="Drama"), "items", ITEMS_SCHEMA),
        ("MAX_EPOCH_SECONDS", 1_500_000_000, _items(), "items", ITEMS_SCHEMA),
        ("MIN_RECORDS_PER_IMPORT", 2, _items(), "items", ITEMS_SCHEMA),
        (
            "MAX_EVENT_TYPES_PLUS_METADATA",
            3,
            _interactions(event_types=2),
            "Interactions",
            INTERACTIONS_SCHEMA,
        ),
        (
            "MIN_INTERACTIONS_PER_IMPORT",
            1001,
            _interactions(event_types=1),
            "Interactions",
            INTERACTIONS_SCHEMA,
        ),
        (
            "MIN_USERS_WITH_TWO_INTERACTIONS",
            51,
            _interactions(event_types=1),
            "Interactions",
            INTERACTIONS_SCHEMA,
        ),
    ],
)
def test_changing_a_rule_changes_both_verdicts(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    rule: str,
    value: int,
    text: str,
    dataset: str,
    schema: dict,
) -> None:
    assert _validator_errors(schema, text, dataset) == []
    assert _emulator_error(schema, text, dataset, tmp_path) is None
    monkeypatch.setattr(rules, rule, value)
    assert _validator_errors(schema, text, dataset) != []
    assert _emulator_error(schema, text, dataset, tmp_path) is not None


@pytest.mark.parametrize(
    ("created", "accepted"),
    [("9999999999", True), ("10000000000", False), ("1600000000000", False), ("0", False), ("-5", False)],
)
def test_timestamp_seconds_rule_is_the_same_for_both(tmp_path: Path, created: str, accepted: bool) -> None:
    text = _items(created=created)
    assert (_validator_errors(ITEMS_SCHEMA, text, "items") == []) is accepted
    assert (_emulator_error(ITEMS_SCHEMA, text, "items", tmp_path) is None) is accepted


@pytest.mark.parametrize(("event_types", "accepted"), [(8, True), (9, False)])
def test_event_budget_is_the_same_for_both(tmp_path: Path, event_types: int, accepted: bool) -> None:
    # 8 event types + EVENT_TYPE + EVENT_VALUE columns = 10 (the limit); 9 + 2 = 11 is over it
    text = _interactions(event_types=event_types)
    assert (_validator_errors(INTERACTIONS_SCHEMA, text, "interactions") == []) is accepted
    assert (_emulator_error(INTERACTIONS_SCHEMA, text, "Interactions", tmp_path) is None) is accepted


def test_quoted_header_and_multiline_record_are_rejected_by_both(tmp_path: Path) -> None:
    for text in ('"ITEM_ID",GENRES,CREATION_TIMESTAMP\ni1,Drama,1600000000\n', _items(genres='"Dra\nma"')):
        assert _validator_errors(ITEMS_SCHEMA, text, "items") != []
        assert _emulator_error(ITEMS_SCHEMA, text, "items", tmp_path) is not None


def test_schema_rules_are_the_facts() -> None:
    fields = rules.parse_fields(
        [{"name": n, "type": "string"} for n in ("USER_ID", "ITEM_ID", "EVENT_ATTRIBUTION_SOURCE")]
        + [{"name": "TIMESTAMP", "type": "long"}]
        + [{"name": f"M{i}", "type": ["null", "string"], "categorical": True} for i in range(5)]
    )
    assert rules.schema_problem(fields, "Interactions") is None
    extra = fields + rules.parse_fields([{"name": "EVENT_ID", "type": ["null", "string"]}])
    assert "at most 5" in (rules.schema_problem(extra, "Interactions") or "")
    with pytest.raises(ValueError, match="at most 5"):
        emulator_rules.check_schema_for_dataset_type(extra, "Interactions")
