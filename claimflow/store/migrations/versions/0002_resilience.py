"""billing versions and the refresh-token reuse grace

Revision ID: 0002_resilience
Revises: 0002_grants
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_resilience"
down_revision = "0002_grants"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "billing_versions",
        sa.Column("subject", sa.String(length=80), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_billing_versions")),
    )
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("successor_sealed", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("successor_sealed")
    op.drop_table("billing_versions")
