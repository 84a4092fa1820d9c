"""``refresh_tokens.predecessor_hash``: the token a refresh token replaced.

Every refresh's spend also clears the sealed successor kept for the reuse grace (RFC 9700
§4.14.2) on the family's earlier token. It used to find that token by ``family_id``, reading
every row the family had left (spent rows stay until they expire), so a session refreshed every
few minutes for a month paid for thousands of rows on each refresh. With the predecessor on the
row, the spend reads two rows by primary key.

Rows written before this revision have no predecessor: a sealed successor kept on one of them is
not cleared by the next spend but stays unusable (a retry with it finds its successor spent and
revokes the family, ``oidc.grants.refresh_token``) until housekeeping deletes the expired row.

Revision ID: 0004_refresh_predecessor
Revises: 0003_plans
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_refresh_predecessor"
down_revision = "0003_plans"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("predecessor_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_column("predecessor_hash")
