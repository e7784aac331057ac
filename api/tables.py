"""The service's tables (SQLAlchemy 2). Domain types stay in `models/`; rows here only store them.

Plan versions are immutable once written; `current_plans` points each day at one version, so a
reader that follows the pointer sees one whole version, never a mix.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (no zones) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: UtcDateTime,
    }


class TechnicianRow(Base):
    __tablename__ = "technicians"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]] = mapped_column(comment="models.Technician without its shifts")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    route_revision: Mapped[int] = mapped_column(
        Integer,
        default=0,
        server_default="0",
        comment="raised when a visit of this technician changes status",
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    shifts: Mapped[list[ShiftRow]] = relationship(
        back_populates="technician", cascade="all, delete-orphan", order_by="ShiftRow.date"
    )


class ShiftRow(Base):
    __tablename__ = "technician_shifts"

    technician_id: Mapped[str] = mapped_column(
        ForeignKey("technicians.id", ondelete="CASCADE"), primary_key=True
    )
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    start: Mapped[str] = mapped_column(String(5))
    end: Mapped[str] = mapped_column(String(5))
    source: Mapped[str] = mapped_column(
        String(8), default="typed", server_default="typed", comment="typed, or derived from the template"
    )
    technician: Mapped[TechnicianRow] = relationship(back_populates="shifts")


class RequestRow(Base):
    """A service request: the job to plan and where it stands in its life cycle."""

    __tablename__ = "service_requests"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(comment="models.Job")
    address: Mapped[str | None] = mapped_column(Text)
    technician_id: Mapped[str | None] = mapped_column(String(64), index=True)
    planned_date: Mapped[date | None] = mapped_column(Date)
    visit_status: Mapped[str | None] = mapped_column(String(16))
    visit_version_id: Mapped[int | None] = mapped_column(
        Integer, comment="the plan version whose visit the technician reported on"
    )
    failure_reason: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(String(32), comment="why it is open: a plan's reason code")
    reason_detail: Mapped[str | None] = mapped_column(Text)
    promise_start: Mapped[datetime | None] = mapped_column(comment="the window promised to the customer")
    promise_end: Mapped[datetime | None] = mapped_column()
    contact: Mapped[dict[str, Any] | None] = mapped_column(
        comment="the customer's name, phone, email: notices only"
    )
    visit_reported_at: Mapped[datetime | None] = mapped_column(comment="when the technician last reported")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class IdempotencyRow(Base):
    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    scope: Mapped[str] = mapped_column(String(100), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PlanVersionRow(Base):
    __tablename__ = "plan_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    trigger: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("replan_runs.id"))
    horizon_start: Mapped[date] = mapped_column(Date)
    horizon_days: Mapped[int] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64))
    kpis: Mapped[dict[str, Any]] = mapped_column()
    solver: Mapped[dict[str, Any]] = mapped_column()
    unassigned: Mapped[list[Any]] = mapped_column()
    routes: Mapped[list[RouteRow]] = relationship(
        back_populates="version", order_by="(RouteRow.date, RouteRow.technician_id)"
    )


class RouteRow(Base):
    __tablename__ = "plan_routes"
    __table_args__ = (Index("ix_plan_routes_version_day_tech", "plan_version_id", "date", "technician_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_version_id: Mapped[int] = mapped_column(ForeignKey("plan_versions.id", ondelete="CASCADE"))
    technician_id: Mapped[str] = mapped_column(String(64))
    date: Mapped[date] = mapped_column(Date)
    start: Mapped[datetime] = mapped_column()
    end: Mapped[datetime] = mapped_column()
    distance_km: Mapped[float] = mapped_column(Float)
    travel_minutes: Mapped[float] = mapped_column(Float)
    overtime_minutes: Mapped[float] = mapped_column(Float)
    break_start: Mapped[datetime | None] = mapped_column()
    break_end: Mapped[datetime | None] = mapped_column()
    version: Mapped[PlanVersionRow] = relationship(back_populates="routes")
    visits: Mapped[list[VisitRow]] = relationship(back_populates="route", order_by="VisitRow.seq")


class VisitRow(Base):
    __tablename__ = "plan_visits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("plan_routes.id", ondelete="CASCADE"), index=True)
    plan_version_id: Mapped[int] = mapped_column(
        ForeignKey("plan_versions.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[str] = mapped_column(String(64), index=True)
    arrival: Mapped[datetime] = mapped_column()
    start: Mapped[datetime] = mapped_column()
    end: Mapped[datetime] = mapped_column()
    part: Mapped[int | None] = mapped_column(Integer, comment="a multi-day job's day")
    role: Mapped[str | None] = mapped_column(String(8), comment="lead or helper")
    route: Mapped[RouteRow] = relationship(back_populates="visits")


class RouteBodyRow(Base):
    """A technician's published route as the API answers it, rendered once at publication so a
    worker's first pull is one lookup, not a build (500 technicians pull within seconds of it)."""

    __tablename__ = "route_bodies"

    plan_version_id: Mapped[int] = mapped_column(ForeignKey("plan_versions.id"), primary_key=True)
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    technician_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)


