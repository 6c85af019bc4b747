"""Application factory: lifespan (database, migrations, background upkeep), middleware, errors,
routes and the offline API docs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import anyio
import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.access.counter import UsageCounter
from app.accounts.cache import KeyCache
from app.accounts.dependencies import authenticate, key_lookup
from app.accounts.throttle import AuthFailures
from app.api import include_api
from app.core import error_handlers
from app.core.config import Settings, get_settings, spool_dir
from app.core.database import DatabaseHandle, open_database
from app.core.db import create_engine, create_sessionmaker
from app.core.downloads import DownloadBudget
from app.core.headers import ResponseHeadersMiddleware
from app.core.logging import configure_logging
from app.core.middleware import (
    BodySizeLimitMiddleware,
    HeadAsGetMiddleware,
    RequestContextMiddleware,
)
from app.core.migrate import migrate
from app.core.openapi import install_openapi, operation_id
from app.core.reads import release_kept
from app.core.routing import TrailingSlashMiddleware
from app.health import router as health_router
from app.ingestion.isolation import start_reader_server
from app.ingestion.upload import remove_stale_spools
from app.jobs.runner import ImportJobRunner
from app.rows.maintenance import RowMaintenance
from app.shares.router import page_router as share_page_router
from app.webhooks.dispatcher import WebhookDispatcher

log = logging.getLogger("app")

DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"

DESCRIPTION = """
Upload CSV and Excel files and get a typed table back (field types inferred from the content);
then manage its fields and rows, search them, read per-field statistics and define dashboard
widgets over them.

**Authentication**: every `/api/v1` endpoint needs an API key, sent as the `X-Api-Key` header
(or the `api_key` query parameter). Keys are issued by an operator with
`python -m app keys create ACCOUNT_ID`. Use **Authorize** above to try the endpoints here.

