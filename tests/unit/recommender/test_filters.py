from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emulators.personalize.filters import (
    FilterContext,
    FilterExpressionError,
    UserFilterContext,
    compile_filter,
    parse_filter_value,
    parse_item_attributes,
)

ITEM_IDS = ["1", "2", "3", "4", "5"]
ITEMS = pd.DataFrame(
    {
        "ITEM_ID": ITEM_IDS,
        "GENRES": ["Action|Comedy", "Horror", "Drama", None, "comedy"],
        "RELEASE_YEAR": ["1999", "2005", "2010", "2001", None],
    }
)


def ctx(events: dict[str, list[int]] | None = None, current: int | None = None) -> FilterContext:
    return FilterContext(
        item_ids=ITEM_IDS,
        items=ITEMS,
        user_events={k: np.array(v) for k, v in (events or {}).items()},
        current_item=current,
    )


def allowed(expression: str, context: FilterContext | None = None, values: dict | None = None) -> list[str]:
    mask = compile_filter(expression).item_mask(context or ctx(), values)
    return [i for i, ok in zip(ITEM_IDS, mask, strict=True) if ok]


def test_exclude_interacted_event_types_case_insensitive() -> None:
    context = ctx({"watch": [0, 1], "click": [2], "rate": [3]})
    assert allowed('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("Watch", "click")', context) == [
        "4",
        "5",
    ]
    assert allowed('exclude itemid where interactions.event_type in ("rate")', context) == [
        "1",
        "2",
        "3",
        "5",
    ]


def test_include_any_event_type() -> None:
    context = ctx({"watch": [0], "click": [4]})
    assert allowed('INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")', context) == ["1", "5"]
    assert allowed('INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")', ctx()) == []


def test_include_categorical_matches_any_value_case_sensitive() -> None:
    assert allowed('INCLUDE ItemID WHERE Items.GENRES IN ("Comedy")') == ["1"]
    assert allowed('INCLUDE ItemID WHERE Items.genres IN ("Comedy", "Drama")') == ["1", "3"]
    assert allowed('INCLUDE ItemID WHERE Items.GENRES NOT IN ("Comedy")') == ["2", "3", "4", "5"]


def test_exclude_with_placeholder_values() -> None:
    f = compile_filter("EXCLUDE ItemID WHERE Items.GENRES IN ($GENRES)")
    assert f.placeholders() == {"GENRES"}
    mask = f.item_mask(ctx(), {"GENRES": '"Horror","Comedy"'})
    assert [i for i, ok in zip(ITEM_IDS, mask, strict=True) if ok] == ["3", "4", "5"]
    # a placeholder without a value is ignored, like AWS
    assert f.item_mask(ctx(), {}).all()


def test_numeric_comparisons_and_placeholders() -> None:
    assert allowed("INCLUDE ItemID WHERE Items.RELEASE_YEAR > 2000") == ["2", "3", "4"]
    assert allowed("INCLUDE ItemID WHERE Items.RELEASE_YEAR <= 2001") == ["1", "4"]
    assert allowed("INCLUDE ItemID WHERE Items.RELEASE_YEAR = 2005") == ["2"]
    assert allowed("INCLUDE ItemID WHERE Items.RELEASE_YEAR >= $Y", values={"Y": "2005"}) == ["2", "3"]
    assert allowed('INCLUDE ItemID WHERE Items.RELEASE_YEAR IN ("2010", "1999")') == ["1", "3"]


def test_and_or_and_parentheses() -> None:
    expr = 'INCLUDE ItemID WHERE Items.GENRES IN ("Horror") OR Items.RELEASE_YEAR < 2000'
    assert allowed(expr) == ["1", "2"]
    expr = 'INCLUDE ItemID WHERE Items.GENRES IN ("Drama", "Horror") AND Items.RELEASE_YEAR > 2006'
    assert allowed(expr) == ["3"]
    expr = 'INCLUDE ItemID WHERE (Items.GENRES IN ("Drama") OR Items.GENRES IN ("Horror")) AND Items.RELEASE_YEAR > 2006'
    assert allowed(expr) == ["3"]


def test_pipe_chains_expressions() -> None:
    context = ctx({"watch": [0, 2]})
    expr = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch") | INCLUDE ItemID WHERE Items.GENRES IN ("Horror", "Action", "Drama")'
    assert allowed(expr, context) == ["2"]


def test_current_item() -> None:
    assert allowed("INCLUDE ItemID WHERE Items.GENRES IN CurrentItem.GENRES", ctx(current=0)) == ["1"]
    assert allowed("INCLUDE ItemID WHERE Items.RELEASE_YEAR > CurrentItem.RELEASE_YEAR", ctx(current=0)) == [
        "2",
        "3",
        "4",
    ]
    # no current item (not a related-items request): the condition does not apply
    assert allowed("INCLUDE ItemID WHERE Items.GENRES IN CurrentItem.GENRES", ctx()) == ITEM_IDS


