"""Row rules: single-row writes (values checked through app/rows/values.py), reads, paging,
search, and the value side of field type changes and deletes. Bulk writes: app/rows/bulk.py."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.db import read_snapshot
from app.core.digits import ascii_int
from app.core.errors import BadRequest, ErrorCode, NotFound
from app.core.reads import read_connection
from app.fieldtypes import CellError, FieldType, Stored, kind_of
from app.models import DataItem, Field
from app.rows import filters, partitions, repository, values
from app.rows.bulk import bulk_create, bulk_upsert
from app.rows.repository import RowRepository
from app.rows.values import (
    ROW_REF_KEY,
    changes_for_insert,
    document,
    field_infos,
    note_control_chars,
    parse_values,
    problem_error,
    stored_doc,
)
from app.summary import service as summary_service
from app.summary.service import FieldChange

__all__ = ["bulk_create", "bulk_upsert"]  # (the router's entries for bulk writes)

MAX_LIMIT = 500
MAX_SQL_OFFSET = 2**62  # an offset past any item's rows (a bigint holds it)


def _label(field: Field) -> str:
    return f"{field.id} ({field.field_label})"


def nulls_document(fields: Sequence[Field]) -> str:
    """Every field key with null: merged under a row so that every key is present."""
    return "{" + ",".join(f'"{f.id}":null' for f in fields) + "}"


def render_row(row_ref: int, doc: str) -> str:
    head = f'{{"{ROW_REF_KEY}": "{row_ref}"'
    return head + "}" if doc == "{}" else f"{head}, {doc[1:]}"


def parse_row_ref(row_ref: str) -> int:
    ref = ascii_int(row_ref)
    if ref is None:
        raise NotFound(f"Row {row_ref!r} not found.")
    return ref


async def create_rows_table(session: AsyncSession, item_id: int, *, attach: bool = True) -> None:
    """The item's row partition, in the caller's transaction. `attach=False` for a load that
    fills it first (a copy, a bundle): it joins the item at `attach_rows_table`, so nobody
    sees the rows before, and a crash leaves an orphan the start-up sweep drops."""
    await partitions.create_partition(session, item_id, attach=attach)


async def attach_rows_table(session: AsyncSession, item_id: int) -> None:
    """The filled partition of `create_rows_table(attach=False)` becomes the item's rows."""
    await partitions.attach_partition(session, item_id)


async def create_row(
    session: AsyncSession, item: DataItem, fields: Sequence[Field], raw: Mapping[str, Any]
) -> tuple[int, int]:
    infos = field_infos(fields)
    parsed = parse_values(raw, infos, complete=True)
    if parsed.problems:
        raise problem_error(parsed.problems, "row")
    repo = RowRepository(session, item.id)
    ref = await repo.allocate(1)
    if not item.has_control_chars and note_control_chars(parsed.values):
        await repo.mark_control_chars()
    await repo.copy_documents(ref, [document(parsed.values, {i.id: i for i in infos.values()})])
    await summary_service.record_changes(
        session, item.id, {f.id: f for f in fields}, changes_for_insert([parsed.values])
    )
    return ref, sum(1 for v in parsed.values.values() if v is not None)


async def get_row(
    session: AsyncSession, item: DataItem, fields: Sequence[Field], row_ref: str
) -> str:
    ref = parse_row_ref(row_ref)
    doc = await RowRepository(session, item.id).render(ref, nulls_document(fields))
    if doc is None:
        raise NotFound(f"Row {row_ref!r} not found in data item {item.id}.")
    return render_row(ref, doc)


