"""Amazon Personalize filter expressions and batch-segment ``itemAttributes`` queries.

Supported filter grammar (keywords are case-insensitive)::

    filter     := expression ( "|" expression )*
    expression := ( INCLUDE | EXCLUDE ) ( ItemID | UserID ) WHERE condition
    condition  := and_cond ( OR and_cond )*
    and_cond   := atom ( AND atom )*
    atom       := "(" condition ")"
                | field [ NOT ] IN "(" value ( "," value )* ")"     -- quoted strings / numbers
                | field [ NOT ] IN "(" $PLACEHOLDER ")"
                | field [ NOT ] IN CurrentItem.<column>
                | field ( < | > | <= | >= | = ) ( number | $PLACEHOLDER | CurrentItem.<column> )
    field      := Items.<column> | Interactions.EVENT_TYPE | Users.<column>

Semantics follow the Personalize developer guide:

* ``ItemID`` expressions filter item recommendations: ``Items.<column>`` tests the candidate item's
  metadata (a categorical multi-value ``A|B`` matches when any of its values is listed),
  ``Interactions.EVENT_TYPE`` tests whether the requesting user interacted with the candidate item
  with one of the listed event types (event types match case-insensitively, ``"*"`` means any).
  ``CurrentItem.<column>`` (related-items requests) compares with the request item's value.
* ``UserID`` expressions filter users of a user segment: ``Users.<column>`` tests the user's
  metadata, ``Interactions.EVENT_TYPE`` tests whether the user has any interaction of that type.
* One expression may not mix the Interactions dataset with the Items / Users dataset (chain two
  expressions with ``|`` instead), exactly as AWS requires.
* A placeholder without a value in ``filter_values`` makes its condition drop out of the expression;
  an expression left without conditions is ignored (AWS ignores unset parameters the same way).
* Rejected with :class:`FilterExpressionError`: ``ActionID`` / ``Actions`` filters, ``IF
  CurrentUser`` conditions, interaction columns other than ``EVENT_TYPE``, string comparisons with
  ``<``/``>``, unquoted strings, unknown datasets.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "CompiledFilter",
    "FilterContext",
    "FilterExpressionError",
    "UserFilterContext",
    "compile_filter",
    "parse_filter_value",
    "parse_item_attributes",
]

MAX_EXPRESSION_LENGTH = 2500  # CreateFilter filterExpression maxLength in the botocore model
ANY_EVENT_TYPE = "*"


class FilterExpressionError(ValueError):
    """A filter expression, a filter value or an ``itemAttributes`` query is invalid."""


# --------------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # WORD, STRING, NUMBER, PLACEHOLDER, OP, LPAREN, RPAREN, COMMA, PIPE, END
    text: str
    pos: int


_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?")
_NUMBER_RE = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_PLACEHOLDER_RE = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*")


def _read_string(text: str, start: int) -> tuple[str, int]:
    """Read a double-quoted string starting at ``text[start] == '"'``; ``\\`` escapes any char."""
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text):
                break
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise FilterExpressionError(f"unterminated string starting at position {start}")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == '"':
            value, end = _read_string(text, i)
            tokens.append(_Token("STRING", value, i))
            i = end
        elif ch == "'":
            raise FilterExpressionError(
                f"single-quoted value at position {i}: values must be enclosed in double quotes"
            )
        elif ch == "(":
            tokens.append(_Token("LPAREN", ch, i))
            i += 1
        elif ch == ")":
            tokens.append(_Token("RPAREN", ch, i))
            i += 1
        elif ch == ",":
            tokens.append(_Token("COMMA", ch, i))
            i += 1
        elif ch == "|":
            tokens.append(_Token("PIPE", ch, i))
            i += 1
        elif text.startswith(("<=", ">="), i):
            tokens.append(_Token("OP", text[i : i + 2], i))
            i += 2
        elif text.startswith(("!=", "<>"), i):
            raise FilterExpressionError(
                f"operator {text[i : i + 2]!r} at position {i} is not supported; use NOT IN"
            )
        elif ch in "<>=":
            tokens.append(_Token("OP", ch, i))
            i += 1
        elif ch == "$":
            m = _PLACEHOLDER_RE.match(text, i)
            if not m:
                raise FilterExpressionError(f"invalid placeholder at position {i}: expected $NAME")
            tokens.append(_Token("PLACEHOLDER", m.group()[1:], i))
            i = m.end()
        elif ch.isdigit() or (ch in "-." and i + 1 < len(text) and text[i + 1].isdigit()):
            m = _NUMBER_RE.match(text, i)
            assert m is not None
            tokens.append(_Token("NUMBER", m.group(), i))
            i = m.end()
        else:
            m = _WORD_RE.match(text, i)
            if not m:
                raise FilterExpressionError(f"unexpected character {ch!r} at position {i}")
            tokens.append(_Token("WORD", m.group(), i))
            i = m.end()
    tokens.append(_Token("END", "", len(text)))
    return tokens


# --------------------------------------------------------------------------------------------------
# AST
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One comparison ``<dataset>.<column> <op> <operand>``.

    ``dataset`` is ``ITEMS``, ``INTERACTIONS`` or ``USERS``; ``op`` is ``IN``, ``NOT IN``, ``<``,
    ``>``, ``<=``, ``>=`` or ``=``. Exactly one of ``values`` / ``placeholder`` / ``current_item``
    is set.
    """

    dataset: str
    column: str
    op: str
    values: tuple[str | float, ...] | None = None
    placeholder: str | None = None
    current_item: str | None = None


