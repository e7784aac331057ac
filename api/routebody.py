"""A technician's published route as the API answers it: built once, served many times.

A route changes for its technician only with a newly published version of the day or a status
change of one of their own visits (`TechnicianRow.route_revision`). So its body is rendered when a
day is published (`render_day`, in the publishing transaction) and kept per (version, day,
technician); a pull finds it with the two lookups it makes anyway (the key, which carries the
technician's revision, and the day's pointer), then from the worker's memory or, the first time in
a worker, one more lookup by primary key. Only a body whose revision is stale is rebuilt.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import store
from api.context import Service
from api.errors import NotFound
from api.exports import maps_url
from api.schemas import RoutePublic, Stop
from api.tables import CurrentPlanRow, RequestRow, RouteBodyRow, TechnicianRow
from models import Job, JobStatus, Route


def published_pointer(session: Session, day: date) -> CurrentPlanRow:
    pointer = session.get(CurrentPlanRow, day)
    if pointer is None or pointer.published_version_id is None:
        raise NotFound(f"no published route for {day} yet")
    return pointer


def my_route(
    session: Session, tz: ZoneInfo, me: str, day: date, *, revision: int | None = None
) -> RoutePublic:
    """My route of the day as last published: what my dispatcher promised the customers."""
    pointer = published_pointer(session, day)
    version_id = pointer.published_version_id
    assert version_id is not None
    if revision is None:
        revision = session.scalar(select(TechnicianRow.route_revision).where(TechnicianRow.id == me)) or 0
    rows = store.routes_of(session, version_id=version_id, day=day, technician_id=me)
    route = store.route_model(rows[0], tz) if rows else None
    ids = [v.job_id for v in route.visits] if route else []
    mine = session.scalars(select(RequestRow).where(RequestRow.id.in_(ids)))
    return _render(me, day, version_id, revision, route, {r.id: r for r in mine})


def _render(
    me: str, day: date, version: int, revision: int, route: Route | None, requests: dict[str, RequestRow]
) -> RoutePublic:
    stops: list[Stop] = []
    for seq, visit in enumerate(route.visits if route else []):
        req = requests.get(visit.job_id)
        if req is None or (req.technician_id != me and visit.role != "helper"):
            continue  # moved to someone else since: not mine to see (a crew's helper is not its lead)
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
                part=visit.part,
                role=visit.role,
                crew_size=job.crew_size,
            )
        )
    return RoutePublic(
        technician_id=me,
        date=day,
        plan_version=version,
        published=True,
        revision=revision,
        start=route.start if route else None,
        end=route.end if route else None,
        distance_km=route.distance_km if route else 0.0,
        break_={"start": route.break_.start, "end": route.break_.end} if route and route.break_ else None,
        stops=stops,
    )


def render_day(session: Session, day: date, tz: ZoneInfo) -> int:
    """Render every route of the day's published version (called when the day is published), in
    a few set queries: the routes with their visits, the requests they name, the revisions."""
    pointer = published_pointer(session, day)
    version = pointer.published_version_id
    assert version is not None
    done = set(
        session.scalars(
            select(RouteBodyRow.technician_id).where(
                RouteBodyRow.plan_version_id == version, RouteBodyRow.date == day
            )
        )
    )
    revisions: dict[str, int] = {
        t: r for t, r in session.execute(select(TechnicianRow.id, TechnicianRow.route_revision))
    }
    routes = [store.route_model(r, tz) for r in store.routes_of(session, version_id=version, day=day)]
    routes = [r for r in routes if r.technician_id not in done]
    ids = [v.job_id for r in routes for v in r.visits]
    requests: dict[str, RequestRow] = {}
    for lo in range(0, len(ids), 1000):
        requests.update(
            (r.id, r)
            for r in session.scalars(select(RequestRow).where(RequestRow.id.in_(ids[lo : lo + 1000])))
        )
    for route in routes:
        tid = route.technician_id
        revision = revisions.get(tid) or 0
        body = _render(tid, day, version, revision, route, requests)
        session.add(
            RouteBodyRow(
                plan_version_id=version,
                date=day,
                technician_id=tid,
                revision=revision,
                body=body.model_dump_json(by_alias=True),
            )
        )
    session.flush()
    return len(routes)


@dataclass
class _DayRead:
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: bool = False


_BUILT: OrderedDict[tuple[str, str, date, int, int], bytes] = OrderedDict()
_BUILT_LIMIT = 8192
_LOADED: OrderedDict[tuple[str, date, int], _DayRead] = OrderedDict()  # days read whole, per version
_guard = threading.Lock()


def route_body(service: Service, me: str, day: date, version: int, revision: int) -> bytes:
    """The body of my route for (version, revision): from memory; the first pull of a newly published
    day in this worker reads the whole day's rendered bodies in one query (after a publication every
    technician pulls within seconds: one query instead of one each); a body whose revision moved on
    since is built alone. Kept per database (one process may serve several, as the tests do: version
    ids repeat)."""
    db = service.settings.database_url
    key = (db, me, day, version, revision)
    with _guard:
        body = _BUILT.get(key)
    if body is not None:
        return body
    _read_day(service, day, version)
    with _guard:
        body = _BUILT.get(key)
    if body is not None:
        return body
    with service.sessions() as session:
        stored = session.get(RouteBodyRow, (version, day, me))
        if stored is not None and stored.revision == revision:
            body = stored.body.encode()
        else:
            route = my_route(session, service.tz, me, day, revision=revision)
            body = route.model_dump_json(by_alias=True).encode()
    _keep({key: body})
    return body


def _read_day(service: Service, day: date, version: int) -> None:
    """Every rendered body of the day's version into memory, once per worker (concurrent first pulls
    wait for the one read)."""
    db = service.settings.database_url
    with _guard:
        state = _LOADED.get((db, day, version))
        if state is None:
            state = _LOADED[(db, day, version)] = _DayRead()
            while len(_LOADED) > 256:
                _LOADED.popitem(last=False)
    if state.done:
        return
    with state.lock:
        if state.done:
            return
        with service.sessions() as session:
            rows = session.execute(
                select(RouteBodyRow.technician_id, RouteBodyRow.revision, RouteBodyRow.body).where(
                    RouteBodyRow.plan_version_id == version, RouteBodyRow.date == day
                )
            ).all()
        if len(rows) <= _BUILT_LIMIT // 2:
            _keep({(db, t, day, version, r): b.encode() for t, r, b in rows})
        state.done = True


def _keep(bodies: dict[tuple[str, str, date, int, int], bytes]) -> None:
    with _guard:
        _BUILT.update(bodies)
        while len(_BUILT) > _BUILT_LIMIT:
            _BUILT.popitem(last=False)
