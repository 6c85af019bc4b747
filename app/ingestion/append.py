"""Append planning: which column of a file goes into which field of an existing item (headers
matched to labels ignoring case and surrounding spaces), new fields for the others when asked,
and how each column's values are read into its field's type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import BadRequest, ErrorCode
from app.fields import service as fields_service
from app.fields.schemas import FieldCreate
from app.fieldtypes import FieldType
from app.ingestion.inference import ColumnPlan, plan_columns, plan_new_columns
from app.ingestion.options import SET_BY_USER, UploadOptions, resolve_headers
from app.ingestion.pipeline import Column
from app.ingestion.readers import RawTable
from app.models import DataItem, Field


@dataclass
class AppendPlan:
    columns: list[Column]  # matched columns first, then new fields' columns
    skipped: list[str]  # headers of columns left out
    new: list[str]  # headers of columns that get a new field


async def plan_append(
    session: AsyncSession,
    item: DataItem,
    table: RawTable,
    *,
    add_new_fields: bool,
    options: UploadOptions | None = None,
    create: bool = True,
) -> AppendPlan:
    """Match the file's columns to the item's fields (`column_map` first, then by header),
    creating fields for the others when asked, and plan how each column's values are read.
    `create=False` (a dry run): new fields are planned but not created (their columns' targets
    are fields that are not saved)."""
    options = options or UploadOptions()
    existing = await fields_service.list_fields(session, item)
    matched, unmatched, skipped = _match(item, existing, table, options)
    types = {
        index: options.field_types[key]
        for key, index in resolve_headers("field_types", options.field_types, table.headers).items()
    }
    new_columns: list[tuple[int, str, ColumnPlan]] = []
    if add_new_fields and unmatched:
        plans = await anyio.to_thread.run_sync(
            lambda: plan_new_columns(
                table.frame,
                unmatched,
                types,
                delimiter=table.delimiter,
                reason=SET_BY_USER,
            )
        )
        new_columns = [(i, table.headers[i], p) for i, p in zip(unmatched, plans, strict=True)]
    else:
        skipped += [table.headers[i] for i in unmatched]
    _check_types(table, types, matched, {i for i, _, _ in new_columns})
    missing = [
        f for f in existing if f.field_required and f.id not in {t.id for _, _, t in matched}
    ]
    if missing:
        raise _required_unmatched(missing)
    if not matched and not new_columns:
        raise BadRequest(
            "No column of the file matches a field of this data item (headers are matched to "
            "field labels ignoring case and surrounding spaces); send add_new_fields=true to "
            "create fields for them, or name the fields in column_map.",
            code=ErrorCode.INVALID_FILE,
            details=[{"column": h, "message": "matches no field"} for h in table.headers],
        )
    to_plan = [
        (table.frame.get_column(table.frame.columns[i]), FieldType(f.field_type))
        for i, _, f in matched
    ]
    matched_plans = await anyio.to_thread.run_sync(
        lambda: plan_columns(to_plan, delimiter=table.delimiter)
    )
    columns = [
        Column(i, h, f, p, new_field=False)
        for (i, h, f), p in zip(matched, matched_plans, strict=True)
    ]
    if new_columns:
        labels = _new_labels(
            [h for _, h, _ in new_columns], {f.field_label.lower() for f in existing}
        )
        wanted = [
            FieldCreate(field_label=label, field_type=p.field_type)
            for label, (_, _, p) in zip(labels, new_columns, strict=True)
        ]
        if create:
            created = await fields_service.create_fields(session, item, wanted)
        else:
            created = [
                Field(field_label=w.field_label, field_type=w.field_type, field_required=False)
                for w in wanted
            ]
        columns += [Column(i, h, f, p) for (i, h, p), f in zip(new_columns, created, strict=True)]
    return AppendPlan(columns, skipped, [h for _, h, _ in new_columns])


def _match(
    item: DataItem, existing: Sequence[Field], table: RawTable, options: UploadOptions
) -> tuple[list[tuple[int, str, Field]], list[int], list[str]]:
    """(matched (column index, header, field), unmatched column indexes, skipped headers):
    `column_map` first, then the other columns by header, each field at most once."""
    by_id = {f.id: f for f in existing}
    matched: list[tuple[int, str, Field]] = []
    skipped: list[str] = []
    used: set[int] = set()
    mapped: set[int] = set()
    if options.column_map is not None:
        resolved = resolve_headers("column_map", options.column_map, table.headers)
        for key, index in resolved.items():
            mapped.add(index)
            target_id = options.column_map[key]
            if target_id is None:
                skipped.append(table.headers[index])
                continue
            target = by_id.get(target_id)
            if target is None:
                raise BadRequest(
                    f"`column_map` maps {key!r} to field {target_id}, which is not a field of "
                    f"data item {item.id}.",
                    details=[{"field": "column_map", "column": key, "message": "unknown field"}],
                )
            if target.id in used:
                raise BadRequest(
                    f"`column_map` maps more than one column to field {target_id} "
                    f"({target.field_label!r}).",
                    details=[{"field": "column_map", "column": key, "message": "field used twice"}],
                )
            matched.append((index, table.headers[index], target))
            used.add(target.id)
    by_label = {f.field_label.strip().lower(): f for f in existing}
    unmatched: list[int] = []
    for i, header in enumerate(table.headers):
        if i in mapped:
            continue
        target = by_label.get(header.strip().lower())
        if target is not None and target.id not in used:
            matched.append((i, header, target))
            used.add(target.id)
        else:
            unmatched.append(i)
    matched.sort(key=lambda m: m[0])
    return matched, unmatched, skipped


def _check_types(
    table: RawTable,
    types: dict[int, FieldType],
    matched: Sequence[tuple[int, str, Field]],
    new: set[int],
) -> None:
    """`field_types` sets the type of new fields only: a column going into an existing field
    of another type, or a column left out, is a conflict (a 400), not ignored."""
    into = {i: f for i, _, f in matched}
    for index, wanted in types.items():
        header = table.headers[index]
        target = into.get(index)
        if target is not None:
            if target.field_type != wanted:
                raise BadRequest(
                    f"`field_types` sets {header!r} to {wanted.value}, but it goes into field "
                    f"{target.field_label!r} ({target.field_type}); field_types sets the type of "
                    f"new fields only: change the field's type with PATCH "
                    f"…/fields/{target.id}/ first.",
                    details=[{"field": "field_types", "column": header, "message": "conflict"}],
                )
        elif index not in new:
            raise BadRequest(
                f"`field_types` names {header!r}, which is not loaded (it matches no field; "
                "send add_new_fields=true to create a field for it).",
                details=[{"field": "field_types", "column": header, "message": "column skipped"}],
            )


def _required_unmatched(missing: Sequence[Field]) -> BadRequest:
    """Required fields no column of the file matches: every row would leave them empty."""
    names = ", ".join(repr(f.field_label) for f in missing)
    plural = len(missing) > 1
    return BadRequest(
        f"Cannot append the file: field{'s' if plural else ''} {names} "
        f"{'are' if plural else 'is'} required, but no column of the file matches "
        f"{'them' if plural else 'it'} (headers are matched to field labels ignoring case and "
        "surrounding spaces), so every row would leave "
        f"{'them' if plural else 'it'} empty. Nothing was written.",
        code=ErrorCode.INVALID_FILE,
        details=[
            {
                "field": f.field_label,
                "column": None,
                "rows": "all",
                "message": "is required, and no column of the file matches it",
            }
            for f in missing
        ],
    )


def _new_labels(headers: Sequence[str], taken: set[str]) -> list[str]:
    """Labels for new fields: the header, trimmed, made distinct from existing labels."""
    out: list[str] = []
    for header in headers:
        base = header.strip() or "Column"
        label, n = base, 2
        while label.lower() in taken:
            label, n = f"{base} ({n})", n + 1
        taken.add(label.lower())
        out.append(label)
    return out
