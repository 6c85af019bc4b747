"""A fixed path segment outranks a parameter in the same place (issue 14, point 3).

`/data-items/create-from-file/` also matches `/data-items/{item_id}/`, and
`/data-items/{id}/rows/bulk/` matches `/data-items/{id}/rows/{row_ref}/`. A method the fixed route
does not have must be a 405 naming the fixed route's methods, not a 400 "item_id: Input should be
a valid integer" or a 404 "Row 'bulk' not found" from the parameter route.

The routes are walked rather than listed, so a fixed segment added later is covered too.
"""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from app.core.routing import API_PREFIX
from tests.conftest import Caller
from tests.helpers import assert_error

pytestmark = pytest.mark.asyncio

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
PARAM = re.compile(r"^\{[^}]+\}$")


def _api_templates(app: FastAPI) -> dict[str, set[str]]:
    """Every API path template with the methods routed to it."""
    templates: dict[str, set[str]] = {}
    for context in iter_route_contexts(app.routes):
        path, methods = context.path_format, context.methods
        if path and methods and path.startswith(API_PREFIX + "/"):
            templates.setdefault(path, set()).update(methods)
    return templates


def _concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", template)


def _pattern(template: str) -> re.Pattern[str]:
    parts = [r"[^/]+" if PARAM.match(s) else re.escape(s) for s in template.split("/")]
    return re.compile("^" + "/".join(parts) + "$")


def shadowed_fixed_routes(app: FastAPI) -> dict[str, tuple[set[str], list[str]]]:
    """Templates with a fixed segment where a sibling template, which also matches its paths,
    has a parameter: {fixed template: (its methods, [the sibling templates])}."""
    templates = _api_templates(app)
    found: dict[str, tuple[set[str], list[str]]] = {}
    for fixed, methods in templates.items():
        fixed_segments = fixed.split("/")
        for other in templates:
            other_segments = other.split("/")
            if other == fixed or len(other_segments) != len(fixed_segments):
                continue
            if not _pattern(other).match(_concrete(fixed)):
                continue
            if any(
                not PARAM.match(mine) and PARAM.match(theirs)
                for mine, theirs in zip(fixed_segments, other_segments, strict=True)
            ):
                found.setdefault(fixed, (methods, []))[1].append(other)
    return found


async def test_the_walk_finds_the_known_cases(app: FastAPI) -> None:
    found = shadowed_fixed_routes(app)
    assert f"{API_PREFIX}/data-items/create-from-file/" in found
    assert f"{API_PREFIX}/data-items/import-bundle/" in found
    assert f"{API_PREFIX}/data-items/{{item_id}}/rows/bulk/" in found
    assert found[f"{API_PREFIX}/data-items/{{item_id}}/rows/bulk/"][1] == [
        f"{API_PREFIX}/data-items/{{item_id}}/rows/{{row_ref}}/"
    ]


async def test_other_methods_on_a_fixed_segment_are_405_with_its_allow(
    app: FastAPI, api: Caller
) -> None:
    problems = []
    for fixed, (allowed, siblings) in sorted(shadowed_fixed_routes(app).items()):
        allowed = allowed | ({"HEAD"} if "GET" in allowed else set())  # HEAD is GET, bodiless
        expected_allow = ", ".join(sorted(allowed))
        path = _concrete(fixed)[len(API_PREFIX) :]
        for method in METHODS:
            if method in allowed:
                continue
            for variant in (path, path.rstrip("/")):  # with and without the trailing slash
                r = await api.client.request(method, variant)
                got = (r.status_code, r.headers.get("allow"))
                if got != (405, expected_allow):
                    problems.append(f"{method} {variant} (beside {siblings}): {got} {r.text[:120]}")
                elif method != "HEAD":
                    body = assert_error(r, 405, "METHOD_NOT_ALLOWED")
                    assert f"Allowed: {expected_allow}." in body["error"]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/data-items/create-from-file/", "POST"),
        ("DELETE", "/data-items/import-bundle", "POST"),
        ("GET", "/data-items/{id}/rows/bulk/", "POST"),
        ("PATCH", "/data-items/{id}/rows/bulk", "POST"),
        ("DELETE", "/data-items/{id}/rows/bulk/", "POST"),
        ("PUT", "/data-items/create-from-file/", "POST"),
        ("PUT", "/data-items/{id}/", "DELETE, GET, HEAD, PATCH"),
    ],
)
async def test_issue_examples_with_a_real_item(
    api: Caller, method: str, path: str, allow: str
) -> None:
    created = await api.client.post("/data-items/", json={"data_name": "Sales"})
    path = path.replace("{id}", str(created.json()["id"]))
    r = await api.client.request(method, path)
    body = assert_error(r, 405, "METHOD_NOT_ALLOWED")
    assert r.headers["allow"] == allow
    assert body["error"].endswith(f"Allowed: {allow}.")


async def test_parameter_routes_still_answer_for_their_own_values(api: Caller) -> None:
    created = await api.client.post(
        "/data-items/", json={"data_name": "Sales", "fields": [{"field_label": "Region"}]}
    )
    item = created.json()
    assert (await api.client.get(f"/data-items/{item['id']}/")).status_code == 200
    field_id = str(item["fields"][0]["id"])
    r = await api.client.post(f"/data-items/{item['id']}/rows/", json={"values": {field_id: "N"}})
    assert r.status_code == 201
    assert (await api.client.get(f"/data-items/{item['id']}/rows/0/")).status_code == 200
    r = await api.client.post(f"/data-items/{item['id']}/rows/bulk/", json={"rows": [{}]})
    assert r.status_code == 201, r.text
    # a value that is not a fixed segment still goes to the parameter route
    assert_error(await api.client.get("/data-items/not-a-number/"), 400, "VALIDATION_ERROR")
    assert_error(await api.client.get(f"/data-items/{item['id']}/rows/bulky/"), 404)


async def test_without_a_key_it_is_still_401_first(app: FastAPI) -> None:
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get(f"{API_PREFIX}/data-items/create-from-file/")
        assert_error(r, 401, "UNAUTHORIZED")
