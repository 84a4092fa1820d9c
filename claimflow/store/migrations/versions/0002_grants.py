"""registered APIs, their scopes, authorized applications and their granted API scopes

Revision ID: 0002_grants
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_grants"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "apis",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("audience", sa.String(length=255), nullable=False),
        sa.Column("created_on", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apis")),
        sa.UniqueConstraint("audience", name=op.f("uq_apis_audience")),
    )
    op.create_table(
        "api_scopes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("api_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_on", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_id"], ["apis.id"], name=op.f("fk_api_scopes_api_id_apis"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_scopes")),
        sa.UniqueConstraint("api_id", "key", name="uq_api_scopes_api_id_key"),
    )
    op.create_table(
        "api_applications",
        sa.Column("api_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("created_on", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_id"],
            ["apis.id"],
            name=op.f("fk_api_applications_api_id_apis"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["applications.client_id"],
            name=op.f("fk_api_applications_client_id_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("api_id", "client_id", name=op.f("pk_api_applications")),
    )
    op.create_index(
        "ix_api_applications_client_id", "api_applications", ["client_id"], unique=False
    )
    op.create_table(
        "api_application_scopes",
        sa.Column("api_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("scope_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_id", "client_id"],
            ["api_applications.api_id", "api_applications.client_id"],
            name="fk_api_application_scopes_api_applications",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["scope_id"],
            ["api_scopes.id"],
            name=op.f("fk_api_application_scopes_scope_id_api_scopes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "api_id", "client_id", "scope_id", name=op.f("pk_api_application_scopes")
        ),
    )


def downgrade() -> None:
    op.drop_table("api_application_scopes")
    op.drop_index("ix_api_applications_client_id", table_name="api_applications")
    op.drop_table("api_applications")
    op.drop_table("api_scopes")
    op.drop_table("apis")
