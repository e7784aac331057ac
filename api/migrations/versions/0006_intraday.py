"""the day as it happens: events, positions, notice delivery, customer contacts

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "day_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date(), nullable=False, index=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("technician_id", sa.String(length=64), nullable=True),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "technician_positions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("technician_id", sa.String(length=64), nullable=False, index=True),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    with op.batch_alter_table("service_requests") as batch:
        batch.add_column(sa.Column("contact", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("visit_reported_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("appointment_holds") as batch:
        batch.add_column(sa.Column("contact", sa.JSON(), nullable=True))
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("technician_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("job_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("plan_version_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("recipient", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("delivery", sa.String(length=16), nullable=False, server_default="pending")
        )
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("delivered_to", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
    op.create_index("ix_notices_delivery", "notices", ["delivery", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_notices_delivery", table_name="notices")
    with op.batch_alter_table("notices") as batch:
        for name in (
            "last_error",
            "delivered_to",
            "delivered_at",
            "next_attempt_at",
            "attempts",
            "delivery",
            "recipient",
            "plan_version_id",
            "job_id",
            "technician_id",
        ):
            batch.drop_column(name)
    with op.batch_alter_table("appointment_holds") as batch:
        batch.drop_column("contact")
    with op.batch_alter_table("service_requests") as batch:
        batch.drop_column("visit_reported_at")
        batch.drop_column("contact")
    op.drop_table("technician_positions")
    op.drop_table("day_events")
