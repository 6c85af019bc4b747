"""A dashboard's share page in a real headless browser (the system's Chromium, driven over the
DevTools protocol by tests/fixtures/chromium.py), served by the real service on a socket: the
page loads, every widget's chart is there and drawn (an SVG with a size), the browser reports no
error or warning (no exception, no console message, no blocked or failed resource, no CSP
violation), and a revoked or an expired link shows the 404 page.

Skipped, saying so, where no Chromium is installed (Debian: `apt-get install chromium`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.fixtures.chromium import CANDIDATES, Browser, find_chromium
from tests.fixtures.live import LiveServer, live_server

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium to test the share page in a real browser (Debian: apt-get install "
    "chromium; looked for " + ", ".join(CANDIDATES) + " on the PATH)",
)

CHARTS = ("bar", "line", "pie", "number")


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[LiveServer]:
    with live_server(database_url) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM is not None
    opened = Browser(CHROMIUM)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="module")
def api(live: LiveServer) -> Iterator[httpx.Client]:
    _, _, key = live.new_account("Browser")
    with httpx.Client(base_url=f"{live.url}/api/v1", headers={"X-Api-Key": key}) as client:
        yield client


def ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json()


@pytest.fixture(scope="module")
def dashboard(api: httpx.Client) -> dict[str, Any]:
    """A dashboard with one widget of each of several chart types, over a small item."""
    item = ok(
        api.post(
            "/data-items/",
            json={
                "data_name": "Sales",
                "fields": [
                    {"field_label": "Region", "field_type": "char"},
                    {"field_label": "Revenue", "field_type": "decimal"},
                ],
            },
        )
    )
    region, revenue = (f["id"] for f in item["fields"])
    rows = [
        {str(region): r, str(revenue): v}
        for r, v in (("North", "10.5"), ("South", "4"), ("East", "7.25"), ("West", "1"))
    ]
    ok(api.post(f"/data-items/{item['id']}/rows/bulk/", json={"rows": rows}))
    layout = []
    for n, chart in enumerate(CHARTS):
        widget = ok(
            api.post(
                f"/data-items/{item['id']}/widgets/",
                json={
                    "title": f"Revenue ({chart}) <i>&</i>",
                    "chart_type": chart,
                    "label_field": region,
                    "series": [{"value_field": revenue, "aggregation": "sum"}],
                },
            )
        )
        layout.append(
            {"widget_id": widget["id"], "x": 6 * (n % 2), "y": 4 * (n // 2), "w": 6, "h": 4}
        )
    body = {
        "title": "Sales <overview>",
        "description": "Shared for the browser test",
        "layout": layout,
    }
    created: dict[str, Any] = ok(api.post("/dashboards/", json=body))
    return created


def share(api: httpx.Client, dashboard: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = api.post(f"/dashboards/{dashboard['id']}/shares/", json=body or None)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def expire(live: LiveServer, share_id: int) -> None:
    async def run() -> None:
        async with live.app.state.sessionmaker() as session, session.begin():
            await session.execute(
                text("UPDATE dashboard_shares SET expires_at = now() - interval '1 second' "
                     "WHERE id = :id"),
                {"id": share_id},
            )  # fmt: skip

    live.run(run())


def not_found_only(problems: list[str], url: str) -> bool:
    """Nothing reported but the document's own 404 status (Chromium logs it as a failed load)."""
    return all("status of 404" in p and p.endswith(url) for p in problems)


def test_the_detector_sees_problems(browser: Browser) -> None:
    """The checks below mean something: a page with a console error and a blocked image is
    reported as such."""
    loaded, _ = browser.load(
        "data:text/html,<title>t</title><script>console.error('boom')</script>"
        "<img src='http://127.0.0.1:9/x.png'>"
    )
    assert any("boom" in p for p in loaded.problems), loaded.problems
    assert any("x.png" in p for p in loaded.problems), loaded.problems


def test_the_page_shows_every_chart_without_errors(
    live: LiveServer, browser: Browser, api: httpx.Client, dashboard: dict[str, Any]
) -> None:
    made = share(api, dashboard)
    loaded, tab = browser.load(live.url + made["url"])
    assert loaded.status == 200
    assert loaded.problems == []
    assert browser.evaluate(tab, "document.title") == "Sales <overview>"
    assert browser.evaluate(tab, "document.querySelector('h1').textContent") == "Sales <overview>"
    # every widget's chart, drawn with a size, in its grid cell, its title as text
    charts = browser.evaluate(
        tab,
        "Array.from(document.querySelectorAll('figure.cell > svg')).map(s => {"
        " const r = s.getBoundingClientRect();"
        " return [Math.round(r.width), Math.round(r.height), s.querySelectorAll('*').length,"
        "  s.textContent]; })",
    )
    assert (
        len(charts)
        == len(CHARTS)
        == browser.evaluate(tab, "document.querySelectorAll('svg').length")
    )
    for (width, height, parts, words), chart in zip(charts, CHARTS, strict=True):
        assert width > 200 and height > 200, (chart, width, height)
        assert parts > 5, chart
        assert f"Revenue ({chart}) <i>&</i>" in words
    assert any("North" in words for *_, words in charts)
    # the grid: two charts side by side, then two more below them
    boxes = browser.evaluate(
        tab,
        "Array.from(document.querySelectorAll('figure.cell')).map(f => {"
        " const r = f.getBoundingClientRect(); return [Math.round(r.left), Math.round(r.top)]; })",
    )
    (left0, top0), (left1, top1), (left2, top2), (left3, top3) = boxes
    assert top0 == top1 < top2 == top3 and left0 == left2 < left1 == left3
    # nothing of the API in the page: no key, no script
    html = browser.evaluate(tab, "document.documentElement.outerHTML")
    assert "dik_" not in html and "api_key" not in html and "<script" not in html


def test_a_revoked_link_shows_the_404_page(
    live: LiveServer, browser: Browser, api: httpx.Client, dashboard: dict[str, Any]
) -> None:
    made = share(api, dashboard)
    loaded, _ = browser.load(live.url + made["url"])
    assert loaded.status == 200
    ok(api.delete(f"/dashboards/{dashboard['id']}/shares/{made['id']}/"))
    loaded, tab = browser.load(live.url + made["url"])
    assert loaded.status == 404
    assert browser.evaluate(tab, "document.querySelector('h1').textContent") == "Link not found"
    assert browser.evaluate(tab, "document.querySelectorAll('svg').length") == 0
    assert not_found_only(loaded.problems, made["url"])


def test_an_expired_link_shows_the_404_page(
    live: LiveServer, browser: Browser, api: httpx.Client, dashboard: dict[str, Any]
) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    made = share(api, dashboard, expires_at=soon)
    assert browser.load(live.url + made["url"])[0].status == 200
    expire(live, made["id"])
    loaded, tab = browser.load(live.url + made["url"])
    assert loaded.status == 404
    assert not_found_only(loaded.problems, made["url"])
    assert browser.evaluate(tab, "document.querySelector('h1').textContent") == "Link not found"
    assert browser.evaluate(tab, "document.querySelectorAll('svg').length") == 0
