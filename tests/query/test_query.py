"""POST …/query/: exact aggregates on data whose answers are known (sums of tenths, medians of
even and odd counts, distinct counts), date buckets, filter + sort + limit, CSV, the same
answers as widget data, tenancy, and a 400 naming every bad input."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.conftest import Caller
from tests.fixtures.sales import Sales
from tests.helpers import assert_error, create_item
from tests.widgets.helpers import add_rows, exact, fid, widget_data

pytestmark = pytest.mark.asyncio

D = Decimal

ROWS: tuple[dict[str, Any], ...] = (
    {"region": "North", "revenue": "0.1", "date": "2026-01-15", "notes": "a"},
    {"region": "North", "revenue": "0.2", "date": "2026-01-20", "notes": "a"},
    {"region": "North", "revenue": "0.3", "date": "2026-02-01", "notes": "b"},
    {"region": "North", "revenue": "0.4", "date": "2026-02-28"},
    {"region": "North", "closed": True},  # no revenue, no date
    {"region": "South", "revenue": 10, "date": "2026-02-10", "notes": "a"},
    {"region": "South", "revenue": 20, "date": "2026-03-05", "notes": "a"},
    {"region": "South", "revenue": 35, "date": "2026-03-31T23:59:59", "notes": "a"},
    {"revenue": 5, "date": "2026-03-09"},  # no region
)


async def query(api: Caller, item_id: int, **body: Any) -> dict[str, Any]:
    r = await api.client.post(f"/data-items/{item_id}/query/", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    answer: dict[str, Any] = exact(r)
    return answer


@pytest_asyncio.fixture
async def loaded(api: Caller, sales: Sales) -> Sales:
    await add_rows(api, sales, *ROWS)
    return sales


def ids(sales: Sales) -> dict[str, int]:
    return {label: fid(sales, label) for label in sales.f}


class TestAggregates:
    async def test_each_op_by_region_is_exact(self, api: Caller, loaded: Sales) -> None:
        f = ids(loaded)
        answer = await query(
            api,
            loaded.id,
            group_by=[f["Region"]],
            aggregations=[
                {"field": f["Revenue"], "op": "sum"},
                {"field": f["Revenue"], "op": "avg"},
                {"field": f["Revenue"], "op": "median"},
                {"field": f["Revenue"], "op": "min"},
                {"field": f["Revenue"], "op": "max"},
                {"field": f["Revenue"], "op": "count"},
                {"op": "count"},
                {"field": f["Notes"], "op": "count_distinct"},
                {"field": f["Close Date"], "op": "max"},
            ],
        )
        assert answer["columns"] == [
            {"name": "Region", "field_id": f["Region"], "type": "char"},
            {"name": "Sum of Revenue", "field_id": f["Revenue"], "type": "decimal"},
            {"name": "Average of Revenue", "field_id": f["Revenue"], "type": "decimal"},
            {"name": "Median of Revenue", "field_id": f["Revenue"], "type": "decimal"},
            {"name": "Min of Revenue", "field_id": f["Revenue"], "type": "decimal"},
            {"name": "Max of Revenue", "field_id": f["Revenue"], "type": "decimal"},
            {"name": "Count of Revenue", "field_id": f["Revenue"], "type": "integer"},
            {"name": "Count", "field_id": None, "type": "integer"},
            {"name": "Distinct count of Notes", "field_id": f["Notes"], "type": "integer"},
            {"name": "Max of Close Date", "field_id": f["Close Date"], "type": "date"},
        ]
        assert answer["rows"] == [
            # even count: the mean of the two middle values; avg rounded to 2 places
            ["North", D("1.0"), D("0.25"), D("0.25"), D("0.1"), D("0.4"), 4, 5, 2, "2026-02-28"],
            # odd count: the middle value
            ["South", 65, D("21.67"), 20, 10, 35, 3, 3, 1, "2026-03-31T23:59:59"],
            ["(empty)", 5, D("5.00"), 5, 5, 5, 1, 1, 0, "2026-03-09"],
        ]
        assert answer["truncated"] is False

    async def test_tenths_add_up_exactly(self, api: Caller, loaded: Sales) -> None:
        f = ids(loaded)
        r = await api.client.post(
            f"/data-items/{loaded.id}/query/",
            json={
                "aggregations": [{"field": f["Revenue"], "op": "sum"}],
                "filter": {"conditions": [{"field": f["Revenue"], "op": "lte", "value": "0.2"}]},
            },
        )
        assert r.status_code == 200, r.text
        assert r.content == (
            b'{"columns":[{"name":"Sum of Revenue","field_id":%d,"type":"decimal"}],'
            b'"rows":[[0.3]],"truncated":false}' % f["Revenue"]
        )

    async def test_without_group_by_one_row_over_every_row(
        self, api: Caller, loaded: Sales
    ) -> None:
        f = ids(loaded)
        answer = await query(
            api,
            loaded.id,
            aggregations=[
                {"field": f["Revenue"], "op": "median"},  # 8 values: (0.4 + 5) / 2
                {"field": f["Region"], "op": "distinct_count"},
                {"op": "count"},
            ],
        )
        assert answer["rows"] == [[D("2.7"), 2, 9]]

    async def test_no_rows_matching(self, api: Caller, loaded: Sales) -> None:
        f = ids(loaded)
        no_row = {"conditions": [{"field": f["Region"], "op": "eq", "value": "Nowhere"}]}
        revenue = {"field": f["Revenue"], "op": "sum"}
        counted = await query(
            api, loaded.id, aggregations=[revenue, {"op": "count"}], filter=no_row
        )
        assert counted["rows"] == [[None, 0]]
        grouped = await query(
            api, loaded.id, group_by=[f["Region"]], aggregations=[revenue], filter=no_row
        )
        assert grouped["rows"] == []
        assert grouped["truncated"] is False

    async def test_group_by_alone_lists_the_groups(self, api: Caller, loaded: Sales) -> None:
        f = ids(loaded)
        answer = await query(api, loaded.id, group_by=[f["Closed"], f["Region"]])
        assert answer["rows"] == [
            ["true", "North"],
            ["(empty)", "North"],
            ["(empty)", "South"],
            ["(empty)", "(empty)"],
        ]


class TestDateGrouping:
    async def test_monthly_sums(self, api: Caller, loaded: Sales) -> None:
        f = ids(loaded)
        answer = await query(
            api,
            loaded.id,
            group_by=[f["Close Date"]],
            date_grouping="month",
            aggregations=[{"field": f["Revenue"], "op": "sum"}, {"op": "count"}],
        )
        assert answer["columns"][0] == {
            "name": "Close Date (month)",
            "field_id": f["Close Date"],
            "type": "date",
        }
        assert answer["rows"] == [
            ["2026-01", D("0.3"), 2],
            ["2026-02", D("10.7"), 3],
            ["2026-03", 60, 3],
            ["(empty)", None, 1],
        ]

    async def test_two_keys_with_a_quarter(self, api: Caller, loaded: Sales) -> None:
        f = ids(loaded)
        answer = await query(
            api,
            loaded.id,
            group_by=[f["Region"], f["Close Date"]],
            date_grouping="quarter",
            aggregations=[{"field": f["Revenue"], "op": "sum"}],
        )
        assert [c["name"] for c in answer["columns"]] == [
            "Region",
            "Close Date (quarter)",
            "Sum of Revenue",
        ]
        assert answer["rows"] == [
            ["North", "2026-Q1", D("1.0")],
            ["North", "(empty)", None],
            ["South", "2026-Q1", 65],
            ["(empty)", "2026-Q1", 5],
        ]


class TestSortAndLimit:
    async def test_filter_sort_and_limit(self, api: Caller, loaded: Sales) -> None:
        f = ids(loaded)
        body = {
            "group_by": [f["Close Date"]],
            "date_grouping": "day",
            "aggregations": [{"field": f["Revenue"], "op": "sum"}],
            "filter": {"conditions": [{"field": f["Revenue"], "op": "gte", "value": "0.3"}]},
            "sort": [{"column": 1, "desc": True}],
            "limit": 3,
        }
        answer = await query(api, loaded.id, **body)
        assert answer["rows"] == [["2026-03-31", 35], ["2026-03-05", 20], ["2026-02-10", 10]]
        assert answer["truncated"] is True
        everything = await query(api, loaded.id, **{**body, "limit": 10})
        assert len(everything["rows"]) == 6
        assert everything["truncated"] is False

    async def test_sort_by_name_then_by_the_groups(self, api: Caller, loaded: Sales) -> None:
        f = ids(loaded)
        answer = await query(
            api,
            loaded.id,
            group_by=[f["Notes"]],
            aggregations=[{"op": "count"}],
            sort=[{"column": "Count"}],
        )
        # counts ascending, ties by the group ("(empty)" last)
        assert answer["rows"] == [["b", 1], ["(empty)", 3], ["a", 5]]

    async def test_a_group_column_descending_keeps_empty_last(
        self, api: Caller, loaded: Sales
    ) -> None:
        f = ids(loaded)
        answer = await query(
            api, loaded.id, group_by=[f["Region"]], sort=[{"column": "Region", "desc": True}]
        )
        assert answer["rows"] == [["South"], ["North"], ["(empty)"]]

    async def test_an_aggregate_descending_keeps_empty_last(
        self, api: Caller, loaded: Sales
    ) -> None:
        f = ids(loaded)
        answer = await query(
            api,
            loaded.id,
            group_by=[f["Closed"]],
            aggregations=[{"field": f["Revenue"], "op": "median"}],
            sort=[{"column": 1, "desc": True}],
        )
        assert answer["rows"] == [["(empty)", D("2.7")], ["true", None]]


class TestCsv:
    async def test_csv_has_a_header_and_exact_numbers(self, api: Caller, loaded: Sales) -> None:
        f = ids(loaded)
        r = await api.client.post(
            f"/data-items/{loaded.id}/query/?format=csv",
            json={
                "group_by": [f["Region"]],
                "aggregations": [
                    {"field": f["Revenue"], "op": "sum"},
                    {"field": f["Revenue"], "op": "median"},
                ],
            },
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        assert list(csv.reader(io.StringIO(r.text))) == [
            ["Region", "Sum of Revenue", "Median of Revenue"],
            ["North", "1", "0.25"],  # as the JSON writes it
            ["South", "65", "20"],
            ["(empty)", "5", "5"],
        ]

    async def test_a_bad_format_is_a_400(self, api: Caller, loaded: Sales) -> None:
        r = await api.client.post(
            f"/data-items/{loaded.id}/query/?format=xml", json={"aggregations": [{"op": "count"}]}
        )
        assert "format" in assert_error(r, 400)["error"]


class TestOneEngine:
    @pytest.mark.parametrize("aggregation", ["sum", "avg", "min", "max", "count"])
    async def test_the_same_answer_as_a_widget(
        self, api: Caller, loaded: Sales, aggregation: str
    ) -> None:
        f = ids(loaded)
        data = await widget_data(
            api,
            loaded.id,
            label_field=f["Close Date"],
            date_grouping="month",
            sort_direction="desc",
            series=[{"value_field": f["Revenue"], "aggregation": aggregation}],
        )
        answer = await query(
            api,
            loaded.id,
            group_by=[f["Close Date"]],
            date_grouping="month",
            aggregations=[{"field": f["Revenue"], "op": aggregation}],
            sort=[{"column": 1, "desc": True}],
        )
        assert [r[0] for r in answer["rows"]] == data["labels"]
        assert [r[1] for r in answer["rows"]] == data["datasets"][0]["data"]


class TestTenancy:
    async def test_another_accounts_item_is_404(
        self, api: Caller, intruder: Caller, loaded: Sales
    ) -> None:
        body = {"aggregations": [{"op": "count"}]}
        r = await intruder.client.post(f"/data-items/{loaded.id}/query/", json=body)
        assert_error(r, 404, "NOT_FOUND")
        r = await api.client.post("/data-items/999999999/query/", json=body)
        assert_error(r, 404, "NOT_FOUND")

    async def test_another_items_fields_are_400(
        self, api: Caller, intruder: Caller, loaded: Sales
    ) -> None:
        mine = await create_item(api.client, "Other", [{"field_label": "X", "field_type": "char"}])
        theirs = await create_item(
            intruder.client, "Theirs", [{"field_label": "Y", "field_type": "decimal"}]
        )
        for field in (mine["fields"][0]["id"], theirs["fields"][0]["id"]):
            r = await api.client.post(
                f"/data-items/{loaded.id}/query/",
                json={"group_by": [field], "aggregations": [{"field": field, "op": "count"}]},
            )
            error = assert_error(r, 400, "VALIDATION_ERROR")
            message = f"field {field} is not a field of this data item"
            assert [d["message"] for d in error["details"]] == [message, message]
            assert [d["field"] for d in error["details"]] == ["group_by.0", "aggregations.0.field"]


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("nothing asked", {}, "give group_by, aggregations, or both"),
    ("unknown group field", {"group_by": [987654321]}, "field 987654321 is not a field"),
    (
        "unknown aggregated field",
        {"aggregations": [{"field": 987654321, "op": "sum"}]},
        "field 987654321 is not a field",
    ),
    ("sum of a char field", {"aggregations": [{"field": "Region", "op": "sum"}]}, "sum does not fit char field"),
    ("median of a date field", {"aggregations": [{"field": "Close Date", "op": "median"}]}, "median does not fit date field"),
    ("avg of a boolean field", {"aggregations": [{"field": "Closed", "op": "avg"}]}, "use count or count_distinct"),
    ("sum without a field", {"aggregations": [{"op": "sum"}]}, "sum needs a field"),
    ("an unknown op", {"aggregations": [{"op": "mode"}]}, "'median'"),
    ("a repeated group", {"group_by": ["Region", "Region"]}, "repeats"),
    ("a repeated aggregation", {"aggregations": [{"op": "count"}, {"op": "count"}]}, "repeats an aggregation (Count)"),
    ("date grouping on a char field", {"group_by": ["Region"], "date_grouping": "month"}, "month needs a date field in group_by"),
    ("date grouping without group_by", {"aggregations": [{"op": "count"}], "date_grouping": "week"}, "week needs a date field"),
    ("an unknown date grouping", {"group_by": ["Close Date"], "date_grouping": "decade"}, "'quarter'"),
    ("a sort position out of range", {"group_by": ["Region"], "sort": [{"column": 1}]}, "column 1 is out of range (0 to 0)"),
    ("a negative sort position", {"group_by": ["Region"], "sort": [{"column": -1}]}, "out of range"),
    ("an unknown sort name", {"group_by": ["Region"], "sort": [{"column": "Revenue"}]}, "column 'Revenue' is not one (columns: 'Region')"),
    ("a boolean sort column", {"group_by": ["Region"], "sort": [{"column": True}]}, "sort"),
    ("limit 0", {"group_by": ["Region"], "limit": 0}, "limit"),
    ("limit over 10,000", {"group_by": ["Region"], "limit": 10_001}, "limit"),
    ("limit as text", {"group_by": ["Region"], "limit": "10"}, "limit"),
    ("a group field id as text", {"group_by": ["7"]}, "valid integer"),
    ("a group field id as a boolean", {"group_by": [True]}, "valid integer"),
    ("four groups", {"group_by": ["Region", "Notes", "Closed", "Close Date"]}, "group_by"),
    ("an unknown key", {"group_by": ["Region"], "having": 1}, "having"),
    ("a filter on an unknown field", {"group_by": ["Region"], "filter": {"conditions": [{"field": 987654321, "op": "eq", "value": 1}]}}, "filter.conditions.0"),
    ("a filter value of the wrong type", {"group_by": ["Region"], "filter": {"conditions": [{"field": "Revenue", "op": "gt", "value": "lots"}]}}, "filter.conditions.0"),
    ("a filter that is not an object", {"group_by": ["Region"], "filter": "[]"}, "filter"),
]  # fmt: skip


def _with_ids(value: Any, f: dict[str, int]) -> Any:
    """Field labels in `field`, `group_by` and filter conditions replaced by their ids."""
    if isinstance(value, dict):
        return {
            k: f.get(v, v) if k == "field" and isinstance(v, str) else _with_ids(v, f)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [f.get(v, v) if isinstance(v, str) else _with_ids(v, f) for v in value]
    return value


class TestBadInput:
    @pytest.mark.parametrize(("case", "body", "says"), BAD, ids=[b[0] for b in BAD])
    async def test_a_400_naming_the_problem(
        self, api: Caller, loaded: Sales, case: str, body: dict[str, Any], says: str
    ) -> None:
        r = await api.client.post(
            f"/data-items/{loaded.id}/query/", json=_with_ids(body, ids(loaded))
        )
        error = assert_error(r, 400, "VALIDATION_ERROR")
        assert says in str(error), error

    async def test_malformed_json(self, api: Caller, loaded: Sales) -> None:
        r = await api.client.post(
            f"/data-items/{loaded.id}/query/",
            content=b'{"group_by": [1',
            headers={"content-type": "application/json"},
        )
        assert "JSON" in assert_error(r, 400)["error"]

    async def test_every_problem_is_named(self, api: Caller, loaded: Sales) -> None:
        f = ids(loaded)
        r = await api.client.post(
            f"/data-items/{loaded.id}/query/",
            json={
                "group_by": [f["Region"]],
                "date_grouping": "year",
                "aggregations": [{"field": f["Notes"], "op": "max"}],
            },
        )
        error = assert_error(r, 400, "VALIDATION_ERROR")
        assert error["error"] == "Invalid query: 2 problems (see details)."
        assert [d["field"] for d in error["details"]] == ["date_grouping", "aggregations.0.op"]


class TestOpenApi:
    async def test_documented_with_an_example(self, client: httpx.AsyncClient) -> None:
        spec = (await client.get("/openapi.json")).json()
        operation = spec["paths"]["/api/v1/data-items/{item_id}/query/"]["post"]
        assert set(operation["responses"]) >= {"200", "400", "401", "404"}
        assert "text/csv" in operation["responses"]["200"]["content"]
        schemas = spec["components"]["schemas"]
        assert schemas["QueryRequest"]["examples"]
        assert schemas["QueryOp"]["enum"] == [
            "count", "count_distinct", "distinct_count", "sum", "avg", "min", "max", "median",
        ]  # fmt: skip


async def test_one_account_runs_a_bounded_number_of_aggregate_queries_at_once(
    database_url: str,
) -> None:
    """AGGREGATES_PER_ACCOUNT: past it an account's query is a 429 at once, while another
    account's queries go on (the bound holds while the first ones still run)."""
    import asyncio

    import httpx

    from app.accounts import service as accounts_service
    from app.main import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(aggregates_per_account=1), database_url=database_url)
    async with app.router.lifespan_context(app):
        keys = []
        async with app.state.sessionmaker() as session, session.begin():
            for name in ("Busy", "Other"):
                keys.append((await accounts_service.create_account(session, name=name))[1])
        transport = httpx.ASGITransport(app=app)
        clients = [
            httpx.AsyncClient(
                transport=transport, base_url="http://t/api/v1", headers={"X-Api-Key": k.api_key}
            )
            for k in keys
        ]
        items = []
        for c in clients:
            r = await c.post(
                "/data-items/create-from-file/",
                data={"data_name": "n"},
                files={"data_file": ("n.csv", b"Region,Amount\nN,1\nS,2\n")},
            )
            assert r.status_code == 201, r.text
            items.append(r.json())
        body = {"aggregations": [{"op": "count"}]}
        r = await clients[0].post(f"/data-items/{items[0]['id']}/query/", json=body)
        assert r.status_code == 200, r.text
        slots = app.state.aggregate_slots
        # the busy account's one slot held, as by a query still running
        async with slots.hold(keys[0].account_id):
            r = await clients[0].post(f"/data-items/{items[0]['id']}/query/", json=body)
            assert r.status_code == 429, r.text
            assert "AGGREGATES_PER_ACCOUNT" in r.json()["error"] and r.headers["retry-after"] == "1"
            r = await clients[0].get(f"/data-items/{items[0]['id']}/rows/")
            assert r.status_code == 200, r.text  # other reads are not bounded by it
            r = await clients[1].post(f"/data-items/{items[1]['id']}/query/", json=body)
            assert r.status_code == 200, r.text
        assert slots.running(keys[0].account_id) == 0
        r = await clients[0].post(f"/data-items/{items[0]['id']}/query/", json=body)
        assert r.status_code == 200, r.text
        await asyncio.gather(*(c.aclose() for c in clients))


async def test_csv_escapes_formulas_in_text_columns_when_asked(api: Caller) -> None:
    r = await api.client.post(
        "/data-items/create-from-file/",
        data={"data_name": "Formulas"},
        files={"data_file": ("f.csv", b'Name,Amount\n=HYPERLINK("x"),1\n@SUM(1),-5\nplain,2\n')},
    )
    assert r.status_code == 201, r.text
    item = r.json()
    name, amount = (f["id"] for f in item["fields"])
    body = {"group_by": [name, amount], "aggregations": [{"op": "count"}]}
    url = f"/data-items/{item['id']}/query/"
    plain = await api.client.post(url, params={"format": "csv"}, json=body)
    assert '"=HYPERLINK(""x"")"' in plain.text and "\n@SUM(1)," in plain.text
    for params in ({"format": "csv", "escape_formulas": "true"}, {"format": "csv", "bom": "true"}):
        r = await api.client.post(url, params=params, json=body)
        assert r.status_code == 200, r.text
        assert "'=HYPERLINK" in r.text and "'@SUM(1),-5," in r.text  # the decimal -5 is not
        assert r.text.startswith("\ufeff") == (params.get("bom") == "true")
