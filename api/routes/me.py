"""Technician: my route (JSON, .ics, GeoJSON) and my visits' status. Nothing of anyone else's.

Every query carries `technician_id = :me`; a job that is not on my route answers 404, the same as
a job that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import date

from fastapi import APIRouter, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import audit, lifecycle, store
from api.context import Service
from api.deps import CurrentTechnician, DayQuery, ServiceDep, SessionDep
from api.errors import Conflict, NotFound
from api.exports import FeatureCollection, maps_url, to_geojson
from api.routes.requests import public
from api.schemas import PROTECTED, RoutePublic, ServiceRequestPublic, Stop, VisitStatusUpdate
from api.tables import CurrentPlanRow, RequestRow, TechnicianRow
from models import VISIT_TO_JOB, Job, JobStatus, VisitStatus
from optimizer.replan import raised_priority

router = APIRouter(tags=["technician"], responses=PROTECTED)


def published_pointer(session: Session, day: date) -> CurrentPlanRow:
    pointer = session.get(CurrentPlanRow, day)
    if pointer is None or pointer.published_version_id is None:
        raise NotFound(f"no published route for {day} yet")
    return pointer


def my_route(session: Session, service: Service, me: str, day: date) -> RoutePublic:
    """My route of the day as last published: what my dispatcher promised the customers."""
    pointer = published_pointer(session, day)
    version_id = pointer.published_version_id
    assert version_id is not None
    rows = store.routes_of(session, version_id=version_id, day=day, technician_id=me)
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
        plan_version=version_id,
        published=True,
        revision=pointer.revision,
        start=route.start if route else None,
        end=route.end if route else None,
        distance_km=route.distance_km if route else 0.0,
        break_={"start": route.break_.start, "end": route.break_.end} if route and route.break_ else None,
        stops=stops,
    )


# A technician's route changes only with a new published version or a visit status change (both
# raise the day's revision): built once per (technician, day, version, revision), then served from here.
_BUILT: OrderedDict[tuple[str, date, int, int], bytes] = OrderedDict()
_BUILT_LIMIT = 4096
_built_guard = threading.Lock()


@router.get(
    "/v1/me/route",
    response_model=RoutePublic,
    responses={304: {"description": "unchanged since the ETag given in If-None-Match"}},
)
def get_my_route(
    request: Request, session: SessionDep, service: ServiceDep, me: CurrentTechnician, day: DayQuery = None
) -> Response:
    """My stops of the day in order, with times, place, kind, skills, notes and a maps link.

    Answers with an `ETag`; a pull with `If-None-Match` and nothing new gets 304.
    """
    day = day or service.today()
    pointer = published_pointer(session, day)
    version = pointer.published_version_id
    assert version is not None
    key = (me, day, version, pointer.revision)
    etag = f'"{me}.{day.isoformat()}.{version}.{pointer.revision}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if etag in (request.headers.get("if-none-match") or "").replace("W/", "").split(", "):
        return Response(status_code=304, headers=headers)
    with _built_guard:
        body = _BUILT.get(key)
    if body is None:
        body = my_route(session, service, me, day).model_dump_json(by_alias=True).encode()
        with _built_guard:
            _BUILT[key] = body
            while len(_BUILT) > _BUILT_LIMIT:
                _BUILT.popitem(last=False)
    return Response(body, media_type="application/json", headers=headers)


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
        lifecycle.move(req, target)
        req.visit_status = body.status.value
        req.visit_version_id = pointer.published_version_id if pointer else None
        if body.status == VisitStatus.FAILED:
            req.failure_reason = body.reason
            req.failures += 1
            req.spec = raised_priority(Job.model_validate(req.spec)).model_dump(mode="json")
            req.promise_start = req.promise_end = None  # the customer is re-booked
        store.touch_day(session, req.planned_date)
        audit.record(
            session,
            now=service.now(),
            actor=f"technician {me}",
            action=f"visit.{body.status.value}",
            subject=job_id,
            reason=body.reason,
        )
    return public(req)
