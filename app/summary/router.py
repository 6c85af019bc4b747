"""`GET /data-items/{id}/summary/`: per-field statistics."""

from __future__ import annotations

from fastapi import Request

from app.accounts.dependencies import AuthenticatedRoute, caller
from app.core.deps import EngineDep
from app.core.jsonexact import ExactJSONResponse
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.data_items.dependencies import ItemId
from app.summary import service
from app.summary.schemas import SummaryRead

router = ApiRouter(prefix="/data-items/{item_id}", tags=["summary"], route_class=AuthenticatedRoute)


@router.get(
    "/summary/",
    response_model=SummaryRead,
    response_class=ExactJSONResponse,
    summary="Per-field statistics, in field order",
    description=(
        "For every field: `total_values` (non-empty cells) and `empty_count`; char/text: "
        "`unique_count` and `top_values` (at most 10, most frequent first, ties by value); "
        "decimal: exact `min`, `max`, `sum` and `avg` (rounded to 2 places, more when the values "
        "carry more); date: `min_date`, `max_date`; boolean: `true_count`, `false_count`."
    ),
    responses=errors(400, 401, 404),
)
async def get_summary(item_id: ItemId, request: Request, engine: EngineDep) -> ExactJSONResponse:
    body = await service.read_summary(engine, caller(request).id, item_id)
    return ExactJSONResponse(body)
