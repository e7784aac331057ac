"""API keys: random, shown once, stored only as a SHA-256 hash.

The keys carry 256 bits of randomness, so a plain (unsalted) SHA-256 cannot be brute-forced and lets
the service find a key by its hash in one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.tables import ApiKeyRow, CurrentPlanRow, TechnicianRow, utcnow

PREFIX = "fp_"


class Role(StrEnum):
    ADMIN = "admin"
    DISPATCHER = "dispatcher"
    TECHNICIAN = "technician"
    BOOKING = "booking"  # a call-centre agent: asks for slots, holds and books appointments, nothing else


@dataclass(frozen=True)
class Principal:
    key_id: int
    role: Role
    technician_id: str | None
    route_revision: int = 0  # the technician's, read with the key: a route's ETag needs no other lookup


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def create_key(
    session: Session, *, role: Role, technician_id: str | None = None, label: str | None = None
) -> tuple[ApiKeyRow, str]:
    """Store a new key and return it in clear text, the only time it exists outside the caller."""
    if (role == Role.TECHNICIAN) != (technician_id is not None):
        raise ValueError("a technician key names exactly one technician; other roles name none")
    key = new_key()
    row = ApiKeyRow(
        key_hash=hash_key(key), prefix=key[:10], role=role.value, technician_id=technician_id, label=label
    )
    session.add(row)
    session.flush()
    return row, key


def ensure_key(session: Session, key: str, *, role: Role, label: str) -> None:
    """Register a configured key (the bootstrap admin key) once; idempotent across restarts and
    across processes starting together (the loser of the race finds the winner's row)."""
    digest = hash_key(key)
    if session.scalar(select(ApiKeyRow.id).where(ApiKeyRow.key_hash == digest)) is not None:
        return
    try:
        with session.begin_nested():
            session.add(ApiKeyRow(key_hash=digest, prefix=key[:6] + "…", role=role.value, label=label))
    except IntegrityError:
        pass  # another process registered it a moment ago


def _key_lookup(key: str, *extra: Any) -> Select[Any]:
    """The key by its hash, with its technician's `active` flag and route revision (a deactivated
    technician's keys stop working at once, and work again when the technician is reactivated)."""
    return (
        select(
            ApiKeyRow.id,
            ApiKeyRow.role,
            ApiKeyRow.technician_id,
            TechnicianRow.active,
            TechnicianRow.route_revision,
            *extra,
        )
        .outerjoin(TechnicianRow, TechnicianRow.id == ApiKeyRow.technician_id)
        .where(ApiKeyRow.key_hash == hash_key(key), ApiKeyRow.revoked_at.is_(None))
    )


def _principal(found: Row[Any] | None) -> Principal | None:
    if found is None:
        return None
    key_id, role, technician_id, active, route_revision = tuple(found)[:5]
    if technician_id is not None and active is False:
        return None
    return Principal(
        key_id=key_id, role=Role(role), technician_id=technician_id, route_revision=route_revision or 0
    )


def authenticate(session: Session, key: str) -> Principal | None:
    """One indexed lookup: the key by its hash (see `_key_lookup`)."""
    return _principal(session.execute(_key_lookup(key)).first())


def authenticate_for_day(conn: Connection, key: str, day: date) -> tuple[Principal | None, int | None]:
    """The key and the version of `day` technicians see, in one statement: a route pull's only
    round trip to the database (two indexed lookups), so a revoked key still fails at once."""
    seen = select(CurrentPlanRow.published_version_id).where(CurrentPlanRow.date == day).scalar_subquery()
    found = conn.execute(_key_lookup(key, seen)).first()
    principal = _principal(found)
    return principal, (found[5] if principal is not None and found is not None else None)


def revoke(session: Session, key_id: int) -> bool:
    row = session.get(ApiKeyRow, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True
