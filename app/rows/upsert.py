"""Upserts: rows that match an existing row on the key fields update that row's given cells;
the others are inserted. For `append-from-file` and `POST …/rows/bulk/` with `key_fields`.

The incoming rows are staged first, in a temporary table of the transaction (binary COPY, as a
load writes its rows), then PostgreSQL does the rest in a few set statements: every row has its
keys, no key twice in the request, at most one existing row per key (a hash join over the
item's rows), the counts, one UPDATE of the matched rows and one INSERT of the others. Any
problem is a 400 naming the rows and keys, and the caller's transaction rolls back: nothing is
written.

Matching compares stored JSON values: text exactly (case and spaces count), numbers by value
(`1.50` matches `1.5`), dates and booleans as stored.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import BadRequest
from app.rows.repository import RowRepository
from app.rows.upsert_repository import UpsertRepository

MAX_REPORTED = 20


@dataclass
class UpsertCounts:
    rows_inserted: int = 0
    rows_updated: int = 0
    cells_updated: int = 0  # cells of matched rows given a different value
    cells_created: int = 0  # cells of inserted rows, and cells of matched rows that were empty
    cells_removed: int = 0  # cells of matched rows emptied
    timings: str = ""  # where `finish` spent its time, for the log line


class _Laps:
    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.laps: list[str] = []

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.laps.append(f"{name} {now - self.last:.2f}")
        self.last = now


class UpsertLoad:
    """A load whose rows are upserted on `keys` (field id -> label). `write` stages rows (as
    RowLoad.write writes them); `finish` applies them. `emptied`: the field ids a staged row
    empties when it matches (an append: every loaded field; a bulk write: per row, the cells
    given as null, passed to `write`). Runs in the caller's transaction, which must hold the
    item's row lock."""

    def __init__(
        self,
        session: AsyncSession,
        item_id: int,
        keys: Mapping[int, str],
        *,
        required: Sequence[int],
        emptied: Sequence[int] = (),
    ) -> None:
        self.item_id = int(item_id)
        self.labels = list(keys.values())
        self.required = [str(r) for r in required]
        self.emptied = [str(e) for e in emptied]
        self._sql = UpsertRepository(session, item_id, [str(k) for k in keys])
        self._rows = RowRepository(session, item_id)
        self._staged = False

    async def _stage(self) -> None:
        if not self._staged:
            await self._sql.create_stage()
            self._staged = True

    async def allocate(self, count: int) -> int:
        """(The RowLoad interface) staged rows are numbered from 0; refs are given by finish."""
        await self._stage()
        return 0

    async def write(
        self, first: int, documents: Sequence[str], emptied: Sequence[Sequence[str]] | None = None
    ) -> None:
        """Stage rows `first`, `first + 1`, … (their order in the request or file)."""
        await self._stage()
        await self._sql.copy(
            (first + i, doc, None if emptied is None else list(emptied[i]))
            for i, doc in enumerate(documents)
        )

    async def mark_control_chars(self) -> None:
        await self._rows.mark_control_chars()

    async def finish(self, row_number: Callable[[int], Any] | None = None) -> UpsertCounts:
        """Check, then update the matched rows and insert the others. `row_number(ord)`: how a
        staged row is named in errors (default: its 0-based index, as a bulk write names rows)."""
        await self._stage()
        lap = _Laps()
        name = row_number or (lambda ord_: ord_)
        await self._check_keys(name)
        lap("keys")
        await self._sql.match()
        lap("match")
        several = await self._sql.matching_several(MAX_REPORTED)
        if several:
            raise BadRequest(
                f"{self._key_names()} must identify one row, but the key of row "
                f"{name(several[0][0])} matches {several[0][1]} existing rows. Nothing was "
                "written.",
                details=[
                    {"row": name(o), "matches": n, "message": "matches more than one row"}
                    for o, n in several
                ],
            )
        if self.required:
            bad = await self._sql.leaving_required_empty(self.required, self.emptied, MAX_REPORTED)
            if bad:
                raise BadRequest(
                    f"Row {name(bad[0])} would leave a required field empty. Nothing was written.",
                    details=[
                        {"row": name(o), "message": "leaves a required field empty"} for o in bad
                    ],
                )
        counts = UpsertCounts()
        (
            counts.rows_updated,
            counts.cells_updated,
            filled,
            counts.cells_removed,
        ) = await self._sql.update_matched(self.emptied)
        lap("update")
        counts.rows_inserted, inserted_cells = await self._sql.unmatched()
        counts.cells_created = filled + inserted_cells
        if counts.rows_inserted:
            await self._sql.insert_unmatched(await self._rows.allocate(counts.rows_inserted))
        lap("insert")
        counts.timings = ", ".join(lap.laps)
        return counts

    async def predict(
        self, documents: Sequence[str], row_number: Callable[[int], Any] | None = None
    ) -> tuple[int, int]:
        """(rows it would update, rows it would insert) for rows holding their keys, checked
        as `finish` checks them (a 400 for an empty key, a key twice, a key matching several
        rows); nothing but the temporary tables is written."""
        await self.allocate(len(documents))
        await self.write(0, documents)
        name = row_number or (lambda ord_: ord_)
        await self._check_keys(name)
        await self._sql.match()
        several = await self._sql.matching_several(MAX_REPORTED)
        if several:
            raise BadRequest(
                f"{self._key_names()} must identify one row, but the key of row "
                f"{name(several[0][0])} matches {several[0][1]} existing rows.",
                details=[
                    {"row": name(o), "matches": n, "message": "matches more than one row"}
                    for o, n in several
                ],
            )
        inserted, _ = await self._sql.unmatched()
        return len(documents) - inserted, inserted

    def _key_names(self, *, lower: bool = False) -> str:
        labels = ", ".join(repr(label) for label in self.labels)
        what = "the key field" if lower else "The key field"
        return what + ("s " if len(self.labels) > 1 else " ") + labels

    async def _check_keys(self, name: Callable[[int], Any]) -> None:
        """Every staged row has every key; no key twice."""
        missing = await self._sql.without_keys(MAX_REPORTED)
        if missing:
            raise BadRequest(
                f"Row {name(missing[0])} has no value for {self._key_names(lower=True)}: an "
                "upsert finds rows by their keys, so every row needs them. Nothing was written.",
                details=[{"row": name(o), "message": "has an empty key"} for o in missing],
            )
        repeated = await self._sql.repeated_keys(MAX_REPORTED)
        if repeated:
            rows, key = repeated[0]
            raise BadRequest(
                f"The key {_key_text(key)} appears in more than one row ("
                + ", ".join(str(name(o)) for o in rows[:10])
                + "); each key may appear once in an upsert. Nothing was written.",
                details=[
                    {
                        "rows": [name(o) for o in r[:10]],
                        "key": _key_text(k),
                        "message": "key repeated in the request",
                    }
                    for r, k in repeated
                ],
            )


def _key_text(key_json: str) -> str:
    values = json.loads(key_json)
    return ", ".join(json.dumps(v, ensure_ascii=False) for v in values)
