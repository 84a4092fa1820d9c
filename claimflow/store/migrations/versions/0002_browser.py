"""applications.allowed_origins: browser origins allowed to call the token endpoint (CORS)

Revision ID: 0002_browser
Revises: 0002_resilience
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_browser"
down_revision = "0002_resilience"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "applications",
        sa.Column("allowed_origins", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )


def downgrade() -> None:
    with op.batch_alter_table("applications") as batch:
        batch.drop_column("allowed_origins")