@dataclass(frozen=True)
class BoolOp:
    op: str  # "AND" | "OR"
    children: tuple[Node, ...]


Node = Condition | BoolOp


@dataclass(frozen=True)
class Expression:
    action: str  # INCLUDE | EXCLUDE
    target: str  # ITEM | USER
    condition: Node
    source: str = ""


def _iter_conditions(node: Node) -> list[Condition]:
    if isinstance(node, Condition):
        return [node]
    out: list[Condition] = []
    for child in node.children:
        out.extend(_iter_conditions(child))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    # helpers -------------------------------------------------------------------------------------
    def peek(self) -> _Token:
        return self.tokens[self.i]

    def next(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error(self, message: str, tok: _Token | None = None) -> FilterExpressionError:
        tok = tok or self.peek()
        where = "end of expression" if tok.kind == "END" else f"{tok.text!r} at position {tok.pos}"
        return FilterExpressionError(f"{message} (found {where})")

    def is_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "WORD" and tok.text.upper() in words

    def expect_word(self, *words: str) -> str:
        if not self.is_word(*words):
            raise self.error("expected " + " or ".join(words))
        return self.next().text.upper()

    def expect(self, kind: str, what: str) -> _Token:
        if self.peek().kind != kind:
            raise self.error(f"expected {what}")
        return self.next()

    # grammar -------------------------------------------------------------------------------------
    def parse(self) -> list[Expression]:
        expressions = [self.expression()]
        while self.peek().kind == "PIPE":
            self.next()
            expressions.append(self.expression())
        if self.peek().kind != "END":
            raise self.error("expected '|' or the end of the filter expression")
        targets = {e.target for e in expressions}
        if len(targets) > 1:
            raise FilterExpressionError(
                "all expressions chained with '|' must filter the same kind (ItemID or UserID)"
            )
        return expressions

    def expression(self) -> Expression:
        start = self.peek().pos
        action = self.expect_word("INCLUDE", "EXCLUDE")
        if self.is_word("ACTIONID"):
            raise self.error("ActionID filters (action recommendations) are not supported")
        target_word = self.expect_word("ITEMID", "USERID")
        target = "ITEM" if target_word == "ITEMID" else "USER"
        self.expect_word("WHERE")
        condition = self.or_cond(target)
        if self.is_word("IF"):
            raise self.error("IF CurrentUser conditions are not supported")
        end = self.peek().pos
        datasets = {c.dataset for c in _iter_conditions(condition)}
        if "INTERACTIONS" in datasets and len(datasets) > 1:
            raise FilterExpressionError(
                "an expression cannot combine the Interactions dataset with the "
                f"{'Items' if target == 'ITEM' else 'Users'} dataset; chain two expressions with '|'"
            )
        return Expression(action, target, condition, self.text[start:end].strip())

    def or_cond(self, target: str) -> Node:
        children = [self.and_cond(target)]
        while self.is_word("OR"):
            self.next()
            children.append(self.and_cond(target))
        return children[0] if len(children) == 1 else BoolOp("OR", tuple(children))

    def and_cond(self, target: str) -> Node:
        children = [self.atom(target)]
        while self.is_word("AND"):
            self.next()
            children.append(self.atom(target))
        return children[0] if len(children) == 1 else BoolOp("AND", tuple(children))

    def atom(self, target: str) -> Node:
        if self.peek().kind == "LPAREN":
            self.next()
            node = self.or_cond(target)
            self.expect("RPAREN", "')'")
            return node
        tok = self.peek()
        if tok.kind != "WORD" or "." not in tok.text:
            raise self.error("expected a field such as Items.GENRES or Interactions.EVENT_TYPE")
        self.next()
        dataset_raw, column = tok.text.split(".", 1)
        dataset = dataset_raw.upper()
        if dataset in ("ACTIONS", "ACTION_INTERACTIONS"):
            raise self.error("Actions datasets are not supported", tok)
        if dataset in ("CURRENTUSER", "CURRENTITEM"):
            raise self.error(f"{dataset_raw} can only appear on the right-hand side of a condition", tok)
        if dataset not in ("ITEMS", "INTERACTIONS", "USERS"):
            raise self.error(f"unknown dataset {dataset_raw!r}; expected Items, Interactions or Users", tok)
        if target == "ITEM" and dataset == "USERS":
            raise self.error("Users.<column> conditions filter users (UserID), not items", tok)
        if target == "USER" and dataset == "ITEMS":
            raise self.error("Items.<column> conditions filter items (ItemID), not users", tok)
        column = column.upper() if dataset == "INTERACTIONS" else column
        if dataset == "INTERACTIONS" and column != "EVENT_TYPE":
            raise self.error(
                "interactions can be filtered only by EVENT_TYPE, not by other interaction metadata", tok
            )

        if self.is_word("NOT"):
            self.next()
            self.expect_word("IN")
            op = "NOT IN"
        elif self.is_word("IN"):
            self.next()
            op = "IN"
        elif self.peek().kind == "OP":
            op = self.next().text
        else:
            raise self.error("expected IN, NOT IN or a comparison operator (<, >, <=, >=, =)")

        if dataset == "INTERACTIONS" and op not in ("IN",):
            raise self.error("Interactions.EVENT_TYPE supports only IN")

        if op in ("IN", "NOT IN"):
            return self.in_operand(dataset, column, op)
        return self.cmp_operand(dataset, column, op)

    def current_item(self, tok: _Token) -> str | None:
        if tok.kind == "WORD" and "." in tok.text:
            ds, col = tok.text.split(".", 1)
            if ds.upper() == "CURRENTITEM":
                return col
            if ds.upper() == "CURRENTUSER":
                raise self.error("CurrentUser values are not supported", tok)
        return None

    def in_operand(self, dataset: str, column: str, op: str) -> Condition:
        tok = self.peek()
        current = self.current_item(tok)
        if current is not None:
            if dataset != "ITEMS":
                raise self.error("CurrentItem values can only be compared with Items columns", tok)
            self.next()
            return Condition(dataset, column, op, current_item=current)
        self.expect("LPAREN", "'(' after IN")
        if self.peek().kind == "PLACEHOLDER":
            name = self.next().text
            if self.peek().kind == "COMMA":
                raise self.error("a placeholder must be the only value inside IN ( )")
            self.expect("RPAREN", "')' after the placeholder")
            return Condition(dataset, column, op, placeholder=name)
        values: list[str | float] = []
        while True:
            vt = self.peek()
            if vt.kind == "STRING":
                values.append(self.next().text)
            elif vt.kind == "NUMBER":
                values.append(float(self.next().text))
            elif vt.kind == "PLACEHOLDER":
                raise self.error("a placeholder must be the only value inside IN ( )")
            elif vt.kind == "WORD":
                raise self.error("values must be enclosed in double quotes")
            else:
                raise self.error("expected a double-quoted value")
            if self.peek().kind == "COMMA":
                self.next()
                continue
            self.expect("RPAREN", "',' or ')' in the value list")
            break
        if dataset == "INTERACTIONS":
            values = [str(v).lower() for v in values]
        return Condition(dataset, column, op, values=tuple(values))

    def cmp_operand(self, dataset: str, column: str, op: str) -> Condition:
        tok = self.peek()
        current = self.current_item(tok)
        if current is not None:
            if dataset != "ITEMS":
                raise self.error("CurrentItem values can only be compared with Items columns", tok)
            self.next()
            return Condition(dataset, column, op, current_item=current)
        if tok.kind == "NUMBER":
            self.next()
            return Condition(dataset, column, op, values=(float(tok.text),))
        if tok.kind == "PLACEHOLDER":
            self.next()
            return Condition(dataset, column, op, placeholder=tok.text)
        if tok.kind == "STRING":
            raise self.error(f"operator {op!r} compares numbers only; use IN for string values")
        raise self.error(f"expected a number or a placeholder after {op!r}")


# --------------------------------------------------------------------------------------------------
# Filter values and evaluation contexts
# --------------------------------------------------------------------------------------------------


def parse_filter_value(name: str, raw: Any) -> tuple[str, ...]:
    """Parse one ``filterValues`` entry: ``"\\"horror\\",\\"comedy\\""`` → ``("horror", "comedy")``.

    A bare number (``"10"``) is accepted for numeric comparisons.
    """
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return (str(raw),)
    if not isinstance(raw, str):
        raise FilterExpressionError(f"filter value for {name} must be a string, got {type(raw).__name__}")
    text = raw.strip()
    if not text:
        raise FilterExpressionError(f"filter value for {name} is empty")
    if _NUMBER_RE.fullmatch(text):
        return (text,)
    values: list[str] = []
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text) or text[i] != '"':
            raise FilterExpressionError(
                f'filter value for {name} must be double-quoted values separated by commas, e.g. "\\"a\\",\\"b\\"" (got {raw!r})'
            )
        value, i = _read_string(text, i)
        values.append(value)
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return tuple(values)
        if text[i] != ",":
            raise FilterExpressionError(
                f"filter value for {name}: expected ',' at position {i} (got {raw!r})"
            )
        i += 1


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class _Table:
    """Column access on a metadata table aligned to an index (items or users)."""

    def __init__(self, frame: Any | None, size: int) -> None:
        self.size = size
        self.frame = frame
        self._columns: dict[str, str] = {}
        if frame is not None:
            self._columns = {str(c).upper(): str(c) for c in frame.columns}
        self._tokens: dict[str, list[frozenset[str]]] = {}
        self._numbers: dict[str, np.ndarray] = {}

    def has_column(self, column: str) -> bool:
        return column.upper() in self._columns

    def _require(self, column: str, what: str) -> str:
        key = column.upper()
        if key not in self._columns:
            known = ", ".join(sorted(self._columns)) or "none"
            raise FilterExpressionError(f"{what} column {column!r} does not exist (columns: {known})")
        return self._columns[key]

    def tokens(self, column: str, what: str) -> list[frozenset[str]]:
        real = self._require(column, what)
        if real not in self._tokens:
            out: list[frozenset[str]] = []
            for v in self.frame[real].tolist():  # type: ignore[index]
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    out.append(frozenset())
                else:
                    out.append(frozenset(_value_tokens(v)))
            self._tokens[real] = out
        return self._tokens[real]

    def numbers(self, column: str, what: str) -> np.ndarray:
        real = self._require(column, what)
        if real not in self._numbers:
            self._numbers[real] = np.array([_as_float(v) for v in self.frame[real].tolist()], dtype=float)  # type: ignore[index]
        return self._numbers[real]


