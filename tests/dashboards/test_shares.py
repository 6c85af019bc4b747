"""Share links of dashboards (POST/GET …/dashboards/{id}/shares/, DELETE …/shares/{share_id}/)
and the public page they open (GET /s/{token}): made, listed (never with their token) and
revoked; expiry; bad input; tenancy (another account's dashboard and links are 404); the page's
HTML (the title, one inline SVG per widget, every user text escaped, its headers, no key
anywhere) and the one 404 page for a revoked, expired, unknown or malformed token."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.shares import service as shares_service
from tests.accounts.keys import make_key, using
from tests.conftest import Caller
from tests.helpers import assert_error, create_item

pytestmark = pytest.mark.asyncio

renders = pytest.mark.skipif(
    importlib.util.find_spec("vl_convert") is None,
    reason="vl-convert-python is not installed (pip install -e '.[dev]' installs it)",
)

EVIL = "<script>alert(1)</script>"
TOKEN = re.compile(r"/s/([A-Za-z0-9_-]{43})")


async def board(
    api: Caller, title: str = "Sales overview", description: str = ""
) -> dict[str, Any]:
    """A dashboard of two widgets (a bar titled EVIL, a pie) over rows with an EVIL label."""
    item = await create_item(
        api.client,
        "Sales",
        [
            {"field_label": "Region", "field_type": "char"},
            {"field_label": "Revenue", "field_type": "decimal"},
        ],
    )
    region, revenue = (str(f["id"]) for f in item["fields"])
    rows = [{region: r, revenue: v} for r, v in (("North", "10"), ("South", "5"), (EVIL, "2"))]
    r = await api.client.post(f"/data-items/{item['id']}/rows/bulk/", json={"rows": rows})
    assert r.status_code == 201, r.text
    widgets = []
    for title_, chart in ((EVIL, "bar"), ("Revenue share", "pie")):
        body = {
            "title": title_,
            "chart_type": chart,
            "label_field": int(region),
            "series": [{"value_field": int(revenue), "aggregation": "sum"}],
        }
        r = await api.client.post(f"/data-items/{item['id']}/widgets/", json=body)
        assert r.status_code == 201, r.text
        widgets.append(r.json()["id"])
    layout = [
        {"widget_id": widgets[0], "x": 0, "y": 0, "w": 8, "h": 4},
        {"widget_id": widgets[1], "x": 8, "y": 0, "w": 4, "h": 4},
    ]
    body = {"title": title, "description": description, "layout": layout}
    r = await api.client.post("/dashboards/", json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def share(api: Caller, dashboard_id: int, **body: Any) -> dict[str, Any]:
    r = await api.client.post(f"/dashboards/{dashboard_id}/shares/", json=body or None)
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    return made


async def expire(app: FastAPI, share_id: int) -> None:
    """The link's expiry passes (the API only takes expiries in the future)."""
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            text(
                "UPDATE dashboard_shares SET expires_at = now() - interval '1 second' WHERE id = :id"
            ),
            {"id": share_id},
        )


async def page(client: httpx.AsyncClient, url: str) -> httpx.Response:
    return await client.get(url)  # no key: `client` sends none


