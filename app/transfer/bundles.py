"""Bundles: an item as one JSON document, for moving it to another deployment.

    {"format": "data-items-bundle", "version": 1, "exported_at": "…",
     "item": {"id", "data_name", "data_description", "row_count", "next_row_ref", …},
     "fields": [{"id": 101, "field_label", "field_type", "field_order", "field_required",
                 "field_instructions"}, …],
     "widgets": [{…as POST …/widgets/ takes them, series included…}],
     "rows": [{"_row_ref": "0", "101": "North", "102": 45200.5}, …]}

Rows are keyed by the bundle's field ids, exactly as `GET …/rows/` shows them (absent key: empty
cell), so widgets can refer to fields the same way and a label can be anything. Numbers are the
stored exact values. The export streams the rows from one snapshot; `rows` comes last so that a
streaming reader meets everything else first.

The import reads the document twice from its spooled copy, with a streaming parser (numbers as
Decimal): first everything but the rows, validated like any request body; then the rows, in
batches, each value through the field-type registry. It writes nothing the client can see
until it all succeeded: one transaction, and a bad bundle is a 400 that names the row index,
field and value of every problem (up to 100) and leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from datetime import UTC, datetime
from typing import IO, Any

import anyio
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.accounts.service import AuthenticatedAccount
from app.core.db import long_statements
from app.core.errors import BadRequest
from app.core.jsonexact import dumps
from app.core.positions import in_given_order
from app.data_items import service as data_items_service
from app.fields import service as fields_service
from app.models import DataItem
from app.models import Field as FieldModel
from app.rows import service as rows_service
from app.summary import service as summary_service
from app.transfer.bundle_reader import RowReader, read_head
from app.transfer.copying import remap_widgets
from app.transfer.exports import open_snapshot
from app.transfer.repository import TransferRepository, WidgetSpec
from app.transfer.schemas import BUNDLE_FORMAT, BUNDLE_VERSION, BundleHead
from app.widgets import service as widgets_service

# ------------------------------------------------------------------------------ export


def _widget_json(w: WidgetSpec) -> dict[str, Any]:
    v = w.values
    return {
        "title": v["title"],
        "description": v["description"],
        "chart_type": v["chart_type"],
        "widget_order": v["widget_order"],
        "widget_size": v["widget_size"],
        "label_field": v["label_field_id"],
        "date_grouping": v["date_grouping"],
        "sort_direction": v["sort_direction"],
        "row_limit": v["row_limit"],
        "filter_config": v["filter_config"],
        "chart_options": v["chart_options"],
        "series": [
            {
                "value_field": s["value_field_id"],
                "aggregation": s["aggregation"],
                "label": s["label"],
                "series_order": s["series_order"],
                "color": s["color"],
            }
            for s in w.series
        ],
    }


async def bundle_body(
    engine: AsyncEngine, account_id: int, item_id: int
) -> AsyncGenerator[bytes, None]:
    async with open_snapshot(engine, account_id, item_id) as (reader, item, fields):
        head = {
            "format": BUNDLE_FORMAT,
            "version": BUNDLE_VERSION,
            "exported_at": datetime.now(UTC),
            "item": {
                "id": item.id,
                "data_name": item.data_name,
                "data_description": item.data_description,
                "row_count": item.row_count,
                "next_row_ref": item.next_row_ref,
                "created_at": item.created_at,
                "updated_at": item.updated_at,
            },
            "fields": [
                {
                    "id": f.id,
                    "field_label": f.field_label,
                    "field_type": f.field_type,
                    "field_order": f.field_order,
                    "field_required": f.field_required,
                    "field_instructions": f.field_instructions,
                }
                for f in fields
            ],
            "widgets": [_widget_json(w) for w in await reader.widgets()],
        }
        yield (dumps(head)[:-1] + ',"rows":[').encode("utf-8")
        first = True
        async with aclosing(reader.documents()) as batches:
            async for batch in batches:
                rows = ",\n".join(rows_service.render_row(int(r[0]), str(r[1])) for r in batch)
                yield (("\n" if first else ",\n") + rows).encode("utf-8")
                first = False
        yield b"\n]}\n"


# ------------------------------------------------------------------------------ import


def validate_head(raw: Mapping[str, Any], rows_kind: str | None) -> BundleHead:
    if raw.get("format") != BUNDLE_FORMAT:
        raise BadRequest(
            f'This is not a data-items bundle: "format" must be "{BUNDLE_FORMAT}".',
            details=[{"field": "format", "message": f"must be {BUNDLE_FORMAT}"}],
        )
    if raw.get("version") != BUNDLE_VERSION:
        raise BadRequest(
            f"Unsupported bundle version {raw.get('version')!r}: this service reads version "
            f"{BUNDLE_VERSION}.",
            details=[{"field": "version", "message": f"must be {BUNDLE_VERSION}"}],
        )
    if rows_kind not in ("start_array", None):
        raise BadRequest(
            "The bundle's `rows` must be an array.",
            details=[{"field": "rows", "message": "must be an array"}],
        )
    try:
        head = BundleHead.model_validate(raw)
    except ValidationError as exc:
        problems = [
            {
                "field": ".".join(str(p) for p in e["loc"]) or "bundle",
                "message": str(e["msg"]).removeprefix("Value error, "),
            }
            for e in exc.errors()
        ]
        _raise_problems(problems)
    _check_references(head)
    _check_widgets(head)
    return head


def _raise_problems(problems: list[dict[str, Any]], total: int | None = None) -> None:
    total = len(problems) if total is None else total
    if total == 1:
        p = problems[0]
        where = f"row {p['row']}, field {p['field']}" if "row" in p else p["field"]
        value = f" {p['value']!r}" if "value" in p else ""
        raise BadRequest(
            f"Invalid bundle: {where}:{value} {p['message']}. Nothing was imported.",
            details=problems,
        )
    message = f"Invalid bundle: {total:,} problems (see details). Nothing was imported."
    if total > len(problems):
        message += f" The first {len(problems)} are listed."
    raise BadRequest(message, details=problems)


def _check_references(head: BundleHead) -> None:
    problems: list[dict[str, Any]] = []
    ids: set[int] = set()
    for i, f in enumerate(head.fields):
        if f.id in ids:
            problems.append({"field": f"fields.{i}.id", "message": f"id {f.id} is used twice"})
        ids.add(f.id)
    for label in fields_service.duplicate_labels([f.field_label for f in head.fields]):
        problems.append(
            {"field": "fields", "message": f"label {label!r} is used twice (ignoring case)"}
        )

    def known(field_id: int | None, where: str) -> None:
        if field_id is not None and field_id not in ids:
            problems.append({"field": where, "message": f"field {field_id} is not in the bundle"})

    for i, w in enumerate(head.widgets):
        known(w.label_field, f"widgets.{i}.label_field")
        for j, s in enumerate(w.series):
            known(s.value_field, f"widgets.{i}.series.{j}.value_field")
        if w.filter_config is not None:
            for j, c in enumerate(w.filter_config.conditions):
                known(c.field, f"widgets.{i}.filter_config.conditions.{j}.field")
    if problems:
        _raise_problems(problems)


def _check_widgets(head: BundleHead) -> None:
    """Each widget as POST …/widgets/ checks it against the item's fields (here: the bundle's),
    so that a bundle cannot bring in a widget the API would refuse."""
    fields = {
        f.id: FieldModel(id=f.id, field_label=f.field_label, field_type=f.field_type.value)
        for f in head.fields
    }
    problems: list[dict[str, Any]] = []
    for i, w in enumerate(head.widgets):
        named = f"widget {i}" + (f" {w.title!r}" if w.title else "")
        for p in widgets_service.widget_problems(w, fields):
            problems.append(
                {"field": f"widgets.{i}.{p['field']}", "message": f"{p['message']} ({named})"}
            )
    if problems:
        _raise_problems(problems)


async def import_bundle(
    session: AsyncSession,
    account: AuthenticatedAccount,
    source: IO[bytes],
    *,
    data_name: str | None,
    max_rows: int,
) -> DataItem:
    scanned = await anyio.to_thread.run_sync(read_head, source)
    head = validate_head(scanned.values, scanned.rows_kind)
    await long_statements(session)
    item = await data_items_service.add_item(
        session,
        account,
        data_name=data_name or head.item.data_name,
        data_description=head.item.data_description,
    )
    bundle_fields = in_given_order(head.fields, lambda f: f.field_order)
    created = await fields_service.create_fields(
        session, item, [f.model_copy(update={"field_order": None}) for f in bundle_fields]
    )
    ids = {bf.id: f.id for bf, f in zip(bundle_fields, created, strict=True)}
    by_key = {str(bf.id): f for bf, f in zip(bundle_fields, created, strict=True)}
    by_id = {f.id: f for f in created}
    conn = await session.connection()
    repo = TransferRepository(conn)
    await rows_service.create_rows_table(session, item.id, attach=False)

    reader = RowReader.over(source, scanned, by_key, max_rows)
    control_chars = False
    while (batch := await anyio.to_thread.run_sync(reader.next_batch)) is not None:
        if batch.records:
            await repo.write_rows(item.id, batch.records)
            await summary_service.record_changes(session, item.id, by_id, batch.changes)
            control_chars = control_chars or batch.control_chars
    if reader.problem_count:
        _raise_problems(reader.problems, reader.problem_count)
    declared = head.item.row_count
    if declared is not None and declared != reader.count:
        raise BadRequest(
            f"The bundle says it has {declared:,} rows but holds {reader.count:,} (truncated?). "
            "Nothing was imported.",
            details=[
                {"field": "item.row_count", "message": f"is {declared}, rows hold {reader.count}"}
            ],
        )
    next_ref = head.item.next_row_ref
    if next_ref is None:
        next_ref = reader.last_ref + 1
    elif next_ref <= reader.last_ref:
        raise BadRequest(
            f"item.next_row_ref {next_ref} must be greater than the last row ref "
            f"({reader.last_ref}): row refs are never reused.",
            details=[{"field": "item.next_row_ref", "message": "must exceed every row ref"}],
        )
    await rows_service.attach_rows_table(session, item.id)
    await repo.set_counters(
        item.id, next_row_ref=next_ref, row_count=reader.count, has_control_chars=control_chars
    )
    widgets = [_widget_spec(w) for w in head.widgets]
    await repo.add_widgets(item.id, remap_widgets(_ordered(widgets), ids))
    return item


def _ordered(widgets: Sequence[WidgetSpec]) -> list[WidgetSpec]:
    """Widgets and each widget's series in their given order, renumbered 0, 1, …"""
    return [
        WidgetSpec(
            {**w.values, "widget_order": position},
            [
                {**s, "series_order": i}
                for i, s in enumerate(in_given_order(w.series, lambda s: s["series_order"]))
            ],
        )
        for position, w in enumerate(in_given_order(widgets, lambda w: w.values["widget_order"]))
    ]


def _widget_spec(w: Any) -> WidgetSpec:
    return WidgetSpec(
        {
            "title": w.title,
            "description": w.description,
            "chart_type": w.chart_type.value,
            "widget_order": w.widget_order,
            "widget_size": w.widget_size.value,
            "label_field_id": w.label_field,
            "date_grouping": w.date_grouping.value,
            "sort_direction": w.sort_direction.value,
            "row_limit": w.row_limit,
            "filter_config": (
                None if w.filter_config is None else w.filter_config.model_dump(mode="python")
            ),
            "chart_options": w.chart_options,
        },
        [
            {
                "value_field_id": s.value_field,
                "aggregation": s.aggregation.value,
                "label": s.label,
                "series_order": s.series_order,
                "color": s.color,
            }
            for s in w.series
        ],
    )
