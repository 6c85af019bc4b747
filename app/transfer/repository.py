"""SQL of exports, copies and bundles.

`SnapshotReader` reads one item on a connection of its own (the streams outlive the request's
session), inside one REPEATABLE READ transaction, so the fields, widgets and every row come from
the same moment. Every statement is keyed by the item, which is checked against the account
first.

`TransferRepository` writes a copy or an imported bundle in the request's transaction. The copy's
statements read the source item and write the new one, each keyed by those two ids; the only
statement that touches rows of two items is the one INSERT … SELECT that copies the rows.

Both stay in this one module (a little over 400 lines) because they share the item, field and
widget records and the re-keying expression, and SQL lives in `repository.py` files only
(tests/test_layers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import typing
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
from sqlalchemy import ColumnElement, Select, Table, Text, cast, func, insert, literal, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fieldtypes import kind_of
from app.fieldtypes.sql import Cell
from app.models import DataItem, Field, FieldStats, Widget, WidgetSeries
from app.rows import partitions
from app.rows.filters import RowQuery
from app.rows.query import ROWS, conditions, order_by

BATCH_ROWS = 5_000


@dataclass(frozen=True)
class ItemInfo:
    id: int
    data_name: str
    data_description: str
    row_count: int
    next_row_ref: int
    has_control_chars: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class FieldInfo:
    id: int
    field_label: str
    field_type: str
    field_order: int
    field_required: bool
    field_instructions: str


WIDGET_COLUMNS = (
    "title",
    "description",
    "chart_type",
    "widget_order",
    "widget_size",
    "label_field_id",
    "date_grouping",
    "sort_direction",
    "row_limit",
    "filter_config",
    "chart_options",
)
SERIES_COLUMNS = ("value_field_id", "aggregation", "label", "series_order", "color")


@dataclass
class WidgetSpec:
    """A widget with its series as stored (column names of `widgets` / `widget_series`)."""

    values: dict[str, Any]
    series: list[dict[str, Any]]


# ----------------------------------------------------------------------- reading a snapshot


class SnapshotReader:
    def __init__(self, conn: AsyncConnection, account_id: int, item_id: int) -> None:
        self.conn = conn
        self.account_id = int(account_id)
        self.item_id = int(item_id)

    async def item(self) -> ItemInfo | None:
        stmt = select(
            DataItem.id,
            DataItem.data_name,
            DataItem.data_description,
            DataItem.row_count,
            DataItem.next_row_ref,
            DataItem.has_control_chars,
            DataItem.created_at,
            DataItem.updated_at,
        ).where(DataItem.id == self.item_id, DataItem.account_id == self.account_id)
        row = (await self.conn.execute(stmt)).one_or_none()
        return None if row is None else ItemInfo(*row)

    async def fields(self) -> list[FieldInfo]:
        stmt = (
            select(
                Field.id,
                Field.field_label,
                Field.field_type,
                Field.field_order,
                Field.field_required,
                Field.field_instructions,
            )
            .where(Field.data_item_id == self.item_id)
            .order_by(Field.field_order, Field.id)
        )
        return [FieldInfo(*row) for row in await self.conn.execute(stmt)]

    async def widgets(self) -> list[WidgetSpec]:
        return await read_widgets(self.conn, self.item_id)

    async def count(self, query: RowQuery | None) -> int:
        stmt = select(func.count()).select_from(ROWS).where(*conditions(self.item_id, query))
        return int((await self.conn.execute(stmt)).scalar_one())

    def _rows(self, columns: Sequence[Any], query: RowQuery | None) -> Select[Any]:
        """The selected rows' `columns`, in the query's order."""
        return select(*columns).where(*conditions(self.item_id, query)).order_by(*order_by(query))

    def documents(self, *, size: int = BATCH_ROWS) -> AsyncGenerator[Sequence[Any], None]:
        """(row_ref, stored document as JSON text) of every row in row order, `size` at a time."""
        stmt = self._rows([ROWS.c.row_ref, cast(ROWS.c["values"], Text)], None)
        return self._batches(stmt, size)

    def cells(
        self, fields: Sequence[FieldInfo], query: RowQuery | None, *, size: int = BATCH_ROWS
    ) -> AsyncGenerator[Sequence[Any], None]:
        """(row_ref, each field's stored value as text or None) of the selected rows."""
        columns = [ROWS.c.row_ref, *(Cell(f.id).text for f in fields)]
        return self._batches(self._rows(columns, query), size)

    async def _batches(
        self, stmt: Select[Any], size: int
    ) -> AsyncGenerator[Sequence[Sequence[Any]], None]:
        """A statement's rows, `size` at a time, through a server-side cursor."""
        result = await self.conn.stream(stmt, execution_options={"yield_per": size})
        try:
            async for batch in result.partitions(size):
                yield batch
        finally:
            with anyio.CancelScope(shield=True):
                await result.close()

    def copy_csv(
        self, fields: Sequence[FieldInfo], query: RowQuery | None, *, escape_formulas: bool
    ) -> AsyncGenerator[bytes, None]:
        """PostgreSQL's own CSV of the selected rows' cells (each as its type exports it):
        `COPY (SELECT …) TO STDOUT`, chunk by chunk as the server sends it."""
        columns = [
            kind_of(f.field_type).export_text(Cell(f.id), escape_formulas=escape_formulas)
            for f in fields
        ]
        return self._copy_out(self._rows(columns, query), format="csv")

    def copy_json(
        self, fields: Sequence[FieldInfo], query: RowQuery | None
    ) -> AsyncGenerator[bytes, None]:
        """Each selected row as its JSON object text (`json_object_text`), one per line (LF after
        each), chunk by chunk from `COPY … TO STDOUT`. The text comes out untouched: CSV with a
        delimiter and a quote character that JSON text never holds raw (control characters are
        always escaped in it, and it holds no CR or LF either), so no value is ever quoted.
        Building the objects is most of the statement's work: parallel workers may share it."""
        stmt = self._rows([json_object_text(fields)], query)
        return self._copy_out(
            stmt, format="csv", delimiter="\x01", quote="\x02", parallel_projection=True
        )

    async def _copy_out(
        self, stmt: Select[Any], *, parallel_projection: bool = False, **options: str
    ) -> AsyncGenerator[bytes, None]:
        """`COPY (stmt) TO STDOUT (options)`, chunk by chunk as the server sends it. A bounded
        queue carries the chunks: while the consumer is slow, the driver stops reading and the
        server waits. `parallel_projection`: the selected expressions cost far more than the
        planner thinks (each row's JSON text built from its document), so parallel plans are
        made free for the rest of this read-only snapshot transaction, letting workers build
        them while the leader sends."""
        if parallel_projection:
            await self.conn.execute(
                text(
                    "SELECT set_config('parallel_setup_cost', '0', true), "
                    "set_config('parallel_tuple_cost', '0', true)"
                )
            )
        compiled = stmt.compile(
            dialect=self.conn.dialect, compile_kwargs={"render_postcompile": True}
        )
        args = [compiled.params[name] for name in compiled.positiontup or ()]
        raw = await self.conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=8)

        async def sink(chunk: bytes) -> None:
            await queue.put(bytes(chunk))

        async def run() -> None:
            try:
                await driver.copy_from_query(compiled.string, *args, output=sink, **options)
            except asyncio.CancelledError:
                raise  # by the consumer, which stopped reading: nobody waits for the end mark
            except BaseException:
                await queue.put(None)  # the consumer reads on, then meets the error
                raise
            await queue.put(None)

        task = asyncio.ensure_future(run())
        try:
            while (chunk := await queue.get()) is not None:
                yield chunk
            await task  # its error, if it failed
        finally:
            if not task.done():
                task.cancel()
                with anyio.move_on_after(5, shield=True), contextlib.suppress(BaseException):
                    await task  # the caller invalidates the connection after this either way

    async def excel_text_fields(
        self, fields: Sequence[FieldInfo], query: RowQuery | None
    ) -> set[int]:
        """Fields with a selected value an Excel cell of their type cannot give back exactly
        (their kind says which; such a column is written as text, whole)."""
        checks = {f.id: kind_of(f.field_type).excel_text_needed(Cell(f.id)) for f in fields}
        found = [(fid, check) for fid, check in checks.items() if check is not None]
        if not found:
            return set()
        stmt = select(*(c for _, c in found)).where(*conditions(self.item_id, query))
        row = (await self.conn.execute(stmt)).one()
        return {fid for (fid, _), needed in zip(found, row, strict=True) if needed}


