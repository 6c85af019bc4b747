"""The process's settings and shared resources, as dependencies a router declares.

The application's lifespan (app/main.py) makes one of each and keeps it on `app.state`; routers
never read `app.state` themselves: they take `SettingsDep`, `EngineDep`, … and pass plain values
on to services. Each dependency is an `async def` (a plain `def` would run in a thread) with the
request as its only input, so solving it costs one call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import anyio
from fastapi import Depends, Request
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.access.counter import UsageCounter
from app.core.config import Settings
from app.core.db import after_commit
from app.core.downloads import DownloadBudget
from app.core.fairness import AccountSlots, AccountTurns
from app.jobs.runner import ImportJobRunner
from app.rows.maintenance import RowMaintenance
from app.webhooks.dispatcher import WebhookDispatcher


def _from_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency answering what the lifespan keeps on `app.state` under `name` (its type is
    the one the `Annotated` alias below declares)."""

    async def resource(request: Request) -> Any:
        return getattr(request.app.state, name)

    resource.__name__ = resource.__qualname__ = name
    return resource


async def _request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return str(value) if value else None


class RowChanges:
    """Tells row maintenance (statistics, search indexes, orphan partitions) what a request
    changed, once its transaction has committed; nothing when it rolls back."""

    def __init__(self, request: Request, maintenance: RowMaintenance) -> None:
        self._request = request
        self._maintenance = maintenance

    def item_changed(self, item_id: int, *, loaded: bool = False) -> None:
        """Rows of `item_id` were written (`loaded`: in bulk, from a file, a copy, a bundle)."""
        maintenance = self._maintenance
        after_commit(self._request, lambda: maintenance.item_changed(item_id, loaded=loaded))

    def item_deleted(self) -> None:
        """An item went: its partition is now an orphan, for the next sweep."""
        after_commit(self._request, self._maintenance.sweep_soon)


async def _row_changes(request: Request) -> RowChanges:
    return RowChanges(request, request.app.state.row_maintenance)


SettingsDep = Annotated[Settings, Depends(_from_state("settings"))]
EngineDep = Annotated[AsyncEngine, Depends(_from_state("engine"))]
"""For work outside the request's transaction: one-statement reads, streamed downloads."""
DownloadsDep = Annotated[DownloadBudget, Depends(_from_state("downloads"))]
IngestionSlotsDep = Annotated[anyio.Semaphore, Depends(_from_state("ingestion_slots"))]
"""Uploads and bundle imports at once per process (INGESTION_CONCURRENCY)."""
XlsxSlotsDep = Annotated[anyio.CapacityLimiter, Depends(_from_state("xlsx_slots"))]
"""Workbooks built at once per process (INGESTION_CONCURRENCY: heavy file work)."""
UsageCounterDep = Annotated[UsageCounter, Depends(_from_state("usage_counter"))]
RowMaintenanceDep = Annotated[RowMaintenance, Depends(_from_state("row_maintenance"))]
ImportJobsDep = Annotated[ImportJobRunner, Depends(_from_state("import_jobs"))]
WebhookDispatcherDep = Annotated[WebhookDispatcher, Depends(_from_state("webhooks"))]
RequestIdDep = Annotated[str | None, Depends(_request_id)]
"""The request's id (X-Request-ID), kept with what it queues."""
RowChangesDep = Annotated[RowChanges, Depends(_row_changes)]


def check_query_first(request: Request) -> None:
    """Validate the route's query parameters now, as a 400 like FastAPI's own, for dependencies
    that read a large body: FastAPI checks the endpoint's query parameters only after every
    dependency ran, so a bad `?async=` would cost the client the whole upload first."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is not None and dependant.query_params:
        _, errors = request_params_to_args(dependant.query_params, request.query_params)
        if errors:
            raise RequestValidationError(errors)


async def _aggregate_slot(request: Request) -> AsyncIterator[None]:
    """A slot of the caller's account among AGGREGATES_PER_ACCOUNT, held until the endpoint
    returns (app/core/fairness.py)."""
    state = request.app.state
    slots: AccountSlots | None = getattr(state, "aggregate_slots", None)
    if slots is None:
        settings: Settings = state.settings
        slots = state.aggregate_slots = AccountSlots(
            settings.aggregates_per_account, "aggregate queries", "AGGREGATES_PER_ACCOUNT"
        )
    async with slots.hold(request.state.account.id):
        yield


AggregateSlotDep = Annotated[None, Depends(_aggregate_slot, scope="function")]
"""One of the account's aggregate-query slots, for the request's duration."""


# an account's synchronous uploads and dry runs take an ingestion slot one at a time
_UPLOAD_TURNS_PER_ACCOUNT = 1


def _upload_turns(request: Request) -> AccountTurns:
    state = request.app.state
    turns: AccountTurns | None = getattr(state, "upload_turns", None)
    if turns is None:
        turns = state.upload_turns = AccountTurns(_UPLOAD_TURNS_PER_ACCOUNT)
    return turns


UploadTurnsDep = Annotated[AccountTurns, Depends(_upload_turns)]
"""Per-account turns in front of the ingestion slots (app/core/fairness.py)."""
