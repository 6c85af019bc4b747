"""What each operation needs from the key that calls it: one scope, and for keys limited to some
data items, whether the operation may be used at all.

Scopes:
  read    everything a GET shows of the account's data: items, fields, rows, statistics,
          widgets and their data, exports, jobs, uploads
  write   rows, fields and uploads: create-from-file, append-from-file, upload deletion
  manage  items, widgets, dashboards and webhooks: creating, changing and deleting them, copies
          and bundle imports (webhook settings are read with `manage` too: they hold URLs)
  admin   keys and the audit trail

Every operation of the API is declared in OPERATIONS: a route missing from it fails the app's
start (and the suite), so a new operation cannot go out without a scope. A key limited to some
data items (`data_items`) sees the others as missing (404, and left out of listings); the
operations that create an item (CREATES_ITEM) or concern the whole account (ACCOUNT_WIDE) are
refused to it (403).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    MANAGE = "manage"
    ADMIN = "admin"


ALL_SCOPES: Final = frozenset(Scope)

READ, WRITE, MANAGE, ADMIN = Scope.READ, Scope.WRITE, Scope.MANAGE, Scope.ADMIN
_ITEM = "/api/v1/data-items/{item_id}"
_WIDGET = _ITEM + "/widgets/{widget_id}"

OPERATIONS: Final[dict[tuple[str, str], Scope]] = {
    ("GET", "/api/v1/status/"): READ,
    ("GET", "/api/v1/usage/"): READ,
    # items
    ("GET", "/api/v1/data-items/"): READ,
    ("POST", "/api/v1/data-items/"): MANAGE,
    ("GET", _ITEM + "/"): READ,
    ("PATCH", _ITEM + "/"): MANAGE,
    ("DELETE", _ITEM + "/"): MANAGE,
    ("POST", _ITEM + "/copy/"): MANAGE,
    ("GET", _ITEM + "/export/"): READ,
    ("GET", _ITEM + "/bundle/"): READ,
    ("POST", "/api/v1/data-items/import-bundle/"): MANAGE,
    # uploads
    ("POST", "/api/v1/data-items/create-from-file/"): WRITE,
    ("POST", _ITEM + "/append-from-file/"): WRITE,
    ("GET", _ITEM + "/reference-files/{file_id}/"): READ,
    ("GET", "/api/v1/uploads/"): READ,
    ("GET", "/api/v1/uploads/{upload_id}/"): READ,
    ("DELETE", "/api/v1/uploads/{upload_id}/"): WRITE,
    ("GET", "/api/v1/jobs/"): READ,
    ("GET", "/api/v1/jobs/{job_id}/"): READ,
    # fields
    ("GET", _ITEM + "/fields/"): READ,
    ("POST", _ITEM + "/fields/"): WRITE,
    ("PATCH", _ITEM + "/fields/{field_id}/"): WRITE,
    ("DELETE", _ITEM + "/fields/{field_id}/"): WRITE,
    # rows and statistics
    ("GET", _ITEM + "/rows/"): READ,
    ("POST", _ITEM + "/rows/"): WRITE,
    ("PATCH", _ITEM + "/rows/"): WRITE,
    ("DELETE", _ITEM + "/rows/"): WRITE,
    ("POST", _ITEM + "/rows/bulk/"): WRITE,
    ("GET", _ITEM + "/rows/{row_ref}/"): READ,
    ("PATCH", _ITEM + "/rows/{row_ref}/"): WRITE,
    ("DELETE", _ITEM + "/rows/{row_ref}/"): WRITE,
    ("GET", _ITEM + "/summary/"): READ,
    ("POST", _ITEM + "/ask/"): READ,
    ("POST", _ITEM + "/query/"): READ,
    # widgets
    ("GET", _ITEM + "/widgets/"): READ,
    ("POST", _ITEM + "/widgets/"): MANAGE,
    ("GET", _WIDGET + "/"): READ,
    ("PATCH", _WIDGET + "/"): MANAGE,
    ("DELETE", _WIDGET + "/"): MANAGE,
    ("GET", _WIDGET + "/data/"): READ,
    ("GET", _WIDGET + "/chart.svg/"): READ,
    ("GET", _WIDGET + "/chart.png/"): READ,
    ("GET", _WIDGET + "/insights/"): READ,
    ("GET", _WIDGET + "/series/"): READ,
    ("POST", _WIDGET + "/series/"): MANAGE,
    ("GET", _WIDGET + "/series/{series_id}/"): READ,
    ("PATCH", _WIDGET + "/series/{series_id}/"): MANAGE,
    ("DELETE", _WIDGET + "/series/{series_id}/"): MANAGE,
    # dashboards
    ("GET", "/api/v1/dashboards/"): READ,
    ("POST", "/api/v1/dashboards/"): MANAGE,
    ("GET", "/api/v1/dashboards/{dashboard_id}/"): READ,
    ("PATCH", "/api/v1/dashboards/{dashboard_id}/"): MANAGE,
    ("DELETE", "/api/v1/dashboards/{dashboard_id}/"): MANAGE,
    ("GET", "/api/v1/dashboards/{dashboard_id}/image.svg/"): READ,
    ("GET", "/api/v1/dashboards/{dashboard_id}/image.png/"): READ,
    ("GET", "/api/v1/dashboards/{dashboard_id}/image.pdf/"): READ,
    ("GET", "/api/v1/dashboards/{dashboard_id}/shares/"): READ,
    ("POST", "/api/v1/dashboards/{dashboard_id}/shares/"): MANAGE,
    ("DELETE", "/api/v1/dashboards/{dashboard_id}/shares/{share_id}/"): MANAGE,
    # webhooks
    ("GET", "/api/v1/webhooks/"): MANAGE,
    ("POST", "/api/v1/webhooks/"): MANAGE,
    ("GET", "/api/v1/webhooks/{webhook_id}/"): MANAGE,
    ("DELETE", "/api/v1/webhooks/{webhook_id}/"): MANAGE,
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries/"): MANAGE,
    ("POST", "/api/v1/webhooks/{webhook_id}/ping/"): MANAGE,
    # keys and audit
    ("GET", "/api/v1/keys/"): ADMIN,
    ("POST", "/api/v1/keys/"): ADMIN,
    ("GET", "/api/v1/keys/{key_id}/"): ADMIN,
    ("DELETE", "/api/v1/keys/{key_id}/"): ADMIN,
    ("GET", "/api/v1/audit/"): ADMIN,
}

# Refused (403) to a key limited to some data items.
CREATES_ITEM: Final = frozenset(
    {
        ("POST", "/api/v1/data-items/"),
        ("POST", "/api/v1/data-items/create-from-file/"),
        ("POST", "/api/v1/data-items/import-bundle/"),
        ("POST", _ITEM + "/copy/"),
    }
)
ACCOUNT_WIDE: Final = frozenset(
    op
    for op in OPERATIONS
    if op[1].startswith(
        (
            "/api/v1/webhooks/",
            "/api/v1/keys/",
            "/api/v1/audit/",
            "/api/v1/usage/",
            "/api/v1/dashboards/",
        )
    )
)


def required_scope(method: str, path: str) -> Scope | None:
    """The scope an operation needs (HEAD: its GET's), None for an operation not declared."""
    return OPERATIONS.get(("GET" if method == "HEAD" else method, path))


def undeclared(operations: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """Operations of the app without a declared scope (the app refuses to start with any)."""
    return sorted(op for op in operations if op not in OPERATIONS)
