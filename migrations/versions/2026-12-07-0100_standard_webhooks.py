"""Standard Webhooks signatures: webhooks created before them keep the body-only X-Signature.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 01:00:00

Every webhook that exists now is marked `legacy_signature`: its receiver was told to check
X-Signature (HMAC of the body, keyed with the secret string), so its deliveries keep carrying it
next to the Standard Webhooks headers. Webhooks created from now on get the standard headers only.

Secrets are not rewritten here: encrypting them needs WEBHOOK_SECRET_KEY, which the service does
at start-up (or `python -m app webhooks encrypt-secrets`). Before downgrading past this revision,
store them plain again (`python -m app webhooks decrypt-secrets`): older code signs with the stored
value as it is.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "webhooks",
        sa.Column(
            "legacy_signature", sa.Boolean(), nullable=False, server_default=sa.text("false")
        ),
    )
    op.execute("UPDATE webhooks SET legacy_signature = true")


def downgrade() -> None:
    op.drop_column("webhooks", "legacy_signature")
