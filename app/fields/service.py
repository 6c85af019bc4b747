"""Field rules: unique labels (ignoring case), dense 0-based ordering, type changes, deletes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import positions
from app.core.db import long_statements
from app.core.errors import BadRequest, ErrorCode
from app.fields.repository import FieldRepository
from app.fields.schemas import FieldCreate, FieldList, FieldRead, FieldUpdate
from app.fieldtypes import FieldType
from app.models import DataItem, Field
from app.rows import service as rows_service
from app.summary import service as summary_service
from app.widgets import service as widgets_service


def duplicate_labels(labels: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    dupes: list[str] = []
    for label in labels:
        key = label.strip().lower()
        if key in seen:
            dupes.append(label)
        seen.add(key)
    return dupes


def _duplicate(label: str) -> BadRequest:
    return BadRequest(
        f"A field labelled {label!r} already exists in this data item (labels are unique, ignoring case).",
        code=ErrorCode.DUPLICATE,
        details=[{"field": "field_label", "message": "already used", "value": label}],
    )


async def list_fields(session: AsyncSession, item: DataItem) -> list[Field]:
    return await FieldRepository(session, item.id).ordered()


async def create_fields(
    session: AsyncSession, item: DataItem, payloads: Sequence[FieldCreate]
) -> list[Field]:
    """Create several fields at the end of the item, in the given order (item creation)."""
    if dupes := duplicate_labels([p.field_label for p in payloads]):
        raise _duplicate(dupes[0])
    repo = FieldRepository(session, item.id)
    await repo.lock_item()
    start = await repo.count()
    rows: list[dict[str, object]] = []
    for position, p in enumerate(positions.in_given_order(payloads, lambda f: f.field_order)):
        if await repo.label_owner(p.field_label) is not None:
            raise _duplicate(p.field_label)
        rows.append(
            {
                "field_label": p.field_label,
                "field_type": p.field_type.value,
                "field_order": start + position,
                "field_required": p.field_required,
                "field_instructions": p.field_instructions,
            }
        )
    created = await repo.add_many(rows)
    await summary_service.init_fields(session, item.id, [f.id for f in created])
    return created


async def field_list(session: AsyncSession, item: DataItem) -> FieldList:
    return FieldList(fields=[FieldRead.model_validate(f) for f in await list_fields(session, item)])


async def create_field(session: AsyncSession, item: DataItem, payload: FieldCreate) -> FieldRead:
    repo = FieldRepository(session, item.id)
    await repo.lock_item()
    if await repo.label_owner(payload.field_label) is not None:
        raise _duplicate(payload.field_label)
    order = await positions.insert(repo, payload.field_order, await repo.count())
    field = await repo.add(
        field_label=payload.field_label,
        field_type=payload.field_type.value,
        field_order=order,
        field_required=payload.field_required,
        field_instructions=payload.field_instructions,
    )
    await summary_service.init_fields(session, item.id, [field.id])
    return FieldRead.model_validate(field)


async def update_field(
    session: AsyncSession, item: DataItem, field: Field, payload: FieldUpdate
) -> FieldRead:
    repo = FieldRepository(session, item.id)
    await repo.lock_item()
    changes = payload.model_dump(exclude_unset=True)
    values: dict[str, object] = {}
    if "field_label" in changes and changes["field_label"] != field.field_label:
        owner = await repo.label_owner(changes["field_label"])
        if owner is not None and owner != field.id:
            raise _duplicate(changes["field_label"])
        values["field_label"] = changes["field_label"]
    if "field_order" in changes:
        values["field_order"] = await positions.move(
            repo, field.field_order, int(changes["field_order"])
        )
    for key in ("field_required", "field_instructions"):
        if key in changes:
            values[key] = changes[key]
    if "field_type" in changes and changes["field_type"] != field.field_type:
        await long_statements(session)  # every row of the item is converted
        new_type = FieldType(changes["field_type"])
        await rows_service.convert_field(session, item, field, new_type)
        await summary_service.mark_stale(session, item.id, [field.id])
        values["field_type"] = new_type.value
    if values:
        field = await repo.update(field, values)
    return FieldRead.model_validate(field)


async def delete_field(session: AsyncSession, item: DataItem, field: Field) -> None:
    repo = FieldRepository(session, item.id)
    await repo.lock_item()
    await long_statements(session)  # every row of the item is rewritten
    await rows_service.strip_field(session, item, field.id)
    await repo.delete(field.id)  # its series go and label fields clear (foreign keys)
    await positions.close_gap(repo, field.field_order)
    await widgets_service.field_deleted(session, item, field.id)
