"""Data access: domain models in, rows out and back. One style (SQLAlchemy 2 `select`), no raw SQL.

Routes call these keyword-only functions; the caller owns the transaction (`session.begin()` or
`commit()`), so a plan version and its "current" pointers are always written together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, selectinload

from api import lifecycle
from api.errors import NotFound
from api.tables import (
    CurrentPlanRow,
    NoticeRow,
    PlanVersionRow,
    RequestRow,
    RouteRow,
    ShiftRow,
    TechnicianRow,
    VisitRow,
)
from models import (
    Break,
    Job,
    JobStatus,
    Kpis,
    Plan,
    ReasonCode,
    Route,
    Shift,
    SolverStats,
    Technician,
    Unassigned,
    Visit,
    Window,
)
from optimizer.replan import PoolJob

#: A published visit without a window of its own promises its planned start give or take this.
PROMISE_MARGIN = timedelta(minutes=60)

ACTIVE = (JobStatus.OPEN, JobStatus.PLANNED, JobStatus.DISPATCHED, JobStatus.IN_PROGRESS, JobStatus.FAILED)


def _noop(point: str) -> None:
    return None


#: Called at named points while a plan version is written; tests use it to inject a crash.
fault_point: Callable[[str], None] = _noop


# --- technicians -------------------------------------------------------------------------------


def technician_model(row: TechnicianRow, *, with_availability: bool = False) -> Technician:
    """The technician with their dated shifts. For planning (the default) without the availability
    calendar: the stored shifts, typed or derived from it (`api.maintenance.derive_shifts`), are
    the truth, so a day removed by an event is never put back by the template."""
    shifts = [Shift(date=s.date, start=s.start, end=s.end) for s in row.shifts]  # type: ignore[arg-type]
    spec = row.spec if with_availability else {k: v for k, v in row.spec.items() if k != "availability"}
    return Technician.model_validate({**spec, "shifts": [s.model_dump(mode="json") for s in shifts]})


def put_technician(session: Session, tech: Technician) -> TechnicianRow:
    row = session.get(TechnicianRow, tech.id)
    spec = tech.model_dump(mode="json", exclude={"shifts"})
    if row is None:
        row = TechnicianRow(id=tech.id, name=tech.name, spec=spec)
        session.add(row)
    else:
        row.name, row.spec = tech.name, spec
    replace_shifts(session, row, tech.shifts)
    return row


def replace_shifts(session: Session, row: TechnicianRow, shifts: Iterable[Shift]) -> None:
    row.shifts.clear()
    session.flush()
    for s in shifts:
        row.shifts.append(ShiftRow(date=s.date, start=s.start.strftime("%H:%M"), end=s.end.strftime("%H:%M")))


def fingerprint(session: Session) -> str:
    """A digest of everything a re-plan reads: equal digests, nothing was written in between."""
    digest = hashlib.sha256()
    queries: list[Any] = [
        select(
            RequestRow.id,
            RequestRow.status,
            RequestRow.updated_at,
            RequestRow.promise_start,
            RequestRow.promise_end,
        ).order_by(RequestRow.id),
        select(TechnicianRow.id, TechnicianRow.active, TechnicianRow.updated_at).order_by(TechnicianRow.id),
        select(ShiftRow.technician_id, ShiftRow.date, ShiftRow.start, ShiftRow.end).order_by(
            ShiftRow.technician_id, ShiftRow.date
        ),
    ]
    for query in queries:
        for row in session.execute(query):
            digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def technicians(session: Session, *, active_only: bool = True) -> list[TechnicianRow]:
    query = select(TechnicianRow).options(selectinload(TechnicianRow.shifts)).order_by(TechnicianRow.id)
    if active_only:
        query = query.where(TechnicianRow.active.is_(True))
    return list(session.scalars(query))


# --- service requests --------------------------------------------------------------------------


def job_model(row: RequestRow) -> Job:
    """The job as the planner sees it: a promise made to the customer is its appointment window."""
    job = Job.model_validate(row.spec)
    if row.promise_start is not None and row.promise_end is not None:
        job = job.model_copy(update={"appointment": Window(start=row.promise_start, end=row.promise_end)})
    return job


def pool_jobs(session: Session, rows: Iterable[RequestRow]) -> list[PoolJob]:
    """Requests as a re-plan's pool, with the jobs their links name (a follow-up of a repair done
    last week needs its day and technician: `optimizer.replan` writes them into the link)."""
    rows = list(rows)
    have = {r.id for r in rows}
    named = {
        link["job_id"]
        for r in rows
        for link in (r.spec.get("after"), r.spec.get("same_technician_as"))
        if isinstance(link, dict) and link.get("job_id") not in have
    }
    if named:
        rows += list(session.scalars(select(RequestRow).where(RequestRow.id.in_(sorted(named)))))
    return [
        PoolJob(
            job=job_model(r),
            status=JobStatus(r.status),
            done_on=r.planned_date if r.status == JobStatus.DONE.value else None,
            done_by=r.technician_id if r.status == JobStatus.DONE.value else None,
        )
        for r in rows
    ]


def active_requests(session: Session) -> list[RequestRow]:
    return list(
        session.scalars(
            select(RequestRow).where(RequestRow.status.in_([s.value for s in ACTIVE])).order_by(RequestRow.id)
        )
    )


# --- plans -------------------------------------------------------------------------------------


def route_model(row: RouteRow, tz: ZoneInfo) -> Route:
    def local(value: datetime) -> datetime:
        return value.astimezone(tz)

    brk = None
    if row.break_start is not None and row.break_end is not None:
        brk = Break(start=local(row.break_start), end=local(row.break_end))
    return Route(
        technician_id=row.technician_id,
        date=row.date,
        start=local(row.start),
        end=local(row.end),
        distance_km=row.distance_km,
        travel_minutes=row.travel_minutes,
        overtime_minutes=row.overtime_minutes,
        visits=[
            Visit(
                job_id=v.job_id,
                arrival=local(v.arrival),
                start=local(v.start),
                end=local(v.end),
                part=v.part,
                role=v.role,  # type: ignore[arg-type]
            )
            for v in row.visits
        ],
        break_=brk,
    )


def routes_of(
    session: Session, *, version_id: int, day: date | None = None, technician_id: str | None = None
) -> list[RouteRow]:
    """Routes of one immutable version; the technician filter is applied in the query itself."""
    query = (
        select(RouteRow)
        .where(RouteRow.plan_version_id == version_id)
        .options(selectinload(RouteRow.visits))
        .order_by(RouteRow.date, RouteRow.technician_id)
    )
    if day is not None:
        query = query.where(RouteRow.date == day)
    if technician_id is not None:
        query = query.where(RouteRow.technician_id == technician_id)
    return list(session.scalars(query))


def plan_model(session: Session, version: PlanVersionRow) -> Plan:
    tz = ZoneInfo(version.timezone)
    return Plan(
        scenario=f"plan version {version.id}",
        timezone=version.timezone,
        horizon_start=version.horizon_start,
        horizon_days=version.horizon_days,
        routes=[route_model(r, tz) for r in routes_of(session, version_id=version.id)],
        unassigned=[Unassigned.model_validate(u) for u in version.unassigned],
        kpis=Kpis.model_validate(version.kpis),
        solver=SolverStats.model_validate(version.solver),
    )


def current_pointers(session: Session, days: Iterable[date]) -> dict[date, CurrentPlanRow]:
    wanted = list(days)
    rows = session.scalars(select(CurrentPlanRow).where(CurrentPlanRow.date.in_(wanted)))
    return {r.date: r for r in rows}


def shown_routes(session: Session, days: Iterable[date], tz: ZoneInfo) -> list[Route]:
    """The routes technicians see on these days (a day never published: its plan), the warm start
    and the promises of the next re-plan."""
    routes: list[Route] = []
    for day, pointer in sorted(current_pointers(session, days).items()):
        rows = routes_of(session, version_id=pointer.shown_version_id, day=day)
        routes += [route_model(r, tz) for r in rows]
    return routes


def store_plan(
    session: Session,
    *,
    plan: Plan,
    days: list[date],
    trigger: str,
    run_id: int | None,
    today: date,
    now: datetime,
    publish_days: Iterable[date] = (),
) -> PlanVersionRow:
    """Write a new immutable version, point its days at it and bring every request in line.

    A day nobody has seen yet takes the version as its plan; a published day keeps the version its
    technicians see, and the new one becomes its proposal (`publish_days` are published at once, as
    the nightly run does for the day about to start). Runs inside the
    caller's transaction: if anything fails (or the process dies) before the commit, the previous
    versions stay current and none of these rows exist.
    """
    version = PlanVersionRow(
        trigger=trigger,
        run_id=run_id,
        created_at=now,
        horizon_start=plan.horizon_start,
        horizon_days=plan.horizon_days,
        timezone=plan.timezone,
        kpis=plan.kpis.model_dump(mode="json"),
        solver=plan.solver.model_dump(mode="json"),
        unassigned=[u.model_dump(mode="json") for u in plan.unassigned],
    )
    session.add(version)
    session.flush()
    # Set-wise: one INSERT for the routes (ids back with RETURNING), one for their visits. Written
    # row by row, a 3,000-visit week held a CPU for seconds while technicians were pulling routes.
    if plan.routes:
        ids = session.scalars(
            insert(RouteRow).returning(RouteRow.id, sort_by_parameter_order=True),
            [
                {
                    "plan_version_id": version.id,
                    "technician_id": route.technician_id,
                    "date": route.date,
                    "start": route.start,
                    "end": route.end,
                    "distance_km": route.distance_km,
                    "travel_minutes": route.travel_minutes,
                    "overtime_minutes": route.overtime_minutes,
                    "break_start": route.break_.start if route.break_ else None,
                    "break_end": route.break_.end if route.break_ else None,
                }
                for route in plan.routes
            ],
        ).all()
        visits = [
            {
                "route_id": rid,
                "plan_version_id": version.id,
                "seq": i,
                "job_id": v.job_id,
                "arrival": v.arrival,
                "start": v.start,
                "end": v.end,
                "part": v.part,
                "role": v.role,
            }
            for rid, route in zip(ids, plan.routes, strict=True)
            for i, v in enumerate(route.visits)
        ]
        if visits:
            session.execute(insert(VisitRow), visits)
    fault_point("after_visits")

    pointers = current_pointers(session, days)
    for day in days:
        if day in pointers:
            pointers[day].plan_version_id = version.id
        else:
            session.add(CurrentPlanRow(date=day, plan_version_id=version.id))
    session.flush()
    fault_point("after_pointers")
    for u in plan.unassigned:
        if u.reason == ReasonCode.PROMISE_BROKEN:
            notify(
                session,
                now=now,
                audience="dispatcher",
                kind="promise_broken",
                subject=u.job_id,
                message=u.detail,
            )
    for day in publish_days:
        publish(session, day=day, today=today, now=now, tz=ZoneInfo(plan.timezone))
    lifecycle.reconcile(session, today=today)
    fault_point("before_commit")
    return version


def touch_route(session: Session, technician_id: str | None) -> None:
    """A visit on this technician's route changed status: their route revision rises, so their
    route (and only theirs) gets a new ETag. A new published version changes every ETag by itself."""
    tech = session.get(TechnicianRow, technician_id) if technician_id is not None else None
    if tech is not None:
        tech.route_revision = (tech.route_revision or 0) + 1


def notify(
    session: Session,
    *,
    now: datetime,
    audience: str,
    kind: str,
    subject: str,
    message: str,
    technician_id: str | None = None,
    job_id: str | None = None,
    plan_version_id: int | None = None,
    recipient: dict[str, Any] | None = None,
    **detail: object,
) -> NoticeRow:
    """Something someone must be told, into the outbox (`api.outbox` delivers it to the webhooks)."""
    row = NoticeRow(
        at=now,
        audience=audience,
        kind=kind,
        subject=subject,
        message=message,
        detail=detail,
        technician_id=technician_id,
        job_id=job_id,
        plan_version_id=plan_version_id,
        recipient=recipient,
        delivery="pending",
        attempts=0,
        next_attempt_at=now,
    )
    session.add(row)
    return row


def publish(
    session: Session, *, day: date, today: date, now: datetime, tz: ZoneInfo
) -> tuple[CurrentPlanRow, int]:
    """Technicians now see the day's newest version; its visits become promises to the customers."""
    pointer = session.get(CurrentPlanRow, day)
    if pointer is None:
        raise NotFound(f"no plan for {day}: request one with POST /v1/plans first")
    changed = pointer.published_version_id != pointer.plan_version_id
    pointer.published_version_id = pointer.plan_version_id
    if changed or pointer.published_at is None:
        pointer.published_at = now
    visits = list(
        session.execute(
            select(VisitRow.job_id, VisitRow.start)
            .join(RouteRow, VisitRow.route_id == RouteRow.id)
            .where(RouteRow.plan_version_id == pointer.plan_version_id, RouteRow.date == day)
        )
    )
    starts = dict(visits)
    for req in session.scalars(select(RequestRow).where(RequestRow.id.in_(list(starts)))):
        if req.promise_start is None and req.status not in (JobStatus.DONE, JobStatus.CANCELLED):
            req.promise_start, req.promise_end = promise_window(job_model(req), starts[req.id], tz)
    session.flush()
    lifecycle.reconcile(session, today=today)
    dispatched = sum(
        1
        for r in session.scalars(select(RequestRow).where(RequestRow.id.in_(list(starts))))
        if r.status == JobStatus.DISPATCHED
    )
    from api.routebody import render_day  # the API's view of a route; it reads this module

    render_day(session, day, tz)
    return pointer, dispatched


def promise_window(job: Job, start: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The window containing the planned start, or the planned start give or take PROMISE_MARGIN."""

    def local(value: datetime) -> datetime:
        return value.replace(tzinfo=tz) if value.tzinfo is None else value

    for w in job.windows:
        if local(w.start) <= start <= local(w.end):
            return local(w.start), local(w.end)
    return start - PROMISE_MARGIN, start + PROMISE_MARGIN
