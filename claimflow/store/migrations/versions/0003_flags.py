"""Kinde's feature flags (with organization and user overrides) and properties (with values).

Revision ID: 0003_flags
Revises: 0002_kinde
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_flags"
down_revision = "0002_kinde"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _holder_table(name: str, holder: tuple[str, str, str], item: tuple[str, str]) -> None:
    """A value a user or organization (``holder``) holds of a flag or property (``item``)."""
    column, target, target_column = holder
    item_column, item_table = item
    op.create_table(
        name,
        sa.Column(column, sa.String(64), nullable=False),
        sa.Column(item_column, sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            [column],
            [f"{target}.{target_column}"],
            name=f"fk_{name}_{column}_{target}",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            [item_column],
            [f"{item_table}.id"],
            name=f"fk_{name}_{item_column}_{item_table}",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(column, item_column, name=f"pk_{name}"),
    )


def upgrade() -> None:
    op.create_table(
        "feature_flags",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("allow_override_level", sa.String(8), nullable=False),
        sa.Column("default_value", sa.Text(), nullable=False),
        sa.Column("created_on", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feature_flags"),
        sa.UniqueConstraint("key", name="uq_feature_flags_key"),
    )
    op.create_table(
        "properties",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("context", sa.String(8), nullable=False),
        sa.Column("is_private", sa.Boolean(), nullable=False),
        sa.Column("category_id", sa.String(64), nullable=True),
        sa.Column("created_on", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_properties"),
        sa.UniqueConstraint("key", name="uq_properties_key"),
    )
    org = ("org_code", "organizations", "code")
    user = ("user_id", "users", "id")
    _holder_table("organization_feature_flags", org, ("flag_id", "feature_flags"))
    _holder_table("user_feature_flags", user, ("flag_id", "feature_flags"))
    _holder_table("user_property_values", user, ("property_id", "properties"))
    _holder_table("organization_property_values", org, ("property_id", "properties"))


def downgrade() -> None:
    for table in (
        "organization_property_values",
        "user_property_values",
        "user_feature_flags",
        "organization_feature_flags",
        "properties",
        "feature_flags",
    ):
        op.drop_table(table)