def _value_tokens(value: Any) -> list[str]:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    return text.split("|")


def _canonical(value: str | float) -> set[str]:
    """String forms a literal may match: ``2000.0`` also matches ``"2000"``."""
    if isinstance(value, float):
        forms = {repr(value), str(value)}
        if value.is_integer():
            forms.add(str(int(value)))
        return forms
    return {value}


@dataclass
class FilterContext:
    """What an item filter needs: the catalog (aligned arrays), the requesting user's interactions
    (item indices per lower-cased event type) and, for related-items requests, the current item.

    :param item_ids: catalog item ids, index-aligned with ``items``.
    :param items: items metadata aligned to ``item_ids`` (a pandas DataFrame) or ``None``.
    :param user_events: lower-cased event type → array of item indices the user interacted with.
    :param current_item: index of the request item (related items) or ``None``.
    """

    item_ids: list[str]
    items: Any | None = None
    user_events: dict[str, np.ndarray] = field(default_factory=dict)
    current_item: int | None = None
    _table: _Table | None = None

    def table(self) -> _Table:
        if self._table is None:
            self._table = _Table(self.items, len(self.item_ids))
        return self._table


@dataclass
class UserFilterContext:
    """What a user (segment) filter needs: users metadata aligned to ``user_ids`` and, per lower-cased
    event type, a boolean mask of users with at least one such interaction."""

    user_ids: list[str]
    users: Any | None = None
    user_has_event: dict[str, np.ndarray] = field(default_factory=dict)
    _table: _Table | None = None

    def table(self) -> _Table:
        if self._table is None:
            self._table = _Table(self.users, len(self.user_ids))
        return self._table


