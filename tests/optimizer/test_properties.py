"""Property: any generated scenario gives a plan the validator accepts and that accounts for every job."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import Scenario
from optimizer import SolveOptions, solve, validate_plan

START = date(2026, 12, 7)
SKILLS = ["hvac", "boiler", "solar"]


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    days = draw(st.integers(1, 3))
    n_tech = draw(st.integers(0, 4))
    techs = []
    for i in range(n_tech):
        start_h = draw(st.integers(6, 10))
        length = draw(st.integers(3, 10))
        shifts = [
            {
                "date": (START + timedelta(days=d)).isoformat(),
                "start": f"{start_h:02d}:00",
                "end": f"{min(start_h + length, 23):02d}:00",
            }
            for d in range(days)
            if draw(st.integers(0, 3)) > 0  # some technicians get no shift at all
        ]
        tech: dict[str, Any] = {
            "id": f"T{i}",
            "name": f"T{i}",
            "home": {"lat": draw(st.floats(45.6, 45.9)), "lon": draw(st.floats(4.7, 5.0))},
            "skills": {
                s: draw(st.integers(1, 5)) for s in draw(st.sets(st.sampled_from(SKILLS), min_size=1))
            },
            "shifts": shifts,
            "max_overtime_minutes": draw(st.sampled_from([0, 30, 60])),
        }
        if draw(st.booleans()):
            tech["lunch"] = {
                "earliest": "11:30",
                "latest": "14:00",
                "minutes": draw(st.sampled_from([20, 30, 45])),
            }
        if draw(st.booleans()):
            tech["capacity"] = draw(st.integers(0, 10))
        techs.append(tech)
    jobs = []
    for j in range(draw(st.integers(0, 14))):
        day = START + timedelta(days=draw(st.integers(0, days - 1)))
        item: dict[str, Any] = {
            "id": f"J{j}",
            "kind": draw(st.sampled_from(["installation", "maintenance", "repair", "training"])),
            "location": {"lat": draw(st.floats(45.6, 45.9)), "lon": draw(st.floats(4.7, 5.0))},
            "duration_minutes": draw(st.integers(5, 300)),
            "skills": {draw(st.sampled_from(SKILLS)): draw(st.integers(1, 5))},
            "warranty": draw(st.booleans()),
            "demand": draw(st.integers(0, 4)),
        }
        if draw(st.booleans()):
            h = draw(st.integers(6, 18))
            item["windows"] = [
                {"start": f"{day}T{h:02d}:00", "end": f"{day}T{h + draw(st.integers(1, 4)):02d}:00"}
            ]
        if draw(st.booleans()):
            item["due"] = f"{day}T17:00"
        if techs and draw(st.integers(0, 5)) == 0:
            item["pinned"] = {"technician_id": draw(st.sampled_from(techs))["id"], "date": day.isoformat()}
        if techs and draw(st.integers(0, 5)) == 0:
            item["excluded_technicians"] = [draw(st.sampled_from(techs))["id"]]
        jobs.append(item)
    return {
        "name": "generated",
        "timezone": "Europe/Paris",
        "horizon": {"start": START.isoformat(), "days": days},
        "technicians": techs,
        "jobs": jobs,
    }


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_any_scenario_gives_a_valid_complete_plan(data: dict[str, Any]) -> None:
    scenario = Scenario.model_validate(data)
    plan = solve(scenario, SolveOptions(time_limit_seconds=2, iterations=100))
    assert validate_plan(scenario, plan) == []
    in_routes = [v.job_id for r in plan.routes for v in r.visits]
    assert len(in_routes) == len(set(in_routes))
    assert sorted(in_routes + [u.job_id for u in plan.unassigned]) == sorted(j.id for j in scenario.jobs)
