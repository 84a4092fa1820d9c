"""Organization-scoped M2M applications: ``applications.org_code``.

Kinde's ``POST /api/v1/applications`` takes ``org_code`` ("Scope an M2M application to an
org"); the application's client-credentials tokens then carry it.

Revision ID: 0003_plans
Revises: 0003_flags
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_plans"
down_revision = "0003_flags"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("org_code", sa.String(64), nullable=True))
        batch_op.create_index("ix_applications_org_code", ["org_code"])


def downgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_index("ix_applications_org_code")
        batch_op.drop_column("org_code")
