"""A named lock row, so exactly one re-plan runs at a time across processes and machines.

A holder refreshes `heartbeat_at` while it works; a holder that died (SIGKILL, power cut) stops
refreshing, and after `stale_after` seconds the lock may be taken over. The conditional UPDATE is
atomic on both SQLite (one writer) and PostgreSQL (row lock, WHERE re-checked after the wait).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from api.tables import LockRow


def acquire(session: Session, name: str, holder: str, *, now: datetime, stale_after: float) -> bool:
    stale = now - timedelta(seconds=stale_after)
    result = session.execute(
        update(LockRow)
        .where(
            LockRow.name == name,
            or_(LockRow.holder.is_(None), LockRow.heartbeat_at < stale, LockRow.holder == holder),
        )
        .values(holder=holder, acquired_at=now, heartbeat_at=now)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def heartbeat(session: Session, name: str, holder: str, *, now: datetime) -> bool:
    result = session.execute(
        update(LockRow).where(LockRow.name == name, LockRow.holder == holder).values(heartbeat_at=now)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def release(session: Session, name: str, holder: str) -> None:
    session.execute(
        update(LockRow)
        .where(LockRow.name == name, LockRow.holder == holder)
        .values(holder=None, acquired_at=None, heartbeat_at=None)
    )


def state(session: Session, name: str) -> LockRow | None:
    return session.get(LockRow, name, populate_existing=True)
