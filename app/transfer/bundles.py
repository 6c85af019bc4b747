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

import itertools
import re
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, Any

import anyio
import ijson
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.accounts.service import AuthenticatedAccount
from app.core.errors import BadRequest, ErrorCode
from app.core.jsonexact import dumps
from app.data_items.repository import DataItemRepository
from app.fields import service as fields_service
from app.fields.types import CellError, FieldTypeSpec, Stored, spec
from app.models import DataItem, Field
from app.rows import partitions
from app.rows import service as rows_service
from app.summary import service as summary_service
from app.summary.service import FieldChange
from app.transfer.copying import remap_widgets
from app.transfer.exports import open_snapshot
from app.transfer.repository import Selection, TransferRepository, WidgetSpec
from app.transfer.schemas import BUNDLE_FORMAT, BUNDLE_VERSION, BundleHead

BATCH_ROWS = 10_000
MAX_REPORTED = 100
MAX_ROW_REF = 10**18 - 1
_KEYS = ("format", "version", "exported_at", "item", "fields", "widgets", "rows")


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
        async with aclosing(reader.batches('row_ref, "values"::text', Selection())) as batches:
            async for batch in batches:
                rows = ",\n".join(rows_service.render_row(int(r[0]), str(r[1])) for r in batch)
                yield (("\n" if first else ",\n") + rows).encode("utf-8")
                first = False
        yield b"\n]}\n"


# ------------------------------------------------------------------------------ import


def _malformed(exc: Exception) -> BadRequest:
    reason = str(exc).strip() or type(exc).__name__
    return BadRequest(f"The bundle is not valid JSON: {reason}.", code=ErrorCode.MALFORMED_JSON)


def _build(events: Iterator[tuple[str, str, Any]], event: str, value: Any) -> Any:
    """The JSON value that starts with (`event`, `value`), read from `events`."""
    if event not in ("start_map", "start_array"):
        return value
    builder = ijson.ObjectBuilder()
    builder.event(event, value)
    depth = 1
    for _, ev, val in events:
        builder.event(ev, val)
        if ev in ("start_map", "start_array"):
            depth += 1
        elif ev in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                break
    return builder.value


def _skip(events: Iterator[tuple[str, str, Any]], event: str) -> None:
    if event not in ("start_map", "start_array"):
        return
    depth = 1
    for _, ev, _ in events:
        if ev in ("start_map", "start_array"):
            depth += 1
        elif ev in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                return


def read_head(source: IO[bytes]) -> tuple[dict[str, Any], str | None]:
    """Every top-level member but `rows`, and the JSON kind of `rows` (None when absent);
    reads the whole document once (so malformed JSON anywhere is found here)."""
    source.seek(0)
    if not source.read(1):
        raise BadRequest("The bundle is empty.", code=ErrorCode.MALFORMED_JSON)
    source.seek(0)
    events = iter(ijson.parse(source, use_float=False))
    head: dict[str, Any] = {}
    rows_kind: str | None = None
    try:
        first = next(events)
        if first[1] != "start_map":
            raise BadRequest(
                f'A bundle is a JSON object {{"format": "{BUNDLE_FORMAT}", …}}, not this.'
            )
        seen: set[str] = set()
        for _, event, key in events:
            if event == "end_map":
                break
            _, ev, val = next(events)
            if key in seen:
                raise BadRequest(f"The bundle has the key {key!r} twice.")
            seen.add(key)
            if key == "rows":
                rows_kind = ev
                _skip(events, ev)
            elif key in _KEYS:
                head[key] = _build(events, ev, val)
            else:
                raise BadRequest(
                    f"The bundle has an unknown key {key!r}; a version {BUNDLE_VERSION} bundle "
                    f"has {', '.join(_KEYS)}.",
                    details=[{"field": str(key), "message": "unknown key"}],
                )
        for _ in events:  # trailing content is an error
            pass
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise _malformed(exc) from None
    return head, rows_kind


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


@dataclass
class RowBatch:
    records: list[tuple[int, str]] = field(default_factory=list)
    changes: dict[int, FieldChange] = field(default_factory=dict)
    control_chars: bool = False


@dataclass
class _Column:
    """A field as the rows reader uses it; values it has seen are remembered (columns repeat
    values a lot: regions, dates, flags), keyed with their JSON type so 1 and true differ."""

    field_id: int
    key: str  # `"<field id>":`, the document's key
    kind: FieldTypeSpec
    describe: str
    seen: dict[tuple[type, Any], tuple[Stored | None, str]] = field(default_factory=dict)

    def convert(self, value: Any) -> tuple[Stored | None, str]:
        """(stored value, JSON fragment); CellError when the value does not fit."""
        memo = (value.__class__, value) if value.__class__ in _SCALARS else None
        if memo is not None and (hit := self.seen.get(memo)) is not None:
            return hit
        stored = self.kind.parse(value)
        result = (stored, "" if stored is None else self.key + self.kind.json_fragment(stored))
        if memo is not None and len(self.seen) < MAX_REMEMBERED:
            self.seen[memo] = result
        return result


_SCALARS = frozenset({str, int, bool, Decimal})
MAX_REMEMBERED = 20_000


_CONTROL = re.compile(r"[\x00-\x1f]")


