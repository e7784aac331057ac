"""The day as it happens, for the service: events, execution state, and the in-day re-optimisation.

What technicians reported (visit statuses, positions) and what dispatchers said (absences,
emergencies, overruns, delays) become `optimizer.intraday`'s plain inputs; the re-optimisation runs
in a worker process (the web process keeps serving); its plan passes the validator, is written as a
new version of the day (published at once: technicians are on the road), every request's status
follows it, and its notices go to the outbox (`api.outbox`) for the webhooks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import audit, booking, roads, store
from api.context import Service
from api.errors import Conflict, Unavailable, Unprocessable
from api.replan_job import in_worker
from api.routes.requests import to_row
from api.schemas import (
    DayEvent,
    DayNotice,
    Emergency,
    ReoptimiseBody,
    ReoptimisePublic,
    TechnicianDelay,
    TechnicianUnavailable,
    VisitOverrun,
)
from api.tables import DayEventRow, PositionRow, RequestRow, TechnicianRow
from models import GeoPoint, Job, JobStatus, Route, VisitStatus
from optimizer import SolveOptions
from optimizer.intraday import (
    Budget,
    CurrentState,
    CurrentVisit,
    Execution,
    IntradayInput,
    IntradayResult,
    as_planned,
    reoptimise,
)
from optimizer.replan import raised_priority

log = logging.getLogger("fieldplan.intraday")
#: The pure re-optimisation the worker runs; tests swap it for one that fails or breaks a rule.
SOLVER: Callable[[IntradayInput], IntradayResult] = reoptimise
#: Re-read and solve again when something was written while the solver ran; then store as it is.
REBASES = 2


def check_today(service: Service, day: date) -> None:
    if day != service.today():
        raise Unprocessable(
            ["path", "day"],
            f"the day as it happens is today ({service.today()} by the service's clock); "
            "plan other days with POST /v1/plans",
        )


# --- events --------------------------------------------------------------------------------------


def record_event(
    session: Session, service: Service, *, day: date, event: DayEvent, actor: str
) -> DayEventRow:
    """Check an event against what is stored and keep it (an emergency also creates its request)."""
    check_today(service, day)
    now = service.now()
    tz = service.tz
    tech_id: str | None = None
    job_id: str | None = None
    if isinstance(event, TechnicianUnavailable | TechnicianDelay):
        tech_id = event.technician_id
        if session.get(TechnicianRow, tech_id) is None:
            raise Unprocessable(["body", "technician_id"], f"unknown technician {tech_id!r}")
    if isinstance(event, TechnicianUnavailable):
        start = _aware(event.from_, service)
        if start.astimezone(tz).date() != day:
            raise Unprocessable(["body", "from"], f"must be on {day}")
    elif isinstance(event, VisitOverrun):
        job_id = event.job_id
        req = session.get(RequestRow, job_id)
        if req is None:
            raise Unprocessable(["body", "job_id"], f"unknown request {job_id!r}")
        if req.visit_status != VisitStatus.STARTED.value or req.planned_date != day:
            raise Conflict(f"visit {job_id!r} is not under way today: only a started visit can overrun")
        if _aware(event.expected_end, service) <= now:
            raise Unprocessable(["body", "expected_end"], "must be after now")
        tech_id = req.technician_id
    elif isinstance(event, Emergency):
        body = event.request
        if session.get(RequestRow, body.id) is not None:
            raise Conflict(f"request {body.id!r} exists; give the emergency a new id")
        due = body.due or now + timedelta(hours=service.settings.emergency_sla_hours)
        body = body.model_copy(update={"emergency": True, "priority": 1, "due": due})
        row = to_row(session, service.settings, body, ["body", "request"], service.today())
        session.add(row)
        job_id = row.id
        audit.record(session, now=now, actor=actor, action="request.created", subject=row.id, emergency=True)
    payload = event.model_dump(mode="json", by_alias=True, exclude={"request"})
    if isinstance(event, Emergency):
        payload["request_id"] = job_id
    row_event = DayEventRow(
        day=day,
        type=event.type,
        technician_id=tech_id,
        job_id=job_id,
        payload=payload,
        created_by=actor,
        created_at=now,
    )
    session.add(row_event)
    audit.record(session, now=now, actor=actor, action=f"day.{event.type}", subject=str(day), **payload)
    session.flush()
    return row_event


def _aware(value: datetime, service: Service) -> datetime:
    return value.replace(tzinfo=service.tz) if value.tzinfo is None else value


# --- the execution state -------------------------------------------------------------------------


def load_input(service: Service, day: date, body: ReoptimiseBody) -> tuple[IntradayInput, str]:
    """The day's routes as technicians see them, what they reported, the day's events, the open
    work; and a fingerprint to notice writes made while the solver runs."""
    tz, now = service.tz, service.now()
    settings = service.settings
    with service.sessions() as session:
        pointer = store.current_pointers(session, [day]).get(day)
        if pointer is None:
            raise Conflict(f"there is no plan for {day} to re-optimise: request one with POST /v1/plans")
        routes = store.shown_routes(session, [day], tz)
        techs = [store.technician_model(t) for t in store.technicians(session)]
        on_route = [v.job_id for r in routes for v in r.visits]
        rows = {r.id: r for r in session.scalars(select(RequestRow).where(RequestRow.id.in_(on_route)))}
        open_rows = list(session.scalars(select(RequestRow).where(RequestRow.status == JobStatus.OPEN.value)))
        for r in open_rows:
            rows.setdefault(r.id, r)
        events = list(
            session.scalars(select(DayEventRow).where(DayEventRow.day == day).order_by(DayEventRow.id))
        )
        start_of_day = datetime.combine(day, datetime.min.time(), tzinfo=tz)
        positions = list(
            session.scalars(
                select(PositionRow)
                .where(PositionRow.at >= start_of_day, PositionRow.at <= now)
                .order_by(PositionRow.at)
            )
        )
        seen = store.fingerprint(session)
        given = roads.uploaded(session)
        jobs = {rid: store.job_model(r) for rid, r in rows.items()}
        execution = _execution(routes, rows, events, positions, now, use_positions=given is None)
        emergencies = [r.id for r in open_rows if jobs[r.id].emergency and r.id not in on_route]
        emergencies.sort(key=lambda j: (jobs[j].due or now, j))
        pool = [r.id for r in open_rows if r.id not in on_route and r.id not in emergencies]
    extra = [e.position for e in execution if e.position is not None]
    travel, _ = roads.for_service(settings, roads.places(techs, list(jobs.values()), extra), given)
    data = IntradayInput(
        name=f"in-day {day}",
        timezone=settings.timezone,
        day=day,
        now=now,
        travel=travel,
        technicians=techs,
        jobs=list(jobs.values()),
        routes=routes,
        execution=execution,
        emergencies=emergencies,
        pool=pool,
        budget=Budget(
            max_changed_visits_per_technician=body.max_changed_visits_per_technician
            if body.max_changed_visits_per_technician is not None
            else settings.max_changed_visits_per_technician,
            max_eta_shift_minutes=body.max_eta_shift_minutes
            if body.max_eta_shift_minutes is not None
            else settings.max_eta_shift_minutes,
        ),
        options=SolveOptions(time_limit_seconds=min(3.0, settings.solve_seconds), iterations=200),
    )
    return data, seen


def _execution(
    routes: Sequence[Any],
    rows: dict[str, RequestRow],
    events: list[DayEventRow],
    positions: list[PositionRow],
    now: datetime,
    *,
    use_positions: bool,
) -> list[Execution]:
    """Per technician: visits done, the one under way, the last position, absences and delays.

    A delay counts until the technician's next report (what they report then is the truth); an
    overrun sets the end of the visit it names while that visit is under way."""
    overrun = {e.job_id: e.payload["expected_end"] for e in events if e.type == "visit_overrun"}
    out: list[Execution] = []
    techs = {r.technician_id for r in routes} | {e.technician_id for e in events if e.technician_id}
    by_tech = {r.technician_id: r for r in routes}
    for tid in sorted(t for t in techs if t is not None):
        route = by_tech.get(tid)
        visits = route.visits if route is not None else []
        done: list[str] = []
        current: CurrentVisit | None = None
        last_report: datetime | None = None
        for v in visits:
            row = rows.get(v.job_id)
            if row is None or row.visit_status is None:
                continue
            if row.visit_reported_at is not None:
                last_report = max(last_report or row.visit_reported_at, row.visit_reported_at)
            if row.visit_status in (VisitStatus.COMPLETED.value, VisitStatus.FAILED.value):
                done.append(v.job_id)
            elif current is None:
                end = overrun.get(v.job_id) if row.visit_status == VisitStatus.STARTED.value else None
                current = CurrentVisit(
                    job_id=v.job_id,
                    state=CurrentState(row.visit_status),
                    since=row.visit_reported_at or now,
                    expected_end=datetime.fromisoformat(end) if end else None,
                )
        mine = [p for p in positions if p.technician_id == tid]
        pos = mine[-1] if mine and use_positions else None
        if pos is not None and last_report is not None and pos.at < last_report:
            pos = None  # a report since says where they are
        if current is None and pos is None and route is not None:
            done, current = as_planned(route, now, done)
        off = [e for e in events if e.type == "technician_unavailable" and e.technician_id == tid]
        delay = sum(
            float(e.payload["minutes"])
            for e in events
            if e.type == "technician_delay"
            and e.technician_id == tid
            and (last_report is None or e.created_at >= last_report)
        )
        out.append(
            Execution(
                technician_id=tid,
                done=done,
                current=current,
                position=GeoPoint(lat=pos.lat, lon=pos.lon) if pos is not None else None,
                position_at=pos.at if pos is not None else None,
                unavailable_from=datetime.fromisoformat(off[-1].payload["from"]) if off else None,
                unavailable_until=datetime.fromisoformat(off[-1].payload["until"])
                if off and off[-1].payload.get("until")
                else None,
                delay_minutes=min(delay, 1440.0),
            )
        )
    return out


# --- the re-optimisation -------------------------------------------------------------------------


def reoptimise_day(service: Service, day: date, body: ReoptimiseBody, *, actor: str) -> ReoptimisePublic:
    """Re-plan the rest of `day` and make it what technicians see; the answer says what changed."""
    check_today(service, day)
    timeout = service.settings.intraday_seconds
    for attempt in range(REBASES + 1):
        data, seen = load_input(service, day, body)
        try:
            result: IntradayResult = in_worker(SOLVER, data, timeout=timeout, pool="intraday")
        except (RuntimeError, BrokenProcessPool) as exc:
            log.error("in-day re-optimisation of %s failed: %s", day, exc)
            raise Unavailable(f"the re-optimisation did not finish ({exc}); the plan is unchanged") from None
        violations = result.violations()
        if violations:
            listed = "; ".join(str(v) for v in violations[:10])
            log.error("in-day plan of %s rejected by the validator: %s", day, listed)
            raise Unavailable(
                f"the re-optimised plan failed the validator ({len(violations)} violations), so it was not "
                f"stored; the plan is unchanged: {listed}"
            )
        with service.sessions.begin() as session:
            booking.lock_plan(session, service.now())
            if attempt < REBASES and store.fingerprint(session) != seen:
                continue  # a report or a request arrived meanwhile: plan again with it
            return _store(session, service, day, result, actor)
    raise AssertionError("unreachable: the last attempt stores")


def _store(
    session: Session, service: Service, day: date, result: IntradayResult, actor: str
) -> ReoptimisePublic:
    now = service.now()
    changes: dict[tuple[str, date], Route | None] = {(r.technician_id, day): r for r in result.plan.routes}
    for r in store.shown_routes(session, [day], service.tz):
        changes.setdefault((r.technician_id, day), None)
    left = {u.job_id: (u.reason, u.detail) for u in result.plan.unassigned}
    version = booking.write_routes(
        session,
        service,
        changes=changes,
        left_out=left,
        trigger="in-day",
        status="IN_DAY",  # type: ignore[arg-type]
    )
    for u in result.returned:
        req = session.get(RequestRow, u.job_id)
        if req is None or req.status != JobStatus.OPEN.value:
            continue
        # Back to the pool, one level more urgent: the customer was promised today (a promise
        # that cannot be kept is also told to the dispatcher, by `store_plan`).
        req.spec = raised_priority(Job.model_validate(req.spec)).model_dump(mode="json")
        req.promise_start = req.promise_end = None
    contacts = {
        r.id: r.contact
        for r in session.scalars(
            select(RequestRow).where(RequestRow.id.in_([n.job_id for n in result.notices if n.job_id]))
        )
    }
    notices: list[DayNotice] = []
    for n in result.notices:
        row = store.notify(
            session,
            now=now,
            audience=n.audience,
            kind=n.kind,
            subject=n.job_id or n.technician_id or str(day),
            message=n.message,
            technician_id=n.technician_id,
            job_id=n.job_id,
            plan_version_id=version.id,
            recipient=contacts.get(n.job_id) if n.audience == "customer" and n.job_id else None,
            day=day.isoformat(),
        )
        session.flush()
        notices.append(
            DayNotice(
                id=row.id,
                audience=row.audience,
                kind=row.kind,
                technician_id=n.technician_id,
                job_id=n.job_id,
                message=row.message,
            )
        )
    for d in result.diff:
        store.touch_route(session, d.technician_id)
    audit.record(
        session,
        now=now,
        actor=actor,
        action="day.reoptimised",
        subject=str(day),
        plan_version=version.id,
        changed=sum(d.changed_visits for d in result.diff),
        returned=[u.job_id for u in result.returned],
    )
    return ReoptimisePublic(
        plan_version=version.id,
        diff=[d.model_dump(mode="json") for d in result.diff],
        customers=[c.model_dump(mode="json") for c in result.customers],
        notices=notices,
        returned=result.returned,
        frozen=result.frozen,
    )
