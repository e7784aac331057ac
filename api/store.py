"""Data access: domain models in, rows out and back. One style (SQLAlchemy 2 `select`), no raw SQL.

Routes call these keyword-only functions; the caller owns the transaction (`session.begin()` or
`commit()`), so a plan version and its "current" pointers are always written together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from api.errors import NotFound
from api.tables import (
    CurrentPlanRow,
    PlanVersionRow,
    RequestRow,
    RouteRow,
    ShiftRow,
    TechnicianRow,
    VisitRow,
    utcnow,
)
from models import Break, Job, JobStatus, Kpis, Plan, Route, Shift, SolverStats, Technician, Unassigned, Visit

ACTIVE = (JobStatus.OPEN, JobStatus.PLANNED, JobStatus.DISPATCHED, JobStatus.IN_PROGRESS, JobStatus.FAILED)


def _noop(point: str) -> None:
    return None


#: Called at named points while a plan version is written; tests use it to inject a crash.
fault_point: Callable[[str], None] = _noop


# --- technicians -------------------------------------------------------------------------------


def technician_model(row: TechnicianRow) -> Technician:
    shifts = [Shift(date=s.date, start=s.start, end=s.end) for s in row.shifts]  # type: ignore[arg-type]
    return Technician.model_validate({**row.spec, "shifts": [s.model_dump(mode="json") for s in shifts]})


def put_technician(session: Session, tech: Technician) -> TechnicianRow:
    row = session.get(TechnicianRow, tech.id)
    spec = tech.model_dump(mode="json", exclude={"shifts"})
    if row is None:
        row = TechnicianRow(id=tech.id, name=tech.name, spec=spec)
        session.add(row)
    else:
        row.name, row.spec, row.active = tech.name, spec, True
    replace_shifts(session, row, tech.shifts)
    return row


def replace_shifts(session: Session, row: TechnicianRow, shifts: Iterable[Shift]) -> None:
    row.shifts.clear()
    session.flush()
    for s in shifts:
        row.shifts.append(ShiftRow(date=s.date, start=s.start.strftime("%H:%M"), end=s.end.strftime("%H:%M")))


def technicians(session: Session, *, active_only: bool = True) -> list[TechnicianRow]:
    query = select(TechnicianRow).options(selectinload(TechnicianRow.shifts)).order_by(TechnicianRow.id)
    if active_only:
        query = query.where(TechnicianRow.active.is_(True))
    return list(session.scalars(query))


# --- service requests --------------------------------------------------------------------------


def job_model(row: RequestRow) -> Job:
    return Job.model_validate(row.spec)


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
            Visit(job_id=v.job_id, arrival=local(v.arrival), start=local(v.start), end=local(v.end))
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


def current_routes(session: Session, days: Iterable[date], tz: ZoneInfo) -> tuple[list[Route], set[date]]:
    """The routes now current for these days (possibly from several versions) and the published days."""
    routes: list[Route] = []
    published: set[date] = set()
    for day, pointer in sorted(current_pointers(session, days).items()):
        if pointer.published_at is not None:
            published.add(day)
        routes += [
            route_model(r, tz) for r in routes_of(session, version_id=pointer.plan_version_id, day=day)
        ]
    return routes, published


def store_plan(
    session: Session,
    *,
    plan: Plan,
    days: list[date],
    trigger: str,
    run_id: int | None,
) -> PlanVersionRow:
    """Write a new immutable version, point its days at it and update request statuses.

    Runs inside the caller's transaction: if anything fails (or the process dies) before the commit,
    the previous version stays current and none of these rows exist.
    """
    version = PlanVersionRow(
        trigger=trigger,
        run_id=run_id,
        horizon_start=plan.horizon_start,
        horizon_days=plan.horizon_days,
        timezone=plan.timezone,
        kpis=plan.kpis.model_dump(mode="json"),
        solver=plan.solver.model_dump(mode="json"),
        unassigned=[u.model_dump(mode="json") for u in plan.unassigned],
    )
    session.add(version)
    session.flush()
    for route in plan.routes:
        row = RouteRow(
            plan_version_id=version.id,
            technician_id=route.technician_id,
            date=route.date,
            start=route.start,
            end=route.end,
            distance_km=route.distance_km,
            travel_minutes=route.travel_minutes,
            overtime_minutes=route.overtime_minutes,
            break_start=route.break_.start if route.break_ else None,
            break_end=route.break_.end if route.break_ else None,
        )
        session.add(row)
        session.flush()
        session.add_all(
            VisitRow(
                route_id=row.id,
                plan_version_id=version.id,
                seq=i,
                job_id=v.job_id,
                arrival=v.arrival,
                start=v.start,
                end=v.end,
            )
            for i, v in enumerate(route.visits)
        )
    session.flush()
    fault_point("after_visits")

    pointers = current_pointers(session, days)
    for day in days:
        if day in pointers:
            pointers[day].plan_version_id = version.id
        else:
            session.add(CurrentPlanRow(date=day, plan_version_id=version.id))
    published = {d for d, p in pointers.items() if p.published_at is not None}
    session.flush()
    fault_point("after_pointers")

    where = {v.job_id: (r.technician_id, r.date) for r in plan.routes for v in r.visits}
    horizon = set(days)
    for req in active_requests(session):
        if req.id in where:
            req.technician_id, req.planned_date = where[req.id]
            if req.status in (JobStatus.OPEN, JobStatus.PLANNED, JobStatus.FAILED):
                req.status = JobStatus.DISPATCHED if req.planned_date in published else JobStatus.PLANNED
        elif req.status == JobStatus.PLANNED and req.planned_date in horizon:
            req.status, req.technician_id, req.planned_date = JobStatus.OPEN, None, None
    fault_point("before_commit")
    return version


def publish(session: Session, *, day: date) -> tuple[CurrentPlanRow, int]:
    pointer = session.get(CurrentPlanRow, day)
    if pointer is None:
        raise NotFound(f"no plan for {day}: request one with POST /v1/plans first")
    if pointer.published_at is None:
        pointer.published_at = utcnow()
    job_ids = list(
        session.scalars(
            select(VisitRow.job_id)
            .join(RouteRow, VisitRow.route_id == RouteRow.id)
            .where(RouteRow.plan_version_id == pointer.plan_version_id, RouteRow.date == day)
        )
    )
    moved = 0
    for req in session.scalars(select(RequestRow).where(RequestRow.id.in_(job_ids))):
        if req.status == JobStatus.PLANNED:
            req.status = JobStatus.DISPATCHED
            moved += 1
    return pointer, moved
