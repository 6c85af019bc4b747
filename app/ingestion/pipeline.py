"""The rows of an upload on their way into PostgreSQL: converted column by column (Polars, in a
worker thread: it releases the GIL) into one JSON document per row, chunk by chunk, each chunk
streamed with binary COPY while the next converts. Statistics are accumulated on the way; a
value that does not fit stops the writing but not the checking, so the error lists problems.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import anyio
import polars as pl

from app.core.errors import BadRequest, ErrorCode
from app.fieldtypes import kind_of
from app.fieldtypes.base import Accumulator
from app.ingestion.documents import build_documents, has_control_chars
from app.ingestion.inference import ColumnPlan, convert_column
from app.ingestion.readers import RawTable
from app.models import Field
from app.rows.loading import RowLoad, UpsertLoad

# Told (rows written, rows in the file) as a load goes on; import jobs report it to pollers.
Progress = Callable[[int, int], Awaitable[None]]
# Each field's statistics (field id -> `field_stats` columns).
FieldStats = dict[int, dict[str, Any]]

# Rows are converted and written in chunks of at most CHUNK_ROWS, and in at least
# PIPELINE_CHUNKS chunks when a file has MIN_CHUNK_ROWS * PIPELINE_CHUNKS rows or more, so that a
# 100k-row file also overlaps converting with COPY instead of doing one after the other.
CHUNK_ROWS = 100_000
MIN_CHUNK_ROWS = 20_000
PIPELINE_CHUNKS = 4
MAX_REPORTED_PROBLEMS = 20


class Phases:
    """Wall time of an upload's phases, for the log line an operator reads when an upload is
    slow: "in 2.31 s (read 0.42, plan 0.20, write 1.51, ...)"."""

    def __init__(self) -> None:
        self._start = self._last = time.perf_counter()
        self._laps: list[tuple[str, float]] = []

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self._laps.append((name, now - self._last))
        self._last = now

    def __str__(self) -> str:
        laps = ", ".join(f"{name} {seconds:.2f}" for name, seconds in self._laps)
        return f"in {time.perf_counter() - self._start:.2f} s ({laps})"


@dataclass
class Column:
    """A file column on its way into a field."""

    index: int  # position in RawTable.frame
    header: str  # as in the file
    target: Field
    plan: ColumnPlan
    new_field: bool = True  # False: an append into an existing field (statistics: increments)
    stats: Accumulator = field(init=False)
    required: bool = field(init=False)  # every row must give the field a value

    def __post_init__(self) -> None:
        self.stats = kind_of(self.target.field_type).accumulator(counts=self.new_field)
        self.required = bool(self.target.field_required)


@dataclass
class WriteResult:
    rows: int = 0
    cells: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    problem_count: int = 0
    control_chars: bool = False
    then: asyncio.Future[FieldStats] | None = None  # write_rows' `then`, running in a thread

    async def then_result(self) -> FieldStats:
        """What write_rows' `then` returned ({} when it was not run: no `then`, or problems)."""
        return {} if self.then is None else await self.then


def _convert_chunk(
    table: RawTable,
    columns: Sequence[Column],
    start: int,
    stop: int,
    result: WriteResult,
    *,
    build: bool = True,
) -> list[str] | None:
    """Documents for rows [start, stop), statistics accumulated; None if any value is bad (the
    problems are recorded instead). `build=False`: only the checking (a dry run): no
    statistics, no documents ([] when every value fits)."""
    frame = table.frame.slice(start, stop - start)
    fragments: list[tuple[int, pl.Series]] = []
    bad_rows = False
    for column in columns:
        converted = convert_column(frame.get_column(frame.columns[column.index]), column.plan)
        bad = converted.bad
        if bad.any():
            bad_rows = True
            idx = bad.arg_true()
            result.problem_count += idx.len()
            room = MAX_REPORTED_PROBLEMS - len(result.problems)
            if room > 0:
                raw = frame.get_column(frame.columns[column.index]).gather(idx.head(room))
                numbers = table.row_numbers.slice(start, stop - start).gather(idx.head(room))
                for number, value in zip(numbers.to_list(), raw.to_list(), strict=True):
                    result.problems.append(
                        {
                            "row": number,
                            "column": column.header,
                            "value": value if not isinstance(value, str) else value[:200],
                            "message": f"is not a valid {column.target.field_type}",
                        }
                    )
            continue
        if column.required:
            empty = converted.fragments.is_null()
            if empty.any():
                bad_rows = True
                _required_problems(table, column, start, stop, empty, result)
                continue
        if not bad_rows and build:
            column.stats.add(converted.display)
            if kind_of(column.plan.field_type).textual and not result.control_chars:
                result.control_chars = has_control_chars(converted.fragments, converted.display)
            fragments.append((column.target.id, converted.fragments))
            result.cells += int(converted.fragments.is_not_null().sum())
    if bad_rows:
        return None
    if not build:
        return []
    documents = (
        build_documents(fragments) if fragments else pl.repeat("{}", stop - start, eager=True)
    )
    values: list[str] = documents.to_list()
    return values


def _required_problems(
    table: RawTable, column: Column, start: int, stop: int, empty: pl.Series, result: WriteResult
) -> None:
    """The rows of [start, stop) that would leave the column's required field empty."""
    idx = empty.arg_true()
    result.problem_count += idx.len()
    room = MAX_REPORTED_PROBLEMS - len(result.problems)
    if room <= 0:
        return
    numbers = table.row_numbers.slice(start, stop - start).gather(idx.head(room))
    for number in numbers.to_list():
        result.problems.append(
            {
                "row": number,
                "column": column.header,
                "field": column.target.field_label,
                "message": f"is empty, and field {column.target.field_label!r} is required",
            }
        )


