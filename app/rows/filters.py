"""Filters and sort keys over an item's rows: the filter shape, its checks against the item's
fields, and the resolved conditions (`RowQuery`: which rows, in which order) that repositories
turn into SQL (app/rows/query.py) with each field type's own operators. One shape and one set
of checks for `GET …/rows/?filter=…&sort=…`, exports, and widgets' `filter_config`.

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
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from pydantic import ConfigDict, Field, ValidationError

from app.core.digits import ascii_int
from app.core.errors import BadRequest
from app.core.jsonexact import dumps
from app.core.routing import parse_json
from app.core.schemas import InputSchema, text_problem
from app.fieldtypes import CellError, FieldType, FilterOp, Stored, kind_of
from app.models import Field as FieldModel
from app.rows.search import MAX_SEARCH_CHARS

__all__ = ["FilterOp"]

MAX_CONDITIONS = 20
MAX_IN_VALUES = 100
MAX_FILTER_BYTES = 16_384
MAX_SORT_KEYS = 5


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


@dataclass(frozen=True)
class Condition:
    """One checked condition: `values` are parsed with the field's type (none for is_empty and
    not_empty, several for in)."""

    field_id: int
    field_type: FieldType
    op: FilterOp
    values: tuple[Stored, ...] = ()


@dataclass(frozen=True)
class RowFilter:
    match: Literal["all", "any"]
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class SortKey:
    field_id: int
    field_type: FieldType
    descending: bool = False


@dataclass(frozen=True)
class Search:
    """A search term, and how to look for it (see app/rows/search.py): `escapes`, some cell of
    the item ever held a control character; `indexable=False`, walk the rows in order instead of
    using the trigram index (for dense matches)."""

    term: str
    escapes: bool = True
    indexable: bool = True


@dataclass(frozen=True)
class RowQuery:
    """Which rows, in which order (`row_ref` always breaks ties)."""

    filter: RowFilter | None = None
    search: Search | None = None
    sort: tuple[SortKey, ...] = ()

    def searching(self, search: Search | None) -> RowQuery:
        return RowQuery(self.filter, search, self.sort)


# --------------------------------------------------------------------------------- filters


class _Problem(Exception):
    pass


def _label(field: FieldModel) -> str:
    return f"{field.field_type} field {field.id} ({field.field_label})"


def _one_value(field: FieldModel, value: Any) -> Stored:
    kind = kind_of(field.field_type)
    if isinstance(value, (dict, list)):
        raise _Problem(f"value must be a single {kind.json_name}")
    try:
        stored = kind.parse(value)
    except CellError as exc:
        raise _Problem(f"value {_shown(value)} {exc} ({_label(field)})") from None
    if stored is None:
        raise _Problem("needs a value (use is_empty to match empty cells)")
    return stored


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else dumps(value)
    return repr(text[:100] + "…" if len(text) > 100 else text)


def _condition(cond: FilterCondition, field: FieldModel) -> Condition:
    kind = kind_of(field.field_type)
    op = cond.op
    if op not in kind.filter_ops:
        valid = ", ".join(kind.filter_ops)
        raise _Problem(f"op {op} is not valid for {_label(field)} (valid: {valid})")
    if op in (FilterOp.IS_EMPTY, FilterOp.NOT_EMPTY):
        if cond.value is not None:
            raise _Problem(f"op {op} takes no value")
        return Condition(field.id, kind.name, op)
    if op is FilterOp.IN:
        if not isinstance(cond.value, list) or not cond.value:
            raise _Problem("op in needs a non-empty list of values")
        if len(cond.value) > MAX_IN_VALUES:
            raise _Problem(f"op in takes at most {MAX_IN_VALUES} values")
        return Condition(field.id, kind.name, op, tuple(_one_value(field, v) for v in cond.value))
    return Condition(field.id, kind.name, op, (_one_value(field, cond.value),))


def _raise(where: str, problems: list[dict[str, str]]) -> NoReturn:
    if len(problems) == 1:
        p = problems[0]
        raise BadRequest(f"Invalid {where}: {p['field']}: {p['message']}.", details=problems)
    raise BadRequest(f"Invalid {where}: {len(problems)} problems (see details).", details=problems)


def _resolve(
    config: FilterConfig, fields: Mapping[int, FieldModel], where: str
) -> tuple[list[Condition], list[dict[str, str]]]:
    conditions: list[Condition] = []
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
            conditions.append(_condition(cond, field))
        except _Problem as exc:
            problems.append({"field": name, "message": str(exc)})
    return conditions, problems


def filter_problems(
    config: FilterConfig, fields: Mapping[int, FieldModel], *, where: str
) -> list[dict[str, str]]:
    """Every problem of a filter against these fields (unknown field, op not valid for the type,
    a value not of the type, too large): empty when it is fine."""
    size = len(dumps(config.model_dump(mode="python")).encode())
    if size > MAX_FILTER_BYTES:
        return [{"field": where, "message": f"is larger than {MAX_FILTER_BYTES:,} bytes as JSON"}]
    return _resolve(config, fields, where)[1]


def resolve_filter(
    config: FilterConfig, fields: Mapping[int, FieldModel], *, where: str = "filter"
) -> RowFilter | None:
    """The filter's conditions with their values read by each field's type (None when there
    are none); a 400 naming every problem (unknown field, op not valid for the type, a value not
    of the type) otherwise. `where` names the input in messages."""
    conditions, problems = _resolve(config, fields, where)
    if problems:
        _raise(where, problems)
    return RowFilter(config.match, tuple(conditions)) if conditions else None


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


def resolve_sort(raw: str, fields: Mapping[int, FieldModel]) -> tuple[SortKey, ...]:
    """`102,-103` -> sort keys (empty cells last both ways; `row_ref` breaks ties)."""
    tokens = [t.strip() for t in raw.split(",")]
    problems: list[dict[str, str]] = []
    if len(tokens) > MAX_SORT_KEYS:
        raise BadRequest(f"Invalid sort: {len(tokens)} keys; the limit is {MAX_SORT_KEYS}.")
    keys: list[SortKey] = []
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
        keys.append(SortKey(field.id, FieldType(field.field_type), descending))
    if problems:
        _raise("sort", problems)
    return tuple(keys)


def check_search(search: str) -> str:
    if len(search) > MAX_SEARCH_CHARS:
        raise BadRequest(f"`search` is longer than {MAX_SEARCH_CHARS} characters.")
    if problem := text_problem(search):
        raise BadRequest(f"`search` {problem}.")
    return search


def row_query(
    fields: Mapping[int, FieldModel],
    *,
    filter_json: str | None,
    sort: str | None,
    search: str | None = None,
    escapes: bool = True,
) -> RowQuery:
    """The rows `GET …/rows/` lists with these parameters (a 400 for bad ones)."""
    row_filter = None
    if filter_json:
        row_filter = resolve_filter(parse_filter(filter_json), fields)
    keys = resolve_sort(sort, fields) if sort else ()
    found = Search(check_search(search), escapes) if search else None
    return RowQuery(row_filter, found, keys)
