"""per-technician route revisions and routes rendered at publication

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("technicians") as batch:
        batch.add_column(
            sa.Column(
                "route_revision",
                sa.Integer(),
                nullable=False,
                server_default="0",
                comment="raised when a visit of this technician changes status",
            )
        )
    op.create_table(
        "route_bodies",
        sa.Column("plan_version_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("technician_id", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["plan_version_id"], ["plan_versions.id"]),
        sa.PrimaryKeyConstraint("plan_version_id", "date", "technician_id"),
    )


def downgrade() -> None:
    op.drop_table("route_bodies")
    with op.batch_alter_table("technicians") as batch:
        batch.drop_column("route_revision")
