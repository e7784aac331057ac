"""The dispatch board's reads and writes: a day as the board draws it, its diff, evaluations, pins.

Everything here is what the `/v1` endpoints of `api.routes.board` answer; the page has no other way
into the data. The board shows a day's newest version (a proposal when one waits) so a dispatcher
adjusts what will be published; technicians keep seeing the published one until the day is
published again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import audit, booking, roads, store
from api.context import Service
from api.errors import Conflict, NotFound, Unprocessable
from api.schemas import (
    BoardDay,
    BoardJob,
    BoardRoute,
    BoardTechnician,
    BoardVisit,
    DayChange,
    DayDiff,
    EvaluateRequest,
    PinBody,
    Promise,
    Waiting,
)
from api.tables import CurrentPlanRow, PlanVersionRow, RequestRow, RouteRow, TechnicianRow, VisitRow
from models import Job, JobStatus, Kpis, Pinned, ReasonCode, Route, Technician, Unassigned
from optimizer import SolveOptions
from optimizer.evaluate import Evaluation, Placing, evaluate
from optimizer.replan import ReplanInput
from optimizer.slots import without_visit

#: A visit whose start moves less than this between published and proposed is "the same time".
RETIMED_MINUTES = 15


def _requests(session: Session, ids: Iterable[str]) -> dict[str, RequestRow]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {r.id: r for r in session.scalars(select(RequestRow).where(RequestRow.id.in_(wanted)))}


def board_job(row: RequestRow, service: Service, job: Job | None = None) -> BoardJob:
    job = job or store.job_model(row)
    tz = service.tz
    return BoardJob(
        id=job.id,
        kind=job.kind,
        priority=job.effective_priority,
        status=JobStatus(row.status),
        visit_status=row.visit_status,  # type: ignore[arg-type]
        location=job.location,
        address=row.address,
        customer_id=job.customer_id,
        duration_minutes=job.duration_minutes,
        skills=dict(job.skills),
        windows=[{"start": _local(w.start, tz), "end": _local(w.end, tz)} for w in job.windows],
        due=_local(job.due, tz) if job.due else None,
        warranty=job.warranty,
        emergency=job.emergency,
        notes=job.notes,
        pinned=job.pinned.model_dump(mode="json") if job.pinned else None,
        promise=Promise(start=row.promise_start, end=row.promise_end)
        if row.promise_start is not None and row.promise_end is not None
        else None,
        crew_size=job.crew_size,
        max_days=job.max_days,
        after=job.after.model_dump(mode="json", exclude_none=True) if job.after else None,
        same_technician_as=job.same_technician_as.model_dump(mode="json", exclude_none=True)
        if job.same_technician_as
        else None,
    )


def _local(value: datetime, tz: ZoneInfo) -> datetime:
    return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)


def could_be_on(job: Job, day: date, service: Service) -> bool:
    """The job could be done on `day`: a waiting-list row belongs to the days it may go to."""
    tz = service.tz
    lo = datetime.combine(day, time(0), tz)
    hi = lo + timedelta(days=1)
    if job.pinned is not None:
        return job.pinned.date == day
    if job.release is not None and _local(job.release, tz) >= hi:
        return False
    if job.appointment is not None:
        return _local(job.appointment.start, tz) < hi and _local(job.appointment.end, tz) > lo
    if job.windows:
        return any(_local(w.start, tz) < hi and _local(w.end, tz) > lo for w in job.windows)
    return True


def version_for(session: Session, day: date, which: str) -> tuple[CurrentPlanRow | None, int | None]:
    pointer = session.get(CurrentPlanRow, day)
    if pointer is None:
        return None, None
    if which == "published":
        return pointer, pointer.published_version_id
    return pointer, pointer.plan_version_id


def day_routes(session: Session, service: Service, version_id: int, day: date) -> list[Route]:
    return [
        store.route_model(r, service.tz) for r in store.routes_of(session, version_id=version_id, day=day)
    ]


def waiting_of(
    session: Session, service: Service, version: PlanVersionRow, day: date
) -> tuple[list[Unassigned], dict[str, RequestRow]]:
    """The version's left-out jobs, and the open requests that came after it (not planned yet),
    that could be done on `day`."""
    left = [Unassigned.model_validate(u) for u in version.unassigned]
    rows = _requests(session, (u.job_id for u in left))
    in_version = set(session.scalars(select(VisitRow.job_id).where(VisitRow.plan_version_id == version.id)))
    for row in session.scalars(select(RequestRow).where(RequestRow.status == JobStatus.OPEN.value)):
        if row.id not in rows and row.id not in in_version:
            rows[row.id] = row
            reason = ReasonCode(row.reason) if row.reason else ReasonCode.NOT_PLANNED_YET
            left.append(
                Unassigned(job_id=row.id, reason=reason, detail=row.reason_detail or "not planned yet")
            )
    keep = [
        u
        for u in left
        if u.job_id in rows
        and not JobStatus(rows[u.job_id].status).terminal
        and could_be_on(store.job_model(rows[u.job_id]), day, service)
    ]
    return keep, rows


def day_kpis(session: Session, service: Service, day: date, which: str = "newest") -> Kpis | None:
    _, version_id = version_for(session, day, which)
    if version_id is None:
        return None
    version = session.get(PlanVersionRow, version_id)
    assert version is not None
    routes = day_routes(session, service, version_id, day)
    left, _ = waiting_of(session, service, version, day)
    return booking.day_kpis(session, routes, left, [day], service.settings.timezone)


def board_day(session: Session, service: Service, day: date, which: str = "newest") -> BoardDay:
    pointer, version_id = version_for(session, day, which)
    rows_t = store.technicians(session, active_only=False)
    everyone = [store.technician_model(t) for t in rows_t]
    tz = service.tz
    members = [_member(t, day, service) for t, row in zip(everyone, rows_t, strict=True) if row.active]
    if pointer is None or version_id is None:
        return BoardDay(
            date=day, now=service.now().astimezone(tz), published=False, published_version=None,
            technicians=members, routes=[], waiting=[], jobs={}, kpis=None,
        )  # fmt: skip
    version = session.get(PlanVersionRow, version_id)
    assert version is not None
    routes = day_routes(session, service, version_id, day)
    left, rows = waiting_of(session, service, version, day)
    rows.update(_requests(session, (v.job_id for r in routes for v in r.visits)))
    models = {i: store.job_model(r) for i, r in rows.items()}
    dues = {i: m.due for i, m in models.items()}
    board_routes = [
        BoardRoute(
            technician_id=r.technician_id,
            start=r.start,
            end=r.end,
            distance_km=r.distance_km,
            travel_minutes=r.travel_minutes,
            overtime_minutes=r.overtime_minutes,
            break_={"start": r.break_.start, "end": r.break_.end} if r.break_ else None,
            visits=[
                BoardVisit(
                    job_id=v.job_id,
                    arrival=v.arrival,
                    start=v.start,
                    end=v.end,
                    late=(due := dues.get(v.job_id)) is not None and v.end > _local(due, tz),
                    part=v.part,
                    role=v.role,
                )
                for v in r.visits
            ],
        )
        for r in routes
    ]
    shown = {v.job_id for r in routes for v in r.visits} | {u.job_id for u in left}
    return BoardDay(
        date=day,
        now=service.now().astimezone(service.tz),
        plan_version=version_id,
        published=pointer.published_version_id == version_id,
        published_version=pointer.published_version_id,
        proposal=pointer.proposed_version_id,
        technicians=members,
        routes=board_routes,
        waiting=[Waiting(job_id=u.job_id, reason=u.reason.value, detail=u.detail) for u in left],
        jobs={i: board_job(rows[i], service, models[i]) for i in sorted(shown) if i in rows},
        kpis=_with_churn(
            session,
            service,
            day,
            booking.day_kpis(
                session, routes, left, [day], service.settings.timezone, loaded=rows, technicians=everyone
            ),
            pointer,
            version_id,
        ),
    )


def _with_churn(
    session: Session, service: Service, day: date, kpis: Kpis, pointer: CurrentPlanRow, shown: int
) -> Kpis:
    """A proposal's churn: the share of the visits technicians were told that it moves to another
    technician or day, or drops."""
    if pointer.proposed_version_id != shown:
        return kpis
    diff = day_diff(session, service, day)
    told = sum(
        len(r.visits) for r in day_routes(session, service, pointer.published_version_id or shown, day)
    )
    moved = sum(diff.counts.get(k, 0) for k in ("technician", "day", "dropped"))
    return kpis.model_copy(update={"churn": round(moved / told, 4) if told else None})


def _member(t: Technician, day: date, service: Service) -> BoardTechnician:
    shift = next((s for s in t.shifts if s.date == day), None)
    tz = service.tz
    return BoardTechnician(
        id=t.id,
        name=t.name,
        skills=dict(t.skills),
        home=t.home,
        shift_start=datetime.combine(day, shift.start, tz) if shift else None,
        shift_end=datetime.combine(day, shift.end, tz) if shift else None,
        overtime_limit_minutes=t.max_overtime_minutes,
    )


# --- published against proposed -------------------------------------------------------------------


def day_diff(session: Session, service: Service, day: date) -> DayDiff:
    """What publishing the day's proposal would change for its technicians and customers."""
    pointer = session.get(CurrentPlanRow, day)
    if pointer is None:
        raise NotFound(f"no plan for {day}")
    published, proposed = pointer.published_version_id, pointer.proposed_version_id
    if published is None or proposed is None:
        return DayDiff(
            date=day, published_version=published, proposed_version=proposed, changes=[], counts={}
        )
    was = {
        v.job_id: (r.technician_id, r.date, v.start)
        for r in day_routes(session, service, published, day)
        for v in r.visits
    }
    version = session.get(PlanVersionRow, proposed)
    assert version is not None
    everywhere = {
        v.job_id: (r.technician_id, r.date, v.start)
        for r in (store.route_model(x, service.tz) for x in store.routes_of(session, version_id=proposed))
        for v in r.visits
    }
    reasons = {str(u["job_id"]): f"{u['reason']}: {u['detail']}" for u in version.unassigned}
    changes: list[DayChange] = []
    for job_id, (tech, _, start) in sorted(was.items()):
        old = {"from_technician": tech, "from_date": day, "from_start": start}
        if job_id not in everywhere:
            why = reasons.get(job_id, "no longer planned")
            changes.append(DayChange(job_id=job_id, change="dropped", detail=why, **old))
            continue
        t2, d2, s2 = everywhere[job_id]
        new = {"to_technician": t2, "to_date": d2, "to_start": s2}
        if d2 != day:
            changes.append(
                DayChange(job_id=job_id, change="day", detail=f"moves to {d2} ({t2})", **old, **new)
            )
        elif t2 != tech:
            changes.append(
                DayChange(job_id=job_id, change="technician", detail=f"{tech} -> {t2}", **old, **new)
            )
        elif abs(s2 - start) >= timedelta(minutes=RETIMED_MINUTES):
            shift = round((s2 - start).total_seconds() / 60)
            changes.append(
                DayChange(job_id=job_id, change="time", detail=f"starts {shift:+d} min", **old, **new)
            )
    for job_id, (t2, d2, s2) in sorted(everywhere.items()):
        if d2 == day and job_id not in was:
            changes.append(
                DayChange(
                    job_id=job_id, change="new", to_technician=t2, to_date=d2, to_start=s2,
                    detail=f"added to {t2}'s route",
                )
            )  # fmt: skip
    counts: dict[str, int] = {}
    for c in changes:
        counts[c.change] = counts.get(c.change, 0) + 1
    return DayDiff(
        date=day, published_version=published, proposed_version=proposed, changes=changes, counts=counts
    )


