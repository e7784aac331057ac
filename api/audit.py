"""The audit trail: who created, pinned, published, cancelled or changed what, and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from api.security import Principal
from api.tables import AuditRow


def actor_of(principal: Principal) -> str:
    """A key is named by its id and role, never by its secret."""
    return f"key {principal.key_id} ({principal.role})"


def record(session: Session, *, now: datetime, actor: str, action: str, subject: str, **detail: Any) -> None:
    session.add(AuditRow(at=now, actor=actor, action=action, subject=subject, detail=detail))
