"""Documentation that must stay true: every setting in README's table with its default, links and
anchors that resolve, nothing that points outside the repository, the OpenAPI security schemes
and error responses, docs that work offline and behind a gateway prefix, the Dockerfile."""

from __future__ import annotations

import os
import re
from enum import Enum
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


def test_the_readme_table_gives_each_setting_its_default() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([^|]*) \|", readme, flags=re.MULTILINE)
    assert len(rows) == len(Settings.model_fields)
    for name, cell in rows:
        default = Settings.model_fields[name.lower()].default
        if default is None:  # "unset", or what the code falls back to, in words
            assert not cell.startswith("`"), (name, cell)
            continue
        if default == "":
            assert cell.startswith("empty"), (name, cell)
            continue
        shown = re.match(r"`([^`]*)`", cell)
        assert shown, (name, cell)
        assert _same_default(shown.group(1), default), (name, cell, default)


def _same_default(shown: str, default: object) -> bool:
    if isinstance(default, bool):
        return shown == str(default).lower()
    if isinstance(default, Enum):
        return shown == str(default.value)
    if isinstance(default, Path):
        return os.path.normpath(shown) == os.path.normpath(default)
    if isinstance(default, int | float):
        return float(shown) == float(default)
    return shown == default


def test_the_readme_stays_short() -> None:
    """The README is the way in; the rest lives in docs/ (issue 15: about 250 lines)."""
    assert len((ROOT / "README.md").read_text().splitlines()) <= 260


DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "bench" / "results").glob("*.md")),
]
FENCE = re.compile(r"^\s*```")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _prose(path: Path) -> list[str]:
    """The lines of a Markdown file outside fenced code blocks."""
    lines: list[str] = []
    fenced = False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1 on repeats."""
    seen: dict[str, int] = {}
    for line in _prose(path):
        heading = re.match(r"#{1,6} (.+)", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            if count:
                seen[f"{slug}-{count}"] = 1
    return set(seen)


def test_the_link_checker_reads_anchors_as_github_does(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Import jobs: big files\n## `percent`, a type\n```\n# not a heading\n```\n# A\n# A\n"
    )
    assert _anchors(page) == {"import-jobs-big-files", "percent-a-type", "a", "a-1"}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(doc: Path) -> None:
    broken: list[str] = []
    for line in _prose(doc):
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            linked = (doc.parent / path).resolve() if path else doc
            inside = linked == ROOT or ROOT in linked.parents
            if not (inside and linked.exists()) or (
                anchor and (linked.suffix != ".md" or anchor not in _anchors(linked))
            ):
                broken.append(target)
    assert broken == []


def test_nothing_refers_outside_the_repository() -> None:
    """A user's checkout has only this repository: no path into a sibling folder."""
    sibling = ".." + "/shared"
    files = [ROOT / name for name in ("README.md", "Makefile", "Dockerfile", "pyproject.toml")]
    for folder in ("app", "bench", "docs", "migrations", "tests", ".ci", "scripts"):
        files += [
            p for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts
        ]
    offenders: list[str] = []
    for path in files:
        try:
            text = path.read_text()
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        if sibling in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


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
async def test_the_api_guide_says_what_a_returned_row_holds(api: Caller) -> None:
    """Every field's key, null where empty (the contract), and the API guide says so."""
    guide = (ROOT / "docs" / "api-guide.md").read_text()
    rows_section = guide.split("## Rows, search and statistics")[1]
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
