"""Calendar subscriptions: a technician's published days as an iCalendar feed.

Calendar apps subscribe by URL and cannot send a header, so each technician gets a separate,
revocable, read-only feed token for the URL (an API key never appears in a URL). Only its hash is
stored; a new token replaces the old one.
"""

from __future__ import annotations

import itertools
import secrets
from datetime import timedelta

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api import audit
from api.context import Service
from api.deps import CurrentTechnician, DayQuery, Dispatcher, ServiceDep, SessionDep
from api.errors import NotFound
from api.exports import to_ics
from api.routebody import my_route
from api.schemas import PROTECTED, RoutePublic
from api.security import hash_key
from api.tables import CurrentPlanRow, FeedTokenRow, RouteRow, TechnicianRow, VisitRow

router = APIRouter(tags=["technician"])
FEED_DAYS = 14  # a feed shows the published days from today on, this many


class FeedCreated(BaseModel):
    technician_id: str
    url: str
    token: str


def _new_token(session: Session, service: Service, technician_id: str) -> FeedCreated:
    if session.get(TechnicianRow, technician_id) is None:
        raise NotFound(f"no technician {technician_id!r}")
    _revoke(session, service, technician_id)
    token = "fpcal_" + secrets.token_urlsafe(32)
    session.add(
        FeedTokenRow(token_hash=hash_key(token), technician_id=technician_id, created_at=service.now())
    )
    return FeedCreated(technician_id=technician_id, url=f"/v1/feeds/{token}.ics", token=token)


def _revoke(session: Session, service: Service, technician_id: str) -> int:
    done = session.execute(
        update(FeedTokenRow)
        .where(FeedTokenRow.technician_id == technician_id, FeedTokenRow.revoked_at.is_(None))
        .values(revoked_at=service.now())
    )
    return int(done.rowcount or 0)  # type: ignore[attr-defined]


@router.post(
    "/v1/technicians/{technician_id}/calendar-feed",
    status_code=status.HTTP_201_CREATED,
    response_model=FeedCreated,
    responses=PROTECTED,
)
def create_feed(technician_id: str, session: SessionDep, service: ServiceDep, who: Dispatcher) -> FeedCreated:
    """A subscription URL for a technician's calendar (shown once; replaces any earlier one)."""
    with session.begin():
        made = _new_token(session, service, technician_id)
        audit.record(
            session,
            now=service.now(),
            actor=audit.actor_of(who),
            action="feed.created",
            subject=technician_id,
        )
    return made


@router.delete("/v1/technicians/{technician_id}/calendar-feed", status_code=204, responses=PROTECTED)
def revoke_feed(technician_id: str, session: SessionDep, service: ServiceDep, who: Dispatcher) -> Response:
    with session.begin():
        if not _revoke(session, service, technician_id):
            raise NotFound(f"{technician_id} has no calendar feed")
        audit.record(
            session,
            now=service.now(),
            actor=audit.actor_of(who),
            action="feed.revoked",
            subject=technician_id,
        )
    return Response(status_code=204)


@router.post(
    "/v1/me/calendar-feed",
    status_code=status.HTTP_201_CREATED,
    response_model=FeedCreated,
    responses=PROTECTED,
)
def create_my_feed(session: SessionDep, service: ServiceDep, me: CurrentTechnician) -> FeedCreated:
    """My own subscription URL (shown once; replaces any earlier one)."""
    with session.begin():
        made = _new_token(session, service, me)
        audit.record(session, now=service.now(), actor=f"technician {me}", action="feed.created", subject=me)
    return made


def sequences(session: Session, routes: list[RoutePublic]) -> dict[str, int]:
    """Per visit, the plan version in which its current times first appeared (iCalendar's SEQUENCE:
    it rises exactly when a re-plan moves the visit)."""
    shown = {s.job_id: (r.plan_version, s.start, s.end) for r in routes for s in r.stops}
    out: dict[str, int] = {}
    rows = session.execute(
        select(VisitRow.job_id, VisitRow.plan_version_id, VisitRow.start, VisitRow.end)
        .where(VisitRow.job_id.in_(list(shown)))
        .order_by(VisitRow.job_id, VisitRow.plan_version_id.desc())
    )
    for job_id, group in itertools.groupby(rows, key=lambda row: row[0]):
        current, start, end = shown[job_id]
        first = current
        for _, version, s, e in group:
            if version > current:
                continue  # a proposal nobody sees yet
            if (s, e) != (start, end):
                break
            first = version
        out[job_id] = first
    return out


def published_days(session: Session, service: Service, technician_id: str, days: int) -> list[RoutePublic]:
    today = service.today()
    pointers = session.scalars(
        select(CurrentPlanRow)
        .where(CurrentPlanRow.date >= today, CurrentPlanRow.date < today + timedelta(days=days))
        .where(CurrentPlanRow.published_version_id.is_not(None))
        .order_by(CurrentPlanRow.date)
    )
    out = []
    for pointer in pointers:
        has_route = session.scalar(
            select(RouteRow.id).where(
                RouteRow.plan_version_id == pointer.published_version_id,
                RouteRow.date == pointer.date,
                RouteRow.technician_id == technician_id,
            )
        )
        if has_route is not None:
            out.append(my_route(session, service.tz, technician_id, pointer.date))
    return out


@router.get(
    "/v1/me/route.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}, "description": "one event per visit"}, **PROTECTED},
)
def get_my_route_ics(
    session: SessionDep, service: ServiceDep, me: CurrentTechnician, day: DayQuery = None
) -> Response:
    """My published route of one day (default today) as iCalendar."""
    route = my_route(session, service.tz, me, day or service.today())
    body = to_ics([route], sequences=sequences(session, [route]), now=service.now(), name=f"fieldplan {me}")
    return Response(body, media_type="text/calendar; charset=utf-8")


@router.get(
    "/v1/feeds/{token}.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}, 404: {"description": "unknown or revoked feed"}},
)
def get_feed(
    token: str = Path(min_length=10, max_length=100), *, session: SessionDep, service: ServiceDep
) -> Response:
    """A technician's published days from today on, for calendar apps (no header needed)."""
    row = session.scalar(
        select(FeedTokenRow).where(
            FeedTokenRow.token_hash == hash_key(token), FeedTokenRow.revoked_at.is_(None)
        )
    )
    tech = session.get(TechnicianRow, row.technician_id) if row is not None else None
    if row is None or tech is None or not tech.active:
        raise NotFound("unknown or revoked calendar feed")
    routes = published_days(session, service, row.technician_id, FEED_DAYS)
    body = to_ics(
        routes, sequences=sequences(session, routes), now=service.now(), name=f"fieldplan {row.technician_id}"
    )
    return Response(body, media_type="text/calendar; charset=utf-8")
