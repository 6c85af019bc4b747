"""Filters and sort keys over an item's rows, compiled to SQL over `"values"`: one compiler for
`GET …/rows/?filter=…&sort=…` and for widgets' `filter_config`.

Filter shape (the same as a widget's `filter_config`):

    {"match": "all" | "any", "conditions": [{"field": 102, "op": "gt", "value": 1000}]}

`match` defaults to `all`; no conditions match every row. At most 20 conditions, 100 values in
an `in` list, 16 KB of JSON. Values are read with the field's type, as row writes read them
(`"1,000.50"` for a decimal, `"yes"` for a boolean, `"05/01/2026"` only where unambiguous).

| op | types | matches |
|---|---|---|
| `eq`, `ne` | all | the same value; `ne` also matches empty cells |
| `in` | all | any value of a list (`eq` for each) |
| `gt`, `gte`, `lt`, `lte` | decimal, date | numerically / chronologically |
| `contains` | char, text | the text contains the value, ignoring case (`%`, `_` literal) |
| `is_empty`, `not_empty` | all | an empty / non-empty cell (no `value`) |

Text `eq`/`ne`/`in` compare the exact stored text (case and spaces count): pick values from the
data (summary `top_values`); `contains` is the case-insensitive match. A date value without a
time compares whole days (`eq 2026-03-05` matches any time that day, `gt 2026-03-05` starts on
the 6th); with a time it compares moments, a cell without a time counting as midnight.

Sort keys: field ids, `-` for descending, comma-separated (at most 5); empty cells last in both
directions; decimals numerically, dates chronologically, booleans false first, text by code point
(`COLLATE "C"`, independent of the database's locale). `_row_ref` is always the final key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, NoReturn

from pydantic import ConfigDict, Field, ValidationError

from app.core.digits import ascii_int
from app.core.errors import BadRequest
from app.core.jsonexact import dumps
from app.core.routing import parse_json
from app.core.schemas import InputSchema
from app.fields.types import CellError, FieldType, Stored, spec
from app.models import Field as FieldModel
from app.rows.search import like_pattern

MAX_CONDITIONS = 20
MAX_IN_VALUES = 100
MAX_FILTER_BYTES = 16_384
MAX_SORT_KEYS = 5


class FilterOp(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    CONTAINS = "contains"
    IN = "in"
    IS_EMPTY = "is_empty"
    NOT_EMPTY = "not_empty"


_EVERY_TYPE = (FilterOp.EQ, FilterOp.NE, FilterOp.IN, FilterOp.IS_EMPTY, FilterOp.NOT_EMPTY)
_ORDERED = (FilterOp.GT, FilterOp.GTE, FilterOp.LT, FilterOp.LTE)
VALID_OPS: dict[FieldType, tuple[FilterOp, ...]] = {
    FieldType.CHAR: (*_EVERY_TYPE, FilterOp.CONTAINS),
    FieldType.TEXT: (*_EVERY_TYPE, FilterOp.CONTAINS),
    FieldType.DECIMAL: (*_EVERY_TYPE, *_ORDERED),
    FieldType.DATE: (*_EVERY_TYPE, *_ORDERED),
    FieldType.BOOLEAN: _EVERY_TYPE,
}
_COMPARE = {
    FilterOp.EQ: "=",
    FilterOp.NE: "IS DISTINCT FROM",
    FilterOp.GT: ">",
    FilterOp.GTE: ">=",
    FilterOp.LT: "<",
    FilterOp.LTE: "<=",
}


class FilterCondition(InputSchema):
    field: int = Field(ge=1, le=2**63 - 1, description="Field id.", examples=[102])
    op: FilterOp = Field(examples=["gt"])
    value: Any = Field(
        default=None,
        description="A value of the field's type; a list for `in`; none for is_empty/not_empty.",
        examples=[1000],
    )


class FilterConfig(InputSchema):
    """Which rows count: `{"match": "all"|"any", "conditions": [{"field", "op", "value"}]}`."""

    match: Literal["all", "any"] = Field(
        default="all", description="`all`: every condition holds; `any`: at least one."
    )
    conditions: list[FilterCondition] = Field(
        default_factory=list,
        max_length=MAX_CONDITIONS,
        description=(
            f"At most {MAX_CONDITIONS}. Ops: eq, ne, in (all types), gt, gte, lt, lte (decimal, "
            "date), contains (char, text; ignoring case), is_empty, not_empty. Text eq/ne/in are "
            "exact; dates without a time compare whole days."
        ),
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "match": "all",
                    "conditions": [
                        {"field": 102, "op": "gt", "value": 1000},
                        {"field": 101, "op": "in", "value": ["North", "South"]},
                    ],
                }
            ]
        }
    )


class SqlParams:
    """The bind parameters of one statement; names carry a prefix so fragments never collide."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.values: dict[str, object] = {}

    def bind(self, value: object) -> str:
        name = f"{self.prefix}{len(self.values)}"
        self.values[name] = value
        return f":{name}"

    def key(self, field_id: int) -> str:
        """A field's key in the row document, bound as a string (`"values"->:key`)."""
        return self.bind(str(int(field_id)))


