"""The day as it happens: freeze points, the disruption budget, promises, absences, emergencies."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import Job, Plan, ReasonCode, Scenario, Window
from optimizer import SolveOptions, solve
from optimizer.intraday import (
    Budget,
    CurrentState,
    Execution,
    IntradayInput,
    IntradayResult,
    Policy,
    execution_as_planned,
    reoptimise,
)

ROOT = Path(__file__).resolve().parents[2]


@cache
def _day() -> tuple[Scenario, Plan]:
    """The metro demo day with every fourth job promised a two-hour window, planned once."""
    raw = json.loads((ROOT / "scenarios" / "metro-day.json").read_text())
    sc = Scenario.model_validate(raw)
    plan = solve(sc, SolveOptions(iterations=300, time_limit_seconds=60, seed=3))
    at = {v.job_id: v.start for r in plan.routes for v in r.visits}
    jobs = []
    for k, j in enumerate(sc.jobs):
        if k % 4 == 0 and j.id in at:
            lo = at[j.id].replace(minute=0, second=0) - timedelta(minutes=30)
            j = j.model_copy(update={"appointment": Window(start=lo, end=lo + timedelta(hours=2))})
        jobs.append(j)
    return sc.model_copy(update={"jobs": jobs}), plan


def _at(clock: str) -> datetime:
    sc, _ = _day()
    return sc.at(sc.horizon.start, time.fromisoformat(clock))


def _run(
    now: datetime,
    *,
    execution: list[Execution] | None = None,
    emergencies: list[Job] = (),  # type: ignore[assignment]
    policy: Policy = "budget",
    budget: Budget | None = None,
) -> IntradayResult:
    sc, plan = _day()
    result = reoptimise(
        IntradayInput(
            timezone=sc.timezone,
            day=sc.horizon.start,
            now=now,
            travel=sc.travel,
            technicians=sc.technicians,
            jobs=[*sc.jobs, *emergencies],
            routes=plan.routes,
            execution=execution if execution is not None else execution_as_planned(plan.routes, now),
            emergencies=[e.id for e in emergencies],
            policy=policy,
            budget=budget or Budget(),
            options=SolveOptions(iterations=100, time_limit_seconds=60, seed=1),
        )
    )
    assert result.violations() == []
    return result


def _emergency(now: datetime, near: str, hours: float = 3.0, name: str = "EMERG") -> Job:
    sc, _ = _day()
    where = next(j for j in sc.jobs if j.id == near).location
    return Job(
        id=name,
        kind="repair",
        location=where,
        duration_minutes=60,
        emergency=True,
        due=now + timedelta(hours=hours),
    )


def _ill_from(now: datetime, ill: str, execution: list[Execution] | None = None) -> list[Execution]:
    """The day as planned (or `execution`), with `ill` unavailable from `now`."""
    _, plan = _day()
    execution = execution if execution is not None else execution_as_planned(plan.routes, now)
    return [
        e.model_copy(update={"unavailable_from": now}) if e.technician_id == ill else e for e in execution
    ]


def _visits(result: IntradayResult) -> dict[str, tuple[str, datetime, datetime]]:
    return {v.job_id: (r.technician_id, v.start, v.end) for r in result.plan.routes for v in r.visits}


def test_nothing_happened_nothing_changes() -> None:
    """Technicians on time, no event: the re-optimisation changes nobody's route."""
    result = _run(_at("10:30"))
    assert result.diff == []
    assert [n for n in result.notices] == []


