"""Share links of a dashboard (made, listed and revoked with a key), and the public page each
link opens (`/s/{token}`, outside /api/v1, without a key)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, status
from fastapi.responses import HTMLResponse

from app.accounts.dependencies import AccountDep, AuthenticatedRoute
from app.core.db import SessionDep
from app.core.deps import XlsxSlotsDep
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.core.schemas import DeletedResult
from app.dashboards.dependencies import DashboardDep
from app.shares import service
from app.shares.page import PAGE_HEADERS
from app.shares.schemas import ShareCreate, ShareCreated, ShareList

router = ApiRouter(prefix="/dashboards", tags=["dashboards"], route_class=AuthenticatedRoute)

ShareId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Share link id.", examples=[5])]

_PAGE = (
    "The link opens a public, read-only page of the dashboard: its title, description and each "
    "widget's chart (drawn when the page is opened, from the data as it is then), for anyone "
    "who has the link, without an API key. It shows nothing else: no ids, no rows, no key."
)


def _root(request: Request) -> str:
    """The service's root as the client reached it (a gateway's prefix, ROOT_PATH)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.post(
    "/{dashboard_id}/shares/",
    response_model=ShareCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Share a dashboard: a read-only link that needs no key",
    description=_PAGE
    + " `url` holds the link's secret and is shown only in this answer (only a hash of it is "
    "stored). The link works until it is revoked (DELETE) or until `expires_at`; the body may "
    "be left out.",
    responses=errors(400, 401, 404),
)
async def create_share(
    request: Request,
    dashboard: DashboardDep,
    session: SessionDep,
    account: AccountDep,
    payload: Annotated[ShareCreate | None, Body()] = None,
) -> ShareCreated:
    return await service.create_share(
        session, account, dashboard, payload or ShareCreate(), root=_root(request)
    )


@router.get(
    "/{dashboard_id}/shares/",
    response_model=ShareList,
    summary="List a dashboard's share links (never their secrets)",
    description="Newest first, revoked and expired ones included (`active` says whether the "
    f"link works now). `offset` and `limit` (1 to {service.MAX_LIST_LIMIT}) page the list.",
    responses=errors(400, 401, 404),
)
async def list_shares(
    dashboard: DashboardDep,
    session: SessionDep,
    account: AccountDep,
    offset: Annotated[int, Query(ge=0, le=2**31, description="Links to skip.", examples=[0])] = 0,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=service.MAX_LIST_LIMIT,
            description=f"Links per page, 1 to {service.MAX_LIST_LIMIT} (the default).",
            examples=[20],
        ),
    ] = service.MAX_LIST_LIMIT,
) -> ShareList:
    return await service.list_shares(session, account, dashboard, offset=offset, limit=limit)


@router.delete(
    "/{dashboard_id}/shares/{share_id}/",
    response_model=DeletedResult,
    summary="Revoke a share link: its page answers 404 from now on",
    description="The link stays in the list, with its `revoked_at`. Revoking it again is harmless.",
    responses=errors(400, 401, 404),
)
async def revoke_share(
    share_id: ShareId, dashboard: DashboardDep, session: SessionDep, account: AccountDep
) -> DeletedResult:
    await service.revoke_share(session, account, dashboard, share_id)
    return DeletedResult(deleted=True)


# ---------------------------------------------------------------------------------- the page

page_router = APIRouter(tags=["dashboards"])

_HTML: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The dashboard's page: HTML with each chart as inline SVG.",
        "content": {"text/html": {"schema": {"type": "string"}, "example": "<!DOCTYPE html>…"}},
    },
    404: {
        "description": "The link was revoked, has expired, or is not a link (one page for all).",
        "content": {"text/html": {"schema": {"type": "string"}, "example": "<!DOCTYPE html>…"}},
    },
}


@page_router.get(
    "/s/{token:path}",
    response_class=HTMLResponse,
    summary="A shared dashboard's public page (no key)",
    description=_PAGE
    + " Self-contained (no script, no font or file to fetch), never cached (`no-store`).",
    responses=_HTML,
)
async def share_page(
    token: Annotated[
        str,
        Path(
            description="The link's token, from the `url` the share was made with.",
            examples=["q3vT0aB1c2d3e4f5g6h7i8j9k0lmnopqrstuvwxyz12"],
        ),
    ],
    session: SessionDep,
    slots: XlsxSlotsDep,
) -> HTMLResponse:
    shown = await service.share_page(session, token, slots=slots)
    return HTMLResponse(shown.html, status_code=shown.status, headers=PAGE_HEADERS)
