"""The board's evaluation before a drop (`optimizer.evaluate`) and pins with a start time.

Property: whatever the plan and the question, a feasible answer's route is validator-clean with the
job pinned there (and at its start when one was asked), only the route it names changes and only
visits of that route give way (back to the pool, as the service applies a drag); an infeasible
answer names a reason and carries no route.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import GeoPoint, Job, Pinned, Plan, ReasonCode, Scenario, Unassigned, Visit, Window
from optimizer import SolveOptions, solve, validate_plan
from optimizer.evaluate import EvalReason, Placing, evaluate
from tests.conftest import DAY, job, scenario_dict, tech
from tests.optimizer.test_properties import START, scenarios
from tests.optimizer.test_slots import base_of, new_jobs, with_job

OPTIONS = SolveOptions(iterations=40, time_limit_seconds=10)


def pinned_plan(
    scenario: Scenario,
    plan: Plan,
    job: Job,
    answer_route: Any,
    start: datetime | None,
    pushed_out: Sequence[str] = (),
) -> tuple[Scenario, Plan]:
    """The scenario with the job pinned where the answer puts it, and the plan with that route; the
    visits that gave way back in the pool (as the service applies a drag)."""
    pin = Pinned(technician_id=answer_route.technician_id, date=answer_route.date, start=start)
    ids = {j.id for j in scenario.jobs}
    pinned = job.model_copy(update={"pinned": pin})
    data = scenario.model_dump(mode="json")
    data["jobs"] = [j if j["id"] != job.id else pinned.model_dump(mode="json") for j in data["jobs"]]
    sc = Scenario.model_validate(data) if job.id in ids else with_job(scenario, pinned)
    key = (answer_route.technician_id, answer_route.date)
    routes = [
        r.model_copy(update={"visits": [v for v in r.visits if v.job_id != job.id]})
        for r in plan.routes
        if (r.technician_id, r.date) != key
    ] + [answer_route]
    gave_way = [
        Unassigned(job_id=x, reason=ReasonCode.CAPACITY, detail=f"gave way to {job.id}") for x in pushed_out
    ]
    unassigned = [u for u in plan.unassigned if u.job_id != job.id] + gave_way
    return sc, plan.model_copy(update={"routes": routes, "unassigned": unassigned})


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(
    scenarios().filter(lambda d: any(t["shifts"] for t in d["technicians"])),
    new_jobs(),
    st.data(),
)
def test_a_feasible_answer_is_a_valid_pinned_route(
    data: dict[str, Any], new: dict[str, Any], draw: st.DataObject
) -> None:
    scenario = Scenario.model_validate(data)
    plan = solve(scenario, OPTIONS)
    planned = [v.job_id for r in plan.routes for v in r.visits]
    jobs = {j.id: j for j in scenario.jobs}
    # A waiting (new) job, or a planned visit dragged elsewhere.
    if planned and draw.draw(st.booleans()):
        ask = jobs[draw.draw(st.sampled_from(planned))]
        sc = scenario
    else:
        ask = Job.model_validate(new)
        sc = with_job(scenario, ask)
    tech_ = draw.draw(st.sampled_from(scenario.technicians))
    day = START + timedelta(days=draw.draw(st.integers(0, scenario.horizon.days - 1)))
    start = None
    if draw.draw(st.booleans()):
        start = sc.at(day, time(draw.draw(st.integers(6, 18)), draw.draw(st.sampled_from([0, 15, 30, 45]))))
    base = base_of(sc, plan)
    answer = evaluate(
        base, Placing(job=ask, technician_id=tech_.id, date=day, start=start, tolerance_minutes=0)
    )
    if not answer.feasible:
        assert answer.reason in set(EvalReason) and answer.detail and answer.route is None
        return
    assert answer.route is not None and answer.cost is not None and answer.start is not None
    assert (answer.route.technician_id, answer.route.date) == (tech_.id, day)
    if start is not None:
        assert answer.start == start
    gave_way = answer.cost.pushed_out
    old = {v.job_id for r in plan.routes if (r.technician_id, r.date) == (tech_.id, day) for v in r.visits}
    assert set(gave_way) <= old - {v.job_id for v in answer.route.visits}, "only that day's visits give way"
    after_sc, after = pinned_plan(sc, plan, ask, answer.route, start, gave_way)
    assert validate_plan(after_sc, after) == []
    # The visits it says shift are exactly those whose start moved on that route.
    before = next((r for r in plan.routes if (r.technician_id, r.date) == (tech_.id, day)), None)
    was = {v.job_id: v.start for v in before.visits} if before else {}
    moved = {
        v.job_id
        for v in answer.route.visits
        if v.job_id in was and abs(v.start - was[v.job_id]) >= timedelta(minutes=1)
    }
    assert {s.job_id for s in answer.shifted} == moved


def one_day(jobs: list[dict[str, Any]], **tech_extra: Any) -> Scenario:
    return Scenario.model_validate(
        scenario_dict([tech("T1", **tech_extra), tech("T2", skills={"hvac": 1})], jobs)
    )


def test_reasons_a_dispatcher_reads() -> None:
    sc = one_day([job("A", duration_minutes=60), job("B", lat=45.78, duration_minutes=60)])
    plan = solve(sc, OPTIONS)
    base = base_of(sc, plan)
    day = sc.horizon.start
    ask = Job.model_validate(job("N", duration_minutes=45, skills={"hvac": 3}))
    no_skill = evaluate(base, Placing(job=ask, technician_id="T2", date=day))
    assert (no_skill.reason, no_skill.detail) == (EvalReason.SKILL, "T2 lacks hvac>=3 (has 1)")
    off = evaluate(base, Placing(job=ask, technician_id="T1", date=day + timedelta(days=1)))
    assert off.reason == EvalReason.NO_SHIFT
    late = evaluate(base, Placing(job=ask, technician_id="T1", date=day, start=sc.at(day, time(16, 45))))
    assert late.reason == EvalReason.OVERTIME_LIMIT  # it would fit with overtime T1 may not do
    night = evaluate(base, Placing(job=ask, technician_id="T1", date=day, start=sc.at(day, time(20))))
    assert night.reason == EvalReason.SHIFT
    windowed = ask.model_copy(
        update={"windows": [Window(start=sc.at(day, time(9)), end=sc.at(day, time(10)))]}
    )
    outside = evaluate(base, Placing(job=windowed, technician_id="T1", date=day, start=sc.at(day, time(14))))
    assert outside.reason == EvalReason.WINDOW and "09:00-10:00" in outside.detail
    far = ask.model_copy(update={"location": GeoPoint(lat=48.86, lon=2.35)})
    too_far = evaluate(base, Placing(job=far, technician_id="T1", date=day))
    assert too_far.reason == EvalReason.SHIFT and "drive" in too_far.detail
    excluded = ask.model_copy(update={"excluded_technicians": ["T1"]})
    assert evaluate(base, Placing(job=excluded, technician_id="T1", date=day)).reason == EvalReason.EXCLUDED
    lunch_sc = one_day([], lunch={"earliest": "12:00", "latest": "13:00", "minutes": 60})
    lunch = evaluate(
        base_of(lunch_sc, solve(lunch_sc, OPTIONS)),
        Placing(job=ask, technician_id="T1", date=day, start=lunch_sc.at(day, time(12))),
    )
    assert lunch.reason == EvalReason.LUNCH
    fine = evaluate(base, Placing(job=ask, technician_id="T1", date=day, start=sc.at(day, time(13))))
    assert fine.feasible and fine.start == sc.at(day, time(13)) and fine.cost is not None


def test_a_pinned_start_is_kept_by_the_solve_and_checked_by_the_validator() -> None:
    at = f"{DAY}T14:30:00"
    sc = one_day([job("A", pinned={"technician_id": "T1", "date": DAY, "start": at}), job("B")])
    plan = solve(sc, OPTIONS)
    assert validate_plan(sc, plan) == []
    visit = next(v for r in plan.routes for v in r.visits if v.job_id == "A")
    assert visit.start == sc.local(datetime.fromisoformat(at))
    hour = timedelta(hours=1)

    def earlier(v: Visit) -> Visit:
        if v.job_id != "A":
            return v
        return v.model_copy(
            update={"arrival": v.arrival - hour, "start": v.start - hour, "end": v.end - hour}
        )

    routes = [r.model_copy(update={"visits": [earlier(v) for v in r.visits]}) for r in plan.routes]
    moved = plan.model_copy(update={"routes": routes})
    assert any(x.code == "PINNED" and x.job_id == "A" for x in validate_plan(sc, moved))


def test_a_pinned_start_on_another_day_is_refused() -> None:
    with pytest.raises(ValueError, match=r"pinned\.start"):
        one_day([job("A", pinned={"technician_id": "T1", "date": DAY, "start": "2031-01-01T10:00:00"})])
