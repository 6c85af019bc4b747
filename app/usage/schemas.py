from __future__ import annotations

from pydantic import Field

from app.core.schemas import Schema


class UsageRead(Schema):
    data_items: int = Field(examples=[3], description="Data items you own.")
    rows: int = Field(examples=[125000], description="Rows across them.")
    stored_bytes: int = Field(
        examples=[48_234_496], description="`row_bytes` + `reference_file_bytes`."
    )
    row_bytes: int = Field(
        examples=[41_000_960],
        description=(
            "Disk space of your items' rows: each item's partition with its indexes and TOAST, "
            "as PostgreSQL reports it (space freed by deletes is counted until vacuumed)."
        ),
    )
    reference_file_bytes: int = Field(
        examples=[7_233_536], description="The uploaded files kept with your items, as uploaded."
    )
    requests_last_day: int = Field(
        examples=[1520],
        description="API requests made with any of your keys in the last 24 hours (this one too).",
    )
    rate_limit_per_minute: int | None = Field(
        examples=[600], description="Requests allowed per key per minute; null: no limit."
    )
