"""One row's values: each checked and converted by its field's kind (app/fieldtypes), required
fields, the row document (JSONB text keyed by field id), what a write adds to the statistics, and
the 400 that names every problem. Shared by single-row writes (rows/service.py) and bulk writes
(rows/bulk.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.core.digits import ascii_int
from app.core.errors import BadRequest
from app.fieldtypes import CellError, Kind, Stored, kind_of
from app.models import Field
from app.rows.search import has_control_chars
from app.summary.service import FieldChange

MAX_REPORTED_PROBLEMS = 100
ROW_REF_KEY = "_row_ref"


def shown(value: Any) -> Any:
    """A client value as echoed in an error (long strings cut)."""
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + "…"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)[:200]
    return value


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """What parsing a cell needs of its field, read once per request (ORM attribute access per
    cell cost more than the parsing itself on bulk writes)."""

    id: int
    label: str
    field_type: str
    required: bool
    kind: Kind

    @classmethod
    def of(cls, field: Field) -> FieldInfo:
        return cls(
            field.id,
            field.field_label,
            field.field_type,
            field.field_required,
            kind_of(field.field_type),
        )

    @property
    def described(self) -> str:
        return f"{self.id} ({self.label})"


def field_infos(fields: Sequence[Field]) -> dict[str, FieldInfo]:
    return {str(f.id): FieldInfo.of(f) for f in fields}


@dataclass
class ParsedValues:
    values: dict[int, Stored | None]  # field id -> stored value (None: empty)
    problems: list[dict[str, Any]]


def parse_values(
    raw: Mapping[str, Any], fields: Mapping[str, FieldInfo], *, complete: bool
) -> ParsedValues:
    """Check and convert one row's values. `complete`: the row is new, so every required field
    must have a value; otherwise (a patch) only the fields sent are checked."""
    values: dict[int, Stored | None] = {}
    problems: list[dict[str, Any]] = []
    for key, value in raw.items():
        if key == ROW_REF_KEY:
            continue
        field = fields.get(key)
        if field is None:
            problems.append(
                {"field": key, "message": "is not a field of this data item (use field ids)"}
            )
            continue
        try:
            stored = field.kind.parse(value)
        except CellError as exc:
            problems.append(
                {
                    "field": key,
                    "value": shown(value),
                    "message": f"{exc} ({field.field_type} field {field.described})",
                }
            )
            continue
        if stored is None and field.required:
            problems.append({"field": key, "message": f"field {field.described} is required"})
            continue
        values[field.id] = stored
    if complete:
        for key, field in fields.items():
            if field.required and field.id not in values and key not in raw:
                problems.append({"field": key, "message": f"field {field.described} is required"})
    return ParsedValues(values, problems)


def document(values: Mapping[int, Stored | None], fields_by_id: Mapping[int, FieldInfo]) -> str:
    """A row's JSONB document: non-empty cells only, keyed by field id."""
    parts = [
        f'"{fid}":{fields_by_id[fid].kind.json_fragment(v)}'
        for fid, v in sorted(values.items())
        if v is not None
    ]
    return "{" + ",".join(parts) + "}"


class Unfit:
    """A stored value that does not fit its field's type (left by a bug, or by a type change
    that raced a write before writes locked the item). It is never equal to a new value, so a
    patch replaces it, and it is kept as stored while nothing replaces it."""

    __slots__ = ("raw",)

    def __init__(self, raw: object) -> None:
        self.raw = raw


def stored_doc(
    doc: str, fields_by_id: Mapping[int, Field] | Mapping[int, FieldInfo]
) -> dict[int, Stored | Unfit]:
    raw = json.loads(doc, parse_float=Decimal)
    out: dict[int, Stored | Unfit] = {}
    for key, value in raw.items():
        fid = ascii_int(key)
        if fid is None or fid not in fields_by_id or value is None:
            continue
        try:
            out[fid] = kind_of(fields_by_id[fid].field_type).from_stored(value)
        except (CellError, ValueError, TypeError, ArithmeticError):
            out[fid] = Unfit(value)
    return out


def note_control_chars(values: Mapping[int, Stored | None]) -> bool:
    return any(isinstance(v, str) and has_control_chars(v) for v in values.values())


def changes_for_insert(rows: Sequence[Mapping[int, Stored | None]]) -> dict[int, FieldChange]:
    changes: dict[int, FieldChange] = {}
    for values in rows:
        for fid, v in values.items():
            if v is not None:
                changes.setdefault(fid, FieldChange()).added.append(v)
    return changes


def problem_error(problems: list[dict[str, Any]], what: str) -> BadRequest:
    total = len(problems)
    shown = problems[:MAX_REPORTED_PROBLEMS]
    if total == 1:
        p = problems[0]
        where = f"row {p['row']}, " if "row" in p else ""
        value = f" {p['value']!r}" if "value" in p else ""
        message = f"Invalid {what}: {where}field {p.get('field')}:{value} {p['message']}."
    else:
        message = f"Invalid {what}: {total} problems; nothing was written."
        if total > MAX_REPORTED_PROBLEMS:
            message += f" The first {MAX_REPORTED_PROBLEMS} are listed."
    return BadRequest(message, details=shown)