# --------------------------------------------------------------------------------------------------
# Compiled filter
# --------------------------------------------------------------------------------------------------


_CMP = {
    "<": np.less,
    ">": np.greater,
    "<=": np.less_equal,
    ">=": np.greater_equal,
    "=": np.equal,
}


class CompiledFilter:
    """A parsed filter expression. Build with :func:`compile_filter`."""

    def __init__(self, expression: str, expressions: list[Expression]) -> None:
        self.expression = expression
        self.expressions = expressions
        self.target = expressions[0].target

    def __repr__(self) -> str:
        return f"CompiledFilter({self.expression!r})"

    def placeholders(self) -> set[str]:
        """Names of the ``$PLACEHOLDER`` parameters (without ``$``)."""
        return {
            c.placeholder for e in self.expressions for c in _iter_conditions(e.condition) if c.placeholder
        }

    def uses_interactions(self) -> bool:
        return any(
            c.dataset == "INTERACTIONS" for e in self.expressions for c in _iter_conditions(e.condition)
        )

    def _values(self, cond: Condition, filter_values: dict[str, Any] | None) -> tuple[str, ...] | None:
        if cond.values is not None:
            return tuple(str(v) for v in cond.values)
        assert cond.placeholder is not None
        if not filter_values or cond.placeholder not in filter_values:
            return None
        raw = filter_values[cond.placeholder]
        values = parse_filter_value(cond.placeholder, raw)
        if cond.dataset == "INTERACTIONS":
            values = tuple(v.lower() for v in values)
        return values

    # ---- items --------------------------------------------------------------------------------
    def item_mask(self, context: FilterContext, filter_values: dict[str, Any] | None = None) -> np.ndarray:
        """Boolean mask over ``context.item_ids``: True = the item may be recommended."""
        if self.target != "ITEM":
            raise FilterExpressionError(
                "this filter filters users (UserID); it cannot filter item recommendations"
            )
        n = len(context.item_ids)
        return self._combine(n, lambda cond: self._eval_item(cond, context, filter_values, n))

    def _combine(self, n: int, evaluate: Callable[[Any], np.ndarray | None]) -> np.ndarray:
        """Apply every ``|``-chained INCLUDE/EXCLUDE expression to an all-True mask of length ``n``."""
        mask = np.ones(n, dtype=bool)
        for expr in self.expressions:
            hit = self._fold(expr.condition, evaluate)
            if hit is None:  # every condition dropped out (placeholders without a value)
                continue
            mask &= hit if expr.action == "INCLUDE" else ~hit
        return mask

    @classmethod
    def _fold(cls, node: Node, evaluate: Callable[[Any], np.ndarray | None]) -> np.ndarray | None:
        """Evaluate an AND/OR tree: leaves with ``evaluate``, conditions that drop out are skipped."""
        if not isinstance(node, BoolOp):
            return evaluate(node)
        parts = [p for p in (cls._fold(child, evaluate) for child in node.children) if p is not None]
        if not parts:
            return None
        out = parts[0].copy()
        for part in parts[1:]:
            out = (out & part) if node.op == "AND" else (out | part)
        return out

    def _eval_item(
        self, cond: Any, ctx: FilterContext, fv: dict[str, Any] | None, n: int
    ) -> np.ndarray | None:
        if cond.dataset == "INTERACTIONS":
            values = self._values(cond, fv)
            if values is None:
                return None
            hit = np.zeros(n, dtype=bool)
            wanted = set(values)
            for event_type, idx in ctx.user_events.items():
                if ANY_EVENT_TYPE in wanted or event_type in wanted:
                    hit[idx] = True
            return hit
        table = ctx.table()
        if cond.current_item is not None:
            if ctx.current_item is None:
                return None  # no request item (not a related-items request): condition does not apply
            if cond.op in ("IN", "NOT IN"):
                values = tuple(table.tokens(cond.current_item, "CurrentItem")[ctx.current_item])
            else:
                cur = table.numbers(cond.current_item, "CurrentItem")[ctx.current_item]
                values = (repr(float(cur)),)
        else:
            values = self._values(cond, fv)
            if values is None:
                return None
        return _eval_on_table(table, cond, values, "Items")

    # ---- users --------------------------------------------------------------------------------
    def user_mask(
        self, context: UserFilterContext, filter_values: dict[str, Any] | None = None
    ) -> np.ndarray:
        """Boolean mask over ``context.user_ids``: True = the user may appear in the segment."""
        if self.target != "USER":
            raise FilterExpressionError("this filter filters items (ItemID); it cannot filter user segments")
        n = len(context.user_ids)
        return self._combine(n, lambda cond: self._eval_user(cond, context, filter_values, n))

    def _eval_user(
        self, cond: Any, ctx: UserFilterContext, fv: dict[str, Any] | None, n: int
    ) -> np.ndarray | None:
        values = self._values(cond, fv)
        if values is None:
            return None
        if cond.dataset == "INTERACTIONS":
            hit = np.zeros(n, dtype=bool)
            wanted = set(values)
            for event_type, has in ctx.user_has_event.items():
                if ANY_EVENT_TYPE in wanted or event_type in wanted:
                    hit |= has
            return hit
        return _eval_on_table(ctx.table(), cond, values, "Users")


