"""Dispatcher: the audit trail, and the notices for whoever must be told something."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from api.deps import Dispatcher, SessionDep
from api.schemas import PROTECTED
from api.tables import AuditRow, NoticeRow

router = APIRouter(tags=["audit"], responses=PROTECTED)


class AuditPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]


class NoticePublic(BaseModel):
    id: int
    at: datetime
    audience: str
    kind: str
    subject: str
    message: str
    detail: dict[str, Any]
    technician_id: str | None = None
    job_id: str | None = None
    plan_version_id: int | None = None
    recipient: dict[str, Any] | None = Field(None, description="a customer's contact details")
    delivery: str = Field(description="pending, delivered (to every webhook) or failed (gave up)")
    attempts: int
    delivered_at: datetime | None = None
    next_attempt_at: datetime | None = None
    last_error: str | None = None


@router.get("/v1/audit", response_model=list[AuditPublic])
def audit_log(
    session: SessionDep,
    _: Dispatcher,
    subject: Annotated[str | None, Query(max_length=100, description="a request, technician or day")] = None,
    action: Annotated[str | None, Query(max_length=48)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditPublic]:
    """Who created, pinned, published, cancelled or changed what, and when; newest first."""
    query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
    if subject is not None:
        query = query.where(AuditRow.subject == subject)
    if action is not None:
        query = query.where(AuditRow.action == action)
    return [AuditPublic.model_validate(r, from_attributes=True) for r in session.scalars(query)]


@router.get("/v1/notices", response_model=list[NoticePublic])
def notices(
    session: SessionDep,
    _: Dispatcher,
    subject: Annotated[str | None, Query(max_length=100)] = None,
    audience: Annotated[Literal["dispatcher", "technician", "customer"] | None, Query()] = None,
    delivery: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[NoticePublic]:
    """What someone must be told (a promise that cannot be kept, a route changed, a customer's new
    ETA), with its delivery to the webhooks; newest first."""
    query = select(NoticeRow).order_by(NoticeRow.id.desc()).limit(limit)
    if subject is not None:
        query = query.where(NoticeRow.subject == subject)
    if audience is not None:
        query = query.where(NoticeRow.audience == audience)
    if delivery is not None:
        query = query.where(NoticeRow.delivery == delivery)
    return [NoticePublic.model_validate(r, from_attributes=True) for r in session.scalars(query)]
