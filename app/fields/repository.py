"""Field queries. A repository is built for one data item that was already resolved for the
calling account (`DataItemDep`), so every query here is keyed by that item."""

from __future__ import annotations

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import DataItem, Field


class FieldRepository:
    def __init__(self, session: AsyncSession, data_item_id: int) -> None:
        self.session = session
        self.data_item_id = data_item_id

    async def lock_item(self) -> None:
        """Serialise changes to this item's fields (and mark the item as updated)."""
        await self.session.execute(
            update(DataItem).where(DataItem.id == self.data_item_id).values(updated_at=func.now())
        )

    def _scoped(self) -> Select[Field]:
        # populate_existing: a field loaded earlier in the transaction is read again, so that
        # after the item's lock the definitions are the ones the last writer committed
        return (
            select(Field)
            .where(Field.data_item_id == self.data_item_id)
            .execution_options(populate_existing=True)
        )

    async def ordered(self) -> list[Field]:
        stmt = self._scoped().order_by(Field.field_order, Field.id)
        return list((await self.session.scalars(stmt)).all())

    async def get(self, field_id: int) -> Field | None:
        stmt = self._scoped().where(Field.id == field_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def count(self) -> int:
        stmt = (
            select(func.count()).select_from(Field).where(Field.data_item_id == self.data_item_id)
        )
        return int(await self.session.scalar(stmt) or 0)

    async def label_owner(self, label: str) -> int | None:
        """Id of the field whose label equals `label` ignoring case, if any."""
        stmt = select(Field.id).where(
            Field.data_item_id == self.data_item_id,
            func.lower(Field.field_label) == label.lower(),
        )
        return (await self.session.scalars(stmt)).first()

    async def add(
        self,
        *,
        field_label: str,
        field_type: str,
        field_order: int,
        field_required: bool,
        field_instructions: str,
    ) -> Field:
        field = Field(
            data_item_id=self.data_item_id,
            field_label=field_label,
            field_type=field_type,
            field_order=field_order,
            field_required=field_required,
            field_instructions=field_instructions,
        )
        self.session.add(field)
        await self.session.flush()
        return field

    async def add_many(self, rows: list[dict[str, object]]) -> list[Field]:
        fields = [Field(data_item_id=self.data_item_id, **row) for row in rows]
        self.session.add_all(fields)
        await self.session.flush()
        return fields

    async def shift(self, *, start: int, stop: int | None, delta: int) -> None:
        """Add `delta` to the order of fields with start <= order (< stop when given)."""
        cond = [Field.data_item_id == self.data_item_id, Field.field_order >= start]
        if stop is not None:
            cond.append(Field.field_order < stop)
        await self.session.execute(
            update(Field).where(*cond).values(field_order=Field.field_order + delta)
        )

    async def update(self, field: Field, values: dict[str, object]) -> Field:
        await self.session.execute(
            update(Field)
            .where(Field.id == field.id, Field.data_item_id == self.data_item_id)
            .values(**values)
        )
        await self.session.refresh(field)
        return field

    async def delete(self, field_id: int) -> None:
        await self.session.execute(
            delete(Field).where(Field.id == field_id, Field.data_item_id == self.data_item_id)
        )
