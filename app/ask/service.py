"""Questions in plain language about one data item: the model turns the question into a query
of `POST …/query/` (never SQL), the query is checked by the same schema and rules as that
endpoint and run by PostgreSQL, and the answer is shaped as seed 004's text, table or
visualization. Every number in an answer comes from the database.

The model sees the question, the item's field ids, labels and types, and the query's JSON
schema: no row, no value, no other item, no account.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import anyio
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.ask import client
from app.core.config import Settings
from app.core.db import end_reads
from app.core.errors import AppError, ModelError, ModelTimeout
from app.models import DataItem, Field
from app.query import service as query_service
from app.query.schemas import QueryRequest

ANSWER_TYPES: Final = ("table", "visualization", "text")
CHART_TYPES: Final = ("bar", "line", "pie")
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)

SYSTEM = """You turn questions about one table into a JSON query. You never write SQL.
Answer with one JSON object and nothing else:
{{"type": "table" | "visualization" | "text",
  "visualization_type": "bar" | "line" | "pie"   (only when type is "visualization"),
  "query": <an object valid against QUERY SCHEMA>}}
Use "text" when the answer is one number or a few, "visualization" for a trend or a comparison
across groups, "table" otherwise. Refer to fields by their numeric id only.

FIELDS (id, label, type):
{fields}

QUERY SCHEMA:
{schema}"""


@dataclass(frozen=True)
class Answer:
    body: dict[str, Any]


def _messages(question: str, fields: list[Field]) -> list[dict[str, str]]:
    listing = "\n".join(f"{f.id}\t{f.field_label}\t{f.field_type}" for f in fields)
    schema = json.dumps(QueryRequest.model_json_schema(), separators=(",", ":"))
    return [
        {"role": "system", "content": SYSTEM.format(fields=listing or "(none)", schema=schema)},
        {"role": "user", "content": question},
    ]


def _parse(content: str) -> tuple[str, str | None, dict[str, Any]]:
    """(answer type, chart type, query object) from the model's reply, or a 502 saying what is
    wrong with it."""
    fenced = _FENCE.match(content)
    text = fenced.group(1) if fenced else content
    try:
        reply = json.loads(text, parse_float=Decimal)
    except (ValueError, RecursionError):  # (a reply nested thousands deep)
        raise ModelError(
            "The model's answer is not JSON: "
            + json.dumps(content[:200], ensure_ascii=False)
            + ". Try rephrasing the question."
        ) from None
    if not isinstance(reply, dict) or not isinstance(reply.get("query"), dict):
        raise ModelError('The model\'s answer has no "query" object. Try rephrasing the question.')
    kind = reply.get("type", "table")
    if kind not in ANSWER_TYPES:
        kind = "table"
    chart = reply.get("visualization_type")
    if kind == "visualization" and chart not in CHART_TYPES:
        chart = "bar"
    return kind, chart if kind == "visualization" else None, reply["query"]


async def ask(
    session: AsyncSession,
    item: DataItem,
    fields: list[Field],
    question: str,
    *,
    settings: Settings,
    limiter: anyio.CapacityLimiter,
) -> Answer:
    client.configured(settings)
    try:
        limiter.acquire_nowait()
    except anyio.WouldBlock:
        raise ModelTimeout(
            "Every model slot of this process is busy (LLM_CONCURRENCY); retry shortly.",
            headers={"Retry-After": "2"},
        ) from None
    messages = _messages(question, fields)
    # nothing is held while the model thinks (seconds, maybe LLM_TIMEOUT_SECONDS): the read
    # transaction ends and its connection goes back to the pool; the query opens a new one
    await end_reads(session)
    try:
        content = await client.complete(settings, messages)
    finally:
        limiter.release()
    kind, chart, raw_query = _parse(content)
    try:
        query = QueryRequest.model_validate(raw_query)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'query'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise ModelError(
            f"The model's query is not a valid query ({problems}). Try rephrasing the question.",
            details=[{"query": json.loads(json.dumps(raw_query, default=str))}],
        ) from None
    try:
        result = await query_service.run_query(session, item, fields, query)
    except AppError as exc:
        if exc.status_code >= 500:
            raise
        # the query named fields of another item, or asked what its fields cannot give
        raise ModelError(
            f"The model's query was refused: {exc.message} Try rephrasing the question.",
            details=exc.details,
        ) from None
    return Answer(_shape(kind, chart, query, result))


def _shape(
    kind: str, chart: str | None, query: QueryRequest, result: dict[str, Any]
) -> dict[str, Any]:
    """Seed 004's shapes: text, a table, or a chart's labels and datasets (the group columns
    label the points; each aggregation is a dataset)."""
    columns = [str(c["name"]) for c in result["columns"]]
    rows: list[list[Any]] = result["rows"]
    ran = query.model_dump(mode="json", exclude_none=True)
    if kind == "text":
        return {"type": "text", "data": _sentence(columns, rows), "query": ran}
    if kind == "visualization":
        keys = len(query.group_by or [])
        if keys:
            labels = [" / ".join(str(v) for v in row[:keys]) for row in rows]
            datasets = [
                {"label": columns[i], "data": [row[i] for row in rows]}
                for i in range(keys, len(columns))
            ]
        else:  # totals only: one point per aggregation
            labels = columns
            datasets = [{"label": "Value", "data": list(rows[0]) if rows else []}]
        return {
            "type": "visualization",
            "visualization_type": chart,
            "data": {"labels": labels, "datasets": datasets},
            "query": ran,
        }
    return {"type": "table", "data": {"columns": columns, "rows": rows}, "query": ran}


def _sentence(columns: list[str], rows: list[list[Any]]) -> str:
    """The result in words, from the database's numbers only."""
    if not rows:
        return "No rows match."
    if len(rows) == 1:
        pairs = zip(columns, rows[0], strict=False)
        return "; ".join(f"{name}: {_show(value)}" for name, value in pairs) + "."
    parts = [
        ", ".join(f"{n} {_show(v)}" for n, v in zip(columns, row, strict=False))
        for row in rows[:10]
    ]
    more = f" (and {len(rows) - 10} more)" if len(rows) > 10 else ""
    return "; ".join(parts) + more + "."


def _show(value: Any) -> str:
    if value is None:
        return "(empty)"
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)
