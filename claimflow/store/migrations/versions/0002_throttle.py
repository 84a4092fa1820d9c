"""sign-in throttle: attempts counted before the check, lock back-off, row expiry

The throttle's rows are counters of the last few minutes, not records: the table is recreated
rather than altered (``failures`` becomes ``attempts``, counted before the password check, and
``lockouts`` and ``expires_on`` are new), so an upgrade forgets at most one window of counts.

Revision ID: 0002_throttle
Revises: 0002_resilience
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_throttle"
down_revision = "0002_resilience"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("login_attempts")
    op.create_table(
        "login_attempts",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.Column("expires_on", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_attempts")),
    )


def downgrade() -> None:
    op.drop_table("login_attempts")
    op.create_table(
        "login_attempts",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_attempts")),
    )
