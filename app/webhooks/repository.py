"""Webhook and delivery queries for one account. (The delivery worker's queue, which works across
accounts by design, is in `outbox.py`.)"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, case, delete, func, insert, literal, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.locks import AccountCap, lock_account_cap
from app.models import Webhook, WebhookDelivery


@dataclass(frozen=True)
class Queued:
    """What `add_deliveries` wrote: the deliveries queued, and those recorded as not sent."""

    pending: list[int]
    dropped: list[int]


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

    async def subscribed(self, event: str) -> bool:
        """Whether any of the account's webhooks is subscribed to `event`."""
        stmt = select(self._scoped().where(Webhook.events.contains([event])).exists())
        return bool(await self.session.scalar(stmt))

    async def lock_webhooks(self) -> None:
        """Until this transaction ends, the account's webhook count cannot change under it."""
        await lock_account_cap(self.session, AccountCap.WEBHOOKS, self.account_id)

    async def lock_deliveries(self) -> None:
        """Until this transaction ends, the account's pending deliveries cannot grow under it
        (deliveries only leave `pending` meanwhile)."""
        await lock_account_cap(self.session, AccountCap.WEBHOOK_DELIVERIES, self.account_id)

    async def count_pending(self, *, up_to: int) -> int:
        """The account's pending deliveries, counted up to `up_to` (no further: the answer is
        compared with a cap of that size)."""
        pending = (
            select(WebhookDelivery.id)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(Webhook.account_id == self.account_id, WebhookDelivery.status == "pending")
            .limit(up_to)
            .subquery()
        )
        return int(await self.session.scalar(select(func.count()).select_from(pending)) or 0)

    async def delete(self, webhook_id: int) -> None:
        await self.session.execute(
            delete(Webhook).where(Webhook.id == webhook_id, Webhook.account_id == self.account_id)
        )

    async def add_deliveries(
        self,
        *,
        event: str,
        event_id: str,
        body: str,
        room: int,
        not_sent: str,
        webhook_id: int | None = None,
    ) -> Queued:
        """One delivery per webhook of this account subscribed to `event` (or to the one webhook
        given, whatever its events): the first `room` of them, in webhook order, pending and due
        at once; the others failed at once with the error `not_sent`, never attempted. One
        statement, nothing read first."""
        order = func.row_number().over(order_by=Webhook.id)
        hooks = select(Webhook.id.label("webhook_id"), order.label("n")).where(
            Webhook.account_id == self.account_id
        )
        if webhook_id is None:
            hooks = hooks.where(Webhook.events.contains([event]))
        else:
            hooks = hooks.where(Webhook.id == webhook_id)
        subscribed = hooks.subquery()
        queued = subscribed.c.n <= room
        source = select(
            subscribed.c.webhook_id,
            literal(event),
            literal(event_id),
            literal(body),
            case((queued, literal("pending")), else_=literal("failed")),
            case((queued, func.now()), else_=null()),
            case((queued, null()), else_=literal(not_sent)),
        )
        stmt = (
            insert(WebhookDelivery)
            .from_select(
                ["webhook_id", "event", "event_id", "body", "status", "next_attempt_at",
                 "last_error"],
                source,
            )
            .returning(WebhookDelivery.id, WebhookDelivery.status)
        )  # fmt: skip
        rows = (await self.session.execute(stmt)).all()
        return Queued(
            pending=sorted(r.id for r in rows if r.status == "pending"),
            dropped=sorted(r.id for r in rows if r.status != "pending"),
        )

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