class TestShares:
    async def test_make_list_and_revoke(self, api: Caller, client: httpx.AsyncClient) -> None:
        dashboard = await board(api)
        made = await share(api, dashboard["id"])
        assert set(made) == {"id", "url", "expires_at", "created_at"}
        assert made["expires_at"] is None
        assert TOKEN.fullmatch(made["url"]), made["url"]
        assert (await page(client, made["url"])).status_code == 200

        later = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0)
        second = await share(api, dashboard["id"], expires_at=later.isoformat())
        assert datetime.fromisoformat(second["expires_at"]) == later
        assert second["url"] != made["url"]

        r = await api.client.get(f"/dashboards/{dashboard['id']}/shares/")
        assert r.status_code == 200, r.text
        listed = r.json()
        assert listed["total"] == 2 and [s["id"] for s in listed["shares"]] == [
            second["id"],
            made["id"],
        ]
        assert all(s["active"] and s["revoked_at"] is None for s in listed["shares"])
        assert set(listed["shares"][0]) == {
            "id", "dashboard_id", "expires_at", "created_at", "revoked_at", "active",
        }  # fmt: skip
        token = TOKEN.fullmatch(made["url"]).group(1)  # type: ignore[union-attr]
        assert token not in r.text  # the list never shows a token

        r = await api.client.delete(f"/dashboards/{dashboard['id']}/shares/{made['id']}/")
        assert r.status_code == 200 and r.json() == {"deleted": True}
        assert (await page(client, made["url"])).status_code == 404
        assert (await page(client, second["url"])).status_code == 200  # the other link stays
        again = await api.client.delete(f"/dashboards/{dashboard['id']}/shares/{made['id']}")
        assert again.status_code == 200  # revoking twice is harmless
        shares = (await api.client.get(f"/dashboards/{dashboard['id']}/shares/")).json()["shares"]
        revoked = next(s for s in shares if s["id"] == made["id"])
        assert revoked["active"] is False and revoked["revoked_at"] is not None

    async def test_only_the_tokens_digest_is_stored(self, api: Caller, app: FastAPI) -> None:
        dashboard = await board(api)
        made = await share(api, dashboard["id"])
        token = made["url"].removeprefix("/s/")
        async with app.state.sessionmaker() as session:
            stored = (
                await session.execute(
                    text("SELECT token_hash FROM dashboard_shares WHERE id = :id"),
                    {"id": made["id"]},
                )
            ).scalar_one()
        assert bytes(stored) == hashlib.sha256(token.encode()).digest()

    async def test_an_expired_link_is_404_and_listed_inactive(
        self, api: Caller, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        dashboard = await board(api)
        made = await share(api, dashboard["id"], expires_at="2099-01-01T00:00:00+02:00")
        assert made["expires_at"] == "2098-12-31T22:00:00+00:00"
        assert (await page(client, made["url"])).status_code == 200
        await expire(app, made["id"])
        assert (await page(client, made["url"])).status_code == 404
        listed = (await api.client.get(f"/dashboards/{dashboard['id']}/shares/")).json()
        assert listed["shares"][0]["active"] is False

    async def test_the_url_starts_with_the_gateways_prefix(self, api: Caller, app: FastAPI) -> None:
        dashboard = await board(api)
        transport = httpx.ASGITransport(app=app, root_path="/data")
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gw/api/v1", headers={"X-Api-Key": api.api_key}
        ) as gateway:
            r = await gateway.post(f"/dashboards/{dashboard['id']}/shares/")
        assert r.status_code == 201, r.text
        assert r.json()["url"].startswith("/data/s/")

    async def test_deleting_the_dashboard_ends_its_links(
        self, api: Caller, client: httpx.AsyncClient
    ) -> None:
        dashboard = await board(api)
        made = await share(api, dashboard["id"])
        r = await api.client.delete(f"/dashboards/{dashboard['id']}/")
        assert r.status_code == 200, r.text
        assert (await page(client, made["url"])).status_code == 404


class TestBadInput:
    @pytest.mark.parametrize(
        "body",
        [
            {"expires_at": "2001-01-01T00:00:00Z"},  # in the past
            {"expires_at": "2099-01-01T00:00:00"},  # no time zone
            {"expires_at": "next week"},
            {"expires_at": 5},
            {"expires_at": "2099-13-01T00:00:00Z"},
            {"expiry": "2099-01-01T00:00:00Z"},  # unknown key
            [],
        ],
    )
    async def test_bad_bodies_are_400(self, api: Caller, body: Any) -> None:
        dashboard = await board(api)
        r = await api.client.post(f"/dashboards/{dashboard['id']}/shares/", json=body)
        problem = assert_error(r, 400)
        if isinstance(body, dict):
            name = next(iter(body))
            assert any(d.get("field", "").startswith(name) for d in problem["details"]), problem
        listed = (await api.client.get(f"/dashboards/{dashboard['id']}/shares/")).json()
        assert listed["total"] == 0

    async def test_a_body_that_is_not_json_is_400(self, api: Caller) -> None:
        dashboard = await board(api)
        r = await api.client.post(
            f"/dashboards/{dashboard['id']}/shares/",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert_error(r, 400)

    @pytest.mark.parametrize(
        ("method", "path"),
        [("GET", "/dashboards/0/shares/"), ("POST", "/dashboards/x/shares/"),
         ("DELETE", "/dashboards/{id}/shares/0/"), ("DELETE", "/dashboards/{id}/shares/x/"),
         ("DELETE", "/dashboards/{id}/shares/9223372036854775808/")],
    )  # fmt: skip
    async def test_bad_ids_are_400(self, api: Caller, method: str, path: str) -> None:
        dashboard = await board(api)
        r = await api.client.request(method, path.format(id=dashboard["id"]))
        assert_error(r, 400)

    async def test_a_missing_share_is_404(self, api: Caller) -> None:
        dashboard = await board(api)
        r = await api.client.delete(f"/dashboards/{dashboard['id']}/shares/999999999/")
        assert_error(r, 404)

    @pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"offset": -1}])
    async def test_bad_paging_is_400(self, api: Caller, params: dict[str, int]) -> None:
        dashboard = await board(api)
        r = await api.client.get(f"/dashboards/{dashboard['id']}/shares/", params=params)
        assert_error(r, 400)