@dataclass
class RowReader:
    """Reads, checks and converts the bundle's rows (in a worker thread, batch by batch)."""

    rows: Iterator[Any]
    by_key: Mapping[str, Field]  # bundle field id (as in the rows) -> the new field
    max_rows: int
    count: int = 0
    last_ref: int = -1
    problems: list[dict[str, Any]] = field(default_factory=list)
    problem_count: int = 0
    columns: dict[str, _Column] = field(init=False)

    def __post_init__(self) -> None:
        self.columns = {
            key: _Column(
                f.id,
                f'"{int(f.id)}":',
                spec(f.field_type),
                f"{f.field_type} field {f.field_label!r}",
            )
            for key, f in self.by_key.items()
        }

    def _problem(self, problem: dict[str, Any]) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(problem)

    def _ref(self, index: int, raw: Any) -> int | None:
        if raw is None:
            return self.last_ref + 1
        text = str(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""
        if not text.isdigit() or len(text) > 18:
            self._problem(
                {"row": index, "field": "_row_ref", "value": raw, "message": "is not a row ref"}
            )
            return None
        ref = int(text)
        if ref <= self.last_ref:
            self._problem(
                {
                    "row": index,
                    "field": "_row_ref",
                    "value": raw,
                    "message": f"must be greater than the previous row's ({self.last_ref})",
                }
            )
            return None
        return ref

    def _bad_value(self, index: int, key: str, value: Any, column: _Column, exc: Exception) -> None:
        shown = value[:200] if isinstance(value, str) else value
        if isinstance(shown, (dict, list)):
            shown = dumps(shown)[:200]
        self._problem(
            {"row": index, "field": key, "value": shown, "message": f"{exc} ({column.describe})"}
        )

    def next_batch(self) -> RowBatch | None:
        """The next rows' records and statistics changes; None at the end. After a problem
        the rest is still checked (to report every problem), not converted."""
        try:
            chunk = list(itertools.islice(self.rows, BATCH_ROWS))
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise _malformed(exc) from None
        if not chunk:
            return None
        batch = RowBatch()
        columns = self.columns
        changes = batch.changes
        for raw in chunk:
            index = self.count
            self.count += 1
            if self.count > self.max_rows:
                raise BadRequest(
                    f"The bundle has more than {self.max_rows:,} rows (MAX_UPLOAD_ROWS)."
                )
            if not isinstance(raw, dict):
                self._problem(
                    {
                        "row": index,
                        "field": "rows",
                        "message": "must be an object keyed by field id",
                    }
                )
                continue
            ref = self._ref(index, raw.pop("_row_ref", None))
            bad = ref is None
            parts: list[str] = []
            for key, value in raw.items():
                column = columns.get(key)
                if column is None:
                    self._problem(
                        {"row": index, "field": key, "message": "is not a field id of the bundle"}
                    )
                    bad = True
                    continue
                try:
                    stored, fragment = column.convert(value)
                except CellError as exc:
                    self._bad_value(index, key, value, column, exc)
                    bad = True
                    continue
                if stored is None or bad or self.problem_count:
                    continue
                parts.append(fragment)
                changes.setdefault(column.field_id, FieldChange()).added.append(stored)
                if (
                    isinstance(stored, str)
                    and not batch.control_chars
                    and _CONTROL.search(stored) is not None
                ):
                    batch.control_chars = True
            if ref is not None:
                self.last_ref = ref
            if not bad and not self.problem_count:
                batch.records.append((ref, "{" + ",".join(parts) + "}"))  # type: ignore[arg-type]
        return batch


async def import_bundle(
    session: AsyncSession,
    account: AuthenticatedAccount,
    source: IO[bytes],
    *,
    data_name: str | None,
    max_rows: int,
) -> DataItem:
    raw, rows_kind = await anyio.to_thread.run_sync(read_head, source)
    head = validate_head(raw, rows_kind)
    item = await DataItemRepository(session, account.id).add(
        data_name=data_name or head.item.data_name,
        data_description=head.item.data_description,
    )
    ordered = sorted(
        enumerate(head.fields),
        key=lambda p: (p[1].field_order if p[1].field_order is not None else 10**9, p[0]),
    )
    bundle_fields = [f for _, f in ordered]
    created = await fields_service.create_fields(
        session, item, [f.model_copy(update={"field_order": None}) for f in bundle_fields]
    )
    ids = {bf.id: f.id for bf, f in zip(bundle_fields, created, strict=True)}
    by_key = {str(bf.id): f for bf, f in zip(bundle_fields, created, strict=True)}
    by_id = {f.id: f for f in created}
    conn = await session.connection()
    repo = TransferRepository(conn)
    await partitions.create_partition(session, item.id, attach=False)

    source.seek(0)
    reader = RowReader(iter(ijson.items(source, "rows.item", use_float=False)), by_key, max_rows)
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
    await partitions.attach_partition(session, item.id)
    await repo.set_counters(
        item.id, next_row_ref=next_ref, row_count=reader.count, has_control_chars=control_chars
    )
    widgets = [_widget_spec(w) for w in head.widgets]
    await repo.add_widgets(item.id, remap_widgets(_ordered(widgets), ids))
    return item


def _position(order: int | None) -> int:
    return 10**9 if order is None else order


def _ordered(widgets: Sequence[WidgetSpec]) -> list[WidgetSpec]:
    """Widgets and each widget's series in their given order, renumbered 0, 1, …"""
    ranked = sorted(
        enumerate(widgets), key=lambda p: (_position(p[1].values["widget_order"]), p[0])
    )
    out = []
    for position, (_, w) in enumerate(ranked):
        series = sorted(enumerate(w.series), key=lambda p: (_position(p[1]["series_order"]), p[0]))
        out.append(
            WidgetSpec(
                {**w.values, "widget_order": position},
                [{**s, "series_order": i} for i, (_, s) in enumerate(series)],
            )
        )
    return out


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
