"""Import jobs know the reference file they stored (GET /uploads/ shows each file's job).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 03:00:00

`import_jobs.reference_file_id` is set by the job worker in the job's own transaction, when it
succeeds; deleting the file (DELETE /uploads/{id}/, or its item) sets it back to NULL, through
the unique index rather than a scan of the jobs. Jobs that succeeded before this revision are
linked from their stored result (`result.reference_file.id`, a file of the job's item).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("import_jobs", sa.Column("reference_file_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        "fk_import_jobs_reference_file_id_reference_files",
        "import_jobs",
        "reference_files",
        ["reference_file_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_index(
        "ix_import_jobs_reference_file_id", "import_jobs", ["reference_file_id"], unique=True
    )
    op.execute(
        """
        UPDATE import_jobs j
           SET reference_file_id = f.id
          FROM reference_files f
         WHERE j.status = 'succeeded'
           AND f.data_item_id = j.data_item_id
           AND f.id = CASE WHEN j.result -> 'reference_file' ->> 'id' ~ '^[0-9]{1,18}$'
                           THEN (j.result -> 'reference_file' ->> 'id')::bigint END
        """
    )


def downgrade() -> None:
    op.drop_index("ix_import_jobs_reference_file_id", table_name="import_jobs")
    op.drop_constraint(
        "fk_import_jobs_reference_file_id_reference_files", "import_jobs", type_="foreignkey"
    )
    op.drop_column("import_jobs", "reference_file_id")