def _eval_on_table(table: _Table, cond: Condition, values: tuple[str, ...], what: str) -> np.ndarray:
    if table.frame is None:
        raise FilterExpressionError(
            f"the filter uses {what}.{cond.column} but there is no {what.lower()} dataset"
        )
    if cond.op in ("IN", "NOT IN"):
        wanted: set[str] = set()
        for v in values:
            wanted.add(v)
            if _NUMBER_RE.fullmatch(v):
                wanted |= _canonical(float(v))
        tokens = table.tokens(cond.column, what)
        hit = np.fromiter((bool(t & wanted) for t in tokens), dtype=bool, count=len(tokens))
        return hit if cond.op == "IN" else ~hit
    if len(values) != 1:
        raise FilterExpressionError(
            f"{what}.{cond.column} {cond.op} needs exactly one number, got {len(values)} values"
        )
    threshold = _as_float(values[0])
    if math.isnan(threshold):
        raise FilterExpressionError(f"{what}.{cond.column} {cond.op} needs a number, got {values[0]!r}")
    numbers = table.numbers(cond.column, what)
    with np.errstate(invalid="ignore"):
        return _CMP[cond.op](numbers, threshold) & ~np.isnan(numbers)


def compile_filter(expression: str) -> CompiledFilter:
    """Parse a Personalize filter expression.

    :param expression: e.g. ``EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")``.
    :raises FilterExpressionError: naming what is wrong and where.
    """
    if not isinstance(expression, str) or not expression.strip():
        raise FilterExpressionError("the filter expression is empty")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise FilterExpressionError(
            f"the filter expression is longer than {MAX_EXPRESSION_LENGTH} characters"
        )
    return CompiledFilter(expression, _Parser(expression).parse())


