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
from app.ingestion.inference import ColumnPlan, infer_columns, plan_columns
from app.ingestion.pipeline import Column
from app.ingestion.readers import RawTable
from app.models import DataItem, Field


@dataclass
class AppendPlan:
    columns: list[Column]  # matched columns first, then new fields' columns
    skipped: list[str]  # headers of columns left out


async def plan_append(
    session: AsyncSession, item: DataItem, table: RawTable, *, add_new_fields: bool
) -> AppendPlan:
    """Match the file's columns to the item's fields by header (creating fields for the others
    when asked) and plan how each column's values are read."""
    existing = await fields_service.list_fields(session, item)
    by_label = {f.field_label.strip().lower(): f for f in existing}
    matched: list[tuple[int, str, Field]] = []
    unmatched: list[int] = []
    used: set[int] = set()
    for i, header in enumerate(table.headers):
        target = by_label.get(header.strip().lower())
        if target is not None and target.id not in used:
            matched.append((i, header, target))
            used.add(target.id)
        else:
            unmatched.append(i)
    skipped = [table.headers[i] for i in unmatched]
    new_columns: list[tuple[int, str, ColumnPlan]] = []
    if add_new_fields and unmatched:
        plans = await anyio.to_thread.run_sync(
            lambda: infer_columns(
                table.frame.select([table.frame.columns[i] for i in unmatched]),
                delimiter=table.delimiter,
            )
        )
        new_columns = [(i, table.headers[i], p) for i, p in zip(unmatched, plans, strict=True)]
        skipped = []
    missing = [f for f in existing if f.field_required and f.id not in used]
    if missing:
        raise _required_unmatched(missing)
    if not matched and not new_columns:
        raise BadRequest(
            "No column of the file matches a field of this data item (headers are matched to "
            "field labels ignoring case and surrounding spaces); send add_new_fields=true to "
            "create fields for them.",
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
        created = await fields_service.create_fields(
            session,
            item,
            [
                FieldCreate(field_label=label, field_type=p.field_type)
                for label, (_, _, p) in zip(labels, new_columns, strict=True)
            ],
        )
        columns += [Column(i, h, f, p) for (i, h, p), f in zip(new_columns, created, strict=True)]
    return AppendPlan(columns, skipped)


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
