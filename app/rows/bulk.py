"""Bulk row writes (`POST …/rows/bulk/`): all or nothing, every problem named, exact statistics,
one binary COPY.

The rules are the single-row ones (rows/values.py: each value read by its field's kind, required
fields, the row document), applied column by column: each field reads each *distinct* value once
and keeps its stored form, its piece of the row document and whether it holds a control
character, so a column of repeated values (regions, dates, flags) costs one parse per value, not
one per row. A row the fast path cannot take as it is (a value that does not fit, an unknown
key, a required field empty or missing) is read again by `parse_values`, which names its
problems exactly as a single-row write does, in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import BadRequest
from app.fieldtypes import CellError, Stored
from app.models import DataItem, Field
from app.rows.repository import RowRepository
from app.rows.search import has_control_chars
from app.rows.upsert import UpsertCounts, UpsertLoad
from app.rows.values import ROW_REF_KEY, FieldInfo, field_infos, parse_values, problem_error
from app.summary import service as summary_service
from app.summary.service import FieldChange

_EMPTY: Final = object()  # the value reads as an empty cell
_BAD: Final = object()  # the value does not fit the field


def _memo_key(value: Any) -> Any:
    """A key telling apart values that compare equal but read differently (`1`, `1.0`, `True`;
    `0.0` and `-0.0`, `1.0` and `1.00` in a text field); None for values that cannot be keys
    (objects, lists)."""
    cls = value.__class__
    if cls is float or cls is Decimal:
        return (cls, repr(value))
    if cls is dict or cls is list:
        return None
    return (cls, value)


class Column:
    """One field's values in a bulk write: each distinct value read once by the field's kind."""

    __slots__ = ("added", "field", "memo", "prefix")

    def __init__(self, field: FieldInfo) -> None:
        self.field = field
        self.prefix = f'"{field.id}":'
        self.memo: dict[Any, Any] = {}
        self.added: list[Stored] = []  # the non-empty stored values, for the statistics

    def read(self, value: Any) -> Any:
        """_EMPTY, _BAD, or (stored value, its document piece `"101":…`, holds a control
        character)."""
        key = value if value.__class__ is str else _memo_key(value)
        if key is not None and (known := self.memo.get(key)) is not None:
            return known
        try:
            stored = self.field.kind.parse(value)
        except CellError:
            entry: Any = _BAD
        else:
            if stored is None:
                entry = _EMPTY
            else:
                piece = self.prefix + self.field.kind.json_fragment(stored)
                control = isinstance(stored, str) and has_control_chars(stored)
                entry = (stored, piece, control)
        if key is not None:
            self.memo[key] = entry
        return entry


@dataclass
class ReadRows:
    documents: list[str]  # each valid row's document of its non-empty cells
    empties: list[list[str]]  # partial: each row's keys given as empty
    changes: dict[int, FieldChange]  # statistics: the values added to each field
    cells: int  # non-empty cells
    control: bool  # a value holds a control character
    problems: list[dict[str, Any]]


def read_rows(rows: Sequence[Any], fields: Sequence[Field], *, partial: bool = False) -> ReadRows:
    """The rows of a bulk write read by their fields' kinds. `partial` (an upsert): a row gives
    some cells (an update) or all the cells it has (an insert), its empty values are kept as
    keys to empty, and required fields are checked once it is known which rows are inserted;
    otherwise every row must fill every required field."""
    by_key = field_infos(fields)
    columns = {key: Column(info) for key, info in by_key.items()}
    required = sum(1 for info in by_key.values() if info.required)
    out = ReadRows([], [], {}, 0, False, [])
    for index, raw in enumerate(rows):
        if not isinstance(raw, dict):
            out.problems.append({"row": index, "message": "must be an object keyed by field id"})
            continue
        pieces: list[str] = []
        emptied: list[str] = []
        filled_required = 0
        clean = True
        for key, value in raw.items():
            column = columns.get(key)
            if column is None:
                if key == ROW_REF_KEY:
                    continue
                clean = False
                break
            entry = column.read(value)
            if entry is _BAD:
                clean = False
                break
            if entry is _EMPTY:
                if partial:
                    emptied.append(key)
                elif column.field.required:
                    clean = False
                    break
                continue
            pieces.append(entry[1])
            column.added.append(entry[0])  # (a row with a problem fails the whole write)
            if column.field.required:
                filled_required += 1
            if entry[2]:
                out.control = True
        if not clean or (not partial and filled_required != required):
            # the exact problems, as a single-row write names them
            out.problems.extend(
                {"row": index, **p}
                for p in parse_values(raw, by_key, complete=not partial).problems
            )
            continue
        out.cells += len(pieces)
        out.documents.append("{" + ",".join(pieces) + "}")
        if partial:
            out.empties.append(emptied)
    out.changes = {c.field.id: FieldChange(added=c.added) for c in columns.values() if c.added}
    return out


async def bulk_create(
    session: AsyncSession,
    item: DataItem,
    fields: Sequence[Field],
    rows: Sequence[Any],
    *,
    max_rows: int,
) -> tuple[int, int]:
    _check_size(rows, max_rows)
    read = read_rows(rows, fields)
    if read.problems:
        raise problem_error(read.problems, "rows")
    repo = RowRepository(session, item.id)
    first = await repo.allocate(len(read.documents))
    if not item.has_control_chars and read.control:
        await repo.mark_control_chars()
    await repo.copy_documents(first, read.documents)
    await summary_service.record_changes(session, item.id, {f.id: f for f in fields}, read.changes)
    return len(read.documents), read.cells


async def bulk_upsert(
    session: AsyncSession,
    item: DataItem,
    fields: Sequence[Field],
    rows: Sequence[Any],
    key_fields: Sequence[int],
    *,
    max_rows: int,
) -> UpsertCounts:
    """Rows whose `key_fields` values match one existing row update its given cells (null
    empties one); the others are inserted. All or nothing (see app/rows/upsert.py)."""
    _check_size(rows, max_rows)
    by_id = {f.id: f for f in fields}
    if len(set(key_fields)) != len(key_fields):
        raise BadRequest(
            "`key_fields` names a field more than once.",
            details=[{"field": "key_fields", "message": "names a field more than once"}],
        )
    unknown = [k for k in key_fields if k not in by_id]
    if unknown:
        raise BadRequest(
            f"`key_fields` names field {unknown[0]}, which is not a field of data item {item.id}.",
            details=[
                {"field": "key_fields", "value": k, "message": "unknown field"} for k in unknown
            ],
        )
    read = read_rows(rows, fields, partial=True)
    if read.problems:
        raise problem_error(read.problems, "rows")
    upsert = UpsertLoad(
        session,
        item.id,
        {k: by_id[k].field_label for k in key_fields},
        required=[f.id for f in fields if f.field_required],
    )
    await upsert.allocate(len(read.documents))
    await upsert.write(0, read.documents, read.empties)
    counts = await upsert.finish()
    if not item.has_control_chars and read.control:
        await upsert.mark_control_chars()
    if counts.rows_updated:  # values were replaced: recounted when next read
        touched = {int(k) for row in read.empties for k in row} | set(read.changes)
        await summary_service.mark_stale(session, item.id, sorted(touched))
    else:
        await summary_service.record_changes(session, item.id, by_id, read.changes)
    return counts


def _check_size(rows: Sequence[Any], max_rows: int) -> None:
    if not rows:
        raise BadRequest("`rows` is empty: send at least one row.")
    if len(rows) > max_rows:
        raise BadRequest(
            f"Too many rows: {len(rows):,} in one request; the limit is {max_rows:,} "
            "(MAX_BULK_ROWS). Send them in several requests, or upload a file."
        )
