"""Import jobs: a file upload run in the background, and the uploaded bytes it runs from.

The job row is the only state: any replica answers a poll, and whichever replica claims a queued
job runs it (the upload is stored in `import_job_chunks`, not on one replica's disk). The chunks
are deleted when the job ends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAtMixin, IdMixin

JOB_KINDS = ("create_from_file", "append_from_file")
JOB_STATUSES = ("queued", "running", "succeeded", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class ImportJob(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "import_jobs"
    __table_args__ = (
        CheckConstraint(_in("kind", JOB_KINDS), name="kind"),
        CheckConstraint(_in("status", JOB_STATUSES), name="status"),
        Index("ix_import_jobs_account_id_id", "account_id", text("id DESC")),
        Index("ix_import_jobs_queued", "id", postgresql_where=text("status = 'queued'")),
        Index("ix_import_jobs_running", "id", postgresql_where=text("status = 'running'")),
        Index(
            "ix_import_jobs_finished_at",
            "finished_at",
            postgresql_where=text("status IN ('succeeded', 'failed')"),
        ),
    )

    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="queued")
    # append: the target item; create: the new item, set when the job succeeds
    data_item_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("data_items.id", ondelete="SET NULL"), nullable=True, index=True
    )
    # the form fields of the upload (data_name, data_description, sheet, add_new_fields)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    # the reference file the job stored, set when it succeeds (unique: one job stores one file);
    # NULL once that file is deleted (DELETE /uploads/{id}/), and for a job that failed
    reference_file_id: Mapped[int | None] = mapped_column(
        BigInteger,
        ForeignKey("reference_files.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
        unique=True,
    )
    filename: Mapped[str] = mapped_column(Text, nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(Text, nullable=False)
    rows_processed: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    rows_total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    request_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    # who runs it (host:pid:nonce) and when it last said it is alive
    worker: Mapped[str | None] = mapped_column(Text, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ImportJobChunk(Base):
    """The uploaded file of a job that has not ended yet, in 1 MiB pieces."""

    __tablename__ = "import_job_chunks"

    job_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("import_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
