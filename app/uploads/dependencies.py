"""Path and request values of the upload routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from app.core.routing import API_PREFIX

UploadId = Annotated[
    int,
    Path(
        ge=1,
        le=2**63 - 1,
        description="Upload id (the reference file's id).",
        examples=[7],
    ),
]


def api_root(request: Request) -> str:
    """The API's path as the client reached it: a gateway's prefix (ROOT_PATH) and /api/v1."""
    return str(request.scope.get("root_path", "")).rstrip("/") + API_PREFIX


ApiRootDep = Annotated[str, Depends(api_root)]