def json_object_text(fields: Sequence[FieldInfo]) -> ColumnElement[str]:
    """A row as the text of a JSON object keyed by label, in field order, null where empty:
    `{"Region":"North","Revenue":45200.5}`. The labels' JSON is written here (bound), the values
    are PostgreSQL's text of the stored JSON (numbers exactly as stored). One `concat` per row."""
    if not fields:
        return literal("{}", Text)
    parts: list[ColumnElement[str]] = []
    for i, f in enumerate(fields):
        key = ("{" if i == 0 else ",") + json.dumps(f.field_label, ensure_ascii=False) + ":"
        value = func.coalesce(cast(Cell(f.id).json, Text), literal("null", Text))
        parts.extend([literal(key, Text), value])
    return func.concat(*parts, literal("}", Text), type_=Text)


async def read_widgets(conn: AsyncConnection, item_id: int) -> list[WidgetSpec]:
    """An item's widgets in widget order, each with its series in series order."""
    widget_table = Widget.__table__
    series_table = WidgetSeries.__table__
    rows = (
        await conn.execute(
            select(widget_table.c.id, *(widget_table.c[c] for c in WIDGET_COLUMNS))
            .where(widget_table.c.data_item_id == item_id)
            .order_by(widget_table.c.widget_order, widget_table.c.id)
        )
    ).all()
    specs: dict[int, WidgetSpec] = {
        int(r[0]): WidgetSpec(dict(zip(WIDGET_COLUMNS, r[1:], strict=True)), []) for r in rows
    }
    if specs:
        series = await conn.execute(
            select(series_table.c.widget_id, *(series_table.c[c] for c in SERIES_COLUMNS))
            .join(widget_table, widget_table.c.id == series_table.c.widget_id)
            .where(widget_table.c.data_item_id == item_id)
            .order_by(series_table.c.widget_id, series_table.c.series_order, series_table.c.id)
        )
        for r in series:
            specs[int(r[0])].series.append(dict(zip(SERIES_COLUMNS, r[1:], strict=True)))
    return list(specs.values())


