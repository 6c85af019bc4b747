"""Parameters shared by the endpoints that can run as an import job."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

AsyncFlag = Annotated[
    bool,
    Query(
        alias="async",
        description=(
            "`true`: answer 202 at once with an import job to poll at `GET /jobs/{id}/` (its "
            "`result` is this endpoint's usual body). For big files."
        ),
    ),
]
