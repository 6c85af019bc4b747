"""Copying an item inside the account: one transaction, new ids, the same row refs.

The source item's row is locked FOR SHARE first: every writer of an item updates that row
before it writes, so nothing changes in the source while it is copied, and the copy is the
source as of one moment. Fields are created through the fields service (new ids, same order,
types, flags and instructions); statistics are copied onto them (stale ones stay stale, so the
summary recomputes exactly those); rows are copied by one INSERT … SELECT into the new item's
detached partition, their documents re-keyed to the new field ids in SQL, then the partition is
indexed and attached; widgets and series are re-pointed to the new fields (filter conditions
too). Reference files are copied only when asked: they record what was uploaded into the
original, and their bytes can be large.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import AuthenticatedAccount
from app.core.db import long_statements
from app.core.errors import NotFound
from app.data_items import service as data_items_service
from app.fields import service as fields_service
from app.fields.schemas import FieldCreate
from app.fieldtypes import FieldType
from app.models import DataItem, Field
from app.rows import service as rows_service
from app.summary import service as summary_service
from app.transfer.repository import TransferRepository, WidgetSpec, read_widgets
from app.transfer.schemas import CopyRequest

COPY_SUFFIX = " (copy)"
MAX_NAME = 255


def copy_name(name: str) -> str:
    return name[: MAX_NAME - len(COPY_SUFFIX)].rstrip() + COPY_SUFFIX


def field_payloads(fields: Sequence[Field]) -> list[FieldCreate]:
    return [
        FieldCreate(
            field_label=f.field_label,
            field_type=FieldType(f.field_type),
            field_required=f.field_required,
            field_instructions=f.field_instructions,
        )
        for f in fields
    ]


def remap_filter(config: Any, ids: Mapping[int, int]) -> Any:
    """A stored filter with its conditions' field ids replaced (unknown ids kept as they are)."""
    if not isinstance(config, dict):
        return config
    conditions = config.get("conditions")
    if not isinstance(conditions, list):
        return dict(config)
    remapped = []
    for cond in conditions:
        if isinstance(cond, dict) and isinstance(cond.get("field"), int):
            cond = {**cond, "field": ids.get(cond["field"], cond["field"])}
        remapped.append(cond)
    return {**config, "conditions": remapped}


def remap_widgets(widgets: Sequence[WidgetSpec], ids: Mapping[int, int]) -> list[WidgetSpec]:
    out = []
    for w in widgets:
        values = dict(w.values)
        label = values.get("label_field_id")
        values["label_field_id"] = None if label is None else ids[int(label)]
        values["filter_config"] = remap_filter(values.get("filter_config"), ids)
        series = [{**s, "value_field_id": ids[int(s["value_field_id"])]} for s in w.series]
        out.append(WidgetSpec(values, series))
    return out


async def copy_item(
    session: AsyncSession,
    account: AuthenticatedAccount,
    source: DataItem,
    payload: CopyRequest,
) -> DataItem:
    await long_statements(session)
    conn = await session.connection()
    repo = TransferRepository(conn)
    if not await repo.lock_source(account.id, source.id):
        raise NotFound(f"Data item {source.id} not found.")
    await session.refresh(source)  # counters as of the lock
    fields = await fields_service.list_fields(session, source)
    target = await data_items_service.add_item(
        session,
        account,
        data_name=payload.data_name or copy_name(source.data_name),
        data_description=(
            source.data_description
            if payload.data_description is None
            else payload.data_description
        ),
    )
    created = await fields_service.create_fields(session, target, field_payloads(fields))
    pairs = [(old.id, new.id) for old, new in zip(fields, created, strict=True)]
    # A field without statistics in the source (none should be) is recomputed, never zero.
    await summary_service.mark_stale(session, target.id, [new for _, new in pairs])
    await repo.copy_stats(source.id, target.id, pairs)
    await rows_service.create_rows_table(session, target.id, attach=False)
    rows = await repo.copy_rows(source.id, target.id, pairs)
    await rows_service.attach_rows_table(session, target.id)
    await repo.set_counters(
        target.id,
        next_row_ref=source.next_row_ref,
        row_count=rows,
        has_control_chars=source.has_control_chars,
    )
    await repo.add_widgets(
        target.id, remap_widgets(await read_widgets(conn, source.id), dict(pairs))
    )
    if payload.include_reference_files:
        await repo.copy_reference_files(source.id, target.id)
    return target