# ------------------------------------------------------------------------ typed expressions


def cell(key: str) -> str:
    """The cell as jsonb (NULL when empty)."""
    return f'("values"->{key})'


def cell_text(key: str) -> str:
    return f'("values"->>{key})'


def numeric(key: str) -> str:
    """The cell as an exact numeric; NULL when empty (or, during a racing type change, not a
    number), so a statement never fails on a value it did not expect."""
    return f"(CASE WHEN jsonb_typeof({cell(key)}) = 'number' THEN {cell(key)}::numeric END)"


def boolean(key: str) -> str:
    return f"(CASE WHEN jsonb_typeof({cell(key)}) = 'boolean' THEN {cell(key)}::boolean END)"


def text_c(key: str) -> str:
    """The cell's text compared by code point: ISO dates sort chronologically, and the order does
    not depend on the database's collation."""
    return f'({cell_text(key)} COLLATE "C")'


def sort_expr(field_type: FieldType | str, key: str) -> str:
    """The cell as a value that orders the way the type does."""
    kind = FieldType(field_type)
    if kind is FieldType.DECIMAL:
        return numeric(key)
    if kind is FieldType.BOOLEAN:
        return boolean(key)
    return text_c(key)


def _moment(key: str) -> str:
    """A date cell as `YYYY-MM-DDTHH:MM:SS[.f]` text (a day counts as midnight)."""
    t = cell_text(key)
    return f"(CASE WHEN length({t}) = 10 THEN {t} || 'T00:00:00' ELSE {t} END)"


# --------------------------------------------------------------------------------- filters


class _Problem(Exception):
    pass


def _label(field: FieldModel) -> str:
    return f"{field.field_type} field {field.id} ({field.field_label})"


def _one_value(field: FieldModel, value: Any) -> Stored:
    if isinstance(value, (dict, list)):
        raise _Problem(f"value must be a single {spec(field.field_type).json_name}")
    try:
        stored = spec(field.field_type).parse(value)
    except CellError as exc:
        raise _Problem(f"value {_shown(value)} {exc} ({_label(field)})") from None
    if stored is None:
        raise _Problem("needs a value (use is_empty to match empty cells)")
    return stored


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else dumps(value)
    return repr(text[:100] + "…" if len(text) > 100 else text)


def _date_compare(key: str, op: FilterOp, value: str, params: SqlParams) -> str:
    lhs = f"left({cell_text(key)}, 10)" if len(value) == 10 else _moment(key)
    return f'{lhs} COLLATE "C" {_COMPARE[op]} {params.bind(value)}'


def _condition(cond: FilterCondition, field: FieldModel, params: SqlParams) -> str:
    kind = FieldType(field.field_type)
    op = cond.op
    if op not in VALID_OPS[kind]:
        valid = ", ".join(VALID_OPS[kind])
        raise _Problem(f"op {op} is not valid for {_label(field)} (valid: {valid})")
    if op in (FilterOp.IS_EMPTY, FilterOp.NOT_EMPTY):
        if cond.value is not None:
            raise _Problem(f"op {op} takes no value")
        exists = f'("values" ? {params.key(field.id)})'
        return exists if op is FilterOp.NOT_EMPTY else f"NOT {exists}"
    if op is FilterOp.IN:
        if not isinstance(cond.value, list) or not cond.value:
            raise _Problem("op in needs a non-empty list of values")
        if len(cond.value) > MAX_IN_VALUES:
            raise _Problem(f"op in takes at most {MAX_IN_VALUES} values")
        values = [_one_value(field, v) for v in cond.value]
        key = params.key(field.id)
        if kind is FieldType.DATE:
            parts = [_date_compare(key, FilterOp.EQ, str(v), params) for v in values]
            return "(" + " OR ".join(parts) + ")"
        fragments = [spec(kind).json_fragment(v) for v in values]
        return f"{cell(key)} = ANY(CAST({params.bind(fragments)} AS jsonb[]))"
    value = _one_value(field, cond.value)
    key = params.key(field.id)
    if op is FilterOp.CONTAINS:
        return f"{cell_text(key)} ILIKE {params.bind(like_pattern(str(value)))}"
    if kind is FieldType.DATE:
        return _date_compare(key, op, str(value), params)
    if op in (FilterOp.EQ, FilterOp.NE):
        fragment = params.bind(spec(kind).json_fragment(value))
        return f"{cell(key)} {_COMPARE[op]} CAST({fragment} AS jsonb)"
    assert isinstance(value, Decimal)  # ordered ops on other types were refused above
    return f"{numeric(key)} {_COMPARE[op]} CAST({params.bind(value)} AS numeric)"


