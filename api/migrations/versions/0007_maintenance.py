"""maintenance contracts, assets, occurrences; shifts derived from availability templates

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("spec", sa.JSON(), nullable=False, comment="models.Asset"),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "maintenance_contracts",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("spec", sa.JSON(), nullable=False, comment="models.MaintenanceContract"),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cancelled_on", sa.Date(), nullable=True),
        sa.Column("last_done", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "maintenance_occurrences",
        sa.Column("key", sa.String(length=64), primary_key=True),
        sa.Column("contract_id", sa.String(length=64), nullable=False, index=True),
        sa.Column("asset_id", sa.String(length=64), nullable=False),
        sa.Column("nominal", sa.Date(), nullable=False),
        sa.Column("earliest", sa.Date(), nullable=False),
        sa.Column("due", sa.Date(), nullable=False, index=True),
        sa.Column("latest", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("done_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("technician_shifts") as batch:
        batch.add_column(
            sa.Column(
                "source",
                sa.String(length=8),
                nullable=False,
                server_default="typed",
                comment="typed, or derived from the template",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("technician_shifts") as batch:
        batch.drop_column("source")
    op.drop_table("maintenance_occurrences")
    op.drop_table("maintenance_contracts")
    op.drop_table("assets")