# --- the optimizer's judgement before a drop ------------------------------------------------------


def _request(session: Session, job_id: str, loc: list[str | int]) -> RequestRow:
    row = session.get(RequestRow, job_id)
    if row is None:
        raise Unprocessable(loc, f"no request {job_id!r}")
    status = JobStatus(row.status)
    if status.terminal or status == JobStatus.IN_PROGRESS:
        raise Conflict(f"request {job_id!r} is {row.status}: it can no longer be placed")
    return row


def evaluation_input(
    session: Session, service: Service, version_id: int, body: EvaluateRequest | PinBody, job: Job
) -> ReplanInput:
    """The one technician-day of `version_id` the question is about, as plain values."""
    tech_row = session.get(TechnicianRow, body.technician_id)
    if tech_row is None or not tech_row.active:
        raise Unprocessable(["body", "technician_id"], f"no active technician {body.technician_id!r}")
    tech = store.technician_model(tech_row)
    routes = [
        store.route_model(r, service.tz)
        for r in store.routes_of(session, version_id=version_id, day=body.date, technician_id=tech.id)
    ]
    on_route = _requests(session, (v.job_id for r in routes for v in r.visits))
    pool = store.pool_jobs(session, on_route.values())
    travel, _ = roads.for_service(
        service.settings, roads.places([tech], [job, *(p.job for p in pool)]), roads.uploaded(session)
    )
    return ReplanInput(
        name="board evaluation",
        timezone=service.settings.timezone,
        horizon=booking.horizon_for(service, None),
        technicians=[tech],
        pool=pool,
        previous=routes,
        not_before=service.now(),
        travel=travel,
        options=SolveOptions(),
    )


