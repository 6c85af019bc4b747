"""Webhook rules: URL checks, the secret shown once, and events written to the outbox.

`emit` is how any domain announces a change: it writes one pending delivery per subscribed
webhook *in the caller's transaction*, so the announcement commits or rolls back with the change
(the outbox pattern), and nudges this process's delivery worker once that transaction commits.

Caps per account, each counted under the account's lock for that cap (`app.core.locks`), so
concurrent requests cannot pass them: at most MAX_WEBHOOKS_PER_ACCOUNT webhooks (one more is a
400), and at most WEBHOOK_MAX_PENDING_PER_ACCOUNT pending deliveries. Past the latter a ping, a
client's explicit request, is a 429; an event is a side effect of a change the client made, and
the service's own background work never fails a client's request, so its deliveries are then
written as failed, never attempted, with an error naming the cap (the client sees in the
webhook's deliveries what it missed, payload included), and a warning is logged.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import AuthenticatedAccount
from app.core import wakeup
from app.core.config import Settings
from app.core.errors import BadRequest, RateLimited
from app.models import DataItem, Webhook, WebhookDelivery
from app.webhooks.repository import WebhookRepository
from app.webhooks.schemas import (
    PING_EVENT,
    DeliveryAttempt,
    DeliveryList,
    DeliveryRead,
    DeliveryStatus,
    PingResult,
    WebhookCreate,
    WebhookCreated,
    WebhookEvent,
    WebhookList,
    WebhookRead,
)
from app.webhooks.signing import new_secret
from app.webhooks.urls import UnsafeURL, parse_url
from app.webhooks.vault import SecretBox

TOPIC = "webhooks"
MAX_WEBHOOKS_PER_ACCOUNT = 20
PING_RETRY_AFTER_SECONDS = 60

log = logging.getLogger("app.webhooks")


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


async def create_webhook(
    session: AsyncSession,
    account: AuthenticatedAccount,
    payload: WebhookCreate,
    *,
    allow_private: bool,
    secret_box: SecretBox,
) -> WebhookCreated:
    try:
        parse_url(payload.url, allow_private=allow_private)
    except UnsafeURL as exc:
        raise BadRequest(
            f"The webhook URL {exc}.", details=[{"field": "url", "message": str(exc)}]
        ) from None
    repo = WebhookRepository(session, account.id)
    await repo.lock_webhooks()  # held until the commit: concurrent creations count in turn
    if await repo.count() >= MAX_WEBHOOKS_PER_ACCOUNT:
        raise BadRequest(
            f"An account may have at most {MAX_WEBHOOKS_PER_ACCOUNT} webhooks; delete one first."
        )
    secret = new_secret()
    webhook = await repo.add(
        url=payload.url,
        events=[str(e) for e in payload.events],
        description=payload.description,
        secret=secret_box.seal(secret),
    )
    return WebhookCreated(
        id=webhook.id,
        url=webhook.url,
        events=[WebhookEvent(e) for e in webhook.events],
        description=webhook.description,
        created_at=webhook.created_at,
        legacy_signature=webhook.legacy_signature,
        secret=secret,
    )


async def list_webhooks(session: AsyncSession, account: AuthenticatedAccount) -> WebhookList:
    webhooks = await WebhookRepository(session, account.id).all()
    return WebhookList(webhooks=[WebhookRead.model_validate(w) for w in webhooks])


def webhook_read(webhook: Webhook) -> WebhookRead:
    return WebhookRead.model_validate(webhook)


async def delete_webhook(
    session: AsyncSession, account: AuthenticatedAccount, webhook: Webhook
) -> None:
    """Deletes the webhook and its deliveries, pending ones included."""
    await WebhookRepository(session, account.id).delete(webhook.id)


def _delivery(delivery: WebhookDelivery) -> DeliveryRead:
    return DeliveryRead(
        id=delivery.id,
        event=delivery.event,
        event_id=delivery.event_id,
        status=DeliveryStatus(delivery.status),
        attempts=delivery.attempts,
        response_code=delivery.last_status_code,
        error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
        history=[DeliveryAttempt.model_validate(entry) for entry in delivery.history],
        payload=json.loads(delivery.body),
    )


async def list_deliveries(
    session: AsyncSession,
    account: AuthenticatedAccount,
    webhook: Webhook,
    *,
    offset: int,
    limit: int,
) -> DeliveryList:
    deliveries, total = await WebhookRepository(session, account.id).deliveries_page(
        webhook.id, offset=offset, limit=limit
    )
    return DeliveryList(
        total=total, offset=offset, limit=limit, deliveries=[_delivery(d) for d in deliveries]
    )


def _body(event: str, event_id: str, data: dict[str, Any]) -> str:
    envelope = {
        "event": event,
        "id": event_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": data,
    }
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))


def max_pending(session: AsyncSession) -> int:
    """WEBHOOK_MAX_PENDING_PER_ACCOUNT of the app whose session this is (its sessionmaker puts
    the settings in `session.info`); the default for a session made without them."""
    settings = session.info.get("settings")
    if isinstance(settings, Settings):
        return settings.webhook_max_pending_per_account
    default: int = Settings.model_fields["webhook_max_pending_per_account"].default
    return default


def _not_sent(cap: int) -> str:
    return (
        f"Not sent: the account had {cap} webhook deliveries pending, the most allowed "
        "(WEBHOOK_MAX_PENDING_PER_ACCOUNT), when this event happened."
    )


async def emit(
    session: AsyncSession, *, account_id: int, event: WebhookEvent, data: dict[str, Any]
) -> int:
    """Announce `event` to the account's subscribed webhooks, in the session's transaction.
    `data` must be JSON-ready (strings, numbers, lists, dicts). Returns the deliveries queued.

    Never fails because of the pending cap: deliveries past it are written as failed (not sent)
    and logged. Takes the account's delivery lock, held until the caller's transaction ends:
    call it as the last thing that transaction locks."""
    repo = WebhookRepository(session, account_id)
    if not await repo.subscribed(str(event)):
        return 0  # no lock, no count: nothing to queue
    cap = max_pending(session)
    await repo.lock_deliveries()
    room = cap - await repo.count_pending(up_to=cap)
    event_id = new_event_id()
    queued = await repo.add_deliveries(
        event=str(event),
        event_id=event_id,
        body=_body(str(event), event_id, data),
        room=room,
        not_sent=_not_sent(cap),
    )
    if queued.dropped:
        log.warning(
            "account %s has %d webhook deliveries pending (WEBHOOK_MAX_PENDING_PER_ACCOUNT): "
            "event %s (%s) recorded as not sent for %d webhook(s) (deliveries %s)",
            account_id,
            cap,
            event_id,
            event,
            len(queued.dropped),
            ", ".join(str(i) for i in queued.dropped),
        )
    if queued.pending:
        wakeup.notify_after_commit(session, TOPIC)
    return len(queued.pending)


async def ping(
    session: AsyncSession, account: AuthenticatedAccount, webhook: Webhook
) -> PingResult:
    """Queue a ping, unless the account already has its most pending deliveries: then 429."""
    repo = WebhookRepository(session, account.id)
    cap = max_pending(session)
    await repo.lock_deliveries()  # held until the commit: concurrent pings count in turn
    if await repo.count_pending(up_to=cap) >= cap:
        raise RateLimited(
            f"You have {cap} webhook deliveries pending, the most allowed "
            "(WEBHOOK_MAX_PENDING_PER_ACCOUNT); wait for some to be delivered or to fail "
            "(see each webhook's deliveries).",
            headers={"Retry-After": str(PING_RETRY_AFTER_SECONDS)},
        )
    event_id = new_event_id()
    queued = await repo.add_deliveries(
        event=PING_EVENT,
        event_id=event_id,
        body=_body(PING_EVENT, event_id, {"webhook_id": webhook.id}),
        room=1,
        not_sent=_not_sent(cap),
        webhook_id=webhook.id,
    )
    wakeup.notify_after_commit(session, TOPIC)
    return PingResult(delivery_id=queued.pending[0], event_id=event_id)


def _timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


async def item_data(session: AsyncSession, item: DataItem) -> dict[str, Any]:
    """A data item as event data (reloaded first if this transaction changed it)."""
    if inspect(item).expired_attributes:
        await session.refresh(item)
    return {
        "id": item.id,
        "data_name": item.data_name,
        "data_description": item.data_description,
        "row_count": item.row_count,
        "created_at": _timestamp(item.created_at),
        "updated_at": _timestamp(item.updated_at),
    }
