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


# --- every rule at once -------------------------------------------------------------------------
# Scenarios unlike the families': crews, jobs over several days, linked visits, promises, releases
# and deadlines together, in time zones whose clocks change inside the horizon.

KINDS = ["installation", "maintenance", "repair", "inspection", "complaint", "training", "follow_up"]
WIDE_SKILLS = [*SKILLS, "electrical", "heat_pump"]
#: (time zone, first day): the horizons from these cross a daylight-saving change or none.
PLACES = [
    ("Europe/Paris", date(2026, 3, 27)),
    ("America/New_York", date(2026, 10, 29)),
    ("Australia/Sydney", date(2026, 4, 2)),
    ("Asia/Tokyo", date(2026, 12, 7)),
    ("UTC", date(2026, 11, 30)),
]


def _point(rng: Any, lat: float, lon: float, spread: float) -> dict[str, float]:
    return {"lat": lat + rng.uniform(-spread, spread), "lon": lon + rng.uniform(-spread, spread)}


@st.composite
def field_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    rng = draw(st.randoms(use_true_random=False))
    tz, start = draw(st.sampled_from(PLACES))
    days = rng.randint(1, 5)
    lat, lon = rng.uniform(-40, 60), rng.uniform(-120, 140)
    spread = rng.choice([0.05, 0.3, 1.0])
    n_tech = rng.randint(1, 6)
    techs: list[dict[str, Any]] = []
    for i in range(n_tech):
        shifts = []
        for d in range(days):
            if rng.random() < 0.8:
                begin = rng.randint(5, 10)
                shifts.append(
                    {
                        "date": (start + timedelta(days=d)).isoformat(),
                        "start": f"{begin:02d}:{rng.choice(['00', '30'])}",
                        "end": f"{min(23, begin + rng.randint(4, 11)):02d}:00",
                    }
                )
        tech: dict[str, Any] = {
            "id": f"T{i}",
            "name": f"T{i}",
            "home": _point(rng, lat, lon, spread),
            "skills": {s: rng.randint(1, 5) for s in rng.sample(WIDE_SKILLS, rng.randint(1, 4))},
            "shifts": shifts,
            "max_overtime_minutes": rng.choice([0, 0, 30, 60, 120]),
        }
        if rng.random() < 0.3:
            tech["end_location"] = _point(rng, lat, lon, spread)
        if rng.random() < 0.7:
            tech["lunch"] = {
                "earliest": "11:30",
                "latest": rng.choice(["12:30", "13:30", "14:00"]),
                "minutes": rng.choice([30, 45, 60]),
            }
        if rng.random() < 0.2:
            tech["capacity"] = rng.randint(0, 20)
        techs.append(tech)
    jobs: list[dict[str, Any]] = []
    for j in range(rng.randint(0, 40)):
        day = start + timedelta(days=rng.randint(0, days - 1))
        job: dict[str, Any] = {
            "id": f"J{j}",
            "kind": rng.choice(KINDS),
            "location": _point(rng, lat, lon, spread),
            "duration_minutes": rng.choice(
                [15, 30, 45, 60, 90, 120, 240, 480, round(rng.uniform(1, 200), 1)]
            ),
            "skills": {s: rng.randint(1, 5) for s in rng.sample(WIDE_SKILLS, rng.randint(0, 2))},
        }
        kind = rng.random()
        if kind < 0.3:
            h = rng.randint(6, 18)
            job["windows"] = [
                {"start": f"{day}T{h:02d}:00", "end": f"{day}T{min(23, h + rng.randint(1, 5)):02d}:00"}
            ]
            other = start + timedelta(days=rng.randint(0, days - 1))
            if other != day and rng.random() < 0.3:
                job["windows"].append({"start": f"{other}T08:00", "end": f"{other}T17:00"})
        elif kind < 0.4:
            h = rng.randint(7, 16)
            job["appointment"] = {"start": f"{day}T{h:02d}:00", "end": f"{day}T{h + 2:02d}:00"}
        elif kind < 0.45:
            job["pinned"] = {"technician_id": f"T{rng.randrange(n_tech)}", "date": day.isoformat()}
        elif kind < 0.52:
            job["crew_size"] = rng.randint(2, 3)
            if rng.random() < 0.5:
                job["helper_skills"] = {rng.choice(WIDE_SKILLS): 1}
        elif kind < 0.58:
            job["max_days"] = rng.randint(2, 4)
            job["duration_minutes"] = rng.choice([600, 900, 1200])
        if rng.random() < 0.2:
            job["release"] = f"{start + timedelta(days=rng.randint(0, days - 1))}T{rng.randint(6, 15):02d}:00"
        if rng.random() < 0.3:
            job["due"] = f"{start + timedelta(days=rng.randint(0, days - 1))}T{rng.randint(9, 20):02d}:00"
        job["warranty"] = rng.random() < 0.2
        job["contract"] = rng.choice(["none", "none", "standard", "premium"])
        job["emergency"] = rng.random() < 0.05
        if rng.random() < 0.3:
            job["priority"] = rng.randint(1, 5)
        if rng.random() < 0.1:
            job["preferred_technicians"] = [f"T{rng.randrange(n_tech)}"]
        if rng.random() < 0.1:
            job["excluded_technicians"] = [f"T{rng.randrange(n_tech)}"]
        job["demand"] = rng.choice([0, 0, 1, 3])
        if j and rng.random() < 0.08:
            job["after"] = {"job_id": f"J{rng.randrange(j)}", "min_days": rng.randint(0, 2)}
        elif j and rng.random() < 0.08:
            job["same_technician_as"] = {"job_id": f"J{rng.randrange(j)}", "hard": rng.random() < 0.5}
        jobs.append(job)
    return {
        "name": "every rule",
        "timezone": tz,
        "horizon": {"start": start.isoformat(), "days": days},
        "technicians": techs,
        "jobs": jobs,
    }


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field_scenarios())
def test_every_rule_at_once_gives_a_valid_plan_that_accounts_for_every_job(data: dict[str, Any]) -> None:
    """A crew's job stands on each member's route and a long job on each of its days: every job is
    in the routes or unassigned, never both, and the validator says the rest."""
    scenario = Scenario.model_validate(data)
    plan = solve(scenario, SolveOptions(time_limit_seconds=5, iterations=40))
    assert validate_plan(scenario, plan) == []
    in_routes = {v.job_id for r in plan.routes for v in r.visits}
    unassigned = [u.job_id for u in plan.unassigned]
    assert len(unassigned) == len(set(unassigned))
    assert not in_routes & set(unassigned)
    assert in_routes | set(unassigned) == {j.id for j in scenario.jobs}