# --------------------------------------------------------------------------------------------------
# Batch segment itemAttributes
# --------------------------------------------------------------------------------------------------

_ATTR_FIELD_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\s*=\s*")
_AND_RE = re.compile(r"\s+AND\b\s*", re.IGNORECASE)


def parse_item_attributes(expression: str) -> list[tuple[str, str]]:
    """Parse a batch segment ``itemAttributes`` query into ``[(column, value), ...]``.

    Grammar: ``ITEMS.<column> = "<value>" [AND ITEMS.<column> = "<value>" ...]``; ``\\`` escapes the
    next character inside a value; ``ITEMS`` and ``AND`` are case-insensitive. The column is returned
    as written; callers match it case-insensitively to the items dataset.

    :raises FilterExpressionError: on anything else (``OR``, ``IN``, ranges, unquoted values, ...).
    """
    if not isinstance(expression, str) or not expression.strip():
        raise FilterExpressionError("itemAttributes is empty")
    terms: list[tuple[str, str]] = []
    i = 0
    text = expression
    while True:
        m = _ATTR_FIELD_RE.match(text, i)
        if not m:
            rest = text[i:].strip()
            if re.match(r"(?i)items\.\w+\s+(in|not)\b", rest):
                raise FilterExpressionError(
                    f"itemAttributes supports only '=' (found {rest[:40]!r}); IN is for filter expressions"
                )
            raise FilterExpressionError(
                f'expected ITEMS.<column> = "<value>" at position {i} (found {rest[:40]!r})'
            )
        if m.group(1).upper() != "ITEMS":
            raise FilterExpressionError(
                f"itemAttributes can only reference ITEMS.<column>, found {m.group(1)!r}"
            )
        column = m.group(2)
        i = m.end()
        if i >= len(text) or text[i] != '"':
            raise FilterExpressionError(f"the value for ITEMS.{column} must be double-quoted (position {i})")
        try:
            value, i = _read_string(text, i)
        except FilterExpressionError as exc:
            raise FilterExpressionError(f"itemAttributes: {exc}") from None
        terms.append((column, value))
        if not text[i:].strip():
            return terms
        m_and = _AND_RE.match(text, i)
        if not m_and:
            rest = text[i:].strip()
            word = rest.split()[0] if rest.split() else rest
            if word.upper() == "OR":
                raise FilterExpressionError(
                    "itemAttributes terms can only be combined with AND (OR is not supported)"
                )
            raise FilterExpressionError(
                f"expected AND or the end of itemAttributes at position {i} (found {rest[:40]!r})"
            )
        i = m_and.end()
