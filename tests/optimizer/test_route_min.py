"""Route minimisation: fewer technician-days, the same jobs, every route still feasible."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from models import Scenario
from optimizer import SolveOptions, Weights, solve, validate_plan
from optimizer.construct import construct, schedule
from optimizer.problem import Problem, build_problem
from optimizer.route_min import minimise_routes
from tests.conftest import DAY, job, scenario_dict, tech
from tests.optimizer.test_properties import scenarios


def _assert_same_jobs_feasible(
    problem: Problem, before: dict[int, list[int]], after: dict[int, list[int]]
) -> None:
    served = [n for nodes in after.values() for n in nodes]
    assert sorted(served) == sorted(n for nodes in before.values() for n in nodes)
    assert len(after) <= len(before)
    for v, nodes in after.items():
        assert nodes, "an empty route is reported as in use"
        assert all(v in problem.allowed[n].tolist() for n in nodes), (
            "a job moved to an unqualified technician"
        )
        assert schedule(problem, problem.vehicles[v], nodes) is not None


def _one_job_per_route(problem: Problem) -> dict[int, list[int]]:
    """The worst start: every job alone on its own technician-day."""
    routes: dict[int, list[int]] = {}
    free = list(range(len(problem.vehicles)))
    for n in range(problem.n_jobs):
        fits = (v for v in free if v in problem.allowed[n].tolist())
        v = next((v for v in fits if schedule(problem, problem.vehicles[v], [n]) is not None), None)
        if v is not None:
            routes[v] = [n]
            free.remove(v)
    return routes


LONG_DAY = [{"date": DAY, "start": "07:00", "end": "19:00"}]


def _van_day(jobs: int, demand: int, capacity: int) -> Scenario:
    """Jobs around one depot with open windows: only the van's capacity limits a route."""
    techs = [
        tech(f"V{i}", 45.75, 4.85, skills={"hvac": 1}, capacity=capacity, shifts=LONG_DAY)
        for i in range(jobs)
    ]
    items = [
        job(
            f"J{j}",
            45.75 + 0.004 * (j % 4),
            4.85 + 0.004 * (j // 4),
            duration_minutes=20,
            skills={"hvac": 1},
            demand=demand,
        )
        for j in range(jobs)
    ]
    return Scenario.model_validate(scenario_dict(techs, items))


def test_capacity_decides_how_many_routes_remain() -> None:
    """8 jobs of demand 3 in vans of 10: three vans suffice and two cannot."""
    problem = build_problem(_van_day(8, demand=3, capacity=10), SolveOptions())
    start = _one_job_per_route(problem)
    assert len(start) == 8
    kept, notes = minimise_routes(problem, start, time.monotonic() + 5, seed=1, patience=0.3)
    _assert_same_jobs_feasible(problem, start, kept)
    assert len(kept) == 3
    assert "8 -> 3" in notes[0]


def test_tight_windows_need_ejections() -> None:
    """Solomon R101 (tight windows, best known 19 vans): the first plan's routes shrink to at most 20."""
    from benchmarks.solomon import DEFAULT_DIR, read_instance, to_scenario

    path = DEFAULT_DIR / "R101.txt"
    if not path.exists():
        pytest.skip(f"Solomon instances not found at {DEFAULT_DIR}")
    scenario, s = to_scenario(read_instance(path))
    weights = Weights(technician_day_fixed=2000.0 * s)
    problem = build_problem(scenario, SolveOptions(tick_seconds=s * 60 / 1000, weights=weights))
    start = {v: nodes for v, nodes in enumerate(construct(problem, weights)) if nodes}
    kept, notes = minimise_routes(problem, start, time.monotonic() + 3, seed=0, patience=0.5)
    _assert_same_jobs_feasible(problem, start, kept)
    assert len(start) > 20
    assert len(kept) <= 20, notes
    assert int(notes[0].split(", ")[1].split()[0]) > 0, "no ejection was needed: the case tests nothing"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_any_scenario_keeps_every_job_on_a_feasible_route(data: dict[str, Any]) -> None:
    """Lunch breaks, skills, pins, multi-day horizons: whatever is returned passes `schedule`."""
    scenario = Scenario.model_validate(data)
    problem = build_problem(scenario, SolveOptions())
    initial = {v: nodes for v, nodes in enumerate(construct(problem, Weights())) if nodes}
    for start in (initial, _one_job_per_route(problem)):
        kept, _ = minimise_routes(problem, start, time.monotonic() + 0.3, seed=0, patience=0.05)
        _assert_same_jobs_feasible(problem, start, kept)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_solve_with_route_minimisation_gives_a_valid_complete_plan(data: dict[str, Any]) -> None:
    scenario = Scenario.model_validate(data)
    options = SolveOptions(
        time_limit_seconds=1, route_minimisation=True, weights=Weights(technician_day_fixed=500.0)
    )
    plan = solve(scenario, options)
    assert validate_plan(scenario, plan) == []
    in_routes = [v.job_id for r in plan.routes for v in r.visits]
    assert len(in_routes) == len(set(in_routes))
    assert sorted(in_routes + [u.job_id for u in plan.unassigned]) == sorted(j.id for j in scenario.jobs)