def test_user_filters() -> None:
    users = pd.DataFrame({"USER_ID": ["a", "b", "c"], "TIER": ["gold", "silver", None]})
    context = UserFilterContext(
        user_ids=["a", "b", "c"], users=users, user_has_event={"watch": np.array([True, False, True])}
    )
    f = compile_filter('INCLUDE UserID WHERE Users.TIER IN ("gold", "silver")')
    assert f.user_mask(context).tolist() == [True, True, False]
    f = compile_filter('EXCLUDE UserID WHERE Interactions.EVENT_TYPE IN ("watch")')
    assert f.user_mask(context).tolist() == [False, True, False]
    with pytest.raises(FilterExpressionError, match="filters users"):
        f.item_mask(ctx())


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "empty"),
        ('EXCLUDE ItemID Interactions.EVENT_TYPE IN ("x")', "expected WHERE"),
        ('REMOVE ItemID WHERE Items.GENRES IN ("x")', "expected INCLUDE or EXCLUDE"),
        ("EXCLUDE ItemID WHERE Items.GENRES IN (Action)", "double quotes"),
        ("EXCLUDE ItemID WHERE Items.GENRES IN ('Action')", "double quotes"),
        ('EXCLUDE ItemID WHERE Items.GENRES IN ("Action"', r"expected ',' or '\)'"),
        ('EXCLUDE ItemID WHERE Items.GENRES IN ("Action)', "unterminated string"),
        ('EXCLUDE ItemID WHERE Interactions.EVENT_VALUE IN ("5")', "only by EVENT_TYPE"),
        ('EXCLUDE ItemID WHERE Products.GENRES IN ("x")', "unknown dataset"),
        ('EXCLUDE ActionID WHERE Actions.X IN ("x")', "ActionID"),
        (
            'EXCLUDE ItemID WHERE Items.GENRES IN ("x") AND Interactions.EVENT_TYPE IN ("watch")',
            "chain two expressions",
        ),
        ('EXCLUDE ItemID WHERE Items.GENRES < "x"', "compares numbers only"),
        ("EXCLUDE ItemID WHERE Items.YEAR != 3", "NOT IN"),
        ('EXCLUDE ItemID WHERE Items.GENRES IN ($A, "x")', "only value"),
        ('EXCLUDE ItemID WHERE Items.GENRES IN ("x") IF CurrentUser.AGE > 3', "IF CurrentUser"),
        ('EXCLUDE ItemID WHERE Users.AGE IN ("3")', "filter users"),
        ('EXCLUDE ItemID WHERE Items.GENRES IN ("x") | EXCLUDE UserID WHERE Users.A IN ("b")', "same kind"),
        ('EXCLUDE ItemID WHERE Items.GENRES IN ("x") garbage', "expected '|'"),
        ("EXCLUDE ItemID WHERE Items.GENRES", "expected IN"),
    ],
)
def test_bad_expressions(expression: str, message: str) -> None:
    with pytest.raises(FilterExpressionError, match=message):
        compile_filter(expression)


def test_errors_at_evaluation() -> None:
    f = compile_filter('INCLUDE ItemID WHERE Items.COLOR IN ("red")')
    with pytest.raises(FilterExpressionError, match="'COLOR' does not exist"):
        f.item_mask(ctx())
    f = compile_filter("EXCLUDE ItemID WHERE Items.GENRES IN ($G)")
    with pytest.raises(FilterExpressionError, match="double-quoted"):
        f.item_mask(ctx(), {"G": "horror"})
    f = compile_filter('INCLUDE ItemID WHERE Items.GENRES IN ("x")')
    with pytest.raises(FilterExpressionError, match="no items dataset"):
        f.item_mask(FilterContext(item_ids=ITEM_IDS))


def test_parse_filter_value() -> None:
    assert parse_filter_value("G", '"horror","comedy"') == ("horror", "comedy")
    assert parse_filter_value("G", ' "a\\"b" , "c" ') == ('a"b', "c")
    assert parse_filter_value("P", "10") == ("10",)
    with pytest.raises(FilterExpressionError, match="expected ','"):
        parse_filter_value("G", '"a" "b"')


def test_parse_item_attributes() -> None:
    assert parse_item_attributes('ITEMS.genres = "Comedy"') == [("genres", "Comedy")]
    assert parse_item_attributes('items.GENRES = "Comedy" and ITEMS.genres = "Action"') == [
        ("GENRES", "Comedy"),
        ("genres", "Action"),
    ]
    assert parse_item_attributes('ITEMS.title = "The \\"Best\\" \\\\ one"') == [
        ("title", 'The "Best" \\ one')
    ]
    assert parse_item_attributes('ITEMS.RELEASE_YEAR = "2001"') == [("RELEASE_YEAR", "2001")]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "empty"),
        ('ITEMS.genres = "Comedy" OR ITEMS.genres = "Action"', "only be combined with AND"),
        ('ITEMS.genres IN ("Comedy")', "only '='"),
        ("ITEMS.genres = Comedy", "double-quoted"),
        ('USERS.age = "3"', "only reference ITEMS"),
        ('ITEMS.genres = "Comedy', "unterminated"),
        ('ITEMS.genres = "Comedy" AND', "expected ITEMS"),
        ('ITEMS.genres > "3"', "expected ITEMS"),
    ],
)
def test_parse_item_attributes_errors(expression: str, message: str) -> None:
    with pytest.raises(FilterExpressionError, match=message):
        parse_item_attributes(expression)
