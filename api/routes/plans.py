"""Dispatcher: re-plan now, follow the run, read plan versions and the current plan of a day, publish."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import select

from api import audit, maintenance, store
from api.deps import DayQuery, Dispatcher, ServiceDep, SessionDep
from api.errors import NotFound, Unprocessable
from api.replan_job import nightly_horizon, start_run, working_horizon
from api.schemas import PROTECTED, DayPlan, PlanRequest, PublishResult, RowId, RunAccepted, RunPublic
from api.tables import CurrentPlanRow, PlanVersionRow, RunRow
from models import Horizon, Kpis, Plan, Unassigned

router = APIRouter(tags=["plans"], responses=PROTECTED)


def _accepted(run_id: int) -> RunAccepted:
    return RunAccepted(run_id=run_id, status_url=f"/v1/runs/{run_id}")


@router.post(
    "/v1/plans",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunAccepted,
    responses={409: {"description": "a re-plan is already running (its run id is in the body)"}},
)
def request_plan(body: PlanRequest, service: ServiceDep, _: Dispatcher) -> RunAccepted:
    """Re-plan a date range now, in the background; follow it at `status_url`.

    Days that are over are not re-planned; a day that has begun is planned from now on (nothing
    that has not started is placed before the service's clock).
    """
    today = service.today()
    start = body.start or today
    if start < today:
        raise Unprocessable(
            ["body", "start"],
            f"{start} is in the past (today is {today}); days that are over are not re-planned",
        )
    if not body.from_now and start <= today:
        raise Unprocessable(
            ["body", "from_now"],
            f"false plans whole days, but {today} has begun: plan it from now, or start tomorrow",
        )
    horizon = (
        Horizon(start=start, days=body.days)
        if body.days
        else working_horizon(service, start, service.settings.horizon_working_days)
    )
    return _accepted(start_run(service, trigger="dispatcher", horizon=horizon, from_now=body.from_now))


@router.post("/v1/plans/nightly", status_code=status.HTTP_202_ACCEPTED, response_model=RunAccepted)
def trigger_nightly(service: ServiceDep, _: Dispatcher) -> RunAccepted:
    """Run the nightly re-plan now (same horizon and rules as the 02:00 job, maintenance generation
    first)."""
    maintenance.before_night(service, actor="nightly-manual")
    return _accepted(start_run(service, trigger="nightly-manual", horizon=nightly_horizon(service)))


def run_public(row: RunRow) -> RunPublic:
    return RunPublic.model_validate(row, from_attributes=True)


@router.get("/v1/runs/{run_id}", response_model=RunPublic)
def get_run(run_id: RowId, session: SessionDep, _: Dispatcher) -> RunPublic:
    row = session.get(RunRow, run_id)
    if row is None:
        raise NotFound(f"no run {run_id}")
    return run_public(row)


@router.get("/v1/runs", response_model=list[RunPublic])
def list_runs(
    session: SessionDep, _: Dispatcher, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> list[RunPublic]:
    return [run_public(r) for r in session.scalars(select(RunRow).order_by(RunRow.id.desc()).limit(limit))]


def _day_plan(
    session: SessionDep, service: ServiceDep, day: date, version_id: int, pointer: CurrentPlanRow
) -> DayPlan:
    version = session.get(PlanVersionRow, version_id)
    assert version is not None
    routes = store.routes_of(session, version_id=version.id, day=day)
    return DayPlan(
        date=day,
        plan_version=version.id,
        published=pointer.published_version_id == version.id,
        published_at=pointer.published_at if pointer.published_version_id == version.id else None,
        proposal=pointer.proposed_version_id,
        routes=[store.route_model(r, service.tz) for r in routes],
        unassigned=[Unassigned.model_validate(u) for u in version.unassigned],
        kpis=Kpis.model_validate(version.kpis),
    )


@router.get("/v1/plans/current", response_model=DayPlan)
def current_plan(
    session: SessionDep,
    service: ServiceDep,
    _: Dispatcher,
    day: DayQuery = None,
) -> DayPlan:
    """What technicians see for a day: its published version (a day never published: its plan, with
    `published` false). `proposal` names a newer version waiting to be published."""
    day = day or service.today()
    pointer = session.get(CurrentPlanRow, day)
    if pointer is None:
        raise NotFound(f"no plan for {day}: request one with POST /v1/plans")
    return _day_plan(session, service, day, pointer.shown_version_id, pointer)


@router.get("/v1/plans/proposed", response_model=DayPlan)
def proposed_plan(
    session: SessionDep,
    service: ServiceDep,
    _: Dispatcher,
    day: DayQuery = None,
) -> DayPlan:
    """The re-plan of a published day, waiting for `POST /v1/days/{day}/publish` (404 when none)."""
    day = day or service.today()
    pointer = session.get(CurrentPlanRow, day)
    if pointer is None or pointer.proposed_version_id is None:
        raise NotFound(f"no proposal for {day}: the plan technicians see is the newest")
    return _day_plan(session, service, day, pointer.proposed_version_id, pointer)


@router.get("/v1/plans/current/kpis", response_model=Kpis)
def current_kpis(
    session: SessionDep,
    service: ServiceDep,
    p: Dispatcher,
    day: DayQuery = None,
) -> Kpis:
    return current_plan(session, service, p, day).kpis


@router.get("/v1/plans/current/unassigned", response_model=list[Unassigned])
def current_unassigned(
    session: SessionDep,
    service: ServiceDep,
    p: Dispatcher,
    day: DayQuery = None,
) -> list[Unassigned]:
    return current_plan(session, service, p, day).unassigned


@router.get("/v1/plans/current/unassigned/{job_id}", response_model=Unassigned)
def current_unassigned_job(
    job_id: str,
    session: SessionDep,
    service: ServiceDep,
    p: Dispatcher,
    day: DayQuery = None,
) -> Unassigned:
    """One job left out of the day's plan: its reason and the fixes that would let it in."""
    for u in current_plan(session, service, p, day).unassigned:
        if u.job_id == job_id:
            return u
    raise NotFound(f"{job_id!r} is not among the unassigned jobs of {day or service.today()}")


@router.get("/v1/plans/{version_id:int}", response_model=Plan)
def get_plan_version(version_id: RowId, session: SessionDep, _: Dispatcher) -> Plan:
    version = session.get(PlanVersionRow, version_id)
    if version is None:
        raise NotFound(f"no plan version {version_id}")
    return store.plan_model(session, version)


@router.post("/v1/days/{day}/publish", response_model=PublishResult)
def publish_day(day: date, session: SessionDep, service: ServiceDep, who: Dispatcher) -> PublishResult:
    """Publish a day: technicians see its newest version, and its visits become promises (a day and an
    arrival window) the re-plans keep."""
    if day < service.today():
        raise Unprocessable(["path", "day"], f"{day} is over; it cannot be published")
    with session.begin():
        pointer, dispatched = store.publish(
            session, day=day, today=service.today(), now=service.now(), tz=service.tz
        )
        audit.record(
            session,
            now=service.now(),
            actor=audit.actor_of(who),
            action="day.published",
            subject=str(day),
            plan_version=pointer.plan_version_id,
        )
    assert pointer.published_at is not None
    return PublishResult(
        date=day,
        plan_version=pointer.plan_version_id,
        published_at=pointer.published_at,
        dispatched=dispatched,
    )
