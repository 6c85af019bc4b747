"""Documentation that must stay true: every setting in README's table, the OpenAPI security
schemes and error responses, docs that work offline and behind a gateway prefix, the Dockerfile."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app
from tests.conftest import Caller, make_settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", readme, flags=re.MULTILINE))
    settings = {name.upper() for name in Settings.model_fields}
    assert settings - documented == set(), "undocumented settings"
    assert documented - settings == set(), "documented settings that do not exist"


def test_every_setting_has_a_description() -> None:
    assert all(f.description for f in Settings.model_fields.values())


def test_dockerfile_runs_as_non_root_with_healthcheck_and_the_cli_entry_point() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.count("FROM ") >= 2  # multi-stage
    users = re.findall(r"^USER (\S+)", dockerfile, flags=re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", dockerfile, flags=re.MULTILINE)
    cmd = re.findall(r"^CMD (.+)$", dockerfile, flags=re.MULTILINE)[-1]
    assert "python -m app migrate" in cmd and "exec python -m app serve" in cmd
    assert "DATABASE_URL" in cmd


@pytest.mark.asyncio
class TestOpenAPIAndDocs:
    async def test_security_schemes_and_errors_are_declared(
        self, client: httpx.AsyncClient
    ) -> None:
        spec = (await client.get("/openapi.json")).json()
        schemes = spec["components"]["securitySchemes"]
        assert schemes["ApiKeyHeader"] == {
            "type": "apiKey", "in": "header", "name": "X-Api-Key",
            "description": schemes["ApiKeyHeader"]["description"],
        }  # fmt: skip
        assert (
            schemes["ApiKeyQuery"]["in"] == "query" and schemes["ApiKeyQuery"]["name"] == "api_key"
        )
        for path, operations in spec["paths"].items():
            if not path.startswith("/api/v1"):
                continue
            for method, op in operations.items():
                assert {"ApiKeyHeader": []} in op["security"], (method, path)
                assert "401" in op["responses"], (method, path)
                assert "422" not in op["responses"], (method, path)
                assert op["summary"], (method, path)
                assert op["operationId"].count("-") >= 1
        ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
        assert len(ids) == len(set(ids))

    async def test_docs_pages_use_local_assets(self, client: httpx.AsyncClient) -> None:
        for page in ("/docs", "/redoc"):
            r = await client.get(page)
            assert r.status_code == 200
            assert "cdn." not in r.text and "googleapis" not in r.text
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["x-content-type-options"] == "nosniff"
            for asset in re.findall(r'(?:src|href)="(/docs-static/[^"]+)"', r.text):
                assert (await client.get(asset)).status_code == 200, asset

    async def test_root_path_makes_the_docs_links_right(self, database_url: str) -> None:
        # uvicorn passes ROOT_PATH as the ASGI root_path (python -m app serve does this)
        gateway_app: FastAPI = create_app(
            make_settings(root_path="/data/"), database_url=database_url
        )
        transport = httpx.ASGITransport(app=gateway_app, root_path="/data")
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
            page = await c.get("/docs")
            assert "'/data/openapi.json'" in page.text or '"/data/openapi.json"' in page.text
            assert "/data/docs-static/swagger-ui-bundle.js" in page.text
            spec = (await c.get("/openapi.json")).json()
        assert spec["servers"] == [{"url": "/data"}]


@pytest.mark.asyncio
async def test_the_readme_says_what_a_returned_row_holds(api: Caller) -> None:
    """Every field's key, null where empty (the contract), and the README says so."""
    rows_section = (ROOT / "README.md").read_text().split("## Rows, search and statistics")[1]
    first_paragraph = " ".join(rows_section.strip().split("\n\n")[0].split())
    assert "left out" not in first_paragraph
    assert "every field's key is there, `null` where the cell is empty" in first_paragraph
    r = await api.client.post(
        "/data-items/",
        json={"data_name": "Doc", "fields": [{"field_label": "A"}, {"field_label": "B"}]},
    )
    assert r.status_code == 201, r.text
    item = r.json()
    a, b = (str(f["id"]) for f in item["fields"])
    r = await api.client.post(f"/data-items/{item['id']}/rows/", json={"values": {a: "x"}})
    assert r.status_code == 201, r.text
    rows = (await api.client.get(f"/data-items/{item['id']}/rows/")).json()["rows"]
    assert rows == [{"_row_ref": "0", a: "x", b: None}]
