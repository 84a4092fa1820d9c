"""Kinde's roles and permissions, the event outbox and webhooks.

A membership's free-form role keys and permission strings (JSON columns) become rows of Kinde's
catalogue (``roles``, ``permissions``) and grants (``organization_user_roles``,
``organization_user_permissions``); existing keys are carried over with their key as name.

Revision ID: 0002_kinde
Revises: 0002_resilience (chained after the migrations already on main)
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002_kinde"
down_revision = "0002_resilience"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _create_access_tables() -> None:
    op.create_table(
        "roles",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_default_role", sa.Boolean(), nullable=False),
        sa.Column("created_on", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_roles"),
        sa.UniqueConstraint("key", name="uq_roles_key"),
    )
    op.create_table(
        "permissions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_on", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_permissions"),
        sa.UniqueConstraint("key", name="uq_permissions_key"),
    )
    op.create_table(
        "role_permissions",
        sa.Column("role_id", sa.String(64), nullable=False),
        sa.Column("permission_id", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["role_id"], ["roles.id"], name="fk_role_permissions_role_id_roles", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["permission_id"],
            ["permissions.id"],
            name="fk_role_permissions_permission_id_permissions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("role_id", "permission_id", name="pk_role_permissions"),
    )
    for table, column, target in (
        ("organization_user_roles", "role_id", "roles"),
        ("organization_user_permissions", "permission_id", "permissions"),
    ):
        op.create_table(
            table,
            sa.Column("org_code", sa.String(64), nullable=False),
            sa.Column("user_id", sa.String(64), nullable=False),
            sa.Column(column, sa.String(64), nullable=False),
            sa.ForeignKeyConstraint(
                [column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete="CASCADE"
            ),
            sa.ForeignKeyConstraint(
                ["org_code", "user_id"],
                ["memberships.org_code", "memberships.user_id"],
                name=f"fk_{table}_membership",
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("org_code", "user_id", column, name=f"pk_{table}"),
        )


def _keys(value: Any) -> list[str]:
    if isinstance(value, str):
        value = json.loads(value)
    return sorted({str(item) for item in value or ()})


def _carry_over_memberships(rows: list[Any]) -> None:
    """Each distinct key in the old JSON columns becomes a catalogue row; grants follow."""
    bind = op.get_bind()
    now = datetime.now(UTC)
    ids: dict[tuple[str, str], str] = {}

    def catalogue_id(table: str, prefix: str, key: str) -> str:
        if (table, key) not in ids:
            ids[(table, key)] = f"{prefix}_{secrets.token_hex(16)}"
            values = {"id": ids[(table, key)], "key": key, "name": key, "created_on": now}
            if table == "roles":
                values["is_default_role"] = False
            catalogue = sa.table(table, *(sa.column(name) for name in values))
            bind.execute(sa.insert(catalogue).values(**values))
        return ids[(table, key)]

    for org_code, user_id, role_keys, permission_keys in rows:
        member = {"org_code": org_code, "user_id": user_id}
        for key in _keys(role_keys):
            bind.execute(
                sa.text(
                    "INSERT INTO organization_user_roles (org_code, user_id, role_id) "
                    "VALUES (:org_code, :user_id, :role_id)"
                ),
                {**member, "role_id": catalogue_id("roles", "role", key)},
            )
        for key in _keys(permission_keys):
            bind.execute(
                sa.text(
                    "INSERT INTO organization_user_permissions (org_code, user_id, permission_id) "
                    "VALUES (:org_code, :user_id, :permission_id)"
                ),
                {**member, "permission_id": catalogue_id("permissions", "perm", key)},
            )


def _create_webhook_tables() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("created_on", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_on", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("webhook_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_on", TS, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("delivered_on", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name="fk_webhook_deliveries_event_id_events",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name="fk_webhook_deliveries_webhook_id_webhooks",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_on"]
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("worker", sa.String(64), nullable=False),
        sa.Column("attempted_on", TS, nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name="fk_webhook_attempts_delivery_id_webhook_deliveries",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_attempts"),
    )
    op.create_index("ix_webhook_attempts_delivery_id", "webhook_attempts", ["delivery_id"])


def upgrade() -> None:
    # Read the old grants and drop their columns BEFORE the grant tables exist: on SQLite the
    # batch drop rebuilds ``memberships``, and dropping the old copy would cascade into them.
    rows = list(
        op.get_bind().execute(
            sa.text("SELECT org_code, user_id, roles, permissions FROM memberships")
        )
    )
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_column("roles")
        batch_op.drop_column("permissions")
    _create_access_tables()
    _carry_over_memberships(rows)
    _create_webhook_tables()


def downgrade() -> None:
    """Back to free-form JSON columns, empty: the grants themselves are not carried back."""
    for table in (
        "webhook_attempts",
        "webhook_deliveries",
        "events",
        "webhooks",
    ):
        op.drop_table(table)
    for table in (
        "organization_user_permissions",
        "organization_user_roles",
        "role_permissions",
        "permissions",
        "roles",
    ):
        op.drop_table(table)
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.add_column(sa.Column("roles", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(
            sa.Column("permissions", sa.JSON(), nullable=False, server_default="[]")
        )
