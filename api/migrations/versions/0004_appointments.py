"""appointment holds, the slot-token secret, the plan-write lock

Revision ID: 0004
Revises: 0003
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "appointment_holds",
        sa.Column("token", sa.String(length=64), primary_key=True),
        sa.Column("job_id", sa.String(length=64), nullable=False, index=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("technician_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
    )
    secrets_table = op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(length=32), primary_key=True),
        sa.Column("value", sa.String(length=128), nullable=False),
    )
    # Slot tokens are signed with this; every process of one deployment shares it through the database.
    op.bulk_insert(secrets_table, [{"name": "slot_tokens", "value": secrets.token_hex(32)}])
    locks = sa.table("locks", sa.column("name", sa.String))
    op.bulk_insert(locks, [{"name": "plan-write"}])


def downgrade() -> None:
    op.execute("DELETE FROM locks WHERE name = 'plan-write'")
    op.drop_table("service_secrets")
    op.drop_table("appointment_holds")
