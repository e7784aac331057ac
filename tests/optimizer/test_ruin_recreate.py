"""Ruin and recreate: the same jobs on the same technician-days, every route feasible, less travel."""

from __future__ import annotations

import itertools
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import Scenario
from optimizer import SolveOptions, Weights
from optimizer.construct import construct
from optimizer.problem import Problem, build_problem
from optimizer.route_min import RouteSet
from optimizer.ruin_recreate import shorten_routes
from tests.conftest import job, scenario_dict, tech
from tests.optimizer.test_properties import scenarios
from tests.optimizer.test_route_min import LONG_DAY, _assert_same_jobs_feasible

TRAVEL_ONLY = Weights(
    overtime_per_minute=0, sla_late_per_minute=0, preferred_miss=0, wait_per_day=0, stability_move=0
)


def _travel(problem: Problem, routes: dict[int, list[int]]) -> int:
    total = 0
    for v, nodes in routes.items():
        veh = problem.vehicles[v]
        path = [veh.start_node, *nodes, veh.end_node]
        total += sum(int(problem.travel[a, b]) for a, b in itertools.pairwise(path))
    return total


def _two_districts() -> Scenario:
    """Six jobs east and six west of the depot, open windows: each van should take one side."""
    techs = [tech(f"V{i}", 45.75, 4.85, shifts=LONG_DAY) for i in range(2)]
    jobs = [
        job(f"J{j}", 45.75 + 0.01 * (j % 6), 4.85 + (0.3 if j < 6 else -0.3), duration_minutes=20)
        for j in range(12)
    ]
    return Scenario.model_validate(scenario_dict(techs, jobs))


def test_zigzag_routes_are_untangled() -> None:
    """Both vans crossing the depot's district line six times: ruin and recreate gives each a side."""
    problem = build_problem(_two_districts(), SolveOptions())
    east, west = list(range(6)), list(range(6, 12))
    start = {0: [x for pair in zip(east[:3], west[:3], strict=True) for x in pair]}
    start[1] = [x for pair in zip(east[3:], west[3:], strict=True) for x in pair]
    kept, notes = shorten_routes(problem, start, time.monotonic() + 1.0, TRAVEL_ONLY, seed=0)
    _assert_same_jobs_feasible(problem, start, kept)
    assert _travel(problem, kept) < 0.5 * _travel(problem, start), notes
    assert {frozenset(nodes) for nodes in kept.values()} <= {frozenset(east), frozenset(west)} | {
        frozenset(east + west)
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_any_scenario_keeps_every_job_and_never_adds_travel(data: dict[str, Any]) -> None:
    """Lunch breaks, skills, pins, multi-day horizons: every route passes `schedule`, travel only falls."""
    scenario = Scenario.model_validate(data)
    problem = build_problem(scenario, SolveOptions())
    start = {v: nodes for v, nodes in enumerate(construct(problem, Weights())) if nodes}
    kept, _ = shorten_routes(problem, start, time.monotonic() + 0.2, TRAVEL_ONLY, seed=0)
    _assert_same_jobs_feasible(problem, start, kept)
    assert _travel(problem, kept) <= _travel(problem, start)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.randoms(use_true_random=False))
def test_incremental_start_times_match_a_full_recomputation(data: dict[str, Any], rnd: Any) -> None:
    """Insertions and string removals update start times in place; a full refresh must agree."""
    scenario = Scenario.model_validate(data)
    problem = build_problem(scenario, SolveOptions())
    start = {v: nodes for v, nodes in enumerate(construct(problem, Weights())) if nodes}
    state = RouteSet(problem, start, seed=0)
    for _ in range(20):
        if not state.routes:
            break
        v = rnd.choice(sorted(state.routes))
        nodes = state.routes[v]
        first = rnd.randrange(len(nodes))
        out = state.remove_string(v, first, rnd.randint(1, len(nodes) - first))
        for node in out:
            spot = state.best_insertion(node)
            if spot is not None:  # else the job stays out: the timing must still agree
                state.insert(node, *spot)
        for u in list(state.routes):
            est, lst, load = list(state.est[u]), list(state.lst[u]), state.load[u]
            state.refresh(u)
            assert (est, lst, load) == (state.est[u], state.lst[u], state.load[u])
            assert all(state.route_of[x] == u for x in state.routes[u])