def test_a_started_visit_never_moves_and_an_en_route_one_stays_first() -> None:
    now = _at("10:30")
    _, plan = _day()
    execution = execution_as_planned(plan.routes, now)
    started = [e for e in execution if e.current and e.current.state == CurrentState.STARTED]
    driving = [e for e in execution if e.current and e.current.state == CurrentState.EN_ROUTE]
    assert started and driving
    # Everyone's plan is upset: an emergency, and the first technician ill from now.
    ill = plan.routes[0].technician_id
    execution = _ill_from(now, ill, execution)
    result = _run(now, execution=execution, emergencies=[_emergency(now, "J0001")])
    at = _visits(result)
    for e in started:
        assert e.current is not None
        assert at[e.current.job_id][0] == e.technician_id
        assert at[e.current.job_id][1] == e.current.since
    for e in driving:
        assert e.current is not None
        route = next(r for r in result.plan.routes if r.technician_id == e.technician_id)
        assert [v.job_id for v in route.visits][len(e.done)] == e.current.job_id
    for tid, frozen in result.frozen.items():
        route = next(r for r in result.plan.routes if r.technician_id == tid)
        assert [v.job_id for v in route.visits][: len(frozen)] == frozen


def test_an_ill_technician_gets_nothing_after_the_absence_starts() -> None:
    now = _at("10:00")
    _, plan = _day()
    ill = max(plan.routes, key=lambda r: len(r.visits)).technician_id
    execution = _ill_from(now, ill)
    result = _run(now, execution=execution)
    mine = next(r for r in result.plan.routes if r.technician_id == ill)
    frozen = result.frozen.get(ill, [])
    assert [v.job_id for v in mine.visits] == frozen
    # The rest went to others, or back to the pool with a reason.
    before = next(r for r in plan.routes if r.technician_id == ill)
    moved = [v.job_id for v in before.visits if v.job_id not in frozen]
    assert moved
    placed = _visits(result)
    back = {u.job_id: u.reason for u in result.plan.unassigned}
    for job_id in moved:
        assert (job_id in placed and placed[job_id][0] != ill) or job_id in back
    assert all(
        u.reason
        in (
            ReasonCode.DAY_DISRUPTED,
            ReasonCode.PROMISE_BROKEN,
            ReasonCode.NO_QUALIFIED_TECHNICIAN,
            ReasonCode.PINNED_CONFLICT,
        )
        for u in result.returned
    )


def test_the_budget_holds_and_confirmed_windows_never_move() -> None:
    now = _at("10:00")
    _, plan = _day()
    ill = plan.routes[1].technician_id
    execution = _ill_from(now, ill)
    result = _run(
        now, execution=execution, budget=Budget(max_changed_visits_per_technician=2, max_eta_shift_minutes=30)
    )
    assert result.diff, "an absence changes something"
    for d in result.diff:
        if d.technician_id != ill:
            assert d.changed_visits <= 2, d
    unlimited = _run(now, execution=execution, policy="full")
    assert max(d.changed_visits for d in unlimited.diff if d.technician_id != ill) > 2  # the budget mattered
    sc, _ = _day()
    promised = {j.id: j.appointment for j in sc.jobs if j.appointment is not None}
    for job_id, (_, start, _) in _visits(result).items():
        if job_id in promised and job_id not in result.frozen.get(ill, []):
            w = promised[job_id]
            assert w is not None and sc.local(w.start) <= start <= sc.local(w.end)


def test_a_visit_only_the_budget_keeps_off_says_so() -> None:
    """With no change allowed, the ill technician's visits others could still fit in come back
    saying that the budget, not time, kept them off, and naming who could take them; with room in
    the budget those visits are planned."""
    now = _at("10:00")
    _, plan = _day()
    ill = max(plan.routes, key=lambda r: len(r.visits)).technician_id
    execution = _ill_from(now, ill)
    strict = _run(now, execution=execution, budget=Budget(max_changed_visits_per_technician=0))
    budgeted = {
        u.job_id: u.detail for u in strict.returned if "disruption budget allows (0 visits" in u.detail
    }
    assert budgeted, [u.detail for u in strict.returned]
    assert all(
        "could still fit it in" in d and "larger max_changed_visits_per_technician" in d
        for d in budgeted.values()
    )
    roomy = _run(now, execution=execution, budget=Budget(max_changed_visits_per_technician=20))
    assert set(budgeted) & set(_visits(roomy))