class TestTenancy:
    async def test_another_accounts_dashboard_and_links_are_404(
        self, api: Caller, intruder: Caller, client: httpx.AsyncClient
    ) -> None:
        dashboard = await board(api)
        made = await share(api, dashboard["id"])
        base = f"/dashboards/{dashboard['id']}/shares/"
        for method, path in (
            ("POST", base),
            ("GET", base),
            ("DELETE", f"{base}{made['id']}/"),
        ):
            assert_error(await intruder.client.request(method, path), 404)
        # the intruder's own dashboard cannot revoke the link by its id either
        theirs = await board(intruder)
        r = await intruder.client.delete(f"/dashboards/{theirs['id']}/shares/{made['id']}/")
        assert_error(r, 404)
        assert (await page(client, made["url"])).status_code == 200
        listed = (await api.client.get(base)).json()
        assert listed["total"] == 1 and listed["shares"][0]["active"]

    async def test_scopes(self, api: Caller, app: FastAPI) -> None:
        dashboard = await board(api)
        made = await share(api, dashboard["id"])
        base = f"/dashboards/{dashboard['id']}/shares/"
        reader = await make_key(api, scopes=["read"])
        async with using(app, reader["api_key"]) as c:
            assert (await c.get(base)).status_code == 200
            assert_error(await c.post(base), 403)
            assert_error(await c.delete(f"{base}{made['id']}/"), 403)
        manager = await make_key(api, scopes=["manage"])
        async with using(app, manager["api_key"]) as c:
            assert (await c.post(base)).status_code == 201
            assert (await c.delete(f"{base}{made['id']}/")).status_code == 200
            assert_error(await c.get(base), 403)
        item = (await api.client.get("/data-items/")).json()["data_items"][0]
        limited = await make_key(api, scopes=["read", "manage"], data_items=[item["id"]])
        async with using(app, limited["api_key"]) as c:  # dashboards are account-wide
            assert_error(await c.post(base), 403)
            assert_error(await c.get(base), 403)


