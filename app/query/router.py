"""Ad-hoc queries over a data item's rows: grouped, aggregated, answered as a table."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import Query, status
from fastapi.responses import Response

from app.accounts.dependencies import AuthenticatedRoute
from app.core.db import SessionDep
from app.core.deps import AggregateSlotDep
from app.core.jsonexact import ExactJSONResponse
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.data_items.dependencies import DataItemDep
from app.fields.dependencies import ItemFieldsDep
from app.query import service
from app.query.schemas import QueryRequest, QueryResult

router = ApiRouter(
    prefix="/data-items/{item_id}/query", tags=["query"], route_class=AuthenticatedRoute
)


class AnswerFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


_CSV: dict[str, Any] = {
    "schema": {"type": "string"},
    "example": "Region,Sum of Revenue,Count\r\nNorth,1250.5,3\r\nSouth,980,2\r\n",
}


@router.post(
    "/",
    response_model=QueryResult,
    response_class=ExactJSONResponse,
    status_code=status.HTTP_200_OK,
    summary="Group, aggregate and filter the rows without saving a widget; a table or CSV",
    description=(
        "Rows matching `filter` (the language of `GET …/rows/?filter=`) are grouped by up to 3 "
        "fields (`group_by`; a date field by its `date_grouping` bucket) and each aggregation "
        "is computed per group, exactly, by the engine widget data uses. Group values are "
        'shown as widget labels ("(empty)" for rows without a value); without `group_by` the '
        "answer is one row over every matching row. Ops: count (non-empty cells, or rows "
        "without `field`), count_distinct, sum, avg, median (decimal), min, max (decimal, "
        "date). Rows are ordered by `sort` (a column's position or name; empty values last), "
        "then by the group columns ascending, and cut to `limit` (default 1000, at most "
        "10000; `truncated` says so). `?format=csv` answers the same table as CSV with a "
        "header row of column names. An unknown field, an op that does not fit its field, a "
        "date grouping without a date field or a bad sort column is a 400 naming it."
    ),
    responses={
        200: {"content": {"text/csv": _CSV}, "description": "The table (JSON or CSV)."},
        **errors(400, 401, 404, 413),
    },
)
async def run_query(
    item: DataItemDep,
    fields: ItemFieldsDep,
    session: SessionDep,
    payload: QueryRequest,
    slot: AggregateSlotDep,
    answer_format: Annotated[
        AnswerFormat, Query(alias="format", description="json (default) or csv.")
    ] = AnswerFormat.JSON,
    bom: Annotated[
        bool, Query(description="csv only: start with a UTF-8 byte order mark (for Excel).")
    ] = False,
    escape_formulas: Annotated[
        bool | None,
        Query(
            description=(
                "csv only: put `'` before a text cell (or a column name) that starts with `=`, "
                "`+`, `-`, `@`, tab or CR, so a spreadsheet shows it instead of running it. "
                "Default: on with `bom=true`, off otherwise (as the export)."
            )
        ),
    ] = None,
) -> Response:
    answer = await service.run_query(session, item, fields, payload)
    if answer_format is AnswerFormat.CSV:
        escape = bom if escape_formulas is None else escape_formulas
        body = service.csv_text(answer, escape_formulas=escape)
        return Response(("\ufeff" if bom else "") + body, media_type="text/csv; charset=utf-8")
    return ExactJSONResponse(answer)
