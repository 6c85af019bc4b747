"""Webhook and delivery queries for one account. (The delivery worker's queue, which works across
accounts by design, is in `outbox.py`.)"""

from __future__ import annotations

from sqlalchemy import Select, delete, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Webhook, WebhookDelivery


class WebhookRepository:
    def __init__(self, session: AsyncSession, account_id: int) -> None:
        self.session = session
        self.account_id = account_id

    def _scoped(self) -> Select[Webhook]:
        return select(Webhook).where(Webhook.account_id == self.account_id)

    async def add(self, *, url: str, events: list[str], description: str, secret: str) -> Webhook:
        webhook = Webhook(
            account_id=self.account_id,
            url=url,
            events=events,
            description=description,
            secret=secret,
        )
        self.session.add(webhook)
        await self.session.flush()
        await self.session.refresh(webhook)
        return webhook

    async def all(self) -> list[Webhook]:
        return list((await self.session.scalars(self._scoped().order_by(Webhook.id))).all())

    async def get(self, webhook_id: int) -> Webhook | None:
        stmt = self._scoped().where(Webhook.id == webhook_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def count(self) -> int:
        stmt = (
            select(func.count()).select_from(Webhook).where(Webhook.account_id == self.account_id)
        )
        return int(await self.session.scalar(stmt) or 0)

    async def delete(self, webhook_id: int) -> None:
        await self.session.execute(
            delete(Webhook).where(Webhook.id == webhook_id, Webhook.account_id == self.account_id)
        )

    async def add_deliveries(
        self, *, event: str, event_id: str, body: str, webhook_id: int | None = None
    ) -> list[int]:
        """One pending delivery, due at once, per webhook of this account subscribed to `event`
        (or to the one webhook given, whatever its events). One statement, nothing read first."""
        source = select(
            Webhook.id,
            literal(event),
            literal(event_id),
            literal(body),
            func.now(),
        ).where(Webhook.account_id == self.account_id)
        if webhook_id is None:
            source = source.where(Webhook.events.contains([event]))
        else:
            source = source.where(Webhook.id == webhook_id)
        stmt = (
            insert(WebhookDelivery)
            .from_select(["webhook_id", "event", "event_id", "body", "next_attempt_at"], source)
            .returning(WebhookDelivery.id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def deliveries_page(
        self, webhook_id: int, *, offset: int, limit: int
    ) -> tuple[list[WebhookDelivery], int]:
        """A webhook's deliveries, newest first, and how many there are."""
        stmt = (
            select(WebhookDelivery, func.count().over())
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(Webhook.account_id == self.account_id, WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.id.desc())
            .offset(offset)
            .limit(limit)
        )
        rows = (await self.session.execute(stmt)).all()
        if rows:
            return [delivery for delivery, _ in rows], int(rows[0][1])
        total = await self.session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(Webhook.account_id == self.account_id, WebhookDelivery.webhook_id == webhook_id)
        )
        return [], int(total or 0)