async def patch_row(
    session: AsyncSession,
    item: DataItem,
    fields: Sequence[Field],
    row_ref: str,
    raw: Mapping[str, Any],
) -> tuple[int, int, int]:
    ref = parse_row_ref(row_ref)
    by_key = field_infos(fields)
    by_id = {info.id: info for info in by_key.values()}
    parsed = parse_values(raw, by_key, complete=False)
    if parsed.problems:
        raise problem_error(parsed.problems, "row values")
    repo = RowRepository(session, item.id)
    await repo.lock_item()  # (held since the request began: this marks the item updated)
    current_doc = await repo.get_document(ref, for_update=True)
    if current_doc is None:
        raise NotFound(f"Row {row_ref!r} not found in data item {item.id}.")
    current = stored_doc(current_doc, by_id)
    updated = created = 0
    changes: dict[int, FieldChange] = {}
    new_cells: dict[int, Stored | None] = {}
    for fid, new in parsed.values.items():
        old = current.get(fid)
        if old == new and type(old) is type(new):
            continue
        change = changes.setdefault(fid, FieldChange())
        if old is not None:
            change.removed = True
            if new is not None:
                updated += 1
        elif new is not None:
            created += 1
        if new is not None:
            change.added.append(new)
        new_cells[fid] = new
    if changes:
        if not item.has_control_chars and note_control_chars(parsed.values):
            await repo.mark_control_chars()
        # only the changed cells are rewritten: the others stay exactly as stored
        await repo.merge_document(
            ref,
            document({f: v for f, v in new_cells.items() if v is not None}, by_id),
            [str(f) for f, v in new_cells.items() if v is None],
        )
        await summary_service.record_changes(session, item.id, {f.id: f for f in fields}, changes)
    return ref, updated, created


async def delete_row(
    session: AsyncSession, item: DataItem, fields: Sequence[Field], row_ref: str
) -> int:
    ref = parse_row_ref(row_ref)
    by_id = {f.id: f for f in fields}
    repo = RowRepository(session, item.id)
    await repo.lock_item()  # (held since the request began: this marks the item updated)
    current_doc = await repo.get_document(ref, for_update=True)
    if current_doc is None:
        raise NotFound(f"Row {row_ref!r} not found in data item {item.id}.")
    current = stored_doc(current_doc, by_id)  # (values that do not fit count as cells too)
    await repo.delete(ref)
    await summary_service.record_changes(
        session, item.id, by_id, {fid: FieldChange(removed=True) for fid in current}
    )
    return len(current)


def check_paging(offset: int, limit: int) -> None:
    problems = []
    if offset < 0:
        problems.append({"field": "offset", "message": "must be 0 or more", "value": offset})
    if not 1 <= limit <= MAX_LIMIT:
        problems.append(
            {"field": "limit", "message": f"must be between 1 and {MAX_LIMIT}", "value": limit}
        )
    if problems:
        raise BadRequest(
            "Invalid paging: " + "; ".join(f"{p['field']} {p['message']}" for p in problems) + ".",
            details=problems,
        )


async def list_rows(
    session: AsyncSession,
    item: DataItem,
    fields: Sequence[Field],
    *,
    offset: int,
    limit: int,
    search: str | None,
    filter_json: str | None = None,
    sort: str | None = None,
) -> bytes:
    """A page of rows; `search`, `filter_json` (the filter shape as JSON) and `sort` (field ids,
    `-` for descending) combine; see app/rows/filters.py."""
    check_paging(offset, limit)
    await read_snapshot(session)
    repo = RowRepository(session, item.id)
    nulls = nulls_document(fields)
    by_id = {f.id: f for f in fields}
    query = filters.row_query(by_id, filter_json=filter_json, sort=sort)

    async def page(query: filters.RowQuery) -> list[tuple[int, str]]:
        return await repo.page(nulls, offset=offset, limit=limit, query=query)

    rows: list[tuple[int, str]] = []
    if search is not None and search != "":
        term = filters.check_search(search)
        total = await repo.count(query.searching(filters.Search(term, item.has_control_chars)))
        if total and offset < total:
            # Dense matches: walk the rows in order and stop at the page; sparse ones: the index.
            dense = total * 20 >= max(item.row_count, 1)
            rows = await page(
                query.searching(filters.Search(term, item.has_control_chars, indexable=not dense))
            )
    elif query.filter is not None:
        total = await repo.count(query)
        if total and offset < total:
            rows = await page(query)
    else:
        total = await _row_count(session, item)
        if offset < total:
            rows = await page(query)
    body = ",".join(render_row(ref, doc) for ref, doc in rows)
    return f'{{"total":{total},"offset":{offset},"limit":{limit},"rows":[{body}]}}'.encode()


