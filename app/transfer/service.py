"""Transfer rules the router calls: what a download is (body, type, headers), and the import
and copy entry points (the bundle to import is read from the request by
`dependencies.bundle_source`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import anyio
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.accounts.service import AuthenticatedAccount
from app.core.errors import BadRequest
from app.core.schemas import text_problem
from app.data_items import service as data_items_service
from app.data_items.schemas import DataItemRead
from app.models import DataItem, Field
from app.transfer import bundles, copying, exports, xlsx
from app.transfer.schemas import CopyRequest, ExportFormat


@dataclass
class Download:
    body: AsyncIterator[bytes]
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


def _headers(filename: str, size: int | None = None) -> dict[str, str]:
    headers = {
        "Content-Disposition": exports.content_disposition(filename),
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    if size is not None:
        headers["Content-Length"] = str(size)
    return headers


async def export_rows(
    session: AsyncSession,
    account: AuthenticatedAccount,
    item: DataItem,
    fields: Sequence[Field],
    *,
    engine: AsyncEngine,
    export_format: ExportFormat,
    search: str | None,
    filter_json: str | None,
    sort: str | None,
    bom: bool,
    escape_formulas: bool | None = None,
    workdir: Path,
    xlsx_slots: anyio.CapacityLimiter,
) -> Download:
    query = exports.row_query(item, fields, search=search, filter_json=filter_json, sort=sort)
    filename = exports.download_name(item.data_name, export_format.value)
    media_type = exports.MEDIA_TYPES[export_format.value]
    if export_format is ExportFormat.XLSX:
        await session.commit()  # no transaction left open while the workbook is built
        built = await xlsx.build(
            engine, account.id, item.id, query, workdir=workdir, slots=xlsx_slots
        )
        return Download(built.chunks(), media_type, _headers(filename, built.size))
    if export_format is ExportFormat.JSON:
        body = exports.json_body(engine, account.id, item.id, query)
    else:
        body = exports.csv_body(
            engine,
            account.id,
            item.id,
            query,
            bom=bom,
            escape_formulas=bom if escape_formulas is None else escape_formulas,
        )
    return Download(body, media_type, _headers(filename))


def bundle_download(engine: AsyncEngine, account: AuthenticatedAccount, item: DataItem) -> Download:
    return Download(
        bundles.bundle_body(engine, account.id, item.id),
        "application/json",
        _headers(exports.download_name(item.data_name, "bundle.json")),
    )


async def copy_item(
    session: AsyncSession,
    account: AuthenticatedAccount,
    item: DataItem,
    payload: CopyRequest | None,
) -> DataItemRead:
    copy = await copying.copy_item(session, account, item, payload or CopyRequest())
    return await data_items_service.detail(session, account, copy)


def import_name(data_name: str | None) -> str | None:
    if data_name is None:
        return None
    name = data_name.strip()
    problem = "must not be empty" if not name else text_problem(name)
    if problem:
        raise BadRequest(
            f"`data_name` {problem}.", details=[{"field": "data_name", "message": problem}]
        )
    return name


async def import_bundle(
    session: AsyncSession,
    account: AuthenticatedAccount,
    source: IO[bytes],
    *,
    data_name: str | None,
    max_rows: int,
) -> DataItemRead:
    item = await bundles.import_bundle(
        session, account, source, data_name=import_name(data_name), max_rows=max_rows
    )
    return await data_items_service.detail(session, account, item)
