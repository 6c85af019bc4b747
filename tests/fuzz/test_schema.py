"""Property-based fuzzing with schemathesis over the service's own OpenAPI schema: every operation,
with a real key, over HTTP to the real app and database. Each case must get no 5xx, a status the
operation declares, and a body that matches the declared schema (schemathesis' default checks,
positive and negative data; see EXCLUDED).

The normal suite runs a few examples per operation (FUZZ_EXAMPLES, default 6). `make fuzz` runs
~1,000 per operation, bounded by FUZZ_SECONDS per operation, and prints the counts.

(schemathesis' own pytest plugin does not run on pytest 9 (it writes `Node._nodeid`), so the
operations are parametrized here and each one's cases come from its Hypothesis strategy.)
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from app.accounts.scopes import Scope, required_scope
from app.main import create_app
from tests.conftest import make_settings
from tests.fixtures.live import LiveServer, live_server
from tests.fuzz.world import World

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
SECONDS_PER_OPERATION = float(os.environ.get("FUZZ_SECONDS", "20"))

pytestmark = pytest.mark.slow


def _schema() -> Any:
    """The schema the app serves at /openapi.json (built without a database)."""
    app = create_app(make_settings(), database_url="postgresql+asyncpg://unused@127.0.0.1/unused")
    loaded = schemathesis.openapi.from_dict(app.openapi())
    loaded.config.generation.update(with_security_parameters=False)
    return loaded


# Not run: "a schema-valid request is accepted". Many 400s are rules a schema cannot state (a row
# key must be a field id of *this* item, a label unique within the item, a file readable as a
# table); the schema says what it can (lengths, ranges, enums, not-null), and every other check
# (no 5xx, declared statuses, content types and headers, response bodies, schema-violating
# requests refused, auth enforced) runs on every case.
EXCLUDED = [positive_data_acceptance]
# Multipart form fields are text: a "number" generated to violate `type: string` arrives as the
# string "1.5", which is valid. For those cases "schema-violating request refused" cannot hold.
EXCLUDED_MULTIPART_NEGATIVE = [*EXCLUDED, negative_data_rejection]


# The fuzzed service has no model configured (LLM_BASE_URL): a question's answer is the 501 its
# operation declares, which is what schemathesis's "not a server error" check refuses; every
# other check (declared status, body schema) still holds it.
NOT_CONFIGURED = {"/api/v1/data-items/{item_id}/ask/"}


def _excluded(case: Any) -> list[Any]:
    body = case.meta.components.get(ParameterLocation.BODY) if case.meta else None
    negative = body is not None and body.mode is GenerationMode.NEGATIVE
    excluded = EXCLUDED
    if negative and (case.media_type or "").startswith("multipart/"):
        excluded = EXCLUDED_MULTIPART_NEGATIVE
    if case.operation.path in NOT_CONFIGURED:
        excluded = [*excluded, not_a_server_error]
    return excluded


SCHEMA = _schema()
OPERATIONS = {op.label: op for op in (r.ok() for r in SCHEMA.get_all_operations())}


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[LiveServer]:
    with live_server(database_url) as server:
        yield server


@pytest.fixture(scope="module")
def world(live: LiveServer) -> Iterator[World]:
    w = World(live)
    yield w
    if os.environ.get("FUZZ_REPORT"):
        with open(os.environ["FUZZ_REPORT"], "w") as out:
            out.write(w.report() + "\n")


def _strategy(operation: Any) -> Any:
    modes = [
        operation.as_strategy(generation_mode=mode)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]
    return st.one_of(modes)


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_every_operation_keeps_its_schema(label: str, live: LiveServer, world: World) -> None:
    operation = OPERATIONS[label]
    started = time.monotonic()

    @given(case=_strategy(operation))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: Any) -> None:
        if time.monotonic() - started > SECONDS_PER_OPERATION:
            world.skipped[label] += 1
            return
        world.aim(case)
        response = case.call_and_validate(
            base_url=live.url, session=world.session, timeout=30, excluded_checks=_excluded(case)
        )
        world.record(label, case.method.upper(), response.status_code)

    run()


# ----------------------------------------------------------------------------- a read-only key

# every operation a read-only key may not use (POST …/query/ and …/ask/ only read)
WRITES = sorted(
    label
    for label, op in OPERATIONS.items()
    if op.path.startswith("/api/v1/")
    and required_scope(op.method.upper(), op.path) is not Scope.READ
)


@pytest.fixture(scope="module")
def reader(live: LiveServer, world: World) -> tuple[requests.Session, dict[str, Any]]:
    """A read-only key of the world's account, and what the account holds before it is used."""
    made = world.api("POST", "/keys/", json={"name": "fuzz reader", "scopes": ["read"]})
    session = requests.Session()
    session.headers["X-Api-Key"] = made["api_key"]
    return session, _holdings(world)


def _holdings(world: World) -> dict[str, Any]:
    """Everything a write could change, as the full key reads it."""
    if world.dirty:
        world.seed()
    items = world.api("GET", "/data-items/", params={"limit": 1000})
    out: dict[str, Any] = {"items": items}
    for entry in items["data_items"]:
        item = entry["id"]
        out[f"{item}"] = world.api("GET", f"/data-items/{item}/")
        out[f"{item}/rows"] = world.api("GET", f"/data-items/{item}/rows/", params={"limit": 500})
        out[f"{item}/widgets"] = world.api("GET", f"/data-items/{item}/widgets/")
    out["webhooks"] = world.api("GET", "/webhooks/")
    out["dashboards"] = world.api("GET", "/dashboards/")
    out["keys"] = [
        {k: v for k, v in key.items() if k != "last_used_at"}
        for key in world.api("GET", "/keys/")["keys"]
    ]
    return out


@pytest.mark.parametrize("label", WRITES)
def test_a_read_only_key_writes_nothing(
    label: str, live: LiveServer, world: World, reader: tuple[requests.Session, dict[str, Any]]
) -> None:
    """Every write operation, generated cases aimed at the account's real resources, with a key
    that has only the `read` scope: no 5xx, never a 2xx, and the account unchanged."""
    session, before = reader
    operation = OPERATIONS[label]
    started = time.monotonic()

    @given(case=_strategy(operation))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: Any) -> None:
        if time.monotonic() - started > SECONDS_PER_OPERATION:
            world.skipped[label] += 1
            return
        world.aim(case)
        response = case.call(base_url=live.url, session=session, timeout=30)
        assert response.status_code < 500, (label, response.status_code, response.text[:300])
        assert not 200 <= response.status_code < 300, (label, response.status_code)
        world.record(label + " (read-only key)", case.method.upper(), response.status_code)

    run()
    assert _holdings(world) == before