class CurrentPlanRow(Base):
    """One row per day: the newest version for it and the version technicians see.

    Before a day is first published, `plan_version_id` is its plan and nobody's route; once it is,
    technicians see `published_version_id`, and a newer `plan_version_id` is a proposal the
    dispatcher reviews and publishes (a route's ETag: the published version and the technician's
    `route_revision`).
    """

    __tablename__ = "current_plans"

    date: Mapped[date] = mapped_column(Date, primary_key=True)
    plan_version_id: Mapped[int] = mapped_column(ForeignKey("plan_versions.id"))
    published_version_id: Mapped[int | None] = mapped_column(ForeignKey("plan_versions.id"))
    published_at: Mapped[datetime | None] = mapped_column()

    @property
    def shown_version_id(self) -> int:
        """What a dispatcher calls the current plan: the published version, else the plan."""
        return self.published_version_id or self.plan_version_id

    @property
    def proposed_version_id(self) -> int | None:
        if self.published_version_id is not None and self.plan_version_id != self.published_version_id:
            return self.plan_version_id
        return None


class RunRow(Base):
    __tablename__ = "replan_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trigger: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    horizon_start: Mapped[date] = mapped_column(Date)
    horizon_days: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(32), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    plan_version_id: Mapped[int | None] = mapped_column(Integer)
    holder: Mapped[str | None] = mapped_column(String(100))
    from_now: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=true(), comment="plan nothing new before the run's start"
    )
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class LockRow(Base):
    """One row per named lock; `holder` NULL means free. Works the same on SQLite and PostgreSQL."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(100))
    acquired_at: Mapped[datetime | None] = mapped_column()
    heartbeat_at: Mapped[datetime | None] = mapped_column()


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    role: Mapped[str] = mapped_column(String(16))
    technician_id: Mapped[str | None] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()


class AuditRow(Base):
    """Who did what, when: creations, pins, publications, cancellations, status changes, keys."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_subject", "subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100), comment="key id and role, or the scheduler")
    action: Mapped[str] = mapped_column(String(48))
    subject: Mapped[str] = mapped_column(String(100))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class NoticeRow(Base):
    """Something someone must be told: a promise that cannot be kept, a visit that moved."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    audience: Mapped[str] = mapped_column(String(16), comment="dispatcher, technician or customer")
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(100), index=True)
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    technician_id: Mapped[str | None] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(64))
    plan_version_id: Mapped[int | None] = mapped_column(Integer)
    recipient: Mapped[dict[str, Any] | None] = mapped_column(comment="a customer's contact details")
    # The outbox: each notice goes to every configured webhook once (`api.outbox`).
    delivery: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()
    delivered_to: Mapped[list[Any] | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_notices_delivery", "delivery", "next_attempt_at"),)


class FeedTokenRow(Base):
    """A read-only calendar subscription for one technician: calendar apps cannot send headers."""

    __tablename__ = "feed_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    technician_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()


class HoldRow(Base):
    """One offered slot held for a customer who is deciding: its capacity is not offered to others."""

    __tablename__ = "appointment_holds"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64), index=True)
    request_id: Mapped[str | None] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(comment="models.Job of the slot query")
    address: Mapped[str | None] = mapped_column(Text)
    contact: Mapped[dict[str, Any] | None] = mapped_column()
    start: Mapped[datetime] = mapped_column()
    end: Mapped[datetime] = mapped_column()
    technician_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_by: Mapped[str] = mapped_column(String(100))
    consumed_at: Mapped[datetime | None] = mapped_column()


class SecretRow(Base):
    """Secrets every process of a deployment shares (the slot tokens' signing key)."""

    __tablename__ = "service_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))


class TravelMatrixRow(Base):
    """Travel times a dispatcher uploaded (`PUT /v1/travel/matrix`): they replace computed times for
    the pairs of places they cover."""

    __tablename__ = "travel_matrices"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(comment="models.TravelMatrix")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class GeocodeRow(Base):
    __tablename__ = "geocode_cache"

    query: Mapped[str] = mapped_column(String(500), primary_key=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    provider: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DayEventRow(Base):
    """Something that happened during a day (an absence, an emergency, an overrun, a delay): who
    said it and when. The in-day re-optimisation reads them as execution state."""

    __tablename__ = "day_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    type: Mapped[str] = mapped_column(String(32))
    technician_id: Mapped[str | None] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column()


class PositionRow(Base):
    """A technician's reported position: where their day goes on from, when they are between visits."""

    __tablename__ = "technician_positions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    technician_id: Mapped[str] = mapped_column(String(64), index=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(index=True)


class AssetRow(Base):
    """Installed equipment at a customer's site (`models.Asset`)."""

    __tablename__ = "assets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(comment="models.Asset")
    address: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ContractRow(Base):
    """A maintenance contract (`models.MaintenanceContract`) and what the service knows of its life:
    cancelled or not, and the last completed visit (floating contracts count from it)."""

    __tablename__ = "maintenance_contracts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(comment="models.MaintenanceContract")
    status: Mapped[str] = mapped_column(String(16), default="active")
    cancelled_on: Mapped[date | None] = mapped_column(Date)
    last_done: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OccurrenceRow(Base):
    """One visit of a contract, keyed by contract and nominal date (generation is idempotent); its
    service request has the same id. `status`: generated, withdrawn (the contract changed or was
    cancelled before the visit); where the visit stands is the request's status."""

    __tablename__ = "maintenance_occurrences"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    contract_id: Mapped[str] = mapped_column(String(64), index=True)
    asset_id: Mapped[str] = mapped_column(String(64))
    nominal: Mapped[date] = mapped_column(Date)
    earliest: Mapped[date] = mapped_column(Date)
    due: Mapped[date] = mapped_column(Date, index=True)
    latest: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="generated")
    done_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