def evaluate_placing(
    session: Session, service: Service, version_id: int, body: EvaluateRequest
) -> Evaluation:
    version = session.get(PlanVersionRow, version_id)
    if version is None:
        raise NotFound(f"no plan version {version_id}")
    last = version.horizon_start + timedelta(days=version.horizon_days - 1)
    if not version.horizon_start <= body.date <= last:
        raise Unprocessable(
            ["body", "date"], f"plan version {version_id} covers {version.horizon_start} to {last}"
        )
    if body.date < service.today():
        raise Unprocessable(["body", "date"], f"{body.date} is over")
    job = store.job_model(_request(session, body.job_id, ["body", "job_id"]))
    return _evaluated(session, service, version_id, body, job)


def _evaluated(
    session: Session, service: Service, version_id: int, body: EvaluateRequest | PinBody, job: Job
) -> Evaluation:
    """The optimizer's answer for `body`'s technician-day of `version_id` (a question or a pin)."""
    return evaluate(
        evaluation_input(session, service, version_id, body, job),
        Placing(
            job=job,
            technician_id=body.technician_id,
            date=body.date,
            start=body.start,
            tolerance_minutes=body.tolerance_minutes,
        ),
    )


def pin(
    session: Session, service: Service, request_id: str, body: PinBody, who: str
) -> tuple[RequestRow, int | None, Evaluation | None]:
    """Pin a request to a technician-day (and a start): placed at once into the day's newest version
    (a proposal when the day is published), or 409 with the evaluation's reason when it cannot go
    there. Runs in the caller's transaction."""
    if body.date < service.today():
        raise Unprocessable(["body", "date"], f"{body.date} is over")
    booking.lock_plan(session, service.now())
    if session.get(RequestRow, request_id) is None:
        raise NotFound(f"no request {request_id!r}")
    row = _request(session, request_id, ["path", "request_id"])
    if body.start is not None and _local(body.start, service.tz).date() != body.date:
        raise Unprocessable(["body", "start"], f"{body.start} is not on {body.date}")
    job = store.job_model(row)
    pointer = session.get(CurrentPlanRow, body.date)
    version_id = pointer.plan_version_id if pointer else None
    result: Evaluation | None = None
    placed_in: int | None = None
    if version_id is not None:
        result = _evaluated(session, service, version_id, body, job)
        if not result.feasible or result.route is None:
            raise Conflict(f"{request_id} cannot go to {body.technician_id} then: {result.detail}")
    elif (t := session.get(TechnicianRow, body.technician_id)) is None or not t.active:
        raise Unprocessable(["body", "technician_id"], f"no active technician {body.technician_id!r}")
    start = result.start if result is not None and body.start is not None else body.start
    row.spec = {
        **row.spec,
        "pinned": Pinned(technician_id=body.technician_id, date=body.date, start=start).model_dump(
            mode="json"
        ),
    }
    if result is not None and result.route is not None:
        changes: dict[tuple[str, date], Route | None] = {(body.technician_id, body.date): result.route}
        changes.update(_taken_out(session, service, request_id, exclude=(body.technician_id, body.date)))
        left_out = {
            x: (ReasonCode.CAPACITY, f"gave way to {request_id}, pinned by the dispatcher")
            for x in (result.cost.pushed_out if result.cost else [])
        }
        version = booking.write_routes(
            session, service, changes=changes, left_out=left_out, trigger="board", status="PINNED",
            newest=True, publish=False,
        )  # fmt: skip
        placed_in = version.id
    audit.record(
        session,
        now=service.now(),
        actor=who,
        action="request.pinned",
        subject=request_id,
        technician_id=body.technician_id,
        date=str(body.date),
        start=start.isoformat() if start else None,
        plan_version=placed_in,
    )
    return row, placed_in, result


