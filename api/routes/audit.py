"""Dispatcher: the audit trail, and the notices for whoever must be told something."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
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
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[NoticePublic]:
    """What someone must be told (a promise that cannot be kept, a withdrawn appointment); newest first."""
    query = select(NoticeRow).order_by(NoticeRow.id.desc()).limit(limit)
    if subject is not None:
        query = query.where(NoticeRow.subject == subject)
    return [NoticePublic.model_validate(r, from_attributes=True) for r in session.scalars(query)]