**Errors** are JSON: `{"error": "what is wrong", "code": "VALIDATION_ERROR", "details": [...],
"request_id": "..."}`. Paths work with and without the trailing slash.
"""

# Headers a browser client may read on a cross-origin response (when CORS_ORIGINS is set).
_CORS_EXPOSED = [
    "X-Request-ID",
    "Retry-After",
    "Content-Disposition",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
]


def _lifespan(
    settings: Settings, database_url: str | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        handle: DatabaseHandle | None = None
        if database_url is not None:
            url = database_url
        else:
            handle = await anyio.to_thread.run_sync(open_database, settings)
            url = handle.url
        engine = create_engine(url, settings)
        maintenance = RowMaintenance(engine, search_index_min_rows=settings.search_index_min_rows)
        slots = anyio.Semaphore(settings.ingestion_concurrency)
        jobs = ImportJobRunner(engine, settings, slots=slots, maintenance=maintenance)
        webhooks = WebhookDispatcher(engine, settings)
        counter = UsageCounter(engine, limit=settings.rate_limit_per_minute)
        try:
            if settings.migrate_on_start:
                await migrate(url)
            app.state.engine = engine
            app.state.sessionmaker = create_sessionmaker(engine, settings)
            app.state.api_keys = KeyCache(
                key_lookup(app.state.sessionmaker),
                seconds=settings.auth_cache_seconds,
                entries=settings.auth_cache_entries,
            )
            app.state.auth_failures = AuthFailures(settings.auth_failures_per_minute)
            app.state.usage_counter = counter
            await counter.start()
            app.state.row_maintenance = maintenance
            app.state.ingestion_slots = slots
            # workbooks built at once (INGESTION_CONCURRENCY: heavy file work)
            app.state.xlsx_slots = anyio.CapacityLimiter(settings.ingestion_concurrency)
            app.state.import_jobs = jobs
            app.state.webhooks = webhooks
            app.state.downloads = DownloadBudget(
                concurrency=settings.download_concurrency,
                per_account=settings.download_max_per_account,
                stall_seconds=settings.download_stall_seconds,
                spool_dir=spool_dir(settings),
            )
            await anyio.to_thread.run_sync(remove_stale_spools, spool_dir(settings))
            # not awaited: the service is ready meanwhile; a workbook arriving first waits for it
            asyncio.get_running_loop().run_in_executor(None, start_reader_server)
            maintenance.start()
            jobs.start()
            await webhooks.prepare()
            webhooks.start()
            log.info("data-items service %s ready", __version__)
            yield
        finally:
            await jobs.stop()  # a running import is rolled back and marked failed
            await webhooks.stop()
            await maintenance.stop()
            await counter.stop()  # the last second's request counts
            await release_kept(engine)  # connections kept by one-statement reads
            await engine.dispose()
            if handle is not None:
                await anyio.to_thread.run_sync(handle.close)
            log.info("stopped")

    return lifespan


def _add_docs(app: FastAPI, settings: Settings) -> None:
    app.mount("/docs-static", StaticFiles(directory=DOCS_ASSETS), name="docs-static")

    def prefix(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = prefix(request)
        page = get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title="Data items API - Swagger UI",
            swagger_js_url=f"{root}/docs-static/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs-static/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs-static/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True},
        )
        return page  # security headers: ResponseHeadersMiddleware (app/core/headers.py)

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = prefix(request)
        page = get_redoc_html(
            openapi_url=f"{root}/openapi.json",
            title="Data items API - ReDoc",
            redoc_js_url=f"{root}/docs-static/redoc.standalone.js",
            redoc_favicon_url=f"{root}/docs-static/favicon.png",
            with_google_fonts=False,
        )
        return page


def create_app(settings: Settings | None = None, *, database_url: str | None = None) -> FastAPI:
    """`database_url` overrides the settings (tests pass one); otherwise DATABASE_URL or the
    embedded PostgreSQL is used."""
    settings = settings or get_settings()
    app = FastAPI(
        title="Data items API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan(settings, database_url or settings.database_url),
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=operation_id,
        redirect_slashes=False,
        openapi_tags=[
            {"name": "data-items", "description": "Typed tables you own."},
            {"name": "fields", "description": "The typed columns of a data item."},
            {
                "name": "files",
                "description": "Create items from files, append files, download them.",
            },
            {"name": "rows", "description": "Typed rows: write, read, page and search."},
            {"name": "summary", "description": "Per-field statistics."},
            {
                "name": "query",
                "description": "Ad-hoc questions of an item's rows, answered as a table.",
            },
            {
                "name": "widgets",
                "description": "Dashboard widgets, their series, and the data to draw them.",
            },
            {
                "name": "dashboards",
                "description": "Grids of widgets from any of your data items.",
            },
            {
                "name": "transfer",
                "description": "Export rows, copy items, move items between deployments.",
            },
            {
                "name": "keys",
                "description": "API keys with scopes, item limits and expiry; the audit trail "
                "(the `admin` scope).",
            },
            {
                "name": "jobs",
                "description": "Uploads run in the background (`?async=true`): poll them here.",
            },
            {
                "name": "uploads",
                "description": "The files your items were loaded from, across your items.",
            },
            {
                "name": "webhooks",
                "description": "Signed HTTP callbacks when imports end and items change.",
            },
            {"name": "status", "description": "Service status for API clients."},
            {"name": "usage", "description": "What you store and how much you call the API."},
            {"name": "operations", "description": "Liveness and readiness, without a key."},
        ],
    )
    app.state.settings = settings
    install_openapi(app)
    error_handlers.install(app, authenticate=authenticate)
    app.include_router(health_router)
    app.include_router(share_page_router)  # /s/{token}: a shared dashboard's page, no key
    include_api(app)
    _add_docs(app, settings)
    # Outermost first: response headers (security, rate limit), request id/log/last-resort 500,
    # CORS (when CORS_ORIGINS is set), body limit and read timeout, slash normalisation, HEAD.
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(TrailingSlashMiddleware)
    app.add_middleware(
        BodySizeLimitMiddleware,
        upload_limit=settings.max_upload_bytes,
        json_limit=settings.max_json_bytes,
        read_timeout=settings.body_read_timeout,
    )
    if origins := [o.strip() for o in settings.cors_origins.split(",") if o.strip()]:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["X-Api-Key", "Content-Type", "X-Request-ID"],
            expose_headers=_CORS_EXPOSED,
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(ResponseHeadersMiddleware)
    return app


def build() -> FastAPI:
    """Entry point for `uvicorn --factory app.main:build`."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
