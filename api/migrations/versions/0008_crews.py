"""crews and multi-day jobs: a visit's part (1..n) and role (lead or helper)

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("plan_visits") as batch:
        batch.add_column(sa.Column("part", sa.Integer(), nullable=True, comment="a multi-day job's day"))
        batch.add_column(sa.Column("role", sa.String(length=8), nullable=True, comment="lead or helper"))


def downgrade() -> None:
    with op.batch_alter_table("plan_visits") as batch:
        batch.drop_column("role")
        batch.drop_column("part")
