"""Dispatcher: the day as it happens. Events of today, and the re-optimisation of the rest of it.

Thin: parse, authorise, call `api.intraday`, shape the answer. "Now" is the service's clock, never
a request field.
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Body, status
from sqlalchemy import select

from api import audit, intraday
from api.deps import Dispatcher, ServiceDep, SessionDep
from api.schemas import PROTECTED, DayEvent, DayEventPublic, ReoptimiseBody, ReoptimisePublic
from api.tables import DayEventRow

router = APIRouter(prefix="/v1/days", tags=["the day"], responses=PROTECTED)


def _public(row: DayEventRow, reoptimised: ReoptimisePublic | None = None) -> DayEventPublic:
    return DayEventPublic(
        id=row.id,
        day=row.day,
        type=row.type,
        technician_id=row.technician_id,
        job_id=row.job_id,
        payload=row.payload,
        created_by=row.created_by,
        created_at=row.created_at,
        reoptimised=reoptimised,
    )


@router.post("/{day}/events", response_model=DayEventPublic, status_code=status.HTTP_201_CREATED)
def post_event(
    day: date,
    event: DayEvent,
    session: SessionDep,
    service: ServiceDep,
    principal: Dispatcher,
) -> DayEventPublic:
    """Something happened today: a technician is unavailable from a time, an emergency came in
    (a new request, priority 1, due within FIELDPLAN_EMERGENCY_SLA_HOURS unless it says), a visit
    under way overruns, a technician is late. Kept with who said it and when; the next
    re-optimisation reads it (at once, with FIELDPLAN_AUTO_REOPTIMISE)."""
    actor = audit.actor_of(principal)
    with session.begin():
        row = intraday.record_event(session, service, day=day, event=event, actor=actor)
    again = None
    if service.settings.auto_reoptimise:
        again = intraday.reoptimise_day(service, day, ReoptimiseBody(), actor=actor)
    return _public(row, again)


@router.get("/{day}/events", response_model=list[DayEventPublic])
def list_events(day: date, session: SessionDep, _: Dispatcher) -> list[DayEventPublic]:
    rows = session.scalars(select(DayEventRow).where(DayEventRow.day == day).order_by(DayEventRow.id))
    return [_public(r) for r in rows]


@router.post("/{day}/reoptimise", response_model=ReoptimisePublic)
def reoptimise(
    day: date,
    service: ServiceDep,
    principal: Dispatcher,
    body: ReoptimiseBody | None = Body(None),  # noqa: B008 (FastAPI's way to make a body optional)
) -> ReoptimisePublic:
    """Re-plan the rest of today from what technicians reported and the day's events, within the
    disruption budget; the new version is published at once (technicians are on the road) and the
    answer lists what changed per technician, each customer's new ETA, and the notices sent."""
    return intraday.reoptimise_day(service, day, body or ReoptimiseBody(), actor=audit.actor_of(principal))