def _taken_out(
    session: Session, service: Service, job_id: str, exclude: tuple[str, date]
) -> dict[tuple[str, date], Route | None]:
    """The route the pinned job leaves (in its day's newest version), without it."""
    out: dict[tuple[str, date], Route | None] = {}
    newest = {
        p.date: p.plan_version_id
        for p in session.scalars(select(CurrentPlanRow).where(CurrentPlanRow.date >= service.today()))
    }
    hits = session.execute(
        select(RouteRow.technician_id, RouteRow.date, RouteRow.plan_version_id)
        .join(VisitRow, VisitRow.route_id == RouteRow.id)
        .where(VisitRow.job_id == job_id, RouteRow.plan_version_id.in_(set(newest.values())))
    )
    for tech_id, day, version_id in hits:
        if newest.get(day) != version_id or (tech_id, day) == exclude:
            continue
        tech = store.technician_model(session.get(TechnicianRow, tech_id))  # type: ignore[arg-type]
        for row in store.routes_of(session, version_id=version_id, day=day, technician_id=tech_id):
            r = store.route_model(row, service.tz)
            rows = _requests(session, (v.job_id for v in r.visits))
            points = {i: store.job_model(x).location for i, x in rows.items()}
            travel, _ = roads.for_service(
                service.settings,
                roads.places([tech], [store.job_model(x) for x in rows.values()]),
                roads.uploaded(session),
            )
            out[(tech_id, day)] = without_visit(r, job_id, tech, points, travel)
    return out


def unpin(session: Session, service: Service, request_id: str, who: str) -> RequestRow:
    row = session.get(RequestRow, request_id)
    if row is None:
        raise NotFound(f"no request {request_id!r}")
    if row.spec.get("pinned") is None:
        raise Conflict(f"request {request_id!r} is not pinned")
    row.spec = {**row.spec, "pinned": None}
    audit.record(session, now=service.now(), actor=who, action="request.unpinned", subject=request_id)
    return row