# ------------------------------------------------------------------------------- writing


def rekey_expression(pairs: Sequence[tuple[int, int]], *, absent_on_null: bool = False) -> str:
    """SQL turning a row document keyed by old field ids into one keyed by new ids (absent keys
    stay absent). Ids are integers, safe to write into the statement. `absent_on_null`
    (PostgreSQL 16 and later): SQL/JSON's `JSON_OBJECT(… ABSENT ON NULL RETURNING jsonb)`
    leaves absent keys out while it builds the object, instead of building every key and
    stripping the nulls afterwards (about 30 % less work per row, the same documents: a stored
    JSON null is left out as the strip leaves it out)."""
    if not pairs:
        return "'{}'::jsonb"
    groups = [pairs[i : i + 50] for i in range(0, len(pairs), 50)]  # 100 arguments at most
    if absent_on_null:
        objects = [
            "JSON_OBJECT("
            + ", ".join(
                f"'{int(new)}' : nullif(\"values\"->'{int(old)}', 'null')" for old, new in group
            )
            + " ABSENT ON NULL RETURNING jsonb)"
            for group in groups
        ]
        return " || ".join(objects)
    objects = [
        "jsonb_build_object("
        + ", ".join(f"'{int(new)}', \"values\"->'{int(old)}'" for old, new in group)
        + ")"
        for group in groups
    ]
    return f"jsonb_strip_nulls({' || '.join(objects)})"


class TransferRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def lock_source(self, account_id: int, item_id: int) -> bool:
        """Hold off writers of the source item (they update its row first) until this
        transaction ends, so fields, rows, statistics and widgets are copied as of one moment."""
        result = await self.conn.execute(
            text("SELECT 1 FROM data_items WHERE id = :item AND account_id = :account FOR SHARE"),
            {"item": int(item_id), "account": int(account_id)},
        )
        return result.scalar_one_or_none() is not None

    async def copy_rows(self, source: int, target: int, pairs: Sequence[tuple[int, int]]) -> int:
        """Every row of `source` into the (detached) partition of `target`: same row refs,
        values re-keyed to the new field ids, in one statement."""
        version = await self.conn.execute(text("SELECT current_setting('server_version_num')"))
        absent_on_null = int(version.scalar_one()) >= 160000
        result = await self.conn.execute(
            text(
                f'INSERT INTO {partitions.partition_table(target)} (data_item_id, row_ref, "values") '
                f"SELECT {int(target)}, row_ref, "
                f"{rekey_expression(pairs, absent_on_null=absent_on_null)} "
                "FROM rows WHERE data_item_id = :source"
            ),
            {"source": int(source)},
        )
        return int(result.rowcount)

    async def copy_stats(self, source: int, target: int, pairs: Sequence[tuple[int, int]]) -> None:
        """The source fields' statistics onto the new fields (stale ones stay stale)."""
        if not pairs:
            return
        skip = {"field_id", "data_item_id", "generation"}
        columns = [c.name for c in FieldStats.__table__.columns if c.name not in skip]
        assignments = ", ".join(f"{c} = s.{c}" for c in columns)
        await self.conn.execute(
            text(
                f"""
                UPDATE field_stats t SET {assignments}, generation = t.generation + 1
                FROM field_stats s
                JOIN unnest(CAST(:old AS bigint[]), CAST(:new AS bigint[])) AS m(old_id, new_id)
                  ON s.field_id = m.old_id
                WHERE s.data_item_id = :source AND t.data_item_id = :target
                  AND t.field_id = m.new_id
                """
            ),
            {
                "source": int(source),
                "target": int(target),
                "old": [old for old, _ in pairs],
                "new": [new for _, new in pairs],
            },
        )

    async def set_counters(
        self, item_id: int, *, next_row_ref: int, row_count: int, has_control_chars: bool
    ) -> None:
        await self.conn.execute(
            text(
                "UPDATE data_items SET next_row_ref = :next, row_count = :rows, "
                "has_control_chars = :ctl, updated_at = now() WHERE id = :item"
            ),
            {
                "item": int(item_id),
                "next": next_row_ref,
                "rows": row_count,
                "ctl": has_control_chars,
            },
        )

    async def add_widgets(self, item_id: int, widgets: Sequence[WidgetSpec]) -> None:
        widget_table = typing.cast(Table, Widget.__table__)
        series_table = typing.cast(Table, WidgetSeries.__table__)
        for spec in widgets:
            widget_id = (
                await self.conn.execute(
                    insert(widget_table)
                    .values(data_item_id=int(item_id), **spec.values)
                    .returning(widget_table.c.id)
                )
            ).scalar_one()
            if spec.series:
                await self.conn.execute(
                    insert(series_table), [{"widget_id": widget_id, **s} for s in spec.series]
                )

    async def copy_reference_files(self, source: int, target: int) -> None:
        """The source's files, bytes included (chunk by chunk inside the server)."""
        files = await self.conn.execute(
            text("SELECT id FROM reference_files WHERE data_item_id = :source ORDER BY id"),
            {"source": int(source)},
        )
        for (old_id,) in files.all():
            new_id = (
                await self.conn.execute(
                    text(
                        """
                        INSERT INTO reference_files
                            (data_item_id, filename, content_type, size_bytes, sha256, created_at)
                        SELECT :target, filename, content_type, size_bytes, sha256, created_at
                        FROM reference_files WHERE id = :old AND data_item_id = :source
                        RETURNING id
                        """
                    ),
                    {"target": int(target), "old": old_id, "source": int(source)},
                )
            ).scalar_one()
            await self.conn.execute(
                text(
                    "INSERT INTO reference_file_chunks (file_id, seq, data) "
                    "SELECT :new, seq, data FROM reference_file_chunks WHERE file_id = :old"
                ),
                {"new": new_id, "old": old_id},
            )

    async def write_rows(self, item_id: int, records: Sequence[tuple[int, str]]) -> None:
        """(row_ref, document) pairs into the item's partition with binary COPY."""
        raw = await self.conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        item = int(item_id)
        await driver.copy_records_to_table(
            f"p{item}",
            schema_name=partitions.SCHEMA,
            columns=["data_item_id", "row_ref", "values"],
            records=[(item, ref, doc) for ref, doc in records],
        )