def test_the_emergency_is_planned_when_anyone_can_reach_it_in_time() -> None:
    now = _at("11:00")
    emergency = _emergency(now, "J0030", hours=2.5)
    for policy in ("budget", "emergency_only", "full"):
        result = _run(now, emergencies=[emergency], policy=policy)  # type: ignore[arg-type]
        _, _, end = _visits(result)["EMERG"]
        assert end <= emergency.due, (policy, end)
    nothing = _run(now, emergencies=[emergency], policy="none")
    assert "EMERG" in {u.job_id for u in nothing.plan.unassigned}
    # The customer of the emergency and the technician who takes it are told.
    result = _run(now, emergencies=[emergency])
    kinds = {(n.audience, n.kind) for n in result.notices}
    assert ("technician", "route_changed") in kinds and ("customer", "visit_added") in kinds


def test_an_overrun_pushes_the_rest_and_what_no_longer_fits_goes_to_someone_else_or_back() -> None:
    now = _at("10:30")
    _, plan = _day()
    execution = execution_as_planned(plan.routes, now)
    e = next(e for e in execution if e.current and e.current.state == CurrentState.STARTED)
    assert e.current is not None
    late = e.current.model_copy(update={"expected_end": now + timedelta(hours=3)})
    execution = [x.model_copy(update={"current": late}) if x is e else x for x in execution]
    result = _run(now, execution=execution)
    at = _visits(result)
    assert at[late.job_id][2] == late.expected_end
    route = next(r for r in result.plan.routes if r.technician_id == e.technician_id)
    later = route.visits[route.visits.index(next(v for v in route.visits if v.job_id == late.job_id)) + 1 :]
    assert all(v.start >= now + timedelta(hours=3) for v in later)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    clock=st.integers(min_value=8 * 60, max_value=15 * 60),
    ill=st.integers(min_value=-1, max_value=7),
    delay=st.sampled_from([0, 0, 20, 90]),
    near=st.integers(min_value=1, max_value=60),
    policy=st.sampled_from(["budget", "emergency_only", "full", "none"]),
)
def test_any_disruption_gives_a_valid_day_and_loses_no_job(
    clock: int, ill: int, delay: int, near: int, policy: str
) -> None:
    """Whatever happens: validator-clean, frozen visits as they were, every job of the day either in
    a route or returned with a reason, nobody working after their absence starts."""
    _, plan = _day()
    now = _at(f"{clock // 60:02d}:{clock % 60:02d}")
    execution = execution_as_planned(plan.routes, now)
    techs = [r.technician_id for r in plan.routes]
    sick = techs[ill % len(techs)] if ill >= 0 else None
    execution = [
        e.model_copy(update={"unavailable_from": now + timedelta(minutes=45)})
        if e.technician_id == sick
        else e.model_copy(update={"delay_minutes": delay})
        if delay and e.technician_id == techs[0]
        else e
        for e in execution
    ]
    emergency = _emergency(now, f"J{near:04d}")
    result = _run(now, execution=execution, emergencies=[emergency], policy=policy)  # type: ignore[arg-type]
    at = _visits(result)
    before = {v.job_id: (r.technician_id, v) for r in plan.routes for v in r.visits}
    left = {u.job_id for u in result.plan.unassigned}
    for job_id in [*before, "EMERG"]:
        assert (job_id in at) != (job_id in left), job_id
    for frozen in result.frozen.values():
        for job_id in frozen:
            if before.get(job_id, ("", None))[1] is not None and job_id not in {
                e.current.job_id for e in execution if e.current
            }:
                assert at[job_id][1] == before[job_id][1].start
    if sick is not None:
        off = now + timedelta(minutes=45)
        for job_id, (tid, start, _) in at.items():
            if tid == sick and job_id not in result.frozen.get(sick, []):
                assert start < off
                assert at[job_id][2] <= off


@pytest.mark.parametrize("policy", ["budget", "full"])
def test_the_rest_of_the_day_starts_where_and_when_each_technician_is_free(policy: str) -> None:
    now = _at("09:00")
    _, plan = _day()
    execution = execution_as_planned(plan.routes, now)
    result = _run(now, execution=execution, policy=policy)  # type: ignore[arg-type]
    for t in result.scenario.technicians:
        assert t.shifts[0].start >= time(9, 0)
