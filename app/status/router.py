"""`GET /api/v1/status`: what an authenticated client may want to check first."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field
from sqlalchemy import text

from app import __version__
from app.accounts.dependencies import AccountDep, AuthenticatedRoute
from app.core.db import SessionDep
from app.core.openapi import errors
from app.core.schemas import Schema
from app.data_items.repository import DataItemRepository

router = APIRouter(tags=["status"], route_class=AuthenticatedRoute)


class AccountSummary(Schema):
    id: int
    name: str


class Counts(Schema):
    data_items: int = Field(examples=[3])
    rows: int = Field(examples=[125000])


class StatusRead(Schema):
    version: str = Field(examples=[__version__])
    database: str = Field(examples=["ok"])
    account: AccountSummary
    counts: Counts


@router.get(
    "/status/",
    response_model=StatusRead,
    summary="Service version, database health and your own counts",
    responses=errors(401, 503),
)
async def get_status(session: SessionDep, account: AccountDep) -> StatusRead:
    await session.execute(text("SELECT 1"))
    repo = DataItemRepository(session, account.id)
    return StatusRead(
        version=__version__,
        database="ok",
        account=AccountSummary(id=account.id, name=account.name),
        counts=Counts(data_items=await repo.count(), rows=await repo.total_rows()),
    )
