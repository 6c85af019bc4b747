"""The webhook in the path, for the calling account: another account's webhook is a 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from app.accounts.dependencies import AccountDep
from app.core.db import SessionDep
from app.core.errors import NotFound
from app.models import Webhook
from app.webhooks.repository import WebhookRepository

WebhookId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Webhook id.", examples=[3])]


async def owned_webhook(webhook_id: WebhookId, session: SessionDep, account: AccountDep) -> Webhook:
    webhook = await WebhookRepository(session, account.id).get(webhook_id)
    if webhook is None:
        raise NotFound(f"Webhook {webhook_id} not found.")
    return webhook


WebhookDep = Annotated[Webhook, Depends(owned_webhook)]
