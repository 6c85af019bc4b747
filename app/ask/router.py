"""Questions in plain language about a data item (POST …/ask/)."""

from __future__ import annotations

from fastapi import Response

from app.accounts.dependencies import AuthenticatedRoute
from app.ask import service
from app.ask.dependencies import ModelSlotsDep
from app.ask.schemas import AskAnswer, AskRequest
from app.core.db import SessionDep
from app.core.deps import SettingsDep
from app.core.jsonexact import ExactJSONResponse
from app.core.openapi import errors
from app.core.routing import ApiRouter
from app.core.schemas import ErrorBody
from app.data_items.dependencies import DataItemDep
from app.fields.dependencies import ItemFieldsDep

router = ApiRouter(prefix="/data-items", tags=["query"], route_class=AuthenticatedRoute)


@router.post(
    "/{item_id}/ask/",
    response_model=AskAnswer,
    summary="Ask a question in plain language: a table, a chart's data or a sentence",
    description=(
        "The question goes to the model the operator configured (LLM_BASE_URL: any "
        "OpenAI-compatible chat endpoint), which sees only the item's field ids, labels and "
        "types and the query schema, and may only answer with a query of `POST …/query/`. That "
        "query is checked like any other and run by PostgreSQL, so every number comes from the "
        "database; the answer includes it. No model configured: 501. A model that answers "
        "something unusable (not JSON, an invalid query, fields of another item): 502 saying "
        "what. No answer within LLM_TIMEOUT_SECONDS: 503 with Retry-After."
    ),
    responses={
        **errors(400, 401, 404),
        501: {"model": ErrorBody, "description": "No model is configured (LLM_BASE_URL)."},
        502: {
            "model": ErrorBody,
            "description": "The model failed, or answered something unusable.",
        },
    },
)
async def ask(
    payload: AskRequest,
    item: DataItemDep,
    fields: ItemFieldsDep,
    session: SessionDep,
    settings: SettingsDep,
    slots: ModelSlotsDep,
) -> Response:
    answer = await service.ask(
        session, item, list(fields), payload.question, settings=settings, limiter=slots
    )
    return ExactJSONResponse(answer.body)