async def read_page(
    engine: AsyncEngine, account_id: int, item_id: int, *, offset: int, limit: int
) -> bytes:
    """A page of rows without search, filter or sort (the common read): the same document as
    `list_rows`, from one statement on a read connection (app/core/reads.py)."""
    async with read_connection(engine) as conn:
        records = await repository.read_page(
            conn,
            account_id,
            item_id,
            min(max(offset, 0), MAX_SQL_OFFSET),
            limit if 1 <= limit <= MAX_LIMIT else 0,
        )
    if not records:
        raise NotFound(f"Data item {item_id} not found.")
    check_paging(offset, limit)  # after the item: a missing item is a 404 first, as elsewhere
    total = int(records[0]["row_count"])
    body = ",".join(render_row(r["row_ref"], r["doc"]) for r in records if r["doc"] is not None)
    return f'{{"total":{total},"offset":{offset},"limit":{limit},"rows":[{body}]}}'.encode()


async def _row_count(session: AsyncSession, item: DataItem) -> int:
    await session.refresh(item, ["row_count"])
    return item.row_count


# ------------------------------------------------------------------ field type changes, deletes


@dataclass(frozen=True)
class _Shown:
    """A stored value that does not fit the field's old type, as text (it converts like any
    other value: if the new type can read it, it is repaired, else it is named in the 400)."""

    display: str


def _old_value(old_type: FieldType, raw: object) -> Stored | _Shown:
    try:
        return kind_of(old_type).from_stored(raw)
    except (CellError, ValueError, TypeError, ArithmeticError):
        return _Shown(raw if isinstance(raw, str) else json.dumps(raw, default=str))


async def convert_field(
    session: AsyncSession, item: DataItem, field: Field, new_type: FieldType
) -> None:
    """Convert every stored value of `field` to `new_type` in one statement, or raise a 400 that
    says how many values cannot convert (with the first few) and change nothing."""
    repo = RowRepository(session, item.id)
    target = kind_of(new_type)
    if target.textual:  # the value as shown becomes the string: cannot fail
        await repo.convert_to_text(field.id)
        return
    old_type = FieldType(field.field_type)
    stored_texts = await repo.distinct_values(field.id)
    if not stored_texts:
        return
    olds = [_old_value(old_type, json.loads(t, parse_float=Decimal)) for t in stored_texts]
    shown = [v.display if isinstance(v, _Shown) else kind_of(old_type).display(v) for v in olds]
    order = target.column_order(shown)
    new_texts: list[str | None] = []
    bad: list[str] = []
    reasons: dict[str, str] = {}
    for text_value, old, display in zip(stored_texts, olds, shown, strict=True):
        try:
            converted = target.convert(old, display, date_order=order)
        except CellError as exc:
            bad.append(text_value)
            reasons[display] = str(exc)
            continue
        new_texts.append(None if converted is None else target.json_fragment(converted))
    if bad:
        count = await repo.count_holding(field.id, bad)
        examples = await repo.first_rows_with(field.id, bad, 5)
        raise BadRequest(
            f"Cannot change field {_label(field)} from {old_type} to {new_type}: {count:,} "
            f"value{'s' if count != 1 else ''} cannot be converted; nothing was changed.",
            code=ErrorCode.CONVERSION_FAILED,
            details=[
                {
                    "row_ref": str(ref),
                    "value": values.shown(value),
                    "message": reasons.get(value, "cannot convert"),
                }
                for ref, value in examples
            ],
        )
    good_old = [t for t in stored_texts if t not in set(bad)]
    await repo.convert_field(field.id, good_old, new_texts)


async def strip_field(session: AsyncSession, item: DataItem, field_id: int) -> None:
    await RowRepository(session, item.id).strip_field(field_id)
