"""Technician: my route (JSON, .ics, GeoJSON) and my visits' status. Nothing of anyone else's.

Every query carries `technician_id = :me`; a job that is not on my route answers 404, the same as
a job that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import store
from api.context import Service
from api.deps import CurrentTechnician, DayQuery, ServiceDep, SessionDep
from api.errors import Conflict, NotFound
from api.exports import FeatureCollection, maps_url, to_geojson, to_ics
from api.routes.requests import public
from api.schemas import PROTECTED, RoutePublic, ServiceRequestPublic, Stop, VisitStatusUpdate
from api.tables import CurrentPlanRow, RequestRow, TechnicianRow
from models import VISIT_TO_JOB, Job, JobStatus, VisitStatus
from optimizer.replan import raised_priority

router = APIRouter(tags=["technician"], responses=PROTECTED)


def my_route(session: Session, service: Service, me: str, day: date) -> RoutePublic:
    pointer = session.get(CurrentPlanRow, day)
    if pointer is None:
        raise NotFound(f"no plan for {day} yet")
    rows = store.routes_of(session, version_id=pointer.plan_version_id, day=day, technician_id=me)
    route = store.route_model(rows[0], service.tz) if rows else None
    stops: list[Stop] = []
    if route is not None:
        ids = [v.job_id for v in route.visits]
        requests = {
            r.id: r
            for r in session.scalars(
                select(RequestRow).where(RequestRow.id.in_(ids), RequestRow.technician_id == me)
            )
        }
        for seq, visit in enumerate(route.visits):
            req = requests.get(visit.job_id)
            if req is None:
                continue  # moved to someone else since: not mine to see
            job = Job.model_validate(req.spec)
            stops.append(
                Stop(
                    seq=seq,
                    job_id=job.id,
                    kind=job.kind,
                    status=JobStatus(req.status),
                    arrival=visit.arrival,
                    start=visit.start,
                    end=visit.end,
                    location=job.location,
                    address=req.address,
                    skills=dict(job.skills),
                    customer_id=job.customer_id,
                    notes=job.notes,
                    maps_url=maps_url(job.location),
                )
            )
    return RoutePublic(
        technician_id=me,
        date=day,
        plan_version=pointer.plan_version_id,
        published=pointer.published_at is not None,
        start=route.start if route else None,
        end=route.end if route else None,
        distance_km=route.distance_km if route else 0.0,
        break_={"start": route.break_.start, "end": route.break_.end} if route and route.break_ else None,
        stops=stops,
    )


@router.get("/v1/me/route", response_model=RoutePublic)
def get_my_route(
    session: SessionDep, service: ServiceDep, me: CurrentTechnician, day: DayQuery = None
) -> RoutePublic:
    """My stops of the day in order, with times, place, kind, skills, notes and a maps link."""
    return my_route(session, service, me, day or service.today())


@router.get(
    "/v1/me/route.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}, "description": "one event per visit"}},
)
def get_my_route_ics(
    session: SessionDep, service: ServiceDep, me: CurrentTechnician, day: DayQuery = None
) -> Response:
    route = my_route(session, service, me, day or service.today())
    return Response(to_ics(route), media_type="text/calendar; charset=utf-8")


@router.get(
    "/v1/me/route.geojson",
    response_model=FeatureCollection,
    responses={200: {"content": {"application/geo+json": {}}}},
)
def get_my_route_geojson(
    session: SessionDep, service: ServiceDep, me: CurrentTechnician, day: DayQuery = None
) -> Response:
    route = my_route(session, service, me, day or service.today())
    tech = session.get(TechnicianRow, me)
    assert tech is not None
    model = store.technician_model(tech)
    body = to_geojson(route, model.start_point, model.end_point)
    return Response(body.model_dump_json(), media_type="application/geo+json")


# Every report needs a visit on the route that is not finished yet.
_REPORTABLE = {JobStatus.PLANNED, JobStatus.DISPATCHED, JobStatus.IN_PROGRESS}


@router.post("/v1/visits/{job_id}/status", response_model=ServiceRequestPublic)
def set_visit_status(
    job_id: str, body: VisitStatusUpdate, session: SessionDep, me: CurrentTechnician
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
        if current not in _REPORTABLE:
            raise Conflict(f"visit {job_id!r} is {current.value}; it cannot become {body.status.value}")
        req.visit_status = body.status.value
        req.status = VISIT_TO_JOB[body.status].value
        if body.status == VisitStatus.FAILED:
            req.failure_reason = body.reason
            req.failures += 1
            req.spec = raised_priority(Job.model_validate(req.spec)).model_dump(mode="json")
    return public(req)
