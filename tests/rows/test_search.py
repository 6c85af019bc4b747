"""Search: every cell's text as shown, any case (Unicode too), literal % and _, never across
cells or into JSON syntax; the same answers with and without the trigram index."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import create_engine
from app.rows import maintenance
from app.rows.maintenance import drop_search_index_before, ensure_search_index, search_index_name
from tests.conftest import Caller, make_settings
from tests.fixtures.sales import Sales
from tests.ingestion import files

pytestmark = pytest.mark.asyncio

ROWS: list[dict[str, Any]] = [
    {"region": "North", "revenue": "45200.50", "date": "2026-01-15", "closed": True},
    {"region": "south", "revenue": 100, "notes": "100% sure, under_score"},
    {"region": "ÉCOLE Привет", "notes": 'say "hi"\nthen leave'},
    {"region": "Straße", "revenue": "-0.5", "closed": False},
    {"region": "a\\b", "notes": "tab\there"},
    {"region": "100 percent", "notes": "100x"},
    {"region": "x\ny", "notes": "\u0001"},  # escapes in the JSON text: \n and \u0001
]

CASES: list[tuple[str, list[int]]] = [
    ("north", [0]),
    ("NORTH", [0]),
    ("45200.5", [0]),
    ("45200.50", []),  # as shown: 45200.5
    ("2026-01", [0]),
    ("true", [0]),
    ("false", [3]),
    ("école", [2]),
    ("привет", [2]),
    ("STRASSE", []),  # ILIKE folds case, it does not transliterate
    ("straße", [3]),
    ("100%", [1]),
    ("0% s", [1]),
    ("%", [1]),
    ("_", [1]),
    ("r_s", [1]),  # literally in "under_score"
    ("r%s", []),
    ("under_score", [1]),
    ('"hi"', [2]),
    ('"', [2]),
    ('hi"\nthen', [2]),
    ("hi\nthen", []),
    ("\\", [4]),
    ("a\\b", [4]),
    ("\t", [4]),
    ("tab\th", [4]),
    ("n", [0, 1, 2, 5]),  # not row 6, whose JSON text has "\n"
    ("u0001", []),
    ("\u0001", [6]),
    ("x\ny", [6]),
    (",", [1]),
    ("north, ", []),  # never across cells
    ('North", 45200', []),
    ("[", []),
    ("null", []),
    ("100", [1, 5]),
    ("-0.5", [3]),
    ("zzzz", []),
]


async def load(api: Caller, sales: Sales) -> None:
    rows = [sales.row(**r) for r in ROWS]
    r = await api.client.post(f"/data-items/{sales.id}/rows/bulk/", json={"rows": rows})
    assert r.status_code == 201, r.text


async def hits(api: Caller, sales: Sales, term: str, **params: Any) -> tuple[int, list[int]]:
    r = await api.client.get(f"/data-items/{sales.id}/rows/", params={"search": term, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    return body["total"], [int(row["_row_ref"]) for row in body["rows"]]


async def test_search_semantics_without_and_with_the_index(
    api: Caller, sales: Sales, app: FastAPI
) -> None:
    await load(api, sales)
    for term, expected in CASES:
        assert await hits(api, sales, term) == (len(expected), expected), term
    assert await ensure_search_index(app.state.engine, sales.id, min_rows=1)
    for term, expected in CASES:
        assert await hits(api, sales, term) == (len(expected), expected), f"indexed: {term!r}"


async def test_search_pages_and_total(api: Caller, sales: Sales) -> None:
    rows = [sales.row(region="match" if i % 3 == 0 else "other", revenue=i) for i in range(30)]
    await api.client.post(f"/data-items/{sales.id}/rows/bulk/", json={"rows": rows})
    total, refs = await hits(api, sales, "MATCH", offset=2, limit=3)
    assert total == 10 and refs == [6, 9, 12]
    total, refs = await hits(api, sales, "match", offset=10)
    assert total == 10 and refs == []
    total, refs = await hits(api, sales, "")  # an empty search is no search
    assert total == 30 and len(refs) == 30


async def test_search_is_bounded_and_safe(api: Caller, sales: Sales) -> None:
    await load(api, sales)
    r = await api.client.get(f"/data-items/{sales.id}/rows/", params={"search": "x" * 1001})
    assert r.status_code == 400 and "1000" in r.json()["error"]
    for payload in ("'; DROP TABLE rows; --", "' OR '1'='1", "\\'", "$1", "%' OR 1=1 --"):
        total, _ = await hits(api, sales, payload)
        assert total == 0
    assert (await api.client.get(f"/data-items/{sales.id}/rows/")).json()["total"] == len(ROWS)


async def test_escapes_stay_exact_when_a_control_character_arrives_later(
    api: Caller, sales: Sales
) -> None:
    ref = (
        await api.client.post(
            f"/data-items/{sales.id}/rows/", json={"values": sales.row(region="plain")}
        )
    ).json()["row_ref"]
    assert await hits(api, sales, "nthen") == (0, [])  # fast path: no control characters yet
    r = await api.client.patch(
        f"/data-items/{sales.id}/rows/{ref}/", json={"values": sales.row(notes="x\nthen")}
    )
    assert r.status_code == 200
    assert await hits(api, sales, "nthen") == (
        0,
        [],
    )  # the JSON text has "\\nthen"; the cell does not
    assert await hits(api, sales, "x\nthen") == (1, [int(ref)])


async def test_an_uploaded_control_character_turns_the_exact_search_on(api: Caller) -> None:
    async def search(item: int, term: str) -> int:
        r = await api.client.get(f"/data-items/{item}/rows/", params={"search": term})
        return int(r.json()["total"])

    plain = files.csv_bytes([["Notes"], ["x then"], ['say "hi" \\then']])
    tabbed = files.csv_bytes([["Notes"], ["x\tthen"], ['say "hi" \\then']])
    items = {}
    for name, data in (("plain", plain), ("tabbed", tabbed)):
        r = await api.client.post(
            "/data-items/create-from-file/",
            data={"data_name": name},
            files={"data_file": (f"{name}.csv", data, "text/csv")},
        )
        assert r.status_code == 201, r.text
        items[name] = r.json()["id"]
    # the JSON text of the tabbed cell is "x\\tthen": only the exact check finds no "tthen" in it
    assert await search(items["tabbed"], "tthen") == 0
    assert await search(items["tabbed"], "x\tthen") == 1
    assert await search(items["tabbed"], "\\then") == 1  # a real backslash is found either way
    assert await search(items["plain"], "\\then") == 1


@pytest.mark.parametrize(
    ("existing", "incoming", "drops"),
    [
        (0, 9_999, False),  # small loads keep the index
        (0, 10_000, True),
        (1_000_000, 49_999, False),  # under a twentieth of the item
        (1_000_000, 50_000, True),
        (1_100_000, 100_000, True),  # the benchmark's second append
        (10_000_000, 100_000, False),
    ],
)
async def test_which_appends_drop_the_search_index(
    existing: int, incoming: int, drops: bool
) -> None:
    assert drop_search_index_before(existing, incoming) is drops


async def test_a_big_append_rebuilds_the_index_and_finds_the_new_rows(
    api: Caller, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    header = ["Name", "Code"]
    first = files.csv_bytes([header, *([f"old {i}", f"A{i}"] for i in range(12_000))])
    r = await api.client.post(
        "/data-items/create-from-file/",
        data={"data_name": "big"},
        files={"data_file": ("big.csv", first, "text/csv")},
    )
    assert r.status_code == 201, r.text
    item = r.json()["id"]
    await app.state.row_maintenance.wait_idle()
    assert await index_valid(sessionmaker, item) is True
    assert await expression_stats(sessionmaker, item)  # so the planner can size a search

    more = files.csv_bytes([header, *([f"new {i}", f"B{i}"] for i in range(10_000))])
    r = await api.client.post(
        f"/data-items/{item}/append-from-file/",
        files={"data_file": ("more.csv", more, "text/csv")},
    )
    assert r.status_code == 200, r.text
    await app.state.row_maintenance.wait_idle()
    assert await index_valid(sessionmaker, item) is True
    r = await api.client.get(f"/data-items/{item}/rows/", params={"search": "new 9999"})
    assert r.json()["total"] == 1 and r.json()["rows"][0]["_row_ref"] == "21999"
    r = await api.client.get(f"/data-items/{item}/rows/", params={"search": "b1234"})
    assert r.json()["total"] == 1


async def index_valid(sessionmaker: async_sessionmaker[AsyncSession], item: int) -> bool | None:
    async with sessionmaker() as session:
        valid: bool | None = (
            await session.execute(
                text(
                    "SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
                    "WHERE c.relname = :name"
                ),
                {"name": search_index_name(item)},
            )
        ).scalar_one_or_none()
        return valid


async def expression_stats(sessionmaker: async_sessionmaker[AsyncSession], item: int) -> int:
    """Statistics ANALYZE gathered on the indexed expression (kept under the index's name)."""
    async with sessionmaker() as session:
        return int(
            (
                await session.execute(
                    text("SELECT count(*) FROM pg_stats WHERE tablename = :name"),
                    {"name": search_index_name(item)},
                )
            ).scalar_one()
        )


async def _big_item(api: Caller, app: FastAPI, rows: int = 12_000) -> int:
    data = files.csv_bytes([["Name", "Amount"], *([f"old {i}", str(i)] for i in range(rows))])
    r = await api.client.post(
        "/data-items/create-from-file/",
        data={"data_name": "big"},
        files={"data_file": ("big.csv", data, "text/csv")},
    )
    assert r.status_code == 201, r.text
    await app.state.row_maintenance.wait_idle()
    return int(r.json()["id"])


def _more(rows: int, last_amount: str = "1") -> bytes:
    body = [[f"new {i}", "2"] for i in range(rows - 1)] + [[f"new {rows - 1}", last_amount]]
    return files.csv_bytes([["Name", "Amount"], *body])


async def test_a_failed_big_append_gets_its_search_index_back(
    api: Caller, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    item = await _big_item(api, app)
    assert await index_valid(sessionmaker, item) is True
    # big enough to drop the index first (on a connection of its own, committed at once);
    # the last value is not a number / no header matches, so the append fails after the drop
    unmatched = files.csv_bytes([["Other"], *([str(i)] for i in range(10_000))])
    for data, error in ((_more(10_000, "lots"), "lots"), (unmatched, "No column")):
        r = await api.client.post(
            f"/data-items/{item}/append-from-file/",
            files={"data_file": ("more.csv", data, "text/csv")},
        )
        assert r.status_code == 400 and error in r.json()["error"]
        await app.state.row_maintenance.wait_idle()
        assert await index_valid(sessionmaker, item) is True
    r = await api.client.get(f"/data-items/{item}/rows/", params={"search": "old 11999"})
    assert r.json()["total"] == 1
    assert (await api.client.get(f"/data-items/{item}/rows/")).json()["total"] == 12_000


async def test_a_big_append_waits_for_readers_inside_its_transaction(
    api: Caller,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When readers hold the item past the drop's lock timeout, the index is dropped inside the
    append's own transaction (where PostgreSQL would see a deadlock), which waits for them."""
    monkeypatch.setattr(maintenance, "DROP_LOCK_TIMEOUT_MS", 50)
    item = await _big_item(api, app)
    async with sessionmaker() as reader:
        await reader.execute(text(f'SELECT count(*) FROM item_rows."p{item}"'))  # holds a lock
        append = asyncio.create_task(
            api.client.post(
                f"/data-items/{item}/append-from-file/",
                files={"data_file": ("more.csv", _more(10_000), "text/csv")},
            )
        )
        await asyncio.sleep(1.0)
        assert not append.done()  # waiting for the reader, not failed
        await reader.commit()
    r = await append
    assert r.status_code == 200, r.text
    assert r.json()["rows_appended"] == 10_000
    await app.state.row_maintenance.wait_idle()
    assert await index_valid(sessionmaker, item) is True
    r = await api.client.get(f"/data-items/{item}/rows/", params={"search": "new 9999"})
    assert r.json()["total"] == 1


async def test_the_start_up_sweep_rebuilds_a_missing_search_index(
    api: Caller, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    item = await _big_item(api, app)
    async with sessionmaker() as session:  # as if a restart came between drop and commit
        await session.execute(text(f'DROP INDEX item_rows."{search_index_name(item)}"'))
        await session.commit()
    assert item in await maintenance.items_missing_search_index(app.state.engine, 10_000)
    app.state.row_maintenance.sweep_soon()
    await app.state.row_maintenance.wait_idle()
    assert await index_valid(sessionmaker, item) is True
    assert item not in await maintenance.items_missing_search_index(app.state.engine, 10_000)


async def test_the_index_drop_gives_way_when_no_connection_is_free(
    api: Caller, app: FastAPI, database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """With its one pooled connection busy, the drop answers False at once (the append then
    drops the index in its own transaction); and it leaves no lock_timeout on the connection
    it returns to the pool."""
    item = await _big_item(api, app)
    engine = create_engine(database_url, make_settings(), pool_size=1, max_overflow=0)
    upkeep = maintenance.RowMaintenance(engine, search_index_min_rows=10_000)
    try:
        async with engine.connect():  # the only connection, busy
            started = asyncio.get_running_loop().time()
            assert await upkeep.drop_search_index_now(item) is False
            assert asyncio.get_running_loop().time() - started < 10
        assert await index_valid(sessionmaker, item) is True  # not dropped
        assert await upkeep.drop_search_index_now(item) is True
        assert await index_valid(sessionmaker, item) is None  # dropped, committed
        async with engine.connect() as conn:  # the same connection, back from the pool
            default = (await conn.execute(text("SHOW lock_timeout"))).scalar_one()
            assert default == "0"
    finally:
        await engine.dispose()
    app.state.row_maintenance.item_changed(item)
    await app.state.row_maintenance.wait_idle()
    assert await index_valid(sessionmaker, item) is True
