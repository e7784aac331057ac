"""The search: strict priority order, floors for what-if runs, fleet minimisation, failure handling."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import Plan, Scenario
from optimizer import SolveOptions, solve, validate_plan
from optimizer.costs import cost_model
from optimizer.problem import build_problem
from optimizer.search import Engine
from optimizer.solve import DEGRADED
from scenarios.families import family_scenario
from tests.conftest import DAY, job, scenario_dict, tech

REPEATABLE = SolveOptions(time_limit_seconds=120, iterations=400, seed=1)


def cumulative(plan: Plan, scenario: Scenario) -> list[int]:
    """Jobs planned at priority 1, 1-2, ..., 1-5."""
    prio = {j.id: j.effective_priority for j in scenario.jobs}
    planned = [v.job_id for r in plan.routes for v in r.visits]
    out, total = [], 0
    for level in range(1, 6):
        total += sum(1 for j in planned if prio[j] == level)
        out.append(total)
    return out


def test_a_higher_priority_job_is_never_left_out_for_lower_ones() -> None:
    """One 8-hour shift: one priority-3 job that takes it all, or twelve half-hour priority-4 jobs.

    Weights cannot say this in general (twelve priority-4 weights outweigh one priority-3 weight);
    the search compares plans level by level, so the priority-3 job wins.
    """
    techs = [tech("A", shifts=[{"date": DAY, "start": "08:00", "end": "16:30"}])]
    jobs = [job("BIG", priority=3, duration_minutes=480)]
    jobs += [job(f"S{i}", priority=4, duration_minutes=30) for i in range(12)]
    scenario = Scenario.model_validate(scenario_dict(techs, jobs))
    plan = solve(scenario, REPEATABLE)
    assert validate_plan(scenario, plan) == []
    assert [v.job_id for r in plan.routes for v in r.visits] == ["BIG"]


def test_a_left_out_job_takes_the_place_of_a_lower_priority_visit() -> None:
    """The first plan (from a previous plan) is full of priority-5 work; a new emergency must get in."""
    techs = [tech("A", shifts=[{"date": DAY, "start": "08:00", "end": "12:00"}])]
    fill = [job(f"F{i}", priority=5, duration_minutes=50) for i in range(4)]
    urgent = job("URGENT", priority=1, duration_minutes=50)
    base = Scenario.model_validate(scenario_dict(techs, fill))
    previous = solve(base, REPEATABLE)
    assert len(previous.routes[0].visits) == 4
    scenario = Scenario.model_validate(scenario_dict(techs, [*fill, urgent]))
    plan = solve(scenario, REPEATABLE, previous=previous)
    assert "URGENT" in {v.job_id for r in plan.routes for v in r.visits}
    assert validate_plan(scenario, plan) == []


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    family=st.sampled_from(["overload", "scarce", "absences", "altwindows"]),
    seed=st.integers(1, 10_000),
    change=st.sampled_from(["technician", "overtime", "window"]),
)
def test_what_if_warm_started_never_plans_fewer_at_any_level(family: str, seed: int, change: str) -> None:
    """Adding a technician, overtime or wider windows, warm-started from the base plan with
    `keep_planned`: never fewer jobs planned at priority 1, 1-2, ... 1-5 (iteration-bound, repeatable)."""
    base = family_scenario(family, jobs=40, technicians=3, days=2, seed=seed)
    options = SolveOptions(time_limit_seconds=120, iterations=150, seed=seed)
    base_plan = solve(base, options)
    data = base.model_dump(mode="json")
    if change == "technician":
        clone = dict(data["technicians"][0], id="EXTRA", name="extra")
        data["technicians"].append(clone)
    elif change == "overtime":
        for t in data["technicians"]:
            t["max_overtime_minutes"] = t["max_overtime_minutes"] + 60
    else:
        for j in data["jobs"]:
            for w in j.get("windows", []):
                w["end"] = w["end"][:11] + "18:00:00"
    variant = Scenario.model_validate(data)
    what_if = options.model_copy(update={"keep_planned": True})
    plan = solve(variant, what_if, previous=base_plan)
    assert validate_plan(variant, plan) == []
    assert all(a >= b for a, b in zip(cumulative(plan, variant), cumulative(base_plan, base), strict=True))


def test_fleet_minimisation_empties_technician_days_and_keeps_every_job() -> None:
    """Ten technicians, eight jobs around the depot that two can do: the first plan spreads them."""
    techs = [tech(f"T{i}", capacity=4) for i in range(10)]
    jobs = [job(f"J{i}", lat=45.76 + 0.01 * (i % 3), lon=4.84 + 0.01 * (i // 3), demand=1) for i in range(8)]
    scenario = Scenario.model_validate(scenario_dict(techs, jobs))
    options = SolveOptions(weights={"technician_day_fixed": 0.0})
    problem = build_problem(scenario, options)
    engine = Engine(problem, cost_model(problem, options.weights), seed=1)
    # a deliberately wasteful start: one job per technician-day
    engine.warm_start([[j] for j in range(8)] + [[], []])
    assert int((engine.rt.size > 0).sum()) == 8
    import time

    engine.minimise_fleet(time.monotonic() + 5.0, 1.0)
    assert sum(engine.unserved) == 0
    assert int((engine.rt.size > 0).sum()) == 2


def test_a_failing_search_phase_keeps_the_first_plan_and_says_so(
    monkeypatch: pytest.MonkeyPatch, two_techs_six_jobs: dict[str, Any]
) -> None:
    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("injected")

    monkeypatch.setattr(Engine, "improve", boom)
    scenario = Scenario.model_validate(two_techs_six_jobs)
    plan = solve(scenario, REPEATABLE)
    assert plan.solver.status == DEGRADED
    assert any("failed" in phase and "injected" in phase for phase in plan.solver.search_phases)
    assert plan.kpis.jobs_planned == 6
    assert validate_plan(scenario, plan) == []


def test_iterations_make_a_field_week_repeatable() -> None:
    scenario = family_scenario("altwindows", jobs=60, technicians=5, days=3, seed=4)
    a, b = solve(scenario, REPEATABLE), solve(scenario, REPEATABLE)
    assert a.routes == b.routes and a.unassigned == b.unassigned
    assert a.solver.solutions == REPEATABLE.iterations
