"""Technician: my route (JSON, .ics, GeoJSON) and my visits' status. Nothing of anyone else's.

Every query carries `technician_id = :me`; a job that is not on my route answers 404, the same as
a job that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from api import audit, lifecycle, maintenance, store
from api.deps import (
    CurrentTechnician,
    DayQuery,
    ServiceDep,
    SessionDep,
    bearer_key,
    check_role,
    get_service,
    known,
    unauthorized,
)
from api.errors import Conflict, NotFound, Unprocessable
from api.exports import FeatureCollection, to_geojson
from api.routebody import my_route, route_body
from api.routes.requests import public
from api.schemas import (
    PROTECTED,
    PositionPublic,
    PositionReport,
    RoutePublic,
    ServiceRequestPublic,
    VisitStatusUpdate,
)
from api.security import Role, authenticate_for_day
from api.tables import CurrentPlanRow, PositionRow, RequestRow, TechnicianRow
from models import VISIT_TO_JOB, Job, JobStatus, VisitStatus
from optimizer.replan import raised_priority

router = APIRouter(tags=["technician"], responses=PROTECTED)


@router.get(
    "/v1/me/route",
    response_model=RoutePublic,
    responses={304: {"description": "unchanged since the ETag given in If-None-Match"}},
    openapi_extra={"security": [{"HTTPBearer": []}]},
)
def get_my_route(request: Request, day: DayQuery = None) -> Response:
    """My stops of the day in order, with times, place, kind, skills, notes and a maps link.

    Answers with an `ETag` (the version technicians see and my route's revision); a pull with
    `If-None-Match` and nothing new gets 304. The hottest route of the service (every phone, every
    few seconds): it reads the key itself instead of through the dependencies (each a thread hop),
    and makes one round trip to the database, outside any transaction: my key with my revision and
    the day's published version in one statement. The body comes from the worker's memory.
    """
    service = get_service(request)
    token = bearer_key(request)
    if token is None:
        raise unauthorized("missing API key")
    day = day or service.today()
    with service.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        principal, version = authenticate_for_day(conn, token, day)
    me = check_role(known(principal), (Role.TECHNICIAN,))
    assert me.technician_id is not None
    if version is None:
        raise NotFound(f"no published route for {day} yet")
    etag = f'"{me.technician_id}.{day.isoformat()}.{version}.{me.route_revision}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if etag in (request.headers.get("if-none-match") or "").replace("W/", "").split(", "):
        return Response(status_code=304, headers=headers)
    body = route_body(service, me.technician_id, day, version, me.route_revision)
    return Response(body, media_type="application/json", headers=headers)


@router.get(
    "/v1/me/route.geojson",
    response_model=FeatureCollection,
    responses={200: {"content": {"application/geo+json": {}}}},
)
def get_my_route_geojson(
    session: SessionDep, service: ServiceDep, me: CurrentTechnician, day: DayQuery = None
) -> Response:
    route = my_route(session, service.tz, me, day or service.today())
    tech = session.get(TechnicianRow, me)
    assert tech is not None
    model = store.technician_model(tech)
    body = to_geojson(route, model.start_point, model.end_point)
    return Response(body.model_dump_json(), media_type="application/geo+json")


@router.post("/v1/visits/{job_id}/status", response_model=ServiceRequestPublic)
def set_visit_status(
    job_id: str, body: VisitStatusUpdate, session: SessionDep, service: ServiceDep, me: CurrentTechnician
) -> ServiceRequestPublic:
    """Report from the road. A failed visit goes back to the pool one priority level more urgent."""
    with session.begin():
        req = session.scalar(
            select(RequestRow)
            .where(RequestRow.id == job_id, RequestRow.technician_id == me)
            .with_for_update()
        )
        if req is None:
            raise NotFound(f"no visit {job_id!r} on your route")
        current = JobStatus(req.status)
        target = VISIT_TO_JOB[body.status]
        if current not in (JobStatus.DISPATCHED, JobStatus.IN_PROGRESS) or not lifecycle.can_move(
            current, target
        ):
            raise Conflict(f"visit {job_id!r} is {current.value}; it cannot become {body.status.value}")
        pointer = session.get(CurrentPlanRow, req.planned_date) if req.planned_date else None
        if target == JobStatus.DONE and lifecycle.days_left(session, req, after=service.today()):
            target = JobStatus.IN_PROGRESS  # a day's part of a longer job: the job goes on tomorrow
        if target != current:
            lifecycle.move(req, target)
        req.visit_status = body.status.value
        req.visit_reported_at = service.now()
        req.visit_version_id = pointer.published_version_id if pointer else None
        if body.status == VisitStatus.FAILED:
            req.failure_reason = body.reason
            req.failures += 1
            req.spec = raised_priority(Job.model_validate(req.spec)).model_dump(mode="json")
            req.promise_start = req.promise_end = None  # the customer is re-booked
        if target == JobStatus.DONE:
            maintenance.completed(
                session,
                req,
                done_on=service.today(),
                today=service.today(),
                weeks=service.settings.maintenance_weeks,
                tz=service.tz,
                now=service.now(),
            )
        store.touch_route(session, me)
        audit.record(
            session,
            now=service.now(),
            actor=f"technician {me}",
            action=f"visit.{body.status.value}",
            subject=job_id,
            reason=body.reason,
        )
    return public(req)


@router.post("/v1/me/position", response_model=PositionPublic, status_code=201)
def report_position(
    body: PositionReport, session: SessionDep, service: ServiceDep, me: CurrentTechnician
) -> PositionPublic:
    """Where I am: the in-day re-optimisation plans the rest of my day from here when I am between
    visits (a visit under way or driven to is where I will be next, whatever I report)."""
    now = service.now()
    at = body.at or now
    if at.tzinfo is None:
        at = at.replace(tzinfo=service.tz)
    if at > now + timedelta(minutes=1):
        raise Unprocessable(["body", "at"], "a position cannot be reported for the future")
    if at.astimezone(service.tz).date() != service.today():
        raise Unprocessable(["body", "at"], "only today's positions are kept")
    with session.begin():
        session.add(PositionRow(technician_id=me, lat=body.lat, lon=body.lon, at=at))
    return PositionPublic(technician_id=me, lat=body.lat, lon=body.lon, at=at)
