"""Bulk changes of existing rows: `PATCH …/rows/` sets the same values on every selected row,
`DELETE …/rows/` deletes the selected rows. Each is one statement in the request's transaction,
the item locked as for any write.

Which rows: `row_refs` (at most MAX_BULK_ROWS, each once, every one a row of the item), or
`filter` (the filter of `GET …/rows/`), or `"all": true`. A filter that matches every row, or
has no conditions, needs `"all": true` as well: a guard against a filter that was meant to pick
some rows and picks them all. A filter is checked against the count of its matches, taken
inside the transaction: before the UPDATE (its counts come first anyway), after the DELETE (one
pass over the rows; a refused delete rolls back with the request).

Values are read exactly as a single-row PATCH reads them (rows/values.py), once. Statistics stay
exact as single-row writes keep them (summary.service.record_changes): a field whose values were
only added is updated in place, a field that lost or replaced a value is recomputed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import long_statements
from app.core.digits import ascii_int
from app.core.errors import BadRequest
from app.models import DataItem, Field
from app.rows import filters
from app.rows.bulk_change_repository import BulkChangeRepository, Change, Selection
from app.rows.repository import RowRepository
from app.rows.schemas import BulkDeleted, BulkUpdated, RowBulkDelete, RowBulkUpdate, RowSelection
from app.rows.values import field_infos, note_control_chars, parse_values, problem_error
from app.summary import service as summary_service
from app.summary.service import FieldChange

MAX_SHOWN_REFS = 20
# A change of this many rows or more also has the item's partition vacuumed and analysed in the
# background (its dead row versions, the planner's statistics), as after a load.
VACUUM_AFTER_ROWS = 10_000


def worth_vacuum(rows: int) -> bool:
    return rows >= VACUUM_AFTER_ROWS


@dataclass(frozen=True)
class _Chosen:
    rows: Selection
    by: Literal["refs", "filter", "all"]


def _listed(refs: Sequence[str | int]) -> str:
    shown = ", ".join(str(r) for r in refs[:MAX_SHOWN_REFS])
    more = len(refs) > MAX_SHOWN_REFS
    return shown + (f" (the first {MAX_SHOWN_REFS} are listed)" if more else "")


def _ref_details(refs: Sequence[str | int], message: str) -> list[dict[str, object]]:
    return [
        {"field": "row_refs", "value": str(r), "message": message} for r in refs[:MAX_SHOWN_REFS]
    ]


async def _refs(
    repo: BulkChangeRepository, item: DataItem, given: Sequence[str | int], max_refs: int
) -> list[int]:
    if not given:
        raise BadRequest("`row_refs` is empty: name at least one row.")
    if len(given) > max_refs:
        raise BadRequest(
            f"Too many row_refs: {len(given):,} in one request; the limit is {max_refs:,} "
            "(MAX_BULK_ROWS). Select the rows with a filter instead, or send several requests."
        )
    refs: list[int] = []
    seen: set[int] = set()
    not_refs: list[str | int] = []
    repeated: list[str | int] = []
    for raw in given:
        ref = raw if isinstance(raw, int) else ascii_int(raw)
        if ref is None or not 0 <= ref < 2**63:
            not_refs.append(raw)
        elif ref in seen:
            if raw not in repeated:
                repeated.append(raw)
        else:
            seen.add(ref)
            refs.append(ref)
    if repeated:
        raise BadRequest(
            f"`row_refs` names {len(repeated):,} row{'s' if len(repeated) != 1 else ''} more "
            f"than once: {_listed(repeated)}. Name each row once; nothing was changed.",
            details=_ref_details(repeated, "is given more than once"),
        )
    unknown = not_refs + list(await repo.missing_refs(refs))
    if unknown:
        are = "are not rows" if len(unknown) != 1 else "is not a row"
        raise BadRequest(
            f"{len(unknown):,} of the row_refs {are} of data item {item.id}: "
            f"{_listed(unknown)}. Nothing was changed.",
            details=_ref_details(unknown, f"is not a row of data item {item.id}"),
        )
    return refs


def _filter(config: filters.FilterConfig, fields: Sequence[Field]) -> filters.RowFilter | None:
    by_id = {f.id: f for f in fields}
    problems = filters.filter_problems(config, by_id, where="filter")
    if len(problems) == 1:
        p = problems[0]
        raise BadRequest(f"Invalid filter: {p['field']}: {p['message']}.", details=problems)
    if problems:
        raise BadRequest(
            f"Invalid filter: {len(problems)} problems (see details).", details=problems
        )
    return filters.resolve_filter(config, by_id)


def _guard_message(item: DataItem, why: str, verb: str) -> str:
    return (
        f'{why}; to {verb} every row of data item {item.id}, send "all": true with it (a guard '
        f"against a filter that was meant to pick some rows). Nothing was {verb}d."
    )


async def _choose(
    repo: BulkChangeRepository,
    item: DataItem,
    fields: Sequence[Field],
    payload: RowSelection,
    *,
    max_refs: int,
    verb: str,
) -> _Chosen:
    """The rows a request selects, checked (a 400 naming what is wrong otherwise)."""
    if payload.row_refs is not None and payload.filter is not None:
        raise BadRequest(
            "Conflicting options: send either `row_refs` or `filter`, not both.",
            details=[
                {"field": "row_refs", "message": "conflicts with filter"},
                {"field": "filter", "message": "conflicts with row_refs"},
            ],
        )
    if payload.row_refs is not None:
        if payload.all:
            raise BadRequest(
                'Conflicting options: `"all": true` selects every row, `row_refs` some of them; '
                "send one.",
                details=[{"field": "all", "message": "conflicts with row_refs"}],
            )
        refs = await _refs(repo, item, payload.row_refs, max_refs)
        return _Chosen(Selection(refs=refs), "refs")
    if payload.filter is not None:
        row_filter = _filter(payload.filter, fields)
        if row_filter is None and not payload.all:
            raise BadRequest(
                _guard_message(item, "The filter has no conditions, so it matches every row", verb)
            )
        return _Chosen(Selection(filter=row_filter), "filter")
    if payload.all:
        return _Chosen(Selection(), "all")
    raise BadRequest(
        'Say which rows: `row_refs`, a `filter`, or `"all": true` for every row.',
        details=[{"field": "row_refs", "message": "or filter, or all: one is required"}],
    )


def _check_guard(
    chosen: _Chosen, payload: RowSelection, item: DataItem, matched: int, row_count: int, verb: str
) -> None:
    if chosen.by == "filter" and not payload.all and row_count and matched >= row_count:
        why = f"The filter matches every row ({row_count:,})"
        raise BadRequest(_guard_message(item, why, verb))


async def update_rows(
    session: AsyncSession,
    item: DataItem,
    fields: Sequence[Field],
    payload: RowBulkUpdate,
    *,
    max_refs: int,
) -> BulkUpdated:
    by_key = field_infos(fields)
    by_id = {info.id: info for info in by_key.values()}
    parsed = parse_values(payload.values, by_key, complete=False)  # as a single-row PATCH
    if parsed.problems:
        raise problem_error(parsed.problems, "values")
    if not parsed.values:  # ({} or only `_row_ref`, which a patch ignores)
        raise BadRequest("`values` is empty: give at least one field id and its value.")
    repo = BulkChangeRepository(session, item.id)
    chosen = await _choose(repo, item, fields, payload, max_refs=max_refs, verb="update")
    change = Change(
        cells={
            f: by_id[f].kind.json_fragment(v) for f, v in parsed.values.items() if v is not None
        },
        emptied=[f for f, v in parsed.values.items() if v is None],
    )
    await long_statements(session)
    row_count = await RowRepository(session, item.id).lock_item()  # (marks the item updated)
    counts = await repo.change_counts(chosen.rows, change)
    _check_guard(chosen, payload, item, counts.matched, row_count, "update")
    stats: dict[int, FieldChange] = {}
    if counts.changed_rows:
        if not item.has_control_chars and note_control_chars(parsed.values):
            await RowRepository(session, item.id).mark_control_chars()
        await repo.apply(chosen.rows, change)
        for fid, value in parsed.values.items():
            if counts.updated.get(fid) or counts.removed.get(fid):
                stats[fid] = FieldChange(removed=True)
            elif value is not None and (created := counts.created.get(fid)):
                stats[fid] = FieldChange(added=[value] * created)
        await summary_service.record_changes(session, item.id, {f.id: f for f in fields}, stats)
    return BulkUpdated(
        rows_matched=counts.matched,
        rows_updated=counts.changed_rows,
        cells_updated=sum(counts.updated.values()),
        cells_created=sum(counts.created.values()),
        cells_removed=sum(counts.removed.values()),
    )


async def delete_rows(
    session: AsyncSession,
    item: DataItem,
    fields: Sequence[Field],
    payload: RowBulkDelete,
    *,
    max_refs: int,
) -> BulkDeleted:
    repo = BulkChangeRepository(session, item.id)
    chosen = await _choose(repo, item, fields, payload, max_refs=max_refs, verb="delete")
    await long_statements(session)
    row_count = await RowRepository(session, item.id).lock_item()  # (marks the item updated)
    deleted, per_key = await repo.delete(chosen.rows)
    # after the DELETE: a refused one is rolled back with the request, nothing deleted
    _check_guard(chosen, payload, item, deleted, row_count, "delete")
    removed = _field_cells(per_key, {f.id for f in fields})
    if deleted:
        await repo.shrink_row_count(deleted)
        await summary_service.record_changes(
            session,
            item.id,
            {f.id: f for f in fields},
            {fid: FieldChange(removed=True) for fid in removed},
        )
    return BulkDeleted(rows_deleted=deleted, cells_removed=sum(removed.values()))


def _field_cells(per_key: Mapping[str, int], field_ids: set[int]) -> dict[int, int]:
    """Cells per field id, from counts per document key (keys of no field are not cells)."""
    out: dict[int, int] = {}
    for key, n in per_key.items():
        fid = ascii_int(key)
        if fid is not None and fid in field_ids and n:
            out[fid] = n
    return out