def _raise(where: str, problems: list[dict[str, str]]) -> NoReturn:
    if len(problems) == 1:
        p = problems[0]
        raise BadRequest(f"Invalid {where}: {p['field']}: {p['message']}.", details=problems)
    raise BadRequest(f"Invalid {where}: {len(problems)} problems (see details).", details=problems)


def _compile(
    config: FilterConfig, fields: Mapping[int, FieldModel], params: SqlParams, where: str
) -> tuple[list[str], list[dict[str, str]]]:
    parts: list[str] = []
    problems: list[dict[str, str]] = []
    for i, cond in enumerate(config.conditions):
        name = f"{where}.conditions.{i}"
        field = fields.get(cond.field)
        if field is None:
            problems.append(
                {"field": name, "message": f"field {cond.field} is not a field of this data item"}
            )
            continue
        try:
            parts.append(_condition(cond, field, params))
        except _Problem as exc:
            problems.append({"field": name, "message": str(exc)})
    return parts, problems


def filter_problems(
    config: FilterConfig, fields: Mapping[int, FieldModel], *, where: str
) -> list[dict[str, str]]:
    """Every problem of a filter against these fields (unknown field, op not valid for the type,
    a value not of the type, too large): empty when it compiles."""
    size = len(dumps(config.model_dump(mode="python")).encode())
    if size > MAX_FILTER_BYTES:
        return [{"field": where, "message": f"is larger than {MAX_FILTER_BYTES:,} bytes as JSON"}]
    return _compile(config, fields, SqlParams("chk"), where)[1]


def compile_filter(
    config: FilterConfig,
    fields: Mapping[int, FieldModel],
    params: SqlParams,
    *,
    where: str = "filter",
) -> str | None:
    """A SQL condition over `"values"` (None when there are no conditions), its values bound in
    `params`; a 400 naming every problem (unknown field, op not valid for the type, a value not of
    the type) otherwise. `where` names the input in messages."""
    parts, problems = _compile(config, fields, params, where)
    if problems:
        _raise(where, problems)
    if not parts:
        return None
    joiner = " AND " if config.match == "all" else " OR "
    return "(" + joiner.join(parts) + ")"


def parse_filter(raw: str, *, where: str = "filter") -> FilterConfig:
    """The `filter` query parameter: URL-decoded JSON of the filter shape."""
    if len(raw.encode()) > MAX_FILTER_BYTES:
        raise BadRequest(f"`{where}` is longer than {MAX_FILTER_BYTES:,} bytes.")
    try:  # as a JSON body is read: exact decimals, no NaN, at most MAX_JSON_DEPTH levels
        data = parse_json(raw.encode())
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"`{where}` is not valid JSON ({exc.msg}); send the filter shape "
            '{"match": "all", "conditions": [{"field": 102, "op": "gt", "value": 1000}]}, '
            "URL-encoded."
        ) from None
    try:
        return FilterConfig.model_validate(data)
    except ValidationError as exc:
        problems = [
            {
                "field": ".".join([where, *(str(p) for p in e["loc"])]),
                "message": str(e["msg"]).removeprefix("Value error, "),
            }
            for e in exc.errors()
        ]
        _raise(where, problems)


# ------------------------------------------------------------------------------------ sort


def compile_sort(raw: str, fields: Mapping[int, FieldModel], params: SqlParams) -> str:
    """`102,-103` -> an ORDER BY list, empty cells last both ways (the caller adds `row_ref`)."""
    tokens = [t.strip() for t in raw.split(",")]
    problems: list[dict[str, str]] = []
    if len(tokens) > MAX_SORT_KEYS:
        raise BadRequest(f"Invalid sort: {len(tokens)} keys; the limit is {MAX_SORT_KEYS}.")
    items: list[str] = []
    seen: set[int] = set()
    for token in tokens:
        descending = token.startswith("-")
        name = token[1:] if descending else token
        field_id = ascii_int(name)
        if field_id is None:
            problems.append(
                {"field": "sort", "message": f"{token!r} is not a field id (optionally with -)"}
            )
            continue
        field = fields.get(field_id)
        if field is None:
            problems.append(
                {"field": "sort", "message": f"field {name} is not a field of this data item"}
            )
            continue
        if field.id in seen:
            problems.append({"field": "sort", "message": f"field {name} is given twice"})
            continue
        seen.add(field.id)
        expr = sort_expr(field.field_type, params.key(field.id))
        items.append(f"{expr} {'DESC' if descending else 'ASC'} NULLS LAST")
    if problems:
        _raise("sort", problems)
    return ", ".join(items)