def chunk_bounds(total: int) -> list[tuple[int, int]]:
    """(start, stop) of each chunk of a `total`-row load. The first and the last chunk are half
    size: the first converts while nothing streams yet, the last streams while nothing converts.
    100,000 rows: 12,500, then 25,000 three times, then 12,500."""
    size = min(CHUNK_ROWS, max(MIN_CHUNK_ROWS, -(-total // PIPELINE_CHUNKS)))
    starts = [0, *range(size // 2, total, size)] if total >= 2 * size else [*range(0, total, size)]
    if len(starts) > 1 and total - starts[-1] < size // 4:
        starts.pop()  # no tiny last chunk: the one before takes its rows
    return list(zip(starts, [*starts[1:], total], strict=False))  # no rows: no chunks


async def write_rows(
    load: RowLoad | UpsertLoad,
    table: RawTable,
    columns: Sequence[Column],
    progress: Progress | None = None,
    *,
    meanwhile: Callable[[], Awaitable[Any]] | None = None,
    then: Callable[[], FieldStats] | None = None,
) -> WriteResult:
    """Convert and COPY every row, chunk by chunk, the next chunk converting while the current
    one streams. Stops writing at the first bad value but keeps checking, to report problems.
    `meanwhile`: other database work of the upload, done while the first chunk converts, when
    the connection would otherwise wait. `then`: work on what conversion accumulated (the
    statistics), started in a thread as soon as the last chunk is converted, while it streams
    (`WriteResult.then_result`); not run when a value did not fit."""
    total = table.frame.height
    result = WriteResult()
    first_ref = await load.allocate(total)
    bounds = chunk_bounds(total)

    def convert(bound: tuple[int, int]) -> list[str] | None:
        return _convert_chunk(table, columns, bound[0], bound[1], result)

    def start_then() -> None:
        if then is not None and not result.problems:
            result.then = asyncio.ensure_future(anyio.to_thread.run_sync(then))

    pending = (
        asyncio.ensure_future(anyio.to_thread.run_sync(convert, bounds[0])) if bounds else None
    )
    try:
        if meanwhile is not None:
            await meanwhile()
        for i, (start, _stop) in enumerate(bounds):
            assert pending is not None
            documents = await pending
            pending = (
                asyncio.ensure_future(anyio.to_thread.run_sync(convert, bounds[i + 1]))
                if i + 1 < len(bounds)
                else None
            )
            if pending is None:
                start_then()
            if documents is not None and not result.problems:
                await load.write(first_ref + start, documents)
                result.rows += len(documents)
                if progress is not None:
                    await progress(result.rows, total)
        if not bounds:
            start_then()
    except BaseException:
        threads = {f for f in (pending, result.then) if f is not None}
        if threads:  # let the threads finish before the table is released
            await asyncio.wait(threads)
        raise
    return result


def check_rows(table: RawTable, columns: Sequence[Column]) -> WriteResult:
    """Every value of `columns` read as a load would read it, nothing written (a dry run):
    `problems` (the first MAX_REPORTED_PROBLEMS) and `problem_count`. Blocking: run it in a
    thread."""
    result = WriteResult()
    for start, stop in chunk_bounds(table.frame.height):
        if _convert_chunk(table, columns, start, stop, result, build=False) is not None:
            result.rows += stop - start
    return result


def key_documents(table: RawTable, columns: Sequence[Column]) -> list[str]:
    """Each row's document of these columns only (an upsert's keys, for a dry run). Blocking."""
    result = WriteResult()
    documents: list[str] = []
    for start, stop in chunk_bounds(table.frame.height):
        documents.extend(_convert_chunk(table, columns, start, stop, result) or [])
    return documents


def sample_rows(table: RawTable, columns: Sequence[Column], count: int) -> list[dict[str, Any]]:
    """The first `count` rows as the API would return them, keyed by field label (a dry run
    has no field ids): each value read as its column's plan reads it, exactly (decimals as
    exact numbers), a value that does not fit as the file's text. Blocking."""
    frame = table.frame.head(count)
    rows: list[dict[str, Any]] = [{} for _ in range(frame.height)]
    for column in columns:
        raw = frame.get_column(frame.columns[column.index])
        converted = convert_column(raw, column.plan)
        for row, fragment, bad, text in zip(
            rows,
            converted.fragments.to_list(),
            converted.bad.to_list(),
            raw.cast(pl.String).to_list(),
            strict=True,
        ):
            if bad:
                row[column.target.field_label] = text
            elif fragment is not None:
                row[column.target.field_label] = json.loads(fragment, parse_float=Decimal)
    return rows


def problems_error(result: WriteResult, what: str) -> BadRequest:
    count = result.problem_count
    first = result.problems[0]
    value = f"{first['value']!r} " if "value" in first else ""
    message = f"{what}: row {first['row']}, column {first['column']!r}: {value}{first['message']}"
    if count > 1:
        message += f" (and {count - 1:,} more problem{'s' if count > 2 else ''}"
        if count > MAX_REPORTED_PROBLEMS:
            message += f"; the first {MAX_REPORTED_PROBLEMS} are listed"
        message += ")"
    return BadRequest(
        message + ". Nothing was written.", code=ErrorCode.INVALID_FILE, details=result.problems
    )
