"""published versions and proposals, request reasons and promises, audit, notices, feed tokens

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("current_plans") as batch:
        batch.add_column(sa.Column("published_version_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_current_plans_published", "plan_versions", ["published_version_id"], ["id"]
        )
    # A day published before this revision showed its one version to technicians.
    op.execute(
        "UPDATE current_plans SET published_version_id = plan_version_id WHERE published_at IS NOT NULL"
    )
    with op.batch_alter_table("service_requests") as batch:
        batch.add_column(sa.Column("visit_version_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reason", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("reason_detail", sa.Text(), nullable=True))
        batch.add_column(sa.Column("promise_start", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("promise_end", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_subject", "audit_log", ["subject"])
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notices_at", "notices", ["at"])
    op.create_index("ix_notices_subject", "notices", ["subject"])
    op.create_table(
        "feed_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("technician_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_feed_tokens_technician_id", "feed_tokens", ["technician_id"])


def downgrade() -> None:
    op.drop_table("feed_tokens")
    op.drop_table("notices")
    op.drop_table("audit_log")
    with op.batch_alter_table("service_requests") as batch:
        for column in ("promise_end", "promise_start", "reason_detail", "reason", "visit_version_id"):
            batch.drop_column(column)
    with op.batch_alter_table("current_plans") as batch:
        batch.drop_constraint("fk_current_plans_published", type_="foreignkey")
        batch.drop_column("published_version_id")
