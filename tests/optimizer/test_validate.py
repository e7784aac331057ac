"""The validator must catch each kind of broken plan: tamper with a good plan, expect the code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from models import Plan, ReasonCode, Scenario, Unassigned
from optimizer import SolveOptions, solve, validate_plan


@pytest.fixture
def solved(two_techs_six_jobs: dict[str, Any]) -> tuple[Scenario, Plan]:
    scenario = Scenario.model_validate(two_techs_six_jobs)
    plan = solve(scenario, SolveOptions(time_limit_seconds=5, iterations=300))
    assert validate_plan(scenario, plan) == []
    return scenario, plan


def _route_with(plan: Plan, job_id: str) -> int:
    return next(i for i, r in enumerate(plan.routes) if any(v.job_id == job_id for v in r.visits))


def shift_visit(job_id: str, minutes: int) -> Callable[[Plan], None]:
    def tamper(plan: Plan) -> None:
        route = plan.routes[_route_with(plan, job_id)]
        for v in route.visits:
            if v.job_id == job_id:
                v.start += timedelta(minutes=minutes)
                v.end += timedelta(minutes=minutes)
                v.arrival += timedelta(minutes=minutes)

    return tamper


def move_to_other(job_id: str) -> Callable[[Plan], None]:
    def tamper(plan: Plan) -> None:
        src = _route_with(plan, job_id)
        dst = 1 - src
        visit = next(v for v in plan.routes[src].visits if v.job_id == job_id)
        plan.routes[src].visits.remove(visit)
        plan.routes[dst].visits.append(visit)
        plan.routes[dst].visits.sort(key=lambda v: v.start)

    return tamper


def drop(job_id: str) -> Callable[[Plan], None]:
    def tamper(plan: Plan) -> None:
        route = plan.routes[_route_with(plan, job_id)]
        route.visits = [v for v in route.visits if v.job_id != job_id]

    return tamper


def duplicate(job_id: str) -> Callable[[Plan], None]:
    def tamper(plan: Plan) -> None:
        plan.unassigned.append(Unassigned(job_id=job_id, reason=ReasonCode.CAPACITY, detail="x"))

    return tamper


def late_return(plan: Plan) -> None:
    plan.routes[0].end = plan.routes[0].end.replace(hour=22)


def squeeze_travel(plan: Plan) -> None:
    route = max(plan.routes, key=lambda r: len(r.visits))
    first, second = route.visits[0], route.visits[1]
    gap = second.start - first.end
    second.start -= gap
    second.end -= gap
    second.arrival = second.start


def break_over_visit(plan: Plan) -> None:
    route = plan.routes[0]
    v = route.visits[0]
    route.break_.start, route.break_.end = v.start, v.start + timedelta(minutes=30)  # type: ignore[union-attr]


def no_break(plan: Plan) -> None:
    plan.routes[0].break_ = None


def too_short(plan: Plan) -> None:
    v = plan.routes[0].visits[0]
    v.end = v.start + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        (move_to_other("J1"), "SKILL"),  # only A has hvac 4
        (move_to_other("J6"), "EXCLUDED"),  # the customer refused A
        (shift_visit("J2", 180), "WINDOW"),  # J2 must start 13:00-15:00
        (drop("J3"), "MISSING_JOB"),
        (duplicate("J3"), "DUPLICATE_JOB"),
        (late_return, "OVERTIME"),
        (squeeze_travel, "TRAVEL"),
        (break_over_visit, "BREAK"),
        (no_break, "BREAK_MISSING"),
        (too_short, "DURATION"),
    ],
)
def test_validator_catches(solved: tuple[Scenario, Plan], tamper: Callable[[Plan], None], code: str) -> None:
    scenario, plan = solved
    broken = plan.model_copy(deep=True)
    tamper(broken)
    codes = [v.code for v in validate_plan(scenario, broken)]
    assert any(c.startswith(code) for c in codes), codes


def test_validator_flags_unknown_technician(solved: tuple[Scenario, Plan]) -> None:
    scenario, plan = solved
    broken = plan.model_copy(deep=True)
    broken.routes[0].technician_id = "NOBODY"
    assert "UNKNOWN_TECHNICIAN" in [v.code for v in validate_plan(scenario, broken)]