@renders
class TestPage:
    async def test_the_page_shows_the_title_and_one_svg_per_widget(
        self, api: Caller, client: httpx.AsyncClient
    ) -> None:
        dashboard = await board(api, title="Q1 <b>numbers</b> & more", description=EVIL)
        made = await share(api, dashboard["id"])
        r = await page(client, made["url"])
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        html = r.text
        assert html.count("<svg") == 2 and html.count("</svg>") == 2
        assert "<title>Q1 &lt;b&gt;numbers&lt;/b&gt; &amp; more</title>" in html
        assert "<h1>Q1 &lt;b&gt;numbers&lt;/b&gt; &amp; more</h1>" in html
        # the widget's title, the description and a label drawn in a chart: text, never markup
        assert "<script" not in html.lower()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "North" in html and "South" in html and "Revenue share" in html
        # laid out as the dashboard's grid
        assert "grid-column:1 / span 8;grid-row:1 / span 4" in html
        assert "grid-column:9 / span 4;grid-row:1 / span 4" in html
        # nothing to fetch: no script, link, image, font or URL but the SVG namespaces
        assert not re.search(r"<(script|link|img|iframe|object|embed)\b", html, re.I)
        urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
        assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
        assert "@import" not in html and "url(" not in html
        # no key, no id of the account or of the dashboard's items
        assert api.api_key not in html and "dik_" not in html
        assert "api_key" not in html.lower()

    async def test_the_pages_headers(self, api: Caller, client: httpx.AsyncClient) -> None:
        dashboard = await board(api)
        made = await share(api, dashboard["id"])
        for url in (made["url"], "/s/nope"):
            r = await page(client, url)
            assert r.headers["cache-control"] == "no-store"
            csp = r.headers["content-security-policy"]
            assert csp.startswith("default-src 'none';") and "script-src" not in csp
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "no-referrer"
            assert "noindex" in r.headers["x-robots-tag"]

    async def test_an_empty_dashboard(self, api: Caller, client: httpx.AsyncClient) -> None:
        r = await api.client.post("/dashboards/", json={"title": "Soon"})
        made = await share(api, r.json()["id"])
        shown = await page(client, made["url"])
        assert shown.status_code == 200
        assert "No widgets on this dashboard yet." in shown.text and "<svg" not in shown.text

    async def test_the_page_follows_the_dashboard(
        self, api: Caller, client: httpx.AsyncClient
    ) -> None:
        dashboard = await board(api)
        made = await share(api, dashboard["id"])
        first = dashboard["layout"][0]
        layout = [{k: first[k] for k in ("widget_id", "x", "y", "w", "h")}]
        r = await api.client.patch(
            f"/dashboards/{dashboard['id']}/", json={"title": "Renamed", "layout": layout}
        )
        assert r.status_code == 200, r.text
        html = (await page(client, made["url"])).text
        assert "<h1>Renamed</h1>" in html and html.count("<svg") == 1

    async def test_a_page_is_drawn_at_most_every_30_seconds(
        self, api: Caller, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Visits within PAGE_CACHE_SECONDS get the same drawing (a hot link costs no more);
        revoking still ends the link at once."""
        dashboard = await board(api)
        made = await share(api, dashboard["id"])
        first = (await page(client, made["url"])).text
        item = dashboard["layout"][0]["data_item_id"]
        fields = (await api.client.get(f"/data-items/{item}/fields/")).json()["fields"]
        ids = {f["field_label"]: str(f["id"]) for f in fields}
        row = {ids["Region"]: "Zeta", ids["Revenue"]: "3"}
        r = await api.client.post(f"/data-items/{item}/rows/", json={"values": row})
        assert r.status_code == 201, r.text
        assert (await page(client, made["url"])).text == first
        monkeypatch.setattr(shares_service.PAGES, "seconds", 0.0)
        assert "Zeta" in (await page(client, made["url"])).text
        r = await api.client.delete(f"/dashboards/{dashboard['id']}/shares/{made['id']}/")
        assert r.status_code == 200
        assert (await page(client, made["url"])).status_code == 404

    async def test_head(self, api: Caller, client: httpx.AsyncClient) -> None:
        dashboard = await board(api)
        made = await share(api, dashboard["id"])
        r = await client.head(made["url"])
        assert r.status_code == 200 and r.content == b""


class TestNotFound:
    async def test_one_404_page_for_every_link_that_does_not_work(
        self, api: Caller, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        dashboard = await board(api)
        revoked = await share(api, dashboard["id"])
        r = await api.client.delete(f"/dashboards/{dashboard['id']}/shares/{revoked['id']}/")
        assert r.status_code == 200
        expired = await share(api, dashboard["id"])
        await expire(app, expired["id"])
        live = await share(api, dashboard["id"])
        token = live["url"].removeprefix("/s/")
        urls = [
            revoked["url"],
            expired["url"],
            "/s/" + "A" * 43,  # well formed, unknown
            "/s/" + token[:-1] + ("A" if token[-1] != "A" else "B"),  # one character off
            "/s/" + token[:-1],  # too short
            "/s/" + token + "A",  # too long
            "/s/" + token + "/",
            "/s/" + token.upper() if token.upper() != token else "/s/x",
            "/s/%00",
            "/s/..%2F..%2Fapi%2Fv1",
            "/s/a/b/c",
            "/s/" + "é" * 43,
            "/s/",
        ]
        bodies = set()
        for url in urls:
            r = await page(client, url)
            assert r.status_code == 404, url
            assert r.headers["content-type"] == "text/html; charset=utf-8", url
            assert r.headers["cache-control"] == "no-store", url
            bodies.add(r.text)
        assert len(bodies) == 1  # nothing tells them apart
        (body,) = bodies
        assert "Link not found" in body and "<svg" not in body
        assert "Sales overview" not in body
        assert (await page(client, live["url"])).status_code == 200

    async def test_a_key_does_not_open_a_dead_link(self, api: Caller, app: FastAPI) -> None:
        """The page never looks at keys: a revoked link is 404 for the dashboard's owner too."""
        dashboard = await board(api)
        made = await share(api, dashboard["id"])
        await api.client.delete(f"/dashboards/{dashboard['id']}/shares/{made['id']}/")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers={"X-Api-Key": api.api_key}
        ) as c:
            assert (await c.get(made["url"])).status_code == 404


async def test_the_logs_never_hold_a_token(
    api: Caller, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The page's path is its link's secret: the access log writes /s/[redacted]."""
    dashboard = await board(api, title="Logged")
    made = await share(api, dashboard["id"])
    token = made["url"].removeprefix("/s/")
    caplog.set_level(logging.INFO)
    await page(client, made["url"] + "?x=1")
    await page(client, "/s/" + "A" * 43)
    lines = [r.getMessage() for r in caplog.records if r.name == "app.access"]
    assert any("GET /s/[redacted]?x=1 200" in line for line in lines), lines
    assert any("GET /s/[redacted] 404" in line for line in lines), lines
    service = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in service)  # not the client's
    assert token not in logged and "A" * 43 not in logged
